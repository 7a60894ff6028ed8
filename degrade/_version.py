"""The toolkit's version (one place: the package metadata, every ``--version`` and checkpoint read it)."""
__version__ = "0.2.0"
