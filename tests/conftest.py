"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable and always in CI),
a frozen clock, an app built with the simulator, and a guard that fails any test that tries to
reach the internet."""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.config import Settings, load_settings
from tracker.db.engine import make_engine, normalise_url
from tracker.db.migrate import upgrade

TEST_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="  # 32 bytes, tests only
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # a Thursday, inside send hours


# --- no internet -------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else None
    if host in (None, "localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> object:
    if not _is_local(address):
        raise RuntimeError(f"tests must not reach the network: connect to {address!r} refused")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> object:
    if not _is_local(address):
        raise RuntimeError(f"tests must not reach the network: connect to {address!r} refused")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


# --- databases ---------------------------------------------------------------------------


def postgres_url() -> str | None:
    """The test server's URL if reachable; in CI an unreachable server is an error."""
    url = os.environ.get("TRACKER_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return url
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL must be reachable in CI at {url}: {exc}") from exc
        return None


_PG_URL: str | None | bool = False


def _pg() -> str | None:
    global _PG_URL
    if _PG_URL is False:
        _PG_URL = postgres_url()
    return _PG_URL  # type: ignore[return-value]


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    base = _pg()
    if base is None:
        pytest.skip("PostgreSQL not reachable (set TRACKER_TEST_POSTGRES_URL)")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _with_search_path(base, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on SQLite in a temp dir and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    return load_settings({}, database_url=database_url, secret_key=TEST_KEY, **overrides)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[App]:
    """A migrated database, a frozen clock and the default (simulator) gateway."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    application = build(settings, clock=clock, engine=engine)
    try:
        yield application
    finally:
        application.close()
