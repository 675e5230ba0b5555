"""The benchmark (make bench): accuracy, held-out split, baseline, latency and memory.

1. shared/eval/clinc_travel_oos.jsonl through the public web chat API of a
   running stack: travel topic accuracy, country accuracy, out-of-scope
   rejection (no consular guidance in the answer).
2. A held-out fifth of the project's own NLU examples, never trained on in
   this run: per-topic precision and recall, urgent recall.
3. The same split through a TF-IDF + logistic regression baseline.
4. Reply latency through the web chat API with 1 and 10 concurrent
   conversations, throughput and resident memory, beside a stock
   ``rasa init`` model served by ``rasa run`` on this machine, now.

Prints a report and writes results/bench.json.

``python -m bench.run --part heldout`` runs parts 2 and 3 only (one training,
no stack; a minute or two): the quick loop for NLU work. It writes
results/bench-heldout.json and lists the held-out urgent messages that got no
urgent topic. ``--seed`` draws another split, to check that a change
generalises rather than fitting one split.

``python -m bench.run --part latency`` runs part 4 only (no training; a few
minutes), as many ``--rounds`` as asked, and writes results/bench-latency.json.

In part 4 both servers run at once and take turns under the same load, in
blocks, the order reversed every other block (ours, stock, stock, ours):
this machine's speed drifts by a tenth or more within minutes, and a drift
between two back-to-back measurements would otherwise land on one side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml

from bot.catalogue import SLUGS, URGENT_SLUGS
from tests.support.servers import free_port
from tests.support.stack import ROOT, Stack, spawn, start_stack

EVAL = ROOT.parent / "shared" / "eval" / "clinc_travel_oos.jsonl"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PY = ROOT / ".venv-rasa" / "bin" / "python"
STOCK_DIR = ROOT / "build" / "bench" / "stock"
RESULTS = ROOT / "results" / "bench.json"
HELD_OUT_RESULTS = ROOT / "results" / "bench-heldout.json"
LATENCY_RESULTS = ROOT / "results" / "bench-latency.json"
SEED = 20261123
HELD_OUT_SHARE = 0.2
GENERATED = "out-of-scope-clinc.yml"  # not "our own examples": always trained on
SMALL_TALK = {
    "greet",
    "goodbye",
    "thanks",
    "bot_challenge",
    "affirm",
    "deny",
    "inform_country",
    "inform_person",
}
NO_GUIDANCE_TOPICS = {None, "out-of-scope"}
TARGETS = {
    "travel_topic_accuracy": 0.95,
    "country_accuracy": 0.97,
    "oos_rejection": 0.90,
    "urgent_recall": 1.0,
    "p95_ms_10": 150.0,
    "throughput_ratio": 3.0,
}
# A realistic mix for the load test, written for this project (not benchmark queries).
LOAD_MESSAGES = [
    "hello",
    "how do I contact the British embassy in Spain",
    "is it safe to travel to thailand right now",
    "and what vaccines do i need",
    "my passport was stolen in lisbon",
    "can you order me a pizza",
    "do i need a visa for the usa",
    "thanks, bye",
]
# Rasa servers in our stack: one, as `make run` starts. With --rasa-servers 2
# each turns on its own core and the app sends each conversation to the same
# one (bot/conversations/rasa_client.py).
RASA_SERVERS = 1
# Part 4 loads ours and stock in turns, in this many blocks each.
BLOCKS = 2
STOCK_MESSAGES = ["hello", "I am sad", "yes", "great, thanks", "are you a bot?", "bye"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def slug_of(intent: str | None) -> str | None:
    """The catalogue slug an intent stands for (None for small talk)."""
    if intent in (None, "nlu_fallback", "out_of_scope"):
        return "out-of-scope"
    slug = intent.replace("_", "-")
    return slug if slug in SLUGS else None


# -- 2 and 3: held-out split ----------------------------------------------------


def load_examples() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Own examples (splittable) and generated negatives (always trained on)."""
    own, generated = [], []
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                if line.startswith("- "):
                    text = line[2:].strip().strip('"')
                    row = {"text": text, "intent": block["intent"]}
                    (generated if path.name == GENERATED else own).append(row)
    return own, generated


def split(
    own: list[dict[str, str]], seed: int = SEED
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A seeded, per-intent split: a fifth of each intent is held out."""
    rng = random.Random(seed)
    by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in own:
        by_intent[row["intent"]].append(row)
    train, test = [], []
    for intent in sorted(by_intent):
        rows = sorted(by_intent[intent], key=lambda r: r["text"])
        rng.shuffle(rows)
        cut = max(1, round(len(rows) * HELD_OUT_SHARE))
        test += rows[:cut]
        train += rows[cut:]
    return train, test


def write_nlu(rows: list[dict[str, str]], path: Path) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_intent[row["intent"]].append(row["text"])
    document = {
        "version": "3.1",
        "nlu": [
            {"intent": intent, "examples": "".join(f"- {json.dumps(t)}\n" for t in texts)}
            for intent, texts in sorted(by_intent.items())
        ],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def classification_report(gold: list[str | None], predicted: list[str | None]) -> dict[str, Any]:
    """Per-topic precision/recall over catalogue slugs, accuracy, urgent recall."""
    per_topic = {}
    for topic in sorted(SLUGS):
        tp = sum(g == p == topic for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == topic and g != topic for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == topic and p != topic for g, p in zip(gold, predicted, strict=True))
        if tp + fp + fn:
            per_topic[topic] = {
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "support": tp + fn,
            }
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g and g != "out-of-scope"]
    urgent = [(g, p) for g, p in zip(gold, predicted, strict=True) if g in URGENT_SLUGS]
    return {
        "per_topic": per_topic,
        "accuracy": sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold),
        "in_scope_accuracy": sum(g == p for g, p in in_scope) / len(in_scope),
        # Urgent handling (24-hour line, queue) happens for any urgent topic.
        "urgent_recall": sum(p in URGENT_SLUGS for _, p in urgent) / len(urgent),
        "urgent_exact_recall": sum(g == p for g, p in urgent) / len(urgent),
        "urgent_support": len(urgent),
    }


def held_out(work: Path, seed: int = SEED) -> dict[str, Any]:
    own, generated = load_examples()
    train, test = split(own, seed)
    log(
        f"held-out split: {len(train)} own examples trained (+{len(generated)} generated), "
        f"{len(test)} held out"
    )
    nlu_dir = work / "nlu"
    nlu_dir.mkdir()
    write_nlu(train + generated, nlu_dir / "train.yml")
    started = time.monotonic()
    subprocess.run(
        [
            str(RASA),
            "train",
            "nlu",
            "--nlu",
            str(nlu_dir),
            "--config",
            "config.yml",
            "--out",
            str(work),
            "--fixed-model-name",
            "heldout",
            "--quiet",
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        # make sets these; python -m bench.run on its own must not phone home either.
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"},
    )
    train_seconds = time.monotonic() - started
    write_jsonl([{"text": r["text"]} for r in test], work / "test_in.jsonl")
    subprocess.run(
        [
            str(RASA_PY),
            "bench/nlu_predict.py",
            str(work / "heldout.tar.gz"),
            str(work / "test_in.jsonl"),
            str(work / "ours.jsonl"),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    write_jsonl(train + generated, work / "train.jsonl")
    write_jsonl(test, work / "test.jsonl")
    subprocess.run(
        [
            str(RASA_PY),
            "bench/baseline.py",
            str(work / "train.jsonl"),
            str(work / "test.jsonl"),
            str(work / "baseline.jsonl"),
        ],
        cwd=ROOT,
        check=True,
    )
    gold = [slug_of(r["intent"]) if r["intent"] not in SMALL_TALK else r["intent"] for r in test]

    def predicted(path: Path) -> list[str | None]:
        return [
            slug_of(r["intent"]) if r["intent"] not in SMALL_TALK else r["intent"]
            for r in read_jsonl(path)
        ]

    ours = predicted(work / "ours.jsonl")
    return {
        "seed": seed,
        "train_examples": len(train) + len(generated),
        "held_out_examples": len(test),
        "train_seconds": round(train_seconds, 1),
        "ours": classification_report(gold, ours),
        "baseline": classification_report(gold, predicted(work / "baseline.jsonl")),
        # Held-out urgent messages that got no urgent handling, for diagnosis.
        "urgent_misses": [
            {"text": row["text"], "expected": g, "got": p}
            for row, g, p in zip(test, gold, ours, strict=True)
            if g in URGENT_SLUGS and p not in URGENT_SLUGS
        ],
    }


# -- 1: the public benchmark through the web chat API ----------------------------


async def ask(client: httpx.AsyncClient, base: str, text: str) -> list[dict[str, Any]]:
    session = (await client.post(f"{base}/api/webchat/sessions")).json()
    response = await client.post(
        f"{base}/api/webchat/sessions/{session['session_id']}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    response.raise_for_status()
    replies: list[dict[str, Any]] = response.json()["replies"]
    return replies


async def public_benchmark(stack: Stack) -> dict[str, Any]:
    rows = read_jsonl(EVAL)
    results: list[list[dict[str, Any]]] = [[] for _ in rows]
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(index: int, text: str) -> None:
            async with limit:
                results[index] = await ask(client, stack.app_url, text)

        await asyncio.gather(*(one(i, row["text"]) for i, row in enumerate(rows)))
    travel = topic_ok = 0
    country_total = country_ok = 0
    oos_total = rejected = 0
    misses: list[dict[str, Any]] = []
    leaked_topics: Counter[str] = Counter()
    for row, replies in zip(rows, results, strict=True):
        topics = [r["topic"] for r in replies if r["topic"]]
        countries = [r["country"] for r in replies if r["country"]]
        if row["topic"] == "out-of-scope":
            oos_total += 1
            if all(r["topic"] in NO_GUIDANCE_TOPICS for r in replies):
                rejected += 1
            else:
                leaked_topics.update(t for t in topics if t not in NO_GUIDANCE_TOPICS)
            continue
        travel += 1
        good_topic = bool(topics) and topics[0] == row["topic"]
        topic_ok += good_topic
        expected = row["country"] if isinstance(row["country"], list) else [row["country"]]
        if row["country"]:
            country_total += 1
            good_country = bool(countries) and countries[0] in expected
            country_ok += good_country
        else:
            good_country = True
        if not (good_topic and good_country):
            misses.append(
                {
                    "text": row["text"],
                    "expected": [row["topic"], row["country"]],
                    "got": [topics[:1], countries[:1]],
                }
            )
    return {
        "travel_queries": travel,
        "travel_topic_accuracy": topic_ok / travel,
        "country_queries": country_total,
        "country_accuracy": country_ok / country_total,
        "oos_queries": oos_total,
        "oos_rejection": rejected / oos_total,
        "oos_answered_as": dict(leaked_topics.most_common(8)),
        "travel_misses": misses,
    }


# -- 4: latency, throughput and memory ---------------------------------------------


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies_ms)
        return {
            "messages": len(ordered),
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "messages_per_second": round(len(ordered) / self.seconds, 1),
        }


@dataclass
class Conversations:
    """Conversations loading one server, each sending one message at a time.

    ``run`` may be called several times: the same conversations go on where
    they stopped, so a conversation sent in blocks is as long as one sent at
    once (a longer history costs stock Rasa more).
    """

    send: Any
    count: int
    messages: list[str]
    contexts: dict[int, Any] = field(default_factory=dict)
    turns: int = 0

    async def run(self, per_conversation: int) -> LoadResult:
        result = LoadResult()
        first = self.turns

        async def conversation(number: int) -> None:
            if number not in self.contexts:
                self.contexts[number] = await self.send(None, None)
            for turn in range(first, first + per_conversation):
                text = self.messages[(number + turn) % len(self.messages)]
                started = time.perf_counter()
                self.contexts[number] = await self.send(self.contexts[number], text)
                result.latencies_ms.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(n) for n in range(self.count)))
        result.seconds = time.perf_counter() - started
        self.turns += per_conversation
        return result


async def load(
    send: Any, conversations: int, per_conversation: int, messages: list[str]
) -> LoadResult:
    """New conversations, each sending ``per_conversation`` messages."""
    return await Conversations(send, conversations, messages).run(per_conversation)


def add(total: LoadResult, block: LoadResult) -> None:
    """Counts a block of load into a total (its latencies and its time)."""
    total.latencies_ms += block.latencies_ms
    total.seconds += block.seconds


@dataclass
class Side:
    """One server under load: how to send to it, what to send, and its processes."""

    name: str
    send: Any
    messages: list[str]
    pids: dict[str, int]


def block_order(names: list[str], blocks: int) -> list[list[str]]:
    """Who runs in each block: forwards, then backwards (A B, B A, A B...).

    With the order reversed every other block, a machine that speeds up or
    slows down steadily during the run favours neither side.
    """
    return [list(names) if block % 2 == 0 else list(reversed(names)) for block in range(blocks)]


async def side_by_side(sides: list[Side], blocks: int = BLOCKS) -> dict[str, dict[str, Any]]:
    """Latency and throughput of each side at 1 and 10 conversations, in alternating blocks.

    Each side gets the same load in all (one conversation of 100 messages,
    then ten conversations of 30 messages, each sent in ``blocks`` parts),
    one side at a time, the sides taking turns. The CPU time each process spent
    per message is counted over the ten-conversation blocks: unlike
    wall-clock latency it hardly moves when other work shares the machine,
    so it shows what a change saves.
    """
    single = {side.name: LoadResult() for side in sides}
    ten = {side.name: LoadResult() for side in sides}
    cpu = {side.name: dict.fromkeys(side.pids, 0.0) for side in sides}
    # This process: the load generator, sharing the machine with the servers.
    client_cpu = dict.fromkeys(cpu, 0.0)
    by_name = {side.name: side for side in sides}
    for side in sides:
        await load(side.send, 2, len(side.messages), side.messages)  # warm up every path
    ones = {side.name: Conversations(side.send, 1, side.messages) for side in sides}
    for order in block_order(list(by_name), blocks):
        for name in order:
            add(single[name], await ones[name].run(100 // blocks))
    tens = {side.name: Conversations(side.send, 10, side.messages) for side in sides}
    for order in block_order(list(by_name), blocks):
        for name in order:
            side = by_name[name]
            before = {process: cpu_seconds(pid) for process, pid in side.pids.items()}
            client_before = time.process_time()
            add(ten[name], await tens[name].run(30 // blocks))
            client_cpu[name] += time.process_time() - client_before
            for process, pid in side.pids.items():
                cpu[name][process] += cpu_seconds(pid) - before[process]
    results = {}
    for name in by_name:
        count = len(ten[name].latencies_ms)
        results[name] = {
            "1_conversation": single[name].summary(),
            "10_conversations": ten[name].summary(),
            "cpu_ms_per_message": {
                process: round(seconds * 1000 / count, 1) for process, seconds in cpu[name].items()
            },
            "load_generator_cpu_ms_per_message": round(client_cpu[name] * 1000 / count, 1),
        }
    return results


def ours_sender(client: aiohttp.ClientSession, base: str) -> Any:
    async def send(context: Any, text: str | None) -> Any:
        if context is None:
            async with client.post(f"{base}/api/webchat/sessions") as response:
                response.raise_for_status()
                return await response.json()
        async with client.post(
            f"{base}/api/webchat/sessions/{context['session_id']}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {context['token']}"},
        ) as response:
            response.raise_for_status()
            await response.read()
        return context

    return send


def stock_sender(client: aiohttp.ClientSession, base: str) -> Any:
    async def send(context: Any, text: str | None) -> Any:
        if context is None:
            return f"bench-{random.random()}"
        async with client.post(
            f"{base}/webhooks/rest/webhook", json={"sender": context, "message": text}
        ) as response:
            response.raise_for_status()
            await response.read()
        return context

    return send


def load_client() -> aiohttp.ClientSession:
    """The load generator's HTTP client, for both sides.

    It shares the two cores with the servers it measures, so it should take
    as little of them as it can: aiohttp costs a fraction of httpx's CPU time
    per request (see README, "Reply latency").
    """
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60),
        connector=aiohttp.TCPConnector(keepalive_timeout=2.0),
    )


def _descendants(pid: int) -> list[int]:
    """A process and all its descendants (gone ones are skipped)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants so far, in seconds."""
    ticks = 0
    for current in _descendants(pid):
        try:
            # Fields after the command name (which may hold spaces): utime is
            # the 12th, stime the 13th.
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for current in _descendants(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
        except (OSError, StopIteration):
            continue
    return round(total / 1024, 1)


def stock_model() -> Path:
    """A stock `rasa init` project, trained once and reused."""
    models = sorted((STOCK_DIR / "models").glob("*.tar.gz")) if STOCK_DIR.exists() else []
    if models:
        return models[-1]
    log("training the stock 'rasa init' model (default pipeline and policies; a few minutes)")
    shutil.rmtree(STOCK_DIR, ignore_errors=True)
    STOCK_DIR.mkdir(parents=True)
    subprocess.run(
        [str(RASA), "init", "--no-prompt", "--init-dir", str(STOCK_DIR)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return sorted((STOCK_DIR / "models").glob("*.tar.gz"))[-1]


@contextlib.contextmanager
def stock_server(work: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The stock model served by ``rasa run`` on a free port: its URL and process."""
    model = stock_model()
    port = free_port()
    process = spawn(
        "stock-rasa",
        [
            str(RASA),
            "run",
            "--enable-api",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            str(model),
            # The stock project's own endpoints (in-memory tracker store, no
            # action server) and channels, not ours from the working directory.
            "--endpoints",
            str(STOCK_DIR / "endpoints.yml"),
            "--credentials",
            str(STOCK_DIR / "credentials.yml"),
        ],
        os.environ | {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"},
        work,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"stock Rasa did not start; see {work}/stock-rasa.log")
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=30)


def compare_latency(stack: Stack, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Part 4: our running stack and the stock model, loaded in turns (``side_by_side``)."""
    pids = {name: process.pid for name, process in stack.processes.items()}
    with stock_server(work) as (stock_url, stock_process):

        async def run() -> dict[str, dict[str, Any]]:
            async with load_client() as client:
                return await side_by_side(
                    [
                        Side("ours", ours_sender(client, stack.app_url), LOAD_MESSAGES, pids),
                        Side(
                            "stock",
                            stock_sender(client, stock_url),
                            STOCK_MESSAGES,
                            {"rasa": stock_process.pid},
                        ),
                    ]
                )

        results = asyncio.run(run())
        results["ours"]["rss_mb"] = {
            name: rss_mb(process.pid) for name, process in stack.processes.items()
        }
        results["stock"]["rss_mb"] = {"rasa": rss_mb(stock_process.pid)}
    return results["ours"], results["stock"]


# -- report -----------------------------------------------------------------------


def print_held_out(held: dict[str, Any]) -> None:
    print("\n=== 2-3. Held-out fifth of own examples: ours vs TF-IDF + logistic regression ===")
    print(
        f"{held['held_out_examples']} held out (seed {held.get('seed', SEED)}); "
        f"ours trained in {held['train_seconds']} s"
    )
    print(f"{'topic':28} {'ours P':>7} {'ours R':>7} {'base P':>7} {'base R':>7} {'n':>4}")
    for topic, row in held["ours"]["per_topic"].items():
        base = held["baseline"]["per_topic"].get(topic, {"precision": 0, "recall": 0})
        print(
            f"{topic:28} {row['precision']:7.3f} {row['recall']:7.3f} "
            f"{base['precision']:7.3f} {base['recall']:7.3f} {row['support']:4}"
        )
    for key in ("accuracy", "in_scope_accuracy", "urgent_recall", "urgent_exact_recall"):
        print(f"{key:28} ours {held['ours'][key]:.3f}   baseline {held['baseline'][key]:.3f}")
    for miss in held.get("urgent_misses", []):
        print(f"  urgent miss: {miss['text']!r} expected {miss['expected']} got {miss['got']}")


def check(name: str, value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'PASS' if ok else 'FAIL'}  {name}: {value:.3f} (target {sign} {target})"


def main_held_out(seed: int) -> int:
    """Parts 2 and 3 only: the held-out split against the baseline."""
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="bench-heldout-") as folder:
        log(f"2-3. held-out split (seed {seed}): training a model without the held-out fifth")
        results["held_out"] = held_out(Path(folder), seed)
    RESULTS.parent.mkdir(exist_ok=True)
    HELD_OUT_RESULTS.write_text(json.dumps(results, indent=2))
    print_held_out(results["held_out"])
    held = results["held_out"]
    print("\n=== Targets ===")
    urgent = held["ours"]["urgent_recall"]
    print(check("urgent recall (held out)", urgent, TARGETS["urgent_recall"]))
    print(
        check(
            "in-scope accuracy minus baseline",
            held["ours"]["in_scope_accuracy"] - held["baseline"]["in_scope_accuracy"],
            0.0001,
        )
    )
    return 0


def main_latency(rounds: int, rasa_servers: int) -> int:
    """Part 4 only: ours then stock, ``rounds`` times, each round compared within itself."""
    runs = []
    for number in range(1, rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
            work = Path(folder)
            (work / "stack").mkdir()
            log(f"4. round {number}/{rounds}: our stack and the stock model, in turns")
            stack = start_stack(work / "stack", rasa_servers=rasa_servers)
            try:
                ours, stock = compare_latency(stack, work)
            finally:
                stack.stop_all()
        runs.append({"latency": ours, "stock": stock})
        print_latency(ours, stock, heading=f"round {number}/{rounds}")
    RESULTS.parent.mkdir(exist_ok=True)
    LATENCY_RESULTS.write_text(
        json.dumps({"machine": {"cores": os.cpu_count()}, "rounds": runs}, indent=2)
    )
    print("\n=== Targets (each round) ===")
    for number, run in enumerate(runs, start=1):
        for line in latency_checks(run["latency"], run["stock"]):
            print(f"round {number}: {line}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=("all", "heldout", "latency"),
        default="all",
        help=(
            "all: the whole benchmark (default); heldout: parts 2-3 only, a minute or two; "
            "latency: part 4 only, ours and stock in the same run"
        ),
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the held-out split")
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --part latency: how many ours/stock rounds"
    )
    parser.add_argument(
        "--rasa-servers",
        type=int,
        default=RASA_SERVERS,
        help=f"Rasa servers in our stack (default {RASA_SERVERS}, as make run starts)",
    )
    arguments = parser.parse_args()
    rasa_servers = max(1, arguments.rasa_servers)
    if arguments.part == "heldout":
        return main_held_out(arguments.seed)
    if arguments.part == "latency":
        return main_latency(max(1, arguments.rounds), rasa_servers)
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        work = Path(folder)
        log("2-3. held-out split: training a model without the held-out fifth")
        results["held_out"] = held_out(
            work / "heldout" if (work / "heldout").mkdir() is None else work, arguments.seed
        )
        log("1. starting the stack for the public benchmark and the load test")
        stack = start_stack(
            work / "stack" if (work / "stack").mkdir() is None else work,
            rasa_servers=rasa_servers,
        )
        try:
            log(f"1. public benchmark: {EVAL.name} through the web chat API")
            results["public"] = asyncio.run(public_benchmark(stack))
            log("4. latency through the web chat API, ours and the stock model in turns")
            results["latency"], results["stock"] = compare_latency(stack, work)
        finally:
            stack.stop_all()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print_report(results)
    return 0


def print_report(results: dict[str, Any]) -> None:
    public, held, ours, stock = (
        results["public"],
        results["held_out"],
        results["latency"],
        results["stock"],
    )
    print("\n=== 1. Public benchmark (shared/eval/clinc_travel_oos.jsonl, via web chat API) ===")
    print(f"travel topic accuracy  {public['travel_topic_accuracy']:.3f}", end="  ")
    print(f"({public['travel_queries']} queries)")
    print(f"country accuracy       {public['country_accuracy']:.3f}", end="  ")
    print(f"({public['country_queries']} naming a country)")
    print(
        f"out-of-scope rejection {public['oos_rejection']:.3f}  ({public['oos_queries']} queries)"
    )
    print(f"  out-of-scope answered as: {public['oos_answered_as']}")
    for miss in public["travel_misses"]:
        print(f"  miss: {miss['text']!r} expected {miss['expected']} got {miss['got']}")
    print_held_out(held)
    print_latency(ours, stock)
    print("\n=== Targets ===")
    for line in (
        check(
            "travel topic accuracy",
            public["travel_topic_accuracy"],
            TARGETS["travel_topic_accuracy"],
        ),
        check("country accuracy", public["country_accuracy"], TARGETS["country_accuracy"]),
        check("out-of-scope rejection", public["oos_rejection"], TARGETS["oos_rejection"]),
        check("urgent recall (held out)", held["ours"]["urgent_recall"], TARGETS["urgent_recall"]),
        check(
            "in-scope accuracy minus baseline",
            held["ours"]["in_scope_accuracy"] - held["baseline"]["in_scope_accuracy"],
            0.0001,
        ),
        *latency_checks(ours, stock),
    ):
        print(line)


def print_latency(ours: dict[str, Any], stock: dict[str, Any], heading: str = "") -> None:
    """Part 4's table: ours beside stock at 1 and 10 conversations, and memory."""
    suffix = f" ({heading})" if heading else ""
    print(
        f"\n=== 4. Latency through the web chat API vs stock rasa init (rasa run REST){suffix} ==="
    )
    for label, key in (
        ("1 conversation", "1_conversation"),
        ("10 conversations", "10_conversations"),
    ):
        o, s = ours[key], stock[key]
        print(
            f"{label:17} ours p50 {o['p50_ms']:6.1f} ms p95 {o['p95_ms']:6.1f} ms "
            f"{o['messages_per_second']:6.1f} msg/s | stock p50 {s['p50_ms']:6.1f} ms "
            f"p95 {s['p95_ms']:6.1f} ms {s['messages_per_second']:6.1f} msg/s"
        )
    print(f"resident memory MB: ours {ours['rss_mb']} | stock {stock['rss_mb']}")
    if "cpu_ms_per_message" in ours and "cpu_ms_per_message" in stock:
        print(
            f"CPU ms per message at 10 conversations: ours {ours['cpu_ms_per_message']} "
            f"(total {sum(ours['cpu_ms_per_message'].values()):.1f}) | "
            f"stock {stock['cpu_ms_per_message']}"
        )
    if "load_generator_cpu_ms_per_message" in ours:
        print(
            "load generator (this process, same machine) CPU ms per message: "
            f"ours {ours['load_generator_cpu_ms_per_message']} | "
            f"stock {stock['load_generator_cpu_ms_per_message']}"
        )


def latency_checks(ours: dict[str, Any], stock: dict[str, Any]) -> list[str]:
    """The two latency targets: p95 at ten conversations, throughput against stock."""
    ratio = (
        ours["10_conversations"]["messages_per_second"]
        / stock["10_conversations"]["messages_per_second"]
    )
    return [
        check(
            "p95 ms at 10 conversations",
            ours["10_conversations"]["p95_ms"],
            TARGETS["p95_ms_10"],
            higher_is_better=False,
        ),
        check("throughput vs stock", ratio, TARGETS["throughput_ratio"]),
    ]


if __name__ == "__main__":
    sys.exit(main())
