"""Kubernetes API enrichment against a local aiohttp server faking the API server."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from streams.sources.base import ListPublisher
from streams.sources.k8s_api import EnrichingPublisher, PodMetadata

POD = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                 "labels": {"app": "web", "app.kubernetes.io/name": "web-frontend"}},
    "spec": {"nodeName": "node-7"},
}


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.auth: list[str | None] = []
        self.delay = 0.0
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        self.calls.append(f"{ns}/{pod}")
        self.auth.append(request.headers.get("Authorization"))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"kind": "Status"}, status=self.status)
        if (ns, pod) != ("shop", "web-1"):
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response(POD)


async def _serve(api: FakeApi) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def _rec(ns="shop", pod="web-1", msg="hello") -> dict:
    return {"id": msg, "message": msg, "kubernetes": {"namespace": ns, "pod": {"name": pod}}}


def test_labels_and_node_are_added_dedotted_and_cached():
    async def main():
        api = FakeApi()
        runner, url = await _serve(api)
        pods = PodMetadata(url, token="tok", ttl=60)
        pub = ListPublisher()
        ep = EnrichingPublisher(pub, pods)
        try:
            await ep.publish(b"k", [_rec(msg="a"), _rec(msg="b")])
            await ep.publish(b"k", [_rec(msg="c")])
        finally:
            await pods.close()
            await runner.cleanup()
        return api, pods, pub

    api, pods, pub = asyncio.run(main())
    for r in pub.records:
        assert r["kubernetes"]["labels"] == {"app": "web", "app_kubernetes_io/name": "web-frontend"}
        assert r["kubernetes"]["node"] == {"name": "node-7"}
        assert r["kubernetes"]["pod"] == {"name": "web-1", "uid": "u-1"}
    assert api.calls == ["shop/web-1"]  # one request, then the cache
    assert api.auth == ["Bearer tok"]
    assert pods.hits == 1 and pods.failures == 0


def test_unknown_pod_is_negatively_cached_and_ttl_expiry_refetches():
    async def main():
        api = FakeApi()
        runner, url = await _serve(api)
        pods = PodMetadata(url, ttl=0.0, negative_ttl=60)
        try:
            assert await pods.get("shop", "gone") is None
            assert await pods.get("shop", "gone") is None
            assert await pods.get("shop", "web-1") is not None
            assert await pods.get("shop", "web-1") is not None  # ttl 0: fetched again
        finally:
            await pods.close()
            await runner.cleanup()
        return api, pods

    api, pods = asyncio.run(main())
    assert api.calls == ["shop/gone", "shop/web-1", "shop/web-1"]
    assert pods.failures == 0  # a 404 is an answer, not a failure


def test_slow_api_never_blocks_publishing_and_fills_the_cache_later():
    async def main():
        api = FakeApi()
        api.delay = 0.4
        runner, url = await _serve(api)
        pods = PodMetadata(url, timeout=2.0)
        pub = ListPublisher()
        ep = EnrichingPublisher(pub, pods, wait=0.05)
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await ep.publish(b"k", [_rec(msg="first")])
            first_took = loop.time() - t0
            await asyncio.sleep(0.6)  # the request finished in the background
            await ep.publish(b"k", [_rec(msg="later")])
        finally:
            await pods.close()
            await runner.cleanup()
        return api, pub, first_took

    api, pub, first_took = asyncio.run(main())
    first, later = pub.records
    assert first_took < 0.3 and "labels" not in first["kubernetes"]
    assert later["kubernetes"]["labels"]["app"] == "web"
    assert api.calls == ["shop/web-1"]


@pytest.mark.parametrize("status", [403, 500])
def test_api_errors_and_no_api_are_counted_never_raised(status):
    async def main():
        api = FakeApi()
        api.status = status
        runner, url = await _serve(api)
        pods = PodMetadata(url, negative_ttl=60)
        pub = ListPublisher()
        ep = EnrichingPublisher(pub, pods)
        down = PodMetadata("http://127.0.0.1:9", timeout=0.5)  # nothing listens: refused
        try:
            await ep.publish(b"k", [_rec(msg="a")])
            await ep.publish(b"k", [_rec(msg="b")])  # negative cache: no second request
            assert await down.get("shop", "web-1") is None
        finally:
            await pods.close()
            await down.close()
            await runner.cleanup()
        return api, pods, pub, down

    api, pods, pub, down = asyncio.run(main())
    assert [r["message"] for r in pub.records] == ["a", "b"]
    assert all("labels" not in r["kubernetes"] for r in pub.records)
    assert api.calls == ["shop/web-1"] and pods.failures == 1
    assert down.failures == 1


def test_records_without_pod_pass_through_untouched():
    async def main():
        pods = PodMetadata("http://127.0.0.1:9", timeout=0.2)
        pub = ListPublisher()
        try:
            await EnrichingPublisher(pub, pods).publish(b"k", [{"id": "x", "message": "syslog line"}])
        finally:
            await pods.close()
        return pods, pub

    pods, pub = asyncio.run(main())
    assert pub.records == [{"id": "x", "message": "syslog line"}] and pods.requests == 0


def test_in_cluster_configuration_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValueError):
        PodMetadata.from_environment()
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    tok = tmp_path / "token"
    tok.write_text("secret\n")
    pm = PodMetadata.from_environment(token_file=str(tok))
    assert pm.url == "https://10.0.0.1:6443" and pm.token == "secret"
    assert PodMetadata.from_environment("http://api:8001", token_file=str(tok)).url == "http://api:8001"
