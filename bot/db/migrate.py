"""Runs Alembic migrations from code (CLI, tests, ``make run``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from bot.core.config import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    """Alembic's config for the project, pointed at ``database_url``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    """Migrates the database to the newest revision."""
    command.upgrade(alembic_config(database_url), "head")
