"""The one place that wires everything: settings, the PTB application, web, sender, CLI."""
