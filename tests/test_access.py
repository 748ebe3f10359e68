"""Serving safely: logins, auth files, the exposure check and the per-client question budget.

Fast: no server is started here (test_ui.py checks the running app's 401s, read-only mode
and a flood; test_ui_browser.py logs in with a real browser).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sourcier.cli.commands import main
from sourcier.errors import ConfigError, InputError
from sourcier.messages import say
from sourcier.ui.access import (
    Access,
    access_from_options,
    hash_password,
    is_loopback,
    parse_auth,
    read_auth_file,
)
from sourcier.ui.limits import ClientLimiter, client_key


def test_a_password_hash_checks_the_password_and_nothing_else() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert hash_password("correct horse") != stored  # salted
    access = Access(users=(("alice", stored),))
    assert access.check("alice", "correct horse")
    assert not access.check("alice", "correct horse ")
    assert not access.check("bob", "correct horse")
    assert not access.check("alice", "")


def test_plain_auth_pairs_and_their_mistakes() -> None:
    assert parse_auth(["alice:pa:ss", " bob :x"]) == (("alice", "pa:ss"), ("bob", "x"))
    for bad in ("alice", "alice:", ":secret"):
        with pytest.raises(ConfigError, match="USER:PASSWORD"):
            parse_auth([bad])
    assert Access(users=parse_auth(["alice:pa:ss"])).check("alice", "pa:ss")


def test_an_auth_file_holds_hashes_only(tmp_path: Path) -> None:
    good = tmp_path / "users"
    good.write_text(
        f"# the team\nalice:{hash_password('un')}\n\nbob:{hash_password('deux')}\n", "utf-8"
    )
    access = access_from_options(auth_file=good, auth=["carol:trois"])
    assert access.login and access.check("bob", "deux") and access.check("carol", "trois")
    assert not access.check("alice", "deux")
    plain = tmp_path / "plain"
    plain.write_text("alice:un\n", "utf-8")
    with pytest.raises(ConfigError, match="line 1") as err:
        read_auth_file(plain)
    assert "sourcier password" in say(err.value, "fr")
    empty = tmp_path / "empty"
    empty.write_text("# nobody\n", "utf-8")
    with pytest.raises(ConfigError, match="no user"):
        read_auth_file(empty)
    with pytest.raises(ConfigError, match="cannot read"):
        read_auth_file(tmp_path / "missing")


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org", ""):
        assert not is_loopback(host), host


def test_write_access_is_never_exposed_silently() -> None:
    with pytest.raises(ConfigError) as err:
        Access().check_exposure("0.0.0.0")
    message = str(err.value)
    assert "0.0.0.0" in message and "--auth" in message and "--insecure" in message
    assert "\n" not in message
    assert "--read-only" in say(err.value, "fr")
    Access().check_exposure("127.0.0.1")  # this machine only: fine
    Access(read_only=True).check_exposure("0.0.0.0")  # nothing to write
    Access(users=(("a", "b"),)).check_exposure("0.0.0.0")  # a login
    Access(insecure=True).check_exposure("0.0.0.0")  # the user said so


def test_serve_refuses_to_expose_write_access_before_loading_anything(tmp_path: Path) -> None:
    missing = tmp_path / "no-index-here"
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--index", str(missing)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0" in lines[0]
    assert "Traceback" not in result.output
    assert time.perf_counter() - started < 5  # refused before any index or model work
    bad = CliRunner().invoke(main, ["serve", "--auth", "alice", "--index", str(missing)])
    assert bad.exit_code == 1 and "USER:PASSWORD" in bad.output


def test_sourcier_password_prints_an_auth_file_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["password", "alice", "--password", "s3cret"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    users = tmp_path / "users"
    users.write_text(line + "\n", "utf-8")
    assert Access(users=read_auth_file(users)).check("alice", "s3cret")
    assert CliRunner().invoke(main, ["password", "a:b", "--password", "x"]).exit_code == 2
    # asked on a terminal: the prompts go to stderr, only the line to stdout
    asked = CliRunner().invoke(main, ["password", "bob"], input="pw\npw\n")
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.strip().startswith("bob:scrypt$") and "Password" not in asked.stdout
    users.write_text(asked.stdout, "utf-8")
    assert Access(users=read_auth_file(users)).check("bob", "pw")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_a_burst_then_the_rate() -> None:
    clock = _Clock()
    limiter = ClientLimiter(per_minute=6, burst=3, in_flight=5, clock=clock)
    for _ in range(3):
        with limiter.slot("a"):
            pass
    with pytest.raises(InputError, match="wait 10 s") as err:
        limiter._take("a")
    assert "attendez 10" in say(err.value, "fr")
    with limiter.slot("b"):  # another client is not affected
        pass
    clock.now += 10  # one question's worth (6 per minute)
    with limiter.slot("a"):
        pass
    with pytest.raises(InputError):
        limiter._take("a")


def test_a_client_cannot_hold_more_than_its_running_slots() -> None:
    limiter = ClientLimiter(per_minute=600, burst=100, in_flight=2, clock=_Clock())
    with limiter.slot("a"), limiter.slot("a"):
        with pytest.raises(InputError, match="still being answered"):
            limiter._take("a")
        with limiter.slot("b"):
            pass
    with limiter.slot("a"):  # released when the answers are done
        pass


def test_no_budget_when_the_rate_is_zero() -> None:
    limiter = ClientLimiter(per_minute=0, burst=1, in_flight=1, clock=_Clock())
    for _ in range(50):
        with limiter.slot("a"):
            pass


def test_client_key_prefers_the_user_then_the_session() -> None:
    class Req:
        def __init__(self, username=None, session_hash=None, host=None) -> None:
            self.username = username
            self.session_hash = session_hash
            self.client = type("C", (), {"host": host})()

    assert client_key(Req("alice", "s1", "10.0.0.1")) == "user:alice"
    assert client_key(Req(None, "s1", "10.0.0.1")) == "session:s1"
    assert client_key(Req(None, None, "10.0.0.1")) == "host:10.0.0.1"
    assert client_key(None) == "host:unknown"
