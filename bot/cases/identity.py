"""Normalising and hashing the facts that prove a citizen may see a case.

Facts are compared as HMAC-SHA256 digests under a server key: a leaked
database does not reveal surnames or birth dates, and guessing them offline
is impossible without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

REFERENCE_PATTERN = re.compile(r"^CON-(\d{4})-(\d{6})$")
_REFERENCE_LOOSE = re.compile(r"CON\W*(\d{4})\W*(\d{6})", re.IGNORECASE)


def normalise_reference(raw: str) -> str | None:
    """``CON-2026-004512`` from what a citizen typed ("con 2026 004512"), else None."""
    match = _REFERENCE_LOOSE.search(raw.strip())
    if match is None:
        return None
    return f"CON-{match.group(1)}-{match.group(2)}"


def normalise_surname(raw: str) -> str:
    """Case, accents, spaces, hyphens and apostrophes do not matter ("O'Neill-Smith")."""
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.casefold())


def fact_digest(key: str, kind: str, value: str) -> str:
    """The keyed digest stored for one fact; ``kind`` keeps facts from matching each other."""
    message = f"{kind}:{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def surname_digest(key: str, surname: str) -> str:
    """Digest of a surname as stored on a case."""
    return fact_digest(key, "surname", normalise_surname(surname))


def birth_date_digest(key: str, born: date) -> str:
    """Digest of a date of birth as stored on a case."""
    return fact_digest(key, "dob", born.isoformat())


def reference_digest(key: str, reference: str) -> str:
    """Digest used to count failed lookups of a reference, existing or not."""
    return fact_digest(key, "ref", reference.strip().upper())
