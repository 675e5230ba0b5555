"""Settings: local defaults run; production refuses development secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.core.config import Settings

STRONG = {
    "rasa_token": "r" * 32,
    "internal_api_token": "i" * 32,
    "webchat_secret": "w" * 32,
    "case_fact_key": "c" * 32,
    "database_url": "postgresql+psycopg://consular@db/consular",
    "public_base_url": "https://consular.example.gov.uk",
}


def test_local_profile_runs_on_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.environment == "local"
    assert settings.database_url.startswith("sqlite")


@pytest.mark.parametrize(
    "default_name", ["rasa_token", "internal_api_token", "webchat_secret", "case_fact_key"]
)
def test_production_refuses_each_default_secret(default_name: str) -> None:
    values = {key: value for key, value in STRONG.items() if key != default_name}
    with pytest.raises(ValidationError, match=f"CONSULAR_{default_name.upper()}"):
        Settings(environment="production", **values)


def test_production_refuses_sqlite() -> None:
    values = {**STRONG, "database_url": "sqlite:///x.db"}
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(environment="production", **values)


def test_production_refuses_plain_http_public_url() -> None:
    values = {**STRONG, "public_base_url": "http://consular.example.gov.uk"}
    with pytest.raises(ValidationError, match="https"):
        Settings(environment="production", **values)


def test_production_telegram_needs_a_webhook_secret() -> None:
    values = {**STRONG, "telegram_bot_token": "123:abc", "telegram_webhook_secret": "short"}
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(environment="production", **values)


def test_production_starts_with_real_secrets() -> None:
    assert Settings(environment="production", **STRONG).environment == "production"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSULAR_RASA_URL", "http://127.0.0.1:6005")
    assert Settings().rasa_url == "http://127.0.0.1:6005"
