"""Build a SQLite store as an older release left it, to test that opening it upgrades it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from shipyard.store import db


def sqlite_store_at(path: Path, revision: str) -> str:
    """Create ``path`` migrated only up to ``revision``; returns its URL."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(db._MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()
    return url
