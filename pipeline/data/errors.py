"""Error types of the data layer.

Both subclass ``ValueError`` so a stage can catch bad input with one ``except``; messages start with
the offending file (or config field) so the user knows where to look without a traceback.
"""

from __future__ import annotations


class DataError(ValueError):
    """Input data is missing, corrupt or inconsistent; the message starts with the file path."""


class ConfigError(ValueError):
    """A data-layer config value is invalid; the message starts with the field name."""
