"""The app served on a loopback port in a thread, and what a browser test pokes at."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from bot.core.config import Settings
from bot.main import create_app
from tests.support.fake_rasa import FakeRasa
from tests.support.servers import loopback_socket

T = TypeVar("T")


class AppServer:
    """The whole app (lifespan included) served by uvicorn on 127.0.0.1 in a thread.

    ``call`` runs a coroutine on the server's own event loop, for tests that
    make the app publish a message the way the console or recovery would.
    """

    def __init__(self, settings: Settings) -> None:
        self.app: FastAPI = create_app(settings)
        self._socket = loopback_socket()
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[self._socket])

        asyncio.run(serve())

    def start(self) -> AppServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.01)
        return self

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10) -> T:
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(make(), self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@dataclass
class Stack:
    """What a browser test talks to and pokes at."""

    server: AppServer
    rasa: FakeRasa

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """The app's own sessions, for reading what it stored."""
        factory: sessionmaker[Session] = self.server.app.state.session_factory
        return factory
