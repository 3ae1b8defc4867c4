"""Helper package for the OAENet tutorial book."""

__version__ = "0.1.0"
