"""invgui: see what an image representation keeps, by inverting it."""

__version__ = "0.1.0"
