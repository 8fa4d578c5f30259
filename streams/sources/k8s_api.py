"""Optional Kubernetes API enrichment for the node agent (``logriver collect --k8s-api``).

File names give namespace, pod, container and container id; the API adds what they do not:
the pod's labels (de-dotted with ``schemas.elasticsearch.dedot_labels``) and the node name.

It never blocks the tailer for long and works without API access:

- lookups go through a cache with a TTL, and failures (403, 404, timeouts, no API) are cached
  too (negative caching), so a pod costs at most one request per TTL;
- a record waits for its pod's lookup at most ``wait`` seconds (the first batch of a new pod);
  past that it is published without labels while the request finishes in the background and
  fills the cache for the next batches;
- one request in flight per pod, at most ``max_concurrency`` at a time; every failure is
  counted (``failures``, ``timeouts``), never raised.

Credentials: in a cluster, the service account token and CA under
``/var/run/secrets/kubernetes.io/serviceaccount`` and ``KUBERNETES_SERVICE_HOST``/``_PORT``;
or a URL given explicitly (``--k8s-api https://host:6443``), with the token from
``--k8s-token-file`` or the service account when present.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from schemas.elasticsearch import dedot_labels
from streams.sources.base import Publisher
from streams.transport.records import Record

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class _Entry:
    value: dict[str, Any] | None  # None: negative (not found, forbidden, failed)
    expires: float


class PodMetadata:
    """Pod labels and node name by (namespace, pod), from the API server, cached."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        verify: bool = True,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        timeout: float = 2.0,
        max_concurrency: int = 8,
        max_entries: int = 10_000,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.verify = verify
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task] = {}
        self._sem = asyncio.Semaphore(max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.hits = 0
        self.failures = 0
        self.timeouts = 0

    @classmethod
    def from_environment(cls, url: str | None = None, token_file: str | None = None,
                         **kw: Any) -> PodMetadata:
        """In-cluster configuration, or ``url`` with the service account's token if any."""
        if url in (None, "", "in-cluster"):
            host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise ValueError("not in a cluster (KUBERNETES_SERVICE_HOST unset); give --k8s-api URL")
            url = f"https://{host}:{port}"
        tf = Path(token_file) if token_file else SERVICE_ACCOUNT / "token"
        token = tf.read_text().strip() if tf.is_file() else None
        ca = SERVICE_ACCOUNT / "ca.crt"
        return cls(url, token=token, ca_file=str(ca) if ca.is_file() else None, **kw)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            ssl_ctx: ssl.SSLContext | bool = False
            if self.url.startswith("https"):
                if not self.verify:
                    ssl_ctx = False
                else:
                    ssl_ctx = ssl.create_default_context(cafile=self.ca_file)
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=16),
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    def cached(self, namespace: str, pod: str) -> tuple[bool, dict[str, Any] | None]:
        """(known, value) from the cache, without any request."""
        e = self._cache.get((namespace, pod))
        if e is None or e.expires < time.monotonic():
            return False, None
        return True, e.value

    async def get(self, namespace: str, pod: str, wait: float | None = None) -> dict[str, Any] | None:
        """The pod's ``{"labels": {...}, "node": {"name": ...}}``, or None when unknown. Waits at
        most ``wait`` seconds (default: ``timeout``); the request goes on in the background."""
        known, value = self.cached(namespace, pod)
        if known:
            self.hits += 1
            return value
        key = (namespace, pod)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t, k=key: self._inflight.pop(k, None))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout if wait is None else wait)
        except TimeoutError:
            return None
        except Exception:  # noqa: BLE001 - _fetch never raises, but be safe: enrichment is optional
            return None

    async def _fetch(self, key: tuple[str, str]) -> dict[str, Any] | None:
        namespace, pod = key
        value: dict[str, Any] | None = None
        ttl = self.negative_ttl
        try:
            async with self._sem:
                self.requests += 1
                async with self._client().get(f"{self.url}/api/v1/namespaces/{namespace}/pods/{pod}") as resp:
                    if resp.status == 200:
                        body = await resp.json(content_type=None)
                        value, ttl = self._extract(body), self.ttl
                    else:
                        if resp.status != 404:
                            self.failures += 1
                        log.debug("k8s api: %s/%s -> HTTP %d", namespace, pod, resp.status)
        except TimeoutError:
            self.timeouts += 1
            self.failures += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, TLS, bad JSON: counted, never raised
            self.failures += 1
            log.debug("k8s api: %s/%s failed: %s", namespace, pod, exc)
        if len(self._cache) >= self.max_entries:
            now = time.monotonic()
            for k in [k for k, e in self._cache.items() if e.expires < now] or list(self._cache)[: self.max_entries // 10]:
                self._cache.pop(k, None)
        self._cache[key] = _Entry(value, time.monotonic() + ttl)
        return value

    @staticmethod
    def _extract(pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod.get("metadata") or {}
        out: dict[str, Any] = {"labels": dedot_labels(meta.get("labels") or {})}
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            out["node"] = {"name": node}
        if meta.get("uid"):
            out["uid"] = meta["uid"]
        return out


def enrich(record: Record, info: dict[str, Any] | None) -> None:
    """Merge looked-up pod metadata into a record's ``kubernetes`` part (in place)."""
    if not info:
        return
    # copies: a tailer's records share their file's metadata dicts
    k8s = record["kubernetes"] = dict(record.get("kubernetes") or {})
    if info.get("labels"):
        k8s["labels"] = dict(info["labels"])
    if info.get("node"):
        k8s["node"] = dict(info["node"])
    if info.get("uid"):
        k8s["pod"] = {"uid": info["uid"], **(k8s.get("pod") or {})}


class EnrichingPublisher:
    """A ``Publisher`` that adds pod labels and node name to records that name a pod, then
    hands them on. A batch waits at most ``wait`` seconds per unknown pod (a batch shares its
    key, so usually one pod), and never fails because of the API."""

    def __init__(self, inner: Publisher, pods: PodMetadata, wait: float = 0.5) -> None:
        self.inner = inner
        self.pods = pods
        self.wait = wait
        self.enriched = 0

    async def publish(self, key: bytes, records: list[Record]) -> None:
        wanted: dict[tuple[str, str], list[Record]] = {}
        for rec in records:
            k8s = rec.get("kubernetes") or {}
            ns, pod = k8s.get("namespace"), (k8s.get("pod") or {}).get("name")
            if ns and pod:
                wanted.setdefault((ns, pod), []).append(rec)
        for (ns, pod), recs in wanted.items():
            info = await self.pods.get(ns, pod, wait=self.wait)
            if info:
                for rec in recs:
                    enrich(rec, info)
                self.enriched += len(recs)
        await self.inner.publish(key, records)
