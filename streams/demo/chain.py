"""Building blocks to drive the whole chain from Python: a worker in its own process, a
one-shot collection, and waiting until Elasticsearch holds what was sent. Used by
``logriver demo``, the integration tests and the end-to-end benchmark."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

from streams.ops import config
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs
from streams.transport.kafka import KafkaPublisher, ensure_topics, group_lag


class ChildProcess:
    """A ``python -m streams ...`` child in its own session (killed with its children), its
    output appended to ``log_path``. Subclasses give ``command()``."""

    def __init__(self, *, log_path: Path | None = None, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self.cwd = cwd  # the source tree to run (``python -m streams`` imports from the cwd first)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        """The command line, and the environment (None: this process's)."""
        raise NotImplementedError

    def start(self) -> Self:
        cmd, env = self.command()
        if self.log_path:
            self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.cwd, stdout=self._log or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess(ChildProcess):
    """``logriver run PIPELINE`` as a child process with the given settings."""

    def __init__(self, pipeline: str, settings: config.Settings, *, log_path: Path | None = None,
                 extra_args: list[str] | None = None, cwd: Path | None = None) -> None:
        super().__init__(log_path=log_path, cwd=cwd)
        self.pipeline = pipeline
        self.settings = settings
        self.extra_args = extra_args or []

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        s = self.settings
        cmd = [sys.executable, "-m", "streams", "run", self.pipeline,
               "--kafka", s.kafka_bootstrap, "--es-url", s.es_url,
               "--topic-prefix", s.topic_prefix, "--index-prefix", s.index_prefix,
               "--loglevel", "info", *self.extra_args]
        env = {**os.environ, "LOGRIVER_STATE_DIR": str(s.state_dir),
               "LOGRIVER_PERSIST_SECONDS": str(s.persist_seconds)}
        return cmd, env


async def collect_once(settings: config.Settings, root: Path, checkpoint_dir: Path,
                       globs: list[str] | None = None) -> int:
    """Run the node agent over ``root`` until everything there is published."""
    topic = settings.topic(config.RAW)
    await ensure_topics(settings.kafka_bootstrap, [topic])
    async with KafkaPublisher(settings.kafka_bootstrap, topic) as publisher:
        tailer = FileTailer(globs or default_node_globs(str(root)), publisher,
                            CheckpointStore(checkpoint_dir / "checkpoints.json"))
        try:
            return await tailer.drain()
        finally:
            tailer.close()


async def remove_run(settings: config.Settings) -> list[str]:
    """Delete what a run left under its prefixes: indices, data streams and templates under
    ``index_prefix``, topics (Faust's changelogs included) under ``topic_prefix``. Returns
    what could not be deleted, described (best effort: for test and benchmark teardown)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from elasticsearch import ApiError, AsyncElasticsearch

    from schemas import elasticsearch as es_schema

    problems: list[str] = []
    async with AsyncElasticsearch(settings.es_url, request_timeout=60) as es:
        try:
            await es.indices.delete(index=f"{settings.index_prefix}-*", ignore_unavailable=True,
                                    allow_no_indices=True, expand_wildcards="all")
            try:  # data streams, where the cluster has them
                await es.indices.delete_data_stream(name=f"{settings.index_prefix}-*")
            except ApiError:
                pass
            await es_schema.uninstall(es, settings.index_prefix)
        except Exception as exc:  # noqa: BLE001 - reported
            problems.append(f"indices {settings.index_prefix}-*: {exc}")
    if settings.topic_prefix:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            await admin.start()
            names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
            if names:
                await admin.delete_topics(names)
        except Exception as exc:  # noqa: BLE001 - reported
            problems.append(f"topics {settings.topic_prefix}*: {exc}")
        finally:
            await admin.close()
    return problems


async def count_events(settings: config.Settings, pipeline: str = "kubernetes") -> int:
    from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError

    async with AsyncElasticsearch(settings.es_url) as es:
        index = f"{settings.index_prefix}-events-{pipeline}*"
        try:
            await es.indices.refresh(index=index, allow_no_indices=True)
            return int((await es.count(index=index, allow_no_indices=True))["count"])
        except NotFoundError:
            return 0
        except ApiError as exc:
            if exc.meta.status == 503:  # an index being created: shards not active yet
                return 0
            raise


async def wait_for_count(settings: config.Settings, expected: int, *, timeout: float = 300.0,
                         worker: WorkerProcess | None = None, progress: bool = False,
                         pipeline: str = "kubernetes") -> int:
    """Poll Elasticsearch until ``expected`` events are searchable (or timeout). Fails fast
    when the worker process died."""
    deadline = time.monotonic() + timeout
    n = -1
    while time.monotonic() < deadline:
        n = await count_events(settings, pipeline)
        if progress:
            print(f"\r  searchable: {n}/{expected}", end="", file=sys.stderr, flush=True)
        if n >= expected:
            break
        if worker is not None and worker.proc is not None and not worker.alive():
            raise RuntimeError(f"worker exited with code {worker.proc.returncode}")
        await asyncio.sleep(0.5)
    if progress:
        print(file=sys.stderr)
    return n


async def wait_until_consumed(settings: config.Settings, group: str, topic: str,
                              timeout: float = 120.0) -> int:
    """Wait until ``group`` committed every message of ``topic``; returns the last lag."""
    deadline = time.monotonic() + timeout
    lag = -1
    while time.monotonic() < deadline:
        lag = await group_lag(settings.kafka_bootstrap, group, [topic])
        if lag == 0:
            return 0
        await asyncio.sleep(0.5)
    return lag
