"""One typed settings object, read from the environment (prefix ``CONSULAR_``).

Defaults run the embedded profile on one machine. The production profile
refuses to start while any secret still has its development default.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_SECRETS = {
    "rasa_token": "dev-rasa-token",
    "internal_api_token": "dev-internal-token",
    "webchat_secret": "dev-webchat-secret-change-me",
    "case_fact_key": "dev-case-fact-key-change-me",
}
# Channel secrets have no default: a channel without them is simply off.
CHANNEL_SECRETS = ("telegram_webhook_secret", "twilio_auth_token")


class Settings(BaseSettings):
    """Everything the app can be configured with."""

    model_config = SettingsConfigDict(env_prefix="CONSULAR_", extra="ignore")

    environment: Literal["local", "production"] = "local"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'consular.db'}"

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = DEV_SECRETS["rasa_token"]
    rasa_timeout_seconds: float = Field(default=10.0, gt=0)
    # Turns sent to each Rasa server at once; later ones wait in order (0: no
    # limit). See bot/conversations/rasa_client.py.
    rasa_concurrency: int = Field(default=3, ge=0)
    action_server_url: str = "http://127.0.0.1:5055"
    health_timeout_seconds: float = Field(default=2.0, gt=0)

    internal_api_token: str = DEV_SECRETS["internal_api_token"]
    # The action server calls the internal API from the same host or a private
    # network; anything else is refused even with the right token.
    internal_api_allow_private_networks: bool = True

    webchat_secret: str = DEV_SECRETS["webchat_secret"]
    webchat_token_max_age_seconds: int = Field(default=24 * 3600, gt=0)
    webchat_max_text_length: int = Field(default=2000, gt=0)

    emergency_phone: str = "+44 20 7008 5000"

    # Case identity facts are stored as HMACs under this key: surnames and
    # birth dates are too guessable for a plain hash.
    case_fact_key: str = DEV_SECRETS["case_fact_key"]
    case_max_failures: int = Field(default=3, gt=0)
    case_lock_minutes: int = Field(default=15, gt=0)

    # Where the app is reachable from the internet (behind any proxy): webhook
    # URLs are registered with it and Twilio signs requests for it.
    public_base_url: str = "http://127.0.0.1:8000"

    # Telegram (python-telegram-bot). Off unless a bot token is set.
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    # Overridden only by tests, which run a fake Bot API on loopback.
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"

    # Twilio: WhatsApp and SMS. Off unless an account and token are set.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_whatsapp_from: str = ""  # e.g. whatsapp:+447700900123
    twilio_sms_from: str = ""  # e.g. +447700900123
    # An approved WhatsApp template (Content SID) for replies outside the
    # 24-hour session window; without one such replies wait for an officer.
    twilio_whatsapp_template_sid: str = ""
    # An approved twilio/quick-reply template (Content SID) for "Was this
    # helpful?" on WhatsApp: body "Was this helpful?" and two quick-reply
    # buttons titled "Yes" and "No" (their ids are free; a tap is matched to
    # the offered button by its id or title). Without one the question goes
    # out with numbered options, as on SMS.
    twilio_feedback_content_sid: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    whatsapp_session_hours: int = Field(default=24, gt=0)

    # The outbox: retries with exponential backoff, then marks the message failed.
    outbox_max_attempts: int = Field(default=8, gt=0)
    outbox_backoff_seconds: float = Field(default=2.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=600.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Turns stored but not finished (a crash) and turns held during an outage
    # are picked up again this often.
    recovery_poll_seconds: float = Field(default=2.0, gt=0)

    # Rate limits (limits-library syntax), per sender and per endpoint.
    rate_limit_storage: str = "memory://"
    rate_limit_per_sender: str = "20/minute"
    rate_limit_per_endpoint: str = "600/minute"
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # The guidance admin's bulk import (CSV/JSON files of posts, travel
    # advice or articles) may send more than any message or form.
    admin_import_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)

    # -- duty officers' console (issue 6) --
    # Signs the console's session and sign-in cookies. Empty: a key derived
    # from CONSULAR_WEBCHAT_SECRET under its own salt (refused in production
    # while that is a development default).
    console_secret: str = ""
    console_session_idle_minutes: int = Field(default=30, gt=0)
    console_session_max_hours: int = Field(default=12, gt=0)
    # Between the password and the code: the second step must follow soon.
    console_signin_pending_minutes: int = Field(default=5, gt=0)
    # Failed sign-ins (limits-library syntax), counted per account and per client.
    console_signin_limit_per_account: str = "5/15 minutes"
    console_signin_limit_per_client: str = "20/15 minutes"

    # Urgent handoffs nobody has taken page the on-call supervisor by SMS.
    escalation_after_seconds: float = Field(default=300.0, gt=0)
    escalation_repeat_seconds: float = Field(default=300.0, gt=0)
    escalation_poll_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            defaults = [name for name, value in DEV_SECRETS.items() if getattr(self, name) == value]
            if defaults:
                names = ", ".join(f"CONSULAR_{name.upper()}" for name in defaults)
                raise ValueError(f"production refuses development defaults; set {names}")
            if self.telegram_bot_token and len(self.telegram_webhook_secret) < 16:
                raise ValueError("production Telegram needs CONSULAR_TELEGRAM_WEBHOOK_SECRET")
            if self.public_base_url.startswith("http://"):
                raise ValueError("production needs an https CONSULAR_PUBLIC_BASE_URL")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs CONSULAR_DATABASE_URL (PostgreSQL)")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
