"""Start the app, Rasa and the action server as real processes on free loopback ports.

Used by the end-to-end tests and the benchmark. Each stack gets its own
temporary database and tracker store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "consular.tar.gz"
STARTUP_SECONDS = 180


class StackError(RuntimeError):
    """A process of the stack failed to start or stay up."""


@dataclass
class Stack:
    """The running processes and where they listen."""

    app_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
    model: Path = MODEL
    rasa_ports: list[str] = field(default_factory=list)

    def start_rasa(self, name: str = "rasa") -> None:
        """Starts (or restarts) a Rasa server: ``rasa``, or ``rasa-2``... when there are several."""
        port = self.rasa_ports[rasa_server_number(name) - 1]
        self.processes[name] = spawn(
            name,
            [
                # components.serve is `rasa run` with cheaper action calls.
                str(ROOT / ".venv-rasa/bin/python"),
                "-m",
                "components.serve",
                "run",
                "--enable-api",
                "--auth-token",
                self.env["CONSULAR_RASA_TOKEN"],
                "--interface",
                "127.0.0.1",
                "--port",
                port,
                "--model",
                str(self.model),
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                "credentials.yml",
            ],
            self.env,
            self.logs,
        )

    @property
    def rasa_names(self) -> list[str]:
        """The names of the Rasa server processes."""
        return [rasa_server_name(number) for number in range(1, len(self.rasa_ports) + 1)]

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stops one process (its whole process group); ``kill`` gives it no chance to tidy up."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        """Stops every process still running."""
        for name in list(self.processes):
            self.stop(name)

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> dict[str, object]:
        """Polls /healthz until it is green; raises with the logs' location if not."""
        deadline = time.monotonic() + timeout
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise StackError(f"{name} exited early; see {self.logs / name}.log")
            try:
                response = httpx.get(f"{self.app_url}/healthz", timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise StackError(f"stack not healthy after {timeout} s: {body}; logs in {self.logs}")


def rasa_server_name(number: int) -> str:
    """``rasa`` for the first server, ``rasa-2`` for the second..."""
    return "rasa" if number == 1 else f"rasa-{number}"


def rasa_server_number(name: str) -> int:
    """The inverse of ``rasa_server_name``."""
    return 1 if name == "rasa" else int(name.removeprefix("rasa-"))


def spawn(
    name: str, command: list[str], env: dict[str, str], logs: Path
) -> subprocess.Popen[bytes]:
    """Starts a process in its own session, logging to ``logs/<name>.log``."""
    log = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_stack(work: Path, *, model: Path = MODEL, rasa_servers: int = 1) -> Stack:
    """Migrates and seeds a fresh database in ``work`` and starts the app, Rasa and actions.

    ``rasa_servers`` Rasa servers share the conversations (each always goes
    to the same one; bot/conversations/rasa_client.py); the first is named
    ``rasa``, the others ``rasa-2``...
    """
    if not model.exists():
        raise StackError(f"{model} is missing: run 'make test' or 'make run' first")
    app_port, actions_port = free_port(), free_port()
    rasa_ports = [str(free_port()) for _ in range(max(1, rasa_servers))]
    rasa_urls = ",".join(f"http://127.0.0.1:{port}" for port in rasa_ports)
    env = {
        **os.environ,
        "APP_PORT": str(app_port),
        "RASA_PORT": rasa_ports[0],
        "ACTIONS_PORT": str(actions_port),
        "CONSULAR_DATABASE_URL": f"sqlite:///{work / 'consular.db'}",
        "CONSULAR_RASA_URL": rasa_urls,
        "CONSULAR_RASA_TOKEN": "stack-rasa-token",
        "CONSULAR_ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}",
        "CONSULAR_INTERNAL_API_TOKEN": "stack-internal-token",
        "CONSULAR_API_URL": f"http://127.0.0.1:{app_port}",
        "CONSULAR_WEBCHAT_SECRET": "stack-webchat-secret",
        # The end-to-end tests and the benchmark's load generator send far
        # faster than any citizen: the limits are tested on their own.
        "CONSULAR_RATE_LIMIT_PER_SENDER": "100000/minute",
        "CONSULAR_RATE_LIMIT_PER_ENDPOINT": "1000000/minute",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{actions_port}/webhook",
        "RASA_TRACKER_DB": str(work / "tracker.db"),
        "RASA_TELEMETRY_ENABLED": "false",
        "SANIC_HOST": "127.0.0.1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    subprocess.run(
        [str(ROOT / ".venv/bin/bot"), "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    processes = {
        "app": spawn(
            "app",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bot.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(app_port),
                "--log-level",
                "warning",
            ],
            env,
            work,
        ),
        "actions": spawn(
            "actions",
            [
                str(ROOT / ".venv-rasa/bin/rasa"),
                "run",
                "actions",
                "--actions",
                "actions",
                "--port",
                str(actions_port),
            ],
            env,
            work,
        ),
    }
    stack = Stack(f"http://127.0.0.1:{app_port}", env, processes, work, model, rasa_ports)
    for name in stack.rasa_names:
        stack.start_rasa(name)
    try:
        stack.wait_healthy()
    except StackError:
        stack.stop_all()
        raise
    return stack
