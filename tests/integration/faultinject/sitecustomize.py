"""Fault injection for the worker processes the integration tests start (this folder is put
first on their PYTHONPATH; Python imports ``sitecustomize`` at start-up).

``LOGRIVER_TEST_SLOW_SEEK=SECONDS``: the consumer's seek to the committed offsets (what Faust
does when a restarted worker finished reading its changelogs) takes that much longer, as it
does on a loaded machine or a remote broker. It widens the window in which faust-streaming
0.15.3 delivers records fetched before the seek (see ``streams/worker/consumer.py``)."""

import os

_slow = float(os.environ.get("LOGRIVER_TEST_SLOW_SEEK") or 0)
if _slow:
    import asyncio

    from faust.transport.drivers import aiokafka as _driver

    _seek = _driver.AIOKafkaConsumerThread.seek_to_committed

    async def _slow_seek_to_committed(self):  # type: ignore[no-untyped-def]
        await asyncio.sleep(_slow)
        return await _seek(self)

    _driver.AIOKafkaConsumerThread.seek_to_committed = _slow_seek_to_committed
