"""printforge: from a sentence to a printed part."""

__all__ = ["__version__"]

__version__ = "0.1.0"
