"""The shared database layer: declarative base, engines, sessions and migrations.

SQLite (WAL, foreign keys on) under the home directory by default; PostgreSQL when
``LARGEFORGE_DATABASE_URL`` says so. Migrations (Alembic, ``largeforge/migrations``) run automatically
the first time a process opens a database, so a fresh home or a new release just works.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_migrated: set[str] = set()
_lock = threading.Lock()


class Base(DeclarativeBase):
    """Every LargeForge table derives from this (one metadata, one migration history)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and enforced foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite connections are file handles: a deeper pool than the default 5 + 10 costs nothing and
        # keeps a burst of concurrent requests (the gateway, event streams) from waiting on the pool.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=30
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database), migrated on first use."""
    from largeforge.settings import get_settings

    url = url or get_settings().resolved_database_url()
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        engine = _engines[url]
        if url not in _migrated:
            migrate(engine)
            _migrated.add(url)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and processes that fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on any error."""
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


__all__ = [
    "Base",
    "UTCDateTime",
    "dispose_engines",
    "get_engine",
    "make_engine",
    "migrate",
    "new_id",
    "session_scope",
    "utcnow",
]
