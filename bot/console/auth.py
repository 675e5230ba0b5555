"""Console sign-in: argon2 passwords, TOTP codes, throttling and server-side sessions.

Sign-in takes two steps, password then code, and the first step always
leads to the second: whether the password was right is kept in the pending
session on the server, so the one error message, given after the code,
never says which part was wrong. Failures are counted per account and per
client. A session's cookie holds only a signed random key; the database
keeps its SHA-256, its stage, its CSRF token and its times, so signing out
really ends it and expiry (idle and absolute) is decided here.
When an officer's last live session expires, they are set offline, so
the rota stops counting them as available (see :mod:`bot.console.presence`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeSerializer
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from bot import audit
from bot.core.config import Settings
from bot.db.models import ConsoleSession, Officer, Presence, utcnow

SESSION_COOKIE = "consular_console"
# Before there is a session: the sign-in form's CSRF token (signed double submit).
SIGNIN_COOKIE = "consular_console_signin"
STAGE_PENDING = "pending"
STAGE_ACTIVE = "active"
TOTP_ISSUER = "Consular duty console"
MIN_PASSWORD_LENGTH = 12
GENERIC_ERROR = "The email address, password or security code is not right. Try again."
THROTTLED_ERROR = "Too many attempts to sign in. Wait 15 minutes, then try again."

_hasher = PasswordHasher()


# -- passwords -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash with the library's current parameters."""
    return _hasher.hash(password)


@cache
def _decoy_hash() -> str:
    # Verified against when the account does not exist, so that an unknown
    # email address costs the same time as a wrong password.
    return _hasher.hash(secrets.token_urlsafe(16))


def check_password(*, officer: Officer | None, password: str) -> bool:
    """True when ``password`` is the officer's; upgrades the hash when parameters changed."""
    if officer is None or not officer.active or not officer.password_hash:
        _verify(_decoy_hash(), password)
        return False
    if not _verify(officer.password_hash, password):
        return False
    if _hasher.check_needs_rehash(officer.password_hash):
        officer.password_hash = _hasher.hash(password)
    return True


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- TOTP --------------------------------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh base32 secret for an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(*, email: str, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads (usually as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def accept_totp(
    *, session: Session, officer: Officer, code: str, now: datetime | None = None
) -> bool:
    """True for a current code (one step either side) not accepted before.

    The step of the accepted code is stored with a compare-and-set, so the
    same code (or an older one) never works twice, even from two requests at
    the same moment.
    """
    if not officer.totp_secret:
        return False
    code = "".join(code.split())
    if not code.isdigit():
        return False
    now = now or utcnow()
    totp = pyotp.TOTP(officer.totp_secret)
    if not totp.verify(code, for_time=now, valid_window=1):
        return False
    step = _matching_step(totp, code, now)
    if step is None:
        return False
    claimed = session.execute(
        update(Officer)
        .where(
            Officer.id == officer.id,
            or_(Officer.totp_last_step.is_(None), Officer.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _matching_step(totp: pyotp.TOTP, code: str, now: datetime) -> int | None:
    for offset in (-1, 0, 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(moment), code):
            return int(totp.timecode(moment))
    return None


# -- throttling --------------------------------------------------------------------------


class SignInThrottle:
    """Counts failed sign-ins per account and per client (moving windows).

    Uses the same storage as the app's other rate limits, so production's
    Redis shares the counts between app instances.
    """

    def __init__(self, *, storage_uri: str, per_account: str, per_client: str):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._per_account = parse(per_account)
        self._per_client = parse(per_client)

    def blocked(self, *, email: str, client: str) -> bool:
        """True when either count is used up."""
        return not (
            self._limiter.test(self._per_account, "console-signin", "account", _norm(email))
            and self._limiter.test(self._per_client, "console-signin", "client", client)
        )

    def failed(self, *, email: str, client: str) -> None:
        """Counts one failure against both."""
        self._limiter.hit(self._per_account, "console-signin", "account", _norm(email))
        self._limiter.hit(self._per_client, "console-signin", "client", client)


def _norm(email: str) -> str:
    return email.strip().lower()


# -- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live, from the settings."""

    idle: timedelta
    absolute: timedelta
    pending: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            absolute=timedelta(hours=settings.console_session_max_hours),
            pending=timedelta(minutes=settings.console_signin_pending_minutes),
        )


class CookieSigner:
    """Signs the random keys the console's cookies carry."""

    def __init__(self, settings: Settings):
        secret = settings.console_secret or settings.webchat_secret
        self._sessions = URLSafeSerializer(secret, salt="console-session")
        self._signin = URLSafeSerializer(secret, salt="console-signin")

    def session_cookie(self, key: str) -> str:
        return str(self._sessions.dumps(key))

    def session_key(self, cookie: str | None) -> str | None:
        return _loads(self._sessions, cookie)

    def signin_cookie(self, token: str) -> str:
        return str(self._signin.dumps(token))

    def signin_token(self, cookie: str | None) -> str | None:
        return _loads(self._signin, cookie)


def _loads(serializer: URLSafeSerializer, cookie: str | None) -> str | None:
    if not cookie:
        return None
    try:
        value = serializer.loads(cookie)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def new_token() -> str:
    """A random URL-safe token (session keys, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_pending(
    *, session: Session, email: str, officer: Officer | None, password_ok: bool
) -> tuple[str, ConsoleSession]:
    """The session between the two steps; returns its cookie key."""
    key = new_token()
    row = ConsoleSession(
        id=_digest(key),
        stage=STAGE_PENDING,
        officer_id=officer.id if officer is not None else None,
        password_ok=password_ok,
        signin_email=_norm(email)[:200],
        csrf_token=new_token(),
    )
    session.add(row)
    session.flush()
    return key, row


def activate(*, session: Session, pending: ConsoleSession) -> tuple[str, ConsoleSession]:
    """Replaces the pending session with a new active one (a new key: no fixation)."""
    officer_id = pending.officer_id
    session.delete(pending)
    key = new_token()
    row = ConsoleSession(
        id=_digest(key), stage=STAGE_ACTIVE, officer_id=officer_id, csrf_token=new_token()
    )
    session.add(row)
    session.flush()
    return key, row


def load(
    *,
    session: Session,
    key: str | None,
    policy: SessionPolicy,
    stage: str = STAGE_ACTIVE,
    touch: bool = True,
    now: datetime | None = None,
) -> ConsoleSession | None:
    """The live session for a cookie key, or None; an expired one is deleted."""
    if not key:
        return None
    row = session.get(ConsoleSession, _digest(key))
    if row is None or row.stage != stage:
        return None
    now = now or utcnow()
    if expired(row, policy, now):
        session.delete(row)
        session.flush()
        if row.stage == STAGE_ACTIVE and row.officer_id is not None:
            offline_unless_signed_in(
                session=session, officer_id=row.officer_id, policy=policy, now=now
            )
        return None
    if stage == STAGE_ACTIVE:
        if row.officer is None or not row.officer.active:
            return None
        if touch:
            row.last_seen_at = now
    return row


def expired(row: ConsoleSession, policy: SessionPolicy, now: datetime) -> bool:
    """Past the pending, idle or absolute limit."""
    created = _aware(row.created_at)
    if row.stage == STAGE_PENDING:
        return now - created > policy.pending
    return now - created > policy.absolute or now - _aware(row.last_seen_at) > policy.idle


def end(*, session: Session, key: str | None) -> ConsoleSession | None:
    """Deletes the session for a cookie key (sign-out); returns what it was."""
    if not key:
        return None
    row = session.get(ConsoleSession, _digest(key))
    if row is not None:
        session.delete(row)
        session.flush()
    return row


def _expired_filter(policy: SessionPolicy, now: datetime) -> ColumnElement[bool]:
    return or_(
        (ConsoleSession.stage == STAGE_PENDING)
        & (ConsoleSession.created_at < now - policy.pending),
        ConsoleSession.created_at < now - policy.absolute,
        ConsoleSession.last_seen_at < now - policy.idle,
    )


@dataclass(frozen=True)
class Expiry:
    """What a purge did: sessions removed, officers it set offline (their emails)."""

    sessions: int
    offline: list[str]


def expire(*, session: Session, policy: SessionPolicy, now: datetime | None = None) -> Expiry:
    """Removes sessions past their limits; their officers go offline unless still signed in.

    An officer whose last live session ended without signing out (the browser
    closed, the idle or absolute limit passed) is no longer at the console, so
    the rota must not count them as available.
    """
    now = now or utcnow()
    found = session.execute(
        select(ConsoleSession.id, ConsoleSession.officer_id, ConsoleSession.stage).where(
            _expired_filter(policy, now)
        )
    ).all()
    if not found:
        return Expiry(sessions=0, offline=[])
    # Deleted by id and only if still expired: a session used since it was read stays.
    result = session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.id.in_([row.id for row in found]), _expired_filter(policy, now)
        )
    )
    owners = sorted(
        {row.officer_id for row in found if row.stage == STAGE_ACTIVE and row.officer_id}
    )
    offline = []
    for officer_id in owners:
        officer = offline_unless_signed_in(
            session=session, officer_id=officer_id, policy=policy, now=now
        )
        if officer is not None:
            offline.append(officer.email)
    return Expiry(sessions=int(result.rowcount or 0), offline=offline)  # type: ignore[attr-defined]


def purge_expired(*, session: Session, policy: SessionPolicy, now: datetime | None = None) -> int:
    """Removes sessions past their limits (on sign-in and by the app's periodic sweep)."""
    return expire(session=session, policy=policy, now=now).sessions


def _live(policy: SessionPolicy, now: datetime) -> ColumnElement[bool]:
    return (
        (ConsoleSession.stage == STAGE_ACTIVE)
        & (ConsoleSession.created_at >= now - policy.absolute)
        & (ConsoleSession.last_seen_at >= now - policy.idle)
    )


def offline_unless_signed_in(
    *, session: Session, officer_id: int, policy: SessionPolicy, now: datetime | None = None
) -> Officer | None:
    """Sets the officer offline when no live session of theirs is left; returns them if so.

    One conditional UPDATE, so a sign-in that commits a new session at the
    same moment is never overwritten with "offline".
    """
    now = now or utcnow()
    officer = session.get(Officer, officer_id)
    if officer is None or officer.presence == Presence.OFFLINE:
        return None
    was = officer.presence.value
    signed_in = (
        select(ConsoleSession.id)
        .where(ConsoleSession.officer_id == officer_id, _live(policy, now))
        .exists()
    )
    changed = session.execute(
        update(Officer)
        .where(Officer.id == officer_id, Officer.presence != Presence.OFFLINE, ~signed_in)
        .values(presence=Presence.OFFLINE, presence_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(officer)
    audit.record(
        session=session,
        actor="system",
        action="console.session_expired",
        subject=officer.email,
        details={"presence": Presence.OFFLINE.value, "was": was},
    )
    return officer


def find_officer(*, session: Session, email: str) -> Officer | None:
    """The officer with this email address (case-insensitive), if any."""
    return session.scalars(select(Officer).where(Officer.email == _norm(email))).first()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
