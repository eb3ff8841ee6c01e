"""The rules and use cases of the service; plain Python, no framework imports."""
