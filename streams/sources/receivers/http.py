"""Receivers that speak HTTP (Splunk HEC, CloudWatch Logs): one aiohttp server per receiver,
started on ``port`` (0: any free one, known after ``start``) and stopped gracefully: requests
in progress finish (they publish, then reply) before the base receiver drains."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.sources.receivers.base import Receiver


class HttpReceiver(Receiver):
    """Subclasses build their ``web.Application`` in ``start`` and call ``serve``."""

    def __init__(self, publisher: Any, **kw: Any) -> None:
        super().__init__(publisher, **kw)
        self._runner: web.AppRunner | None = None

    async def serve(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=30.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self, *args: Any, **kw: Any) -> None:
        """Stop listening; requests in progress finish (publish, then reply)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await super().stop(*args, **kw)
