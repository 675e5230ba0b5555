"""``make export-nlu``: published articles' example questions as Rasa NLU training data.

Editors add example questions to articles in the admin (and admins add
citizens' unanswered questions to them); this writes those of every live
published revision to one generated file, ``data/nlu/admin_examples.yml``,
for the next ``rasa train``. The intent is the article's topic (as the
catalogue names it for Rasa) and must be one of domain.yml's intents;
articles on anything else are skipped and reported.

Nothing is written that the training data already has (compared after the
same normalisation the training data tests use, against every other file
in data/nlu and within this file), nor any held-out evaluation query from
shared/eval (CLINC150's validation and test splits and the benchmark
file): those must never be trained on (shared/eval/README.md).

Usage: python -m bot.guidance.nlu_export [--out DIR] [--eval DIR] [--domain FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.catalogue import BY_SLUG
from bot.core.config import PROJECT_ROOT, get_settings
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.importer import live_revisions

OUTPUT_NAME = "admin_examples.yml"
DEFAULT_OUT = PROJECT_ROOT / "data" / "nlu"
DEFAULT_EVAL = PROJECT_ROOT.parent / "shared" / "eval"
DEFAULT_DOMAIN = PROJECT_ROOT / "domain.yml"
# The splits that are for evaluation only; tests/app/test_training_data.py
# refuses the same ones in data/ and tests/conversations.
HELD_OUT_SPLITS = ("val", "oos_val", "test", "oos_test")
CLINC_FILE = Path("clinc150") / "data_full.json"
BENCHMARK_FILE = Path("clinc_travel_oos.jsonl")

# Entity annotations ([text](entity) or [text]{...}) are read as plain text.
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
_PUNCTUATION = re.compile(r"[^\w\s]+")
_EXAMPLE_LINE = re.compile(r"^\s*-\s+(.*)$")
# Characters Rasa would read as annotation syntax in an example.
_MARKUP = re.compile(r"[\[\]{}()]")
MAX_EXAMPLE_LENGTH = 300


def normal(text: str) -> str:
    """Lower case, annotations, quotes and punctuation removed, spaces collapsed.

    The comparison tests/app/test_training_data.py makes, then punctuation
    dropped as well: any two texts those tests call the same are the same
    here too, so a text this export lets through is one they accept.
    """
    lowered = " ".join(_ANNOTATION.sub(r"\1", text).strip().strip("\"'").lower().split())
    return " ".join(_PUNCTUATION.sub(" ", lowered).split())


def clean(text: str) -> str:
    """An example question as a training line: one line, no annotation syntax."""
    flat = _MARKUP.sub(" ", " ".join(text.split()))
    return " ".join(flat.split()).strip("\"'").strip()


@dataclass
class ExportReport:
    """What the export wrote and what it left out, and why."""

    added: dict[str, list[str]] = field(default_factory=dict)
    duplicates: int = 0
    held_out: int = 0
    unusable: int = 0
    unknown_topics: dict[str, int] = field(default_factory=dict)

    @property
    def added_count(self) -> int:
        return sum(len(lines) for lines in self.added.values())

    def lines(self) -> list[str]:
        unknown = sum(self.unknown_topics.values())
        summary = [
            f"added {self.added_count} examples under {len(self.added)} intents",
            f"skipped {self.duplicates} already in the training data",
            f"skipped {self.held_out} held-out evaluation queries",
            f"skipped {unknown} examples of topics that are not intents in domain.yml",
        ]
        if self.unusable:
            summary.append(f"skipped {self.unusable} empty or over-long examples")
        for topic, count in sorted(self.unknown_topics.items()):
            summary.append(f"  topic {topic!r}: {count} examples (not an intent)")
        return summary


# -- inputs --------------------------------------------------------------------------------


def live_examples(*, session: Session, now: datetime | None = None) -> list[tuple[str, list[str]]]:
    """(topic, example questions) of every article's live published revision.

    The same revisions the admin's export writes: the latest publication that
    has started, unless it has expired. Drafts and reviews never count.
    """
    return [
        (article.topic, list(revision.example_questions or []))
        for article, revision in live_revisions(session=session, now=now)
    ]


def domain_intents(path: Path) -> set[str]:
    """The intents domain.yml declares."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    intents: set[str] = set()
    for entry in document.get("intents") or []:
        intents.add(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return intents


def existing_examples(folder: Path, *, skip: Path) -> set[str]:
    """Every example already in the NLU files of ``folder`` (but ``skip``), normalised."""
    seen: set[str] = set()
    for path in sorted(folder.glob("*.yml")):
        if path.resolve() == skip.resolve():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            match = _EXAMPLE_LINE.match(line)
            if match:
                seen.add(normal(match.group(1)))
    return seen


def held_out_queries(eval_dir: Path) -> set[str]:
    """Every evaluation-only query in shared/eval, normalised.

    Raises FileNotFoundError when the files are missing: without them the
    export cannot promise to keep test queries out, so it does not run.
    """
    clinc = json.loads((eval_dir / CLINC_FILE).read_text(encoding="utf-8"))
    queries = {normal(text) for split in HELD_OUT_SPLITS for text, _intent in clinc[split]}
    for line in (eval_dir / BENCHMARK_FILE).read_text(encoding="utf-8").splitlines():
        if line.strip():
            queries.add(normal(json.loads(line)["text"]))
    return queries


# -- the export ----------------------------------------------------------------------------


def select_examples(
    articles: Iterable[tuple[str, Sequence[str]]],
    *,
    intents: set[str],
    existing: set[str],
    held_out: set[str],
) -> ExportReport:
    """Which example questions to write, by intent; the rest counted by reason."""
    report = ExportReport()
    seen = set(existing)
    for topic, questions in articles:
        known = BY_SLUG.get(topic)
        intent = known.intent if known is not None else topic.replace("-", "_")
        for question in questions:
            text = clean(question)
            key = normal(text)
            if intent not in intents:
                report.unknown_topics[topic] = report.unknown_topics.get(topic, 0) + 1
            elif not key or len(text) > MAX_EXAMPLE_LENGTH:
                report.unusable += 1
            elif key in held_out:
                report.held_out += 1
            elif key in seen:
                report.duplicates += 1
            else:
                seen.add(key)
                report.added.setdefault(intent, []).append(text)
    return report


def render(added: dict[str, list[str]]) -> str:
    """The generated YAML file (valid and empty when there is nothing to add)."""
    lines = [
        'version: "3.1"',
        "# GENERATED by make export-nlu (bot/guidance/nlu_export.py); do not edit by hand.",
        "# Example questions of the published guidance articles, by topic. Examples already",
        "# in data/nlu and held-out evaluation queries from shared/eval are left out.",
    ]
    if not added:
        return "\n".join([*lines, "nlu: []"]) + "\n"
    lines.append("nlu:")
    for intent in sorted(added):
        lines += [f"  - intent: {intent}", "    examples: |"]
        lines += [f"      - {text}" for text in added[intent]]
    return "\n".join(lines) + "\n"


def export(
    *, session: Session, out_dir: Path, eval_dir: Path, domain: Path, now: datetime | None = None
) -> ExportReport:
    """Writes ``out_dir/admin_examples.yml``; returns what was added and skipped."""
    output = out_dir / OUTPUT_NAME
    report = select_examples(
        live_examples(session=session, now=now),
        intents=domain_intents(domain),
        existing=existing_examples(out_dir, skip=output),
        held_out=held_out_queries(eval_dir),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    output.write_text(render(report.added), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the NLU data folder")
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="shared/eval")
    parser.add_argument("--domain", type=Path, default=DEFAULT_DOMAIN, help="domain.yml")
    args = parser.parse_args(argv)
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            report = export(
                session=session, out_dir=args.out, eval_dir=args.eval, domain=args.domain
            )
    except FileNotFoundError as exc:
        print(f"export-nlu: cannot read {exc.filename}; nothing written", file=sys.stderr)
        return 2
    except OperationalError:
        print(
            "export-nlu: the database is not set up (run make run or bot setup); nothing written",
            file=sys.stderr,
        )
        return 2
    finally:
        engine.dispose()
    print(f"export-nlu: wrote {args.out / OUTPUT_NAME}")
    print("\n".join(f"  {line}" for line in report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
