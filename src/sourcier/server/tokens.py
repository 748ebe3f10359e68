"""API tokens: made by ``sourcier token create NAME``, kept only as hashes.

A token is 256 random bits, shown once. The file (``<index>/api-tokens.json``, mode
0600) keeps each token's SHA-256 and creation date by name; a fast hash is enough for
secrets this long (a password needs scrypt, a random token does not). A running server
reads the file again when it changes, so ``sourcier token revoke NAME`` takes effect on
the next request, with no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError, InputError
from ..files import write_atomic

TOKENS_FILE = "api-tokens.json"
PREFIX = "src-"
"""Tokens start with this, so a leaked one is recognisable (in logs, in secret scanners)."""


def tokens_path(index: Path) -> Path:
    """Where an index keeps its API tokens."""
    return Path(index) / TOKENS_FILE


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """One token as stored: its name, hash and creation date (never the token)."""

    name: str
    sha256: str
    created: str


@dataclass
class TokenStore:
    """The tokens of one index, re-read when the file changes (thread-safe)."""

    path: Path
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _by_hash: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def list(self) -> list[TokenInfo]:
        """The stored tokens, by name."""
        return sorted(_read(self.path).values(), key=lambda t: t.name)

    def create(self, name: str) -> str:
        """A new token for ``name``, stored as its hash; the token itself is returned once.

        Raises:
            InputError: an empty name, or one already used (revoke it first).
        """
        name = name.strip()
        if not name or any(c.isspace() or not c.isprintable() for c in name):
            raise InputError(
                "a token name cannot be empty or contain spaces", code="token_name", name=name
            )
        tokens = _read(self.path)
        if name in tokens:
            raise InputError(
                f"a token named {name!r} exists already: revoke it first "
                f"(sourcier token revoke {name})",
                code="token_exists",
                name=name,
            )
        token = PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        tokens[name] = TokenInfo(name, _digest(token), created)
        _write(self.path, tokens)
        return token

    def revoke(self, name: str) -> None:
        """Forget the token ``name``.

        Raises:
            InputError: no token has that name.
        """
        tokens = _read(self.path)
        if tokens.pop(name, None) is None:
            raise InputError(f"no token named {name!r}", code="token_unknown", name=name)
        _write(self.path, tokens)

    def owner(self, token: str) -> str | None:
        """The name of ``token``, or None when it is not (or no longer) valid."""
        digest = _digest(token)
        with self._lock:
            self._refresh()
            for stored, name in self._by_hash.items():
                if hmac.compare_digest(stored, digest):
                    return name
        return None

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._by_hash = {t.sha256: t.name for t in _read(self.path).values()}
            self._stamp = stamp


def _read(path: Path) -> dict[str, TokenInfo]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot read the token file {path}: {err}", code="token_file", path=str(path)
        ) from err
    try:
        return {
            name: TokenInfo(name, str(entry["sha256"]), str(entry.get("created", "")))
            for name, entry in raw.get("tokens", {}).items()
        }
    except (AttributeError, KeyError, TypeError) as err:
        raise ConfigError(
            f"the token file {path} is damaged ({err})", code="token_file", path=str(path)
        ) from err


def _write(path: Path, tokens: dict[str, TokenInfo]) -> None:
    body = {"tokens": {t.name: {"sha256": t.sha256, "created": t.created} for t in tokens.values()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(body, indent=2, sort_keys=True) + "\n", mode=0o600)
