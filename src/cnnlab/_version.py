"""The package version: one place, imported by anyone, importing nothing."""
__version__ = "0.1.0"
