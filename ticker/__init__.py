"""ticker: a real-time backend for newsrooms."""

__version__ = "0.1.0"
