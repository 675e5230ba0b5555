"""The service catalogue (shared/SERVICE_CATALOGUE.md) as data: the public topic slugs.

Slugs are the public contract (replies, guidance, analytics, tests); Rasa's
intent for a slug is the slug with underscores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One catalogue topic."""

    slug: str
    urgent: bool = False
    needs_country: bool = False

    @property
    def intent(self) -> str:
        """The Rasa intent that carries this topic."""
        return self.slug.replace("-", "_")


TOPICS: tuple[Topic, ...] = (
    Topic("lost-stolen-passport", needs_country=True),
    Topic("passport-renewal-abroad"),
    Topic("arrest-detention", urgent=True, needs_country=True),
    Topic("death-abroad", urgent=True, needs_country=True),
    Topic("hospital-abroad", urgent=True, needs_country=True),
    Topic("crime-victim", urgent=True, needs_country=True),
    Topic("sexual-assault", urgent=True, needs_country=True),
    Topic("missing-person", urgent=True, needs_country=True),
    Topic("kidnap", urgent=True, needs_country=True),
    Topic("forced-marriage", urgent=True, needs_country=True),
    Topic("child-abduction", urgent=True, needs_country=True),
    Topic("crisis-disaster", urgent=True, needs_country=True),
    Topic("wellbeing-crisis", urgent=True),
    Topic("emergency-money"),
    Topic("document-legalisation", needs_country=True),
    Topic("register-birth-abroad", needs_country=True),
    Topic("marriage-abroad", needs_country=True),
    Topic("travel-advice", needs_country=True),
    Topic("entry-requirements", needs_country=True),
    Topic("travel-health", needs_country=True),
    Topic("contact-embassy", needs_country=True),
    Topic("case-status"),
    Topic("human-agent"),
    Topic("what-we-cannot-do"),
    Topic("uk-visa"),
    Topic("out-of-scope"),
)
BY_SLUG: dict[str, Topic] = {topic.slug: topic for topic in TOPICS}
SLUGS: frozenset[str] = frozenset(BY_SLUG)
URGENT_SLUGS: frozenset[str] = frozenset(topic.slug for topic in TOPICS if topic.urgent)
