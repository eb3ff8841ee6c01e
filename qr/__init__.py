"""Deep-link payloads (signed, expiring), links and QR images."""
