"""Unanswered questions: citizens' messages the assistant fell back on, grouped for admins.

An admin reads them to find what the guidance is missing, so similar
questions are shown together: each text is reduced to a set of word stems
(lower case, no punctuation, no stop words, light suffix stripping) and
questions are grouped greedily, newest first, with the first group whose
leading question shares enough stems (Jaccard similarity). The same rows
always give the same groups.

Every action on a group names the questions it was shown (by id) and only
resolves those still open, so a question that arrived after the page was
drawn is never resolved unseen. The texts are citizens' words: they are
never logged, and pages escape them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db.models import UnansweredQuestion, UnansweredReason, utcnow
from bot.guidance import workflow
from bot.guidance.store import RevisionDraft

SIMILARITY: float = 0.5
WINDOW_DAYS: int = 90
LIMIT: int = 2000
EXAMPLES_SHOWN: int = 5
MAX_IDS_PER_ACTION: int = 500
MAX_QUESTION_LENGTH: int = workflow.MAX_QUESTION_LENGTH

# What an admin did with a question (UnansweredQuestion.resolution).
RESOLVED_AS_EXAMPLES = "example_questions"
RESOLVED_AS_NEW_ARTICLE = "new_article"
RESOLVED_AS_DISMISSED = "dismissed"
RESOLUTIONS = (RESOLVED_AS_EXAMPLES, RESOLVED_AS_NEW_ARTICLE, RESOLVED_AS_DISMISSED)

# Words that say nothing about what a citizen needs. Kept short on purpose:
# "lost", "stolen", "help" and "passport" must survive.
STOP_WORDS: frozenset[str] = frozenset(
    """a about am an and any are as at be been being but by can could did do does doing
    for from get got had has have having he her him his how i if in into is it its
    just me my myself of on or our please she so some that the their them then there
    these they this those to too us was we were what when where which who whom why
    will with would you your yours hi hello thanks thank""".split()
)
_NOT_WORD = re.compile(r"[^\w]+")
# Longest first, so "ies" is tried before "es" and "s".
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ies", "y"),
    ("ing", ""),
    ("ed", ""),
    ("es", ""),
    ("ly", ""),
    ("s", ""),
)
_MIN_STEM = 3


def stem(word: str) -> str:
    """A light stem: one common English suffix off, never leaving fewer than three letters."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            if suffix == "s" and word.endswith("ss"):
                return word  # "embassy" is safe; "address" and "pass" must not lose an s
            return word[: -len(suffix)] + replacement
    return word


def normalise(text: str) -> frozenset[str]:
    """The set of stems that stand for ``text`` (empty when it is all stop words)."""
    words = _NOT_WORD.sub(" ", text.casefold().replace("_", " ")).split()
    return frozenset(stem(word) for word in words if word not in STOP_WORDS)


def similarity(first: frozenset[str], second: frozenset[str]) -> float:
    """Jaccard similarity of two stem sets; two empty sets count as the same."""
    if not first and not second:
        return 1.0
    union = first | second
    return len(first & second) / len(union)


@dataclass(frozen=True)
class Question:
    """One unresolved question as the grouping sees it."""

    id: int
    text: str
    channel: str
    country: str | None
    reason: str
    created_at: datetime


@dataclass
class Group:
    """Similar questions; the first one (the newest) is what others are compared with.

    Read its properties only once grouping is done (the representative is cached).
    """

    key: frozenset[str]
    questions: list[Question] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def ids(self) -> list[int]:
        return sorted(question.id for question in self.questions)

    @cached_property
    def representative(self) -> str:
        """The most common wording (by its normalised form), newest wording of it first."""
        forms = Counter(" ".join(sorted(normalise(q.text))) for q in self.questions)
        best = max(forms.values())
        for question in self.questions:
            if forms[" ".join(sorted(normalise(question.text)))] == best:
                return question.text
        return self.questions[0].text

    @property
    def examples(self) -> list[str]:
        """A few distinct texts (the representative first)."""
        shown: list[str] = [self.representative]
        seen = {_plain(self.representative)}
        for question in self.questions:
            if len(shown) >= EXAMPLES_SHOWN:
                break
            if _plain(question.text) not in seen:
                seen.add(_plain(question.text))
                shown.append(question.text)
        return shown

    @property
    def countries(self) -> list[str]:
        return sorted({q.country for q in self.questions if q.country})

    @property
    def channels(self) -> list[str]:
        return sorted({q.channel for q in self.questions})

    @property
    def reasons(self) -> list[str]:
        return sorted({q.reason for q in self.questions})

    @property
    def latest(self) -> datetime:
        return max(q.created_at for q in self.questions)


def _plain(text: str) -> str:
    return " ".join(text.casefold().split())


def group_questions(questions: Sequence[Question], *, threshold: float = SIMILARITY) -> list[Group]:
    """Greedy grouping, newest question first; largest groups first, then the most recent.

    Each question joins the first group (in creation order of the groups)
    whose leading question is at least ``threshold`` similar, or starts a
    new one. Ties in the final order fall back to the lowest question id,
    so the result never depends on the order the rows came in.
    """
    ordered = sorted(questions, key=lambda q: (q.created_at, q.id), reverse=True)
    groups: list[Group] = []
    # Stem -> groups whose key has it: a similar group shares at least one stem,
    # so only those are compared (empty keys only match each other).
    by_stem: dict[str, list[int]] = {}
    empty: int | None = None
    for question in ordered:
        stems = normalise(question.text)
        if not stems:
            if empty is None:
                empty = len(groups)
                groups.append(Group(key=stems))
            groups[empty].questions.append(question)
            continue
        candidates = sorted({index for stem in stems for index in by_stem.get(stem, ())})
        chosen = next(
            (i for i in candidates if similarity(groups[i].key, stems) >= threshold), None
        )
        if chosen is None:
            chosen = len(groups)
            groups.append(Group(key=stems))
            for stem in stems:
                by_stem.setdefault(stem, []).append(chosen)
        groups[chosen].questions.append(question)
    groups.sort(key=lambda g: (-g.count, -g.latest.timestamp(), g.ids[0]))
    return groups


# -- data functions ------------------------------------------------------------------------


def recent_unresolved(
    *,
    session: Session,
    now: datetime | None = None,
    days: int = WINDOW_DAYS,
    limit: int = LIMIT,
) -> list[Question]:
    """Open questions from the last ``days`` days, newest first, at most ``limit``."""
    since = (now or utcnow()) - timedelta(days=days)
    rows = session.scalars(
        select(UnansweredQuestion)
        .where(UnansweredQuestion.resolved_at.is_(None), UnansweredQuestion.created_at >= since)
        .order_by(UnansweredQuestion.created_at.desc(), UnansweredQuestion.id.desc())
        .limit(limit)
    )
    return [
        Question(
            id=row.id,
            text=row.text,
            channel=row.channel,
            country=row.country,
            reason=_reason(row.reason),
            created_at=row.created_at,
        )
        for row in rows
    ]


def _reason(reason: UnansweredReason | str) -> str:
    return reason.value if isinstance(reason, UnansweredReason) else str(reason)


def open_questions(*, session: Session, ids: Sequence[int]) -> list[UnansweredQuestion]:
    """The questions among ``ids`` still unresolved, oldest first."""
    wanted = sorted(set(ids))[:MAX_IDS_PER_ACTION]
    if not wanted:
        return []
    return list(
        session.scalars(
            select(UnansweredQuestion)
            .where(UnansweredQuestion.id.in_(wanted), UnansweredQuestion.resolved_at.is_(None))
            .order_by(UnansweredQuestion.created_at, UnansweredQuestion.id)
        )
    )


def resolve(
    *,
    session: Session,
    ids: Sequence[int],
    actor: str,
    resolution: str,
    now: datetime | None = None,
) -> int:
    """Marks the still-open questions among ``ids`` as resolved; returns how many.

    One conditional UPDATE, so two admins acting on the same group at once
    resolve each question once.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r}")
    wanted = sorted(set(ids))[:MAX_IDS_PER_ACTION]
    if not wanted:
        return 0
    result = session.execute(
        update(UnansweredQuestion)
        .where(UnansweredQuestion.id.in_(wanted), UnansweredQuestion.resolved_at.is_(None))
        .values(resolved_at=now or utcnow(), resolved_by=actor, resolution=resolution)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def merge_examples(existing: Sequence[str], added: Sequence[str]) -> list[str]:
    """``existing`` then each new text not already there (compared case- and space-blind)."""
    merged: list[str] = []
    seen: set[str] = set()
    for text in [*existing, *added]:
        cleaned = " ".join(text.split())
        if cleaned and _plain(cleaned) not in seen:
            seen.add(_plain(cleaned))
            merged.append(cleaned)
    return merged


@dataclass(frozen=True)
class Added:
    """What adding a group's questions to an article did."""

    article_id: int
    revision_id: int
    added: int
    too_long: int
    resolved: int


def add_to_article(
    *, session: Session, article_id: int, ids: Sequence[int], by: workflow.Person
) -> Added:
    """Appends the open questions among ``ids`` to a draft of the article, then resolves them.

    The draft goes through review like any other change (the workflow's
    draft: the one under way, or a new copy of the live text). Questions
    already in the article (ignoring case and spaces) are not added twice;
    questions longer than an example question may be are left out. Raises
    :class:`workflow.WorkflowError` subclasses with a message for the page.
    """
    questions = open_questions(session=session, ids=ids)
    if not questions:
        raise workflow.Conflict("These questions have already been dealt with.")
    usable = [q.text for q in questions if len(" ".join(q.text.split())) <= MAX_QUESTION_LENGTH]
    draft = workflow.start_draft(session, article_id=article_id, by=by)
    before = list(draft.example_questions or [])
    merged = merge_examples(before, usable)
    if len(merged) > workflow.MAX_QUESTIONS:
        raise workflow.Invalid(
            {
                "article_id": f"The article would have more than {workflow.MAX_QUESTIONS} "
                "example questions. Remove some from its draft first, or choose another article."
            }
        )
    added = len(merged) - len(before)
    note = f"Added {added} example questions from unanswered questions"
    change_note = f"{draft.change_note.strip()}; {note}" if draft.change_note.strip() else note
    workflow.edit_draft(
        session,
        revision_id=draft.id,
        draft=RevisionDraft(
            title=draft.title,
            body=draft.body,
            source_url=draft.source_url,
            last_reviewed=draft.last_reviewed,
            review_by=draft.review_by,
            example_questions=tuple(merged),
        ),
        change_note=change_note[: workflow.MAX_NOTE_LENGTH],
        by=by,
    )
    resolved = resolve(
        session=session,
        ids=[q.id for q in questions],
        actor=by.actor,
        resolution=RESOLVED_AS_EXAMPLES,
    )
    return Added(
        article_id=article_id,
        revision_id=draft.id,
        added=added,
        too_long=len(questions) - len(usable),
        resolved=resolved,
    )
