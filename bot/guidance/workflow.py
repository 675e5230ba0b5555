"""How guidance changes go live: draft, review by a second person, publication, rollback.

The life of a revision::

    draft --submit--> in_review --approve--> published (scheduled until publish_at)
      ^                  |   \\--send back (with a note)--> draft
      |                  \\--withdraw (by its author or submitter)--> draft
      \\-- edit (only drafts change)

A reviewer (or an admin) approves; never the person who wrote or submitted
the change, so every text a citizen reads was seen by two people. Approval
is a compare-and-set on the status, so when two reviewers approve at once
exactly one wins. Every revision is kept; a rollback is a new revision that
copies an earlier one: when that earlier text was once published (so a
second person approved it) the copy is published at once, recorded with who
rolled back and the original approver; otherwise it becomes a draft. Every
step writes an audit event in the same transaction.

Functions take the clock (``now``) so schedules and expiry can be tested.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import audit
from bot.catalogue import SLUGS
from bot.db.models import (
    TITLE_LENGTH,
    URL_LENGTH,
    GuidanceArticle,
    GuidanceRevision,
    OfficerRole,
    RevisionStatus,
    utcnow,
)
from bot.geo.gazetteer import country_name
from bot.guidance import store
from bot.guidance.store import RevisionDraft

MAX_BODY_LENGTH: Final = 8000
MAX_NOTE_LENGTH: Final = 2000
MAX_QUESTION_LENGTH: Final = 200
MAX_QUESTIONS: Final = 50
APPROVING_ROLES: Final = frozenset({OfficerRole.REVIEWER, OfficerRole.ADMIN})
EDITING_ROLES: Final = frozenset({OfficerRole.EDITOR, OfficerRole.REVIEWER, OfficerRole.ADMIN})


class WorkflowError(ValueError):
    """A step that cannot be taken; the message is written for the person who tried."""


class NotAllowed(WorkflowError):
    """This person may not take this step (e.g. approving their own change)."""


class Conflict(WorkflowError):
    """The revision changed under us (someone else acted first)."""


class NotFound(WorkflowError):
    """There is no such article or revision."""


class Invalid(WorkflowError):
    """The content is not acceptable; ``errors`` maps each form field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Person:
    """Who takes a step: their audit actor ("staff:<email>") and role."""

    actor: str
    role: OfficerRole


# -- validation ----------------------------------------------------------------------------


@dataclass
class Fields:
    """What an editor typed, as text, before it is checked."""

    title: str = ""
    body: str = ""
    source_url: str = ""
    review_by: str = ""
    example_questions: str = ""
    change_note: str = ""


@dataclass
class Checked:
    """A draft that passed validation, or the errors, per form field."""

    draft: RevisionDraft | None
    change_note: str
    errors: dict[str, str] = field(default_factory=dict)


def clean_questions(lines: Iterable[str]) -> tuple[str, ...]:
    """Example questions trimmed, blank lines dropped, duplicates (ignoring case) dropped."""
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        question = " ".join(line.split())
        key = question.casefold()
        if question and key not in seen:
            seen.add(key)
            kept.append(question)
    return tuple(kept)


def check(fields: Fields, *, today: date) -> Checked:
    """Validates an editor's fields; every problem is reported at once."""
    errors: dict[str, str] = {}
    title = " ".join(fields.title.split())
    body = fields.body.replace("\r\n", "\n").strip()
    source = fields.source_url.strip()
    note = fields.change_note.strip()
    if not title:
        errors["title"] = "Enter a title"
    elif len(title) > TITLE_LENGTH:
        errors["title"] = f"Title must be {TITLE_LENGTH} characters or fewer"
    if not body:
        errors["body"] = "Enter the guidance text"
    elif len(body) > MAX_BODY_LENGTH:
        errors["body"] = f"Guidance text must be {MAX_BODY_LENGTH} characters or fewer"
    source_error = _source_error(source)
    if source_error:
        errors["source_url"] = source_error
    review_by, review_error = _review_by(fields.review_by.strip(), today)
    if review_error:
        errors["review_by"] = review_error
    questions = clean_questions(fields.example_questions.splitlines())
    if len(questions) > MAX_QUESTIONS:
        errors["example_questions"] = f"Give at most {MAX_QUESTIONS} example questions"
    elif any(len(question) > MAX_QUESTION_LENGTH for question in questions):
        errors["example_questions"] = (
            f"Each example question must be {MAX_QUESTION_LENGTH} characters or fewer"
        )
    if not note:
        errors["change_note"] = "Say what you changed and why"
    elif len(note) > MAX_NOTE_LENGTH:
        errors["change_note"] = f"Change note must be {MAX_NOTE_LENGTH} characters or fewer"
    if errors:
        return Checked(draft=None, change_note=note, errors=errors)
    draft = RevisionDraft(
        title=title,
        body=body,
        source_url=source,
        last_reviewed=today,
        review_by=review_by,
        example_questions=questions,
    )
    return Checked(draft=draft, change_note=note)


def _source_error(source: str) -> str | None:
    if not source:
        return "Enter the source URL, the GOV.UK page this guidance is based on"
    if len(source) > URL_LENGTH:
        return f"Source URL must be {URL_LENGTH} characters or fewer"
    parts = urlsplit(source)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in source):
        return "Enter a source URL that starts with https://, like https://www.gov.uk/..."
    return None


def _review_by(raw: str, today: date) -> tuple[date | None, str | None]:
    if not raw:
        return None, "Enter a review-by date"
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        return None, "Enter the review-by date as a real date, like 2027-06-30"
    if value <= today:
        return None, "The review-by date must be in the future"
    return value, None


def check_article(topic: str, country: str) -> tuple[str, str | None, dict[str, str]]:
    """A new article's topic and country variant (blank: generic), with errors."""
    errors: dict[str, str] = {}
    topic = topic.strip()
    code = country.strip().upper() or None
    if topic not in SLUGS:
        errors["topic"] = "Choose a topic from the list"
    if code is not None:
        try:
            country_name(code)
        except KeyError:
            errors["country"] = "Enter a 2-letter country code, like ES for Spain, or leave blank"
    return topic, code, errors


# -- reading -------------------------------------------------------------------------------


def _revision(session: Session, revision_id: int) -> GuidanceRevision:
    revision = session.get(GuidanceRevision, revision_id)
    if revision is None:
        raise NotFound("There is no such revision.")
    return revision


def _article(session: Session, article_id: int) -> GuidanceArticle:
    article = session.get(GuidanceArticle, article_id)
    if article is None:
        raise NotFound("There is no such article.")
    return article


def open_revision(session: Session, article_id: int) -> GuidanceRevision | None:
    """The article's draft or revision in review, if any (there is at most one)."""
    return session.scalars(
        select(GuidanceRevision)
        .where(
            GuidanceRevision.article_id == article_id,
            GuidanceRevision.status.in_([RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW]),
        )
        .order_by(GuidanceRevision.number.desc())
    ).first()


def state(revision: GuidanceRevision, live_id: int | None, now: datetime) -> str:
    """What a revision is now, for people: draft, in_review, scheduled, published,
    expired or archived (replaced by a later publication)."""
    if revision.status != RevisionStatus.PUBLISHED:
        return revision.status.value
    if store.starts(revision) > now:
        return "scheduled"
    if revision.id == live_id:
        return "published"
    if store.is_expired(revision, now):
        return "expired"
    return "archived"


def _subject(revision: GuidanceRevision) -> str:
    article = revision.article
    return f"guidance:{article.topic}:{article.country or 'generic'}:r{revision.number}"


def _record(
    session: Session, by: Person, action: str, revision: GuidanceRevision, **details: object
) -> None:
    audit.record(
        session=session,
        actor=by.actor,
        action=f"guidance.{action}",
        subject=_subject(revision),
        details={"revision_id": revision.id, "article_id": revision.article_id, **details},
    )


def _require(by: Person, roles: frozenset[OfficerRole], message: str) -> None:
    if by.role not in roles:
        raise NotAllowed(message)


# -- steps ---------------------------------------------------------------------------------


def create_article(
    session: Session,
    *,
    topic: str,
    country: str | None,
    draft: RevisionDraft,
    change_note: str,
    by: Person,
) -> GuidanceRevision:
    """A new article (a topic, generic or for one country) with its first draft."""
    _require(by, EDITING_ROLES, "Only guidance editors can write articles.")
    if store.find_article(session=session, topic=topic, country=country) is not None:
        where = country or "all countries"
        raise Invalid({"topic": f"There is already an article on this topic for {where}"})
    article = store.create_article(session=session, topic=topic, country=country)
    revision = store.add_revision(
        session=session, article=article, draft=draft, author=by.actor, change_note=change_note
    )
    _record(session, by, "article_created", revision, topic=topic, country=country)
    return revision


def start_draft(
    session: Session, *, article_id: int, by: Person, now: datetime | None = None
) -> GuidanceRevision:
    """A new draft of an article, starting from the text served now (or the latest).

    An article has at most one change under way: an open draft is returned
    as it is, and a revision in review must be dealt with first.
    """
    _require(by, EDITING_ROLES, "Only guidance editors can change articles.")
    now = now or utcnow()
    article = _article(session, article_id)
    under_way = open_revision(session, article.id)
    if under_way is not None and under_way.status == RevisionStatus.DRAFT:
        return under_way
    if under_way is not None:
        raise Conflict(
            f"Revision {under_way.number} is waiting for review. A reviewer must approve it "
            "or send it back (or its author can withdraw it) before it can be changed."
        )
    base = store.live_revision(session=session, article_id=article.id, now=now)
    if base is None:
        base = article.revisions[-1] if article.revisions else None
    if base is None:
        raise NotFound("This article has no text to start from.")
    revision = store.add_revision(
        session=session,
        article=article,
        draft=_copy(base, today=now.date()),
        author=by.actor,
        change_note="",
    )
    _record(session, by, "draft_started", revision, based_on=base.number)
    return revision


def _copy(revision: GuidanceRevision, *, today: date) -> RevisionDraft:
    return RevisionDraft(
        title=revision.title,
        body=revision.body,
        source_url=revision.source_url,
        last_reviewed=today,
        review_by=revision.review_by,
        example_questions=tuple(revision.example_questions or ()),
    )


def edit_draft(
    session: Session,
    *,
    revision_id: int,
    draft: RevisionDraft,
    change_note: str,
    by: Person,
) -> GuidanceRevision:
    """Changes a draft's text; whoever edits last is its author (only drafts change)."""
    _require(by, EDITING_ROLES, "Only guidance editors can change articles.")
    revision = _revision(session, revision_id)
    if revision.status != RevisionStatus.DRAFT:
        raise Conflict("Only a draft can be changed. Start a new draft to change this text.")
    revision.title = draft.title
    revision.body = draft.body
    revision.source_url = draft.source_url
    revision.last_reviewed = draft.last_reviewed
    revision.review_by = draft.review_by
    revision.example_questions = list(draft.example_questions)
    revision.change_note = change_note
    revision.author = by.actor
    session.flush()
    _record(session, by, "draft_edited", revision)
    return revision


def submit(
    session: Session, *, revision_id: int, by: Person, now: datetime | None = None
) -> GuidanceRevision:
    """Sends a draft for review by a second person."""
    _require(by, EDITING_ROLES, "Only guidance editors can submit changes.")
    now = now or utcnow()
    revision = _revision(session, revision_id)
    if not revision.change_note.strip():
        raise Invalid({"change_note": "Say what you changed and why before submitting"})
    changed = session.execute(
        update(GuidanceRevision)
        .where(GuidanceRevision.id == revision.id, GuidanceRevision.status == RevisionStatus.DRAFT)
        .values(status=RevisionStatus.IN_REVIEW, submitted_by=by.actor, submitted_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Only a draft can be submitted for review; this one already moved on.")
    session.refresh(revision)
    _record(session, by, "submitted", revision)
    return revision


def may_approve(revision: GuidanceRevision, by: Person) -> bool:
    """True when ``by`` may approve: a reviewer or admin who neither wrote nor submitted it."""
    return by.role in APPROVING_ROLES and by.actor not in {revision.author, revision.submitted_by}


def approve(
    session: Session,
    *,
    revision_id: int,
    by: Person,
    publish_at: datetime | None = None,
    expires_at: datetime | None = None,
    note: str = "",
    now: datetime | None = None,
) -> GuidanceRevision:
    """Publishes a revision in review, now or at ``publish_at``; optionally until ``expires_at``.

    Refused to anyone but a reviewer or admin, and to the person who wrote or
    submitted the change. Two reviewers at once: the status compare-and-set
    lets exactly one through; the other gets :class:`Conflict`.
    """
    now = now or utcnow()
    revision = _revision(session, revision_id)
    _require(by, APPROVING_ROLES, "Only a reviewer can approve changes.")
    if not may_approve(revision, by):
        raise NotAllowed(
            "You cannot approve a change you wrote or submitted. Another reviewer must approve it."
        )
    errors = _schedule_errors(publish_at, expires_at, now)
    if len(note.strip()) > MAX_NOTE_LENGTH:
        errors["review_note"] = f"Your note must be {MAX_NOTE_LENGTH} characters or fewer"
    if errors:
        raise Invalid(errors)
    starts = publish_at or now
    changed = session.execute(
        update(GuidanceRevision)
        .where(
            GuidanceRevision.id == revision.id,
            GuidanceRevision.status == RevisionStatus.IN_REVIEW,
        )
        .values(
            status=RevisionStatus.PUBLISHED,
            reviewer=by.actor,
            review_note=note.strip(),
            published_at=now,
            publish_at=starts,
            expires_at=expires_at,
            last_reviewed=now.date(),
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This revision is no longer waiting for review: someone acted on it first.")
    session.refresh(revision)
    if starts <= now:
        store.archive_superseded(
            session=session, article_id=revision.article_id, keep=revision, now=now
        )
    scheduled = starts > now
    _record(
        session,
        by,
        "approved",
        revision,
        author=revision.author,
        scheduled=scheduled,
        publish_at=starts.isoformat(),
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    if not scheduled:
        _record(session, by, "published", revision)
    return revision


def _schedule_errors(
    publish_at: datetime | None, expires_at: datetime | None, now: datetime
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if publish_at is not None and publish_at <= now:
        errors["publish_at"] = "The publication time must be in the future, or leave it blank"
    if expires_at is not None and expires_at <= (publish_at or now):
        errors["expires_at"] = "The expiry time must be after the publication time"
    return errors


def send_back(
    session: Session, *, revision_id: int, by: Person, note: str, now: datetime | None = None
) -> GuidanceRevision:
    """Returns a revision in review to its author as a draft, with the reviewer's note."""
    _require(by, APPROVING_ROLES, "Only a reviewer can send changes back.")
    note = note.strip()
    if not note:
        raise Invalid({"review_note": "Say what needs to change before it can be approved"})
    if len(note) > MAX_NOTE_LENGTH:
        raise Invalid({"review_note": f"Your note must be {MAX_NOTE_LENGTH} characters or fewer"})
    revision = _revision(session, revision_id)
    changed = session.execute(
        update(GuidanceRevision)
        .where(
            GuidanceRevision.id == revision.id,
            GuidanceRevision.status == RevisionStatus.IN_REVIEW,
        )
        .values(status=RevisionStatus.DRAFT, review_note=note, reviewer=by.actor)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This revision is no longer waiting for review: someone acted on it first.")
    session.refresh(revision)
    _record(session, by, "sent_back", revision)
    return revision


def withdraw(
    session: Session, *, revision_id: int, by: Person, now: datetime | None = None
) -> GuidanceRevision:
    """Takes a step back.

    * in review -> draft: its author or submitter (or an admin) takes it back to change it;
    * scheduled -> archived: a reviewer cancels a publication not yet started;
    * published -> stopped: a reviewer stops serving it at once (it expires now;
      the article then serves nothing until a new revision is approved).
    """
    now = now or utcnow()
    revision = _revision(session, revision_id)
    if revision.status == RevisionStatus.IN_REVIEW:
        own = by.actor in {revision.author, revision.submitted_by}
        if not own and by.role != OfficerRole.ADMIN:
            raise NotAllowed("Only its author or the person who submitted it can withdraw it.")
        return _move(session, revision, RevisionStatus.IN_REVIEW, RevisionStatus.DRAFT, by, now)
    if revision.status == RevisionStatus.PUBLISHED:
        _require(by, APPROVING_ROLES, "Only a reviewer can withdraw published guidance.")
        if store.starts(revision) > now:
            return _move(
                session, revision, RevisionStatus.PUBLISHED, RevisionStatus.ARCHIVED, by, now
            )
        live = store.live_revision(session=session, article_id=revision.article_id, now=now)
        if live is None or live.id != revision.id:
            raise Conflict("This revision is not being served, so there is nothing to withdraw.")
        revision.expires_at = now
        session.flush()
        _record(session, by, "withdrawn", revision, was="published")
        return revision
    raise Conflict("Only a revision in review, scheduled or published can be withdrawn.")


def discard(
    session: Session, *, revision_id: int, by: Person, now: datetime | None = None
) -> GuidanceRevision:
    """Abandons a draft (it is archived, kept for the history, and can be rolled back to)."""
    _require(by, EDITING_ROLES, "Only guidance editors can discard drafts.")
    now = now or utcnow()
    revision = _revision(session, revision_id)
    if revision.status != RevisionStatus.DRAFT:
        raise Conflict("Only a draft can be discarded.")
    moved = _move(session, revision, RevisionStatus.DRAFT, RevisionStatus.ARCHIVED, by, now)
    return moved


def _move(
    session: Session,
    revision: GuidanceRevision,
    was: RevisionStatus,
    to: RevisionStatus,
    by: Person,
    now: datetime,
) -> GuidanceRevision:
    changed = session.execute(
        update(GuidanceRevision)
        .where(GuidanceRevision.id == revision.id, GuidanceRevision.status == was)
        .values(status=to)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This revision changed while you were looking at it. Reload the page.")
    session.refresh(revision)
    action = "draft_discarded" if was == RevisionStatus.DRAFT else "withdrawn"
    _record(session, by, action, revision, was=was.value, at=now.isoformat())
    return revision


def rollback(
    session: Session,
    *,
    article_id: int,
    to_revision_id: int,
    by: Person,
    note: str = "",
    now: datetime | None = None,
) -> GuidanceRevision:
    """A new revision copying an earlier one's content (``restored_from`` its number).

    If the earlier text was once published, a second person already approved
    it, so the copy is published at once (recording who rolled back and the
    original approver); otherwise the copy is a draft that goes through review.
    """
    _require(by, EDITING_ROLES, "Only guidance editors can roll back articles.")
    now = now or utcnow()
    article = _article(session, article_id)
    source = _revision(session, to_revision_id)
    if source.article_id != article.id:
        raise NotFound("That revision belongs to another article.")
    approved_before = source.published_at is not None and source.reviewer is not None
    under_way = open_revision(session, article.id)
    if not approved_before and under_way is not None:
        raise Conflict(
            f"Revision {under_way.number} is already a change under way. Finish or withdraw it "
            "before rolling back to a text that was never published."
        )
    change_note = f"Rolled back to revision {source.number}" + (
        f": {note.strip()}" if note.strip() else ""
    )
    copy = store.add_revision(
        session=session,
        article=article,
        draft=_copy(source, today=now.date()),
        author=by.actor,
        change_note=change_note[:MAX_NOTE_LENGTH],
    )
    copy.restored_from = source.number
    if approved_before:
        copy.last_reviewed = source.last_reviewed
        copy.status = RevisionStatus.PUBLISHED
        copy.reviewer = source.reviewer
        copy.published_at = now
        copy.publish_at = now
        session.flush()
        store.archive_superseded(session=session, article_id=article.id, keep=copy, now=now)
    session.flush()
    _record(
        session,
        by,
        "rolled_back",
        copy,
        restored_from=source.number,
        published=approved_before,
        original_approver=source.reviewer,
    )
    if approved_before:
        _record(session, by, "published", copy, restored_from=source.number)
    return copy


# -- diff ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a field's diff: "same", "added" or "removed"."""

    kind: str
    text: str


@dataclass(frozen=True)
class FieldDiff:
    """How one field differs between two revisions."""

    name: str
    label: str
    changed: bool
    lines: tuple[Line, ...]


DIFF_FIELDS: Final = (
    ("title", "Title"),
    ("body", "Guidance text"),
    ("source_url", "Source URL"),
    ("review_by", "Review by"),
    ("example_questions", "Example questions"),
)


def _lines(revision: GuidanceRevision, name: str) -> list[str]:
    value = getattr(revision, name)
    if name == "example_questions":
        return [str(question) for question in value or ()]
    if name == "review_by":
        return [value.isoformat()] if value else ["(none)"]
    return str(value or "").splitlines()


def diff(old: GuidanceRevision, new: GuidanceRevision) -> list[FieldDiff]:
    """Line-by-line differences per field, from ``old`` to ``new`` (difflib)."""
    result = []
    for name, label in DIFF_FIELDS:
        before, after = _lines(old, name), _lines(new, name)
        lines: list[Line] = []
        matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                lines.extend(Line("same", text) for text in before[i1:i2])
                continue
            lines.extend(Line("removed", text) for text in before[i1:i2])
            lines.extend(Line("added", text) for text in after[j1:j2])
        result.append(FieldDiff(name, label, before != after, tuple(lines)))
    return result
