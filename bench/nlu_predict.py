"""Parses texts with a trained Rasa model (run in the Rasa environment).

Usage: nlu_predict.py MODEL INPUT OUTPUT. Reads JSON lines {"text": ...} and
writes {"text", "intent", "confidence", "countries", "urgent_override"} lines
(Rasa logs to stdout, so results go to a file). ``urgent_override`` is why
the urgent safety net (components/urgent_cues.py) made the message urgent, or
null. Used by the benchmark and tests/rasa/test_accuracy.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

# The model names the project's custom component by module path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


async def _predict(model: str, texts: list) -> list:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    results = []
    for text in texts:
        parsed = await agent.parse_message(text)
        results.append(
            {
                "text": text,
                "intent": (parsed.get("intent") or {}).get("name"),
                "confidence": (parsed.get("intent") or {}).get("confidence"),
                "countries": [
                    entity["value"]
                    for entity in parsed.get("entities", [])
                    if entity.get("entity") == "country"
                ],
                "urgent_override": parsed.get("urgent_override"),
            }
        )
    return results


def predict(model: str, texts: list) -> list:
    """Intent and country entities for each text."""
    logging.disable(logging.WARNING)
    return asyncio.run(_predict(model, texts))


def main() -> int:
    model, source, target = sys.argv[1:4]
    with open(source, encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in lines if line.strip()]
    results = predict(model, texts)
    with open(target, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(result) + "\n" for result in results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
