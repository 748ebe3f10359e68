"""Errors a user can cause or meet. Each one reads well as a single line.

An error a user can trigger carries a ``code`` (a stable name such as
``"question_empty"``) and the ``params`` its message was built from, so a display can
say it in another language (see :mod:`sourcier.messages`); ``str(err)`` is always the
English line.
"""

from __future__ import annotations


class SourcierError(Exception):
    """Base class: every error sourcier raises on purpose.

    Args:
        message: the English one-line message (``str(err)``).
        code: a stable name for the kind of mistake, for translated messages.
        params: the values the message quotes (a length, a path, a date ...).
    """

    def __init__(self, message: str = "", *, code: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


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
