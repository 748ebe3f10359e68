"""Who may use a served app, and what they may change.

- Login: Gradio's own ``auth`` (its login page, its session cookie, and a 401 on every
  API route without one), fed by ``--auth USER:PASSWORD`` or an auth file whose lines are
  ``user:scrypt$…`` hashes made by ``sourcier password``.
- Read-only mode: no upload box, no removal, and no endpoint that could write.
- Exposure: an app that can write is never served beyond this machine without a login,
  unless the user says ``--insecure``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
"""scrypt cost: about 50 ms and 16 MiB per check here, so a login is not a DoS lever."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password``, as ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{b64(salt).decode()}${b64(key).decode()}"


def _verify_hash(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, key = stored.split("$")
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            dklen=len(expected),
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class Access:
    """The access rules of one served app.

    Attributes:
        users: ``(user, secret)`` pairs; a secret is a ``scrypt$…`` hash or, from
            ``--auth``, the password itself (kept only in memory). Empty: no login.
        read_only: uploads and removals are off (hidden in the page, absent from the API).
        insecure: the user accepts serving write access beyond this machine with no login.
    """

    users: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    insecure: bool = False

    @property
    def login(self) -> bool:
        """Whether a login is required."""
        return bool(self.users)

    @property
    def can_write(self) -> bool:
        """Whether uploads and removals are allowed."""
        return not self.read_only

    def check(self, username: str, password: str) -> bool:
        """Whether ``username``/``password`` may log in (the ``auth`` callable of Gradio)."""
        ok = False
        for user, secret in self.users:
            same_user = hmac.compare_digest(user.encode(), str(username).encode())
            if secret.startswith("scrypt$"):
                match = _verify_hash(str(password), secret)
            else:
                match = hmac.compare_digest(secret.encode(), str(password).encode())
            ok |= same_user and match
        return ok

    def check_exposure(self, host: str) -> None:
        """Refuse to serve write access beyond this machine with no login.

        Raises:
            ConfigError: ``host`` is not a loopback address, uploads and removals are on,
                no login is set and ``insecure`` is not.
        """
        if is_loopback(host) or self.login or self.read_only or self.insecure:
            return
        raise ConfigError(
            f"refusing to serve on {host} with no login: anyone who can reach it could upload "
            "and remove documents; add --auth USER:PASSWORD (or --auth-file), or --read-only, "
            "or --insecure if that is really what you want",
            code="exposed_write",
            host=host,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(specs: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``USER:PASSWORD`` strings (``--auth``, ``SOURCIER_AUTH``) as ``(user, password)``.

    Raises:
        ConfigError: a spec has no ``:``, or an empty user or password.
    """
    users = []
    for spec in specs:
        user, sep, password = spec.partition(":")
        user = user.strip()
        if not sep or not user or not password:
            shown = user or spec[:20]
            raise ConfigError(
                f"--auth needs USER:PASSWORD (got {shown!r}…)",
                code="auth_format",
                got=shown,
            )
        users.append((user, password))
    return tuple(users)


def read_auth_file(path: str | Path) -> tuple[tuple[str, str], ...]:
    """The ``user:scrypt$…`` lines of an auth file (``#`` comments and blank lines skipped).

    Plain passwords are refused: a file can be read by others, so it holds only hashes
    (``sourcier password USER`` prints a line).

    Raises:
        ConfigError: the file cannot be read, or a line is not ``user:scrypt$…``.
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"cannot read the auth file {file}: {err}", code="auth_file", path=str(file)
        ) from err
    users = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, secret = line.partition(":")
        if not sep or not user.strip() or not secret.startswith("scrypt$"):
            raise ConfigError(
                f"{file}, line {number}: expected user:scrypt$… (make one with "
                "`sourcier password USER`)",
                code="auth_line",
                path=str(file),
                line=number,
            )
        users.append((user.strip(), secret.strip()))
    if not users:
        raise ConfigError(f"the auth file {file} has no user", code="auth_empty", path=str(file))
    return tuple(users)


def access_from_options(
    *,
    auth: Sequence[str] = (),
    auth_file: str | Path | None = None,
    read_only: bool = False,
    insecure: bool = False,
) -> Access:
    """The :class:`Access` of ``sourcier serve``'s options.

    Raises:
        ConfigError: a malformed ``--auth`` or auth file.
    """
    users = parse_auth(auth)
    if auth_file is not None:
        users += read_auth_file(auth_file)
    return Access(users=users, read_only=read_only, insecure=insecure)
