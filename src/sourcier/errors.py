"""Errors a user can cause or meet. Each one reads well as a single line."""

from __future__ import annotations


class SourcierError(Exception):
    """Base class: every error sourcier raises on purpose."""


class ConfigError(SourcierError):
    """A setting or option has a value that cannot work."""


class InputError(SourcierError):
    """A question, path or filter given by the user is not usable."""


class LoadError(SourcierError):
    """A file could not be read into a document (the message is the reason)."""


class IndexNotFoundError(SourcierError):
    """No index exists at the requested location."""


class IndexMismatchError(SourcierError):
    """The index was built with another model or an incompatible format."""


class IndexCorruptError(SourcierError):
    """The index on disk is damaged or incomplete."""


class ModelError(SourcierError):
    """The embedding model could not be prepared or loaded."""
