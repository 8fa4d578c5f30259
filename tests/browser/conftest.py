"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by
Playwright for Python (never ``playwright install``: no browser is downloaded at test time).

Every browser test is skipped, with the install command, when /usr/bin/chromium or the
``playwright`` package is missing. Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("LOGRIVER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API runs an event loop on this thread while
    # it is open, and the other test directories call asyncio.run().
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: browser tests need Debian's chromium package "
                    "(apt-get update && apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package (pip install playwright; "
                    "no `playwright install`: the system Chromium is used)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A Playwright page that records console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def value(self, testid: str) -> str | None:
        """``data-value`` of the element with that test id (its text when it has none)."""
        loc = self.page.locator(f'[data-testid="{testid}"]')
        if loc.count() != 1:
            raise AssertionError(f"{loc.count()} elements with data-testid={testid!r}")
        v = loc.get_attribute("data-value")
        return v if v is not None else loc.inner_text()

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    # Self-contained pages: any request leaving the machine is a bug, so block and record it.
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("file://", "http://127.0.0.1", "data:", "about:")):
            return r.continue_()
        outside.append(url)
        return r.abort()

    ctx.route("**/*", route)
    p = Page(ctx.new_page())
    p.outside_requests = outside  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        ctx.close()


class ServedApp:
    """An aiohttp application served on 127.0.0.1 from a background event loop."""

    def __init__(self, web_app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.web_app = web_app
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: Any = None
        self.url = ""

    def start(self) -> ServedApp:
        from aiohttp import web

        async def go() -> int:
            self.runner = web.AppRunner(self.web_app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.thread.start()
        port = asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def call(self, fn, *args: Any) -> Any:
        """Run ``fn`` on the server's loop (so the stats are never mutated mid-request)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        """Stop serving (idempotent): the port refuses connections afterwards."""
        if self.loop.is_closed():
            return
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(web_app)`` serves an aiohttp application for the test; stopped afterwards."""
    started: list[ServedApp] = []

    def start(web_app: Any) -> ServedApp:
        s = ServedApp(web_app).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
