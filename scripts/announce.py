"""Waits until the service is healthy, then prints its URLs (run by the supervisor)."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

HOST = os.environ.get("CONSULAR_HOST", "127.0.0.1")
APP_PORT = os.environ.get("APP_PORT", "8000")
RASA_PORT = os.environ.get("RASA_PORT", "5005")
ACTIONS_PORT = os.environ.get("ACTIONS_PORT", "5055")
WAIT_SECONDS = 300


def main() -> int:
    base = f"http://{HOST}:{APP_PORT}"
    deadline = time.monotonic() + WAIT_SECONDS
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=3) as response:
                if response.status == 200:
                    break
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            waiting = [k for k, v in body.get("components", {}).items() if not v.get("ok")]
            status = "waiting for " + ", ".join(waiting)
            if status != last:
                print(status, flush=True)
                last = status
        except OSError:
            pass
        time.sleep(1)
    else:
        print(f"not healthy after {WAIT_SECONDS} s: see the logs above", flush=True)
        return 1
    print(
        "\n"
        "  Consular assistance service is running\n"
        f"    web chat page     {base}/\n"
        f"    web chat API      {base}/api/webchat/sessions\n"
        f"    health            {base}/healthz\n"
        f"    API docs          {base}/docs\n"
        f"    Rasa server       http://127.0.0.1:{RASA_PORT} (REST channel, auth token)\n"
        f"    action server     http://127.0.0.1:{ACTIONS_PORT}\n"
        f"{_console_help(base)}"
        "  Press Ctrl-C to stop all three.\n",
        flush=True,
    )
    return 0


def _console_help(base: str) -> str:
    """How to sign in to the duty officers' console (the demo account exists only locally)."""
    if os.environ.get("CONSULAR_ENVIRONMENT", "local") != "local":
        return f"    duty console      {base}/console/sign-in\n"
    try:
        from bot.seed.demo_console import sign_in_help
    except ImportError:
        return f"    duty console      {base}/console/sign-in\n"
    return sign_in_help(base)


if __name__ == "__main__":
    sys.exit(main())
