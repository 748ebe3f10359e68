"""Who is asking: HTTP Basic with the server's users, or a bearer token.

With a login (``--auth``, ``--auth-file``) every API route needs one of the two, the
OpenAPI page included; without one the API is as open as the page (and, like it, served
with write routes on this machine only, unless ``--insecure``). The answer is a client
key for the per-client budget: ``user:NAME``, ``token:NAME`` or ``host:ADDRESS``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..ui.access import Access
from .problems import ApiError
from .tokens import TokenStore

CHALLENGE = {"WWW-Authenticate": 'Basic realm="sourcier", charset="UTF-8"'}


def unauthorized(detail_en: str, detail_fr: str) -> ApiError:
    """401 with the challenge that lets a browser or a client ask for a login."""
    return ApiError(401, "unauthorized", detail_en, detail_fr, CHALLENGE)


MISSING = unauthorized(
    "log in first: HTTP Basic with a user of this server, or Authorization: Bearer TOKEN "
    "(sourcier token create NAME)",
    "Connectez-vous d’abord : HTTP Basic avec un utilisateur de ce serveur, ou "
    "Authorization: Bearer JETON (sourcier token create NOM).",
)
WRONG = unauthorized(
    "these credentials are not valid on this server (wrong user, password or token, or a "
    "revoked token)",
    "Ces identifiants ne sont pas valables sur ce serveur (utilisateur, mot de passe ou "
    "jeton erroné, ou jeton révoqué).",
)


@dataclass
class Guard:
    """Checks the ``Authorization`` header of each API request (thread-safe).

    Attributes:
        access: the server's users and modes.
        tokens: the index's API tokens (accepted where a login is required).
        remembered: how many verified Basic logins are remembered, so a client that
            sends its password with every request pays for scrypt once, not each time.
    """

    access: Access
    tokens: TokenStore | None = None
    remembered: int = 256
    _known: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def required(self) -> bool:
        """Whether requests must carry credentials."""
        return self.access.login

    def client(self, authorization: str | None, host: str | None) -> str:
        """The client key of a request.

        Raises:
            ApiError: 401, a login is required and the header is missing or wrong.
        """
        if not self.required:
            return f"host:{host or 'unknown'}"
        scheme, _, value = (authorization or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if not value:
            raise MISSING
        if scheme == "bearer":
            owner = self.tokens.owner(value) if self.tokens is not None else None
            if owner is None:
                raise WRONG
            return f"token:{owner}"
        if scheme == "basic":
            return f"user:{self._basic(value)}"
        raise MISSING

    def _basic(self, value: str) -> str:
        key = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise WRONG from None
        if not sep or not self.access.check(user, password):
            raise WRONG
        with self._lock:
            self._known[key] = user
            while len(self._known) > self.remembered:
                self._known.popitem(last=False)
        return user
