"""The Elasticsearch sink's item handling, against a scripted fake client (pure logic; the
real server is exercised in tests/integration)."""

from __future__ import annotations

import asyncio

import orjson
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elastic_transport import ConnectionError as TransportConnectionError

from streams.sinks.elasticsearch import Action, ElasticsearchSink


class Resp:
    def __init__(self, body):
        self.body = body


class FakeES:
    """Answers each bulk with the next scripted outcome: a list of statuses or an exception."""

    def __init__(self, script):
        self.script = list(script)
        self.bodies: list[list[dict]] = []

    def options(self, **kw):
        return self

    async def bulk(self, operations: bytes, refresh=False, filter_path=None):
        # the sink asks only for what it reads; the real server's filtering is exercised by
        # the integration tests
        assert filter_path == ["errors", "items.*.status", "items.*.error"]
        lines = [orjson.loads(x) for x in operations.splitlines()]
        self.bodies.append(lines[1::2])
        outcome = self.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        items = []
        for status in outcome:
            item = {"status": status}
            if status >= 400:
                item["error"] = {"type": "mapper_parsing_exception" if status == 400 else "es_rejected_execution_exception",
                                 "reason": "failed to parse field [http.response.status_code]"}
            items.append({"create": item})
        return Resp({"items": items})


def run(sink, actions):
    asyncio.run(sink.write(actions))


def make(script):
    letters = []

    async def dlq(batch):
        letters.extend(batch)

    es = FakeES(script)
    sink = ElasticsearchSink(es, dead_letter_fn=dlq, backoff_initial=0.001, backoff_max=0.002, pipeline="p")
    return es, sink, letters


ACTIONS = [Action("idx", f"id{i}", {"n": i}) for i in range(3)]


def test_success_duplicates_and_rejections_are_each_accounted():
    _es, sink, letters = make([[201, 409, 400]])
    run(sink, ACTIONS)
    assert (sink.stats.indexed, sink.stats.duplicates, sink.stats.dead_lettered) == (1, 1, 1)
    assert letters[0]["reason"] == "mapper_parsing_exception"
    assert letters[0]["event_id"] == "id2" and orjson.loads(letters[0]["original"]) == {"n": 2}
    assert "status_code" in letters[0]["detail"]


def test_429_items_are_retried_alone_until_accepted():
    es, sink, letters = make([[201, 429, 429], [201, 503], [201]])
    run(sink, ACTIONS)
    assert sink.stats.indexed == 3 and not letters
    assert [[d["n"] for d in body] for body in es.bodies] == [[0, 1, 2], [1, 2], [2]]


def test_unreachable_cluster_is_retried_then_resumes():
    down = TransportConnectionError("refused")
    _es, sink, _letters = make([down, down, [201, 201, 201]])
    run(sink, ACTIONS)
    assert sink.stats.indexed == 3 and sink.healthy


def test_bulks_are_bounded_in_documents():
    es = FakeES([[201] * 2, [201] * 2, [201]])

    async def dlq(batch):
        raise AssertionError(batch)

    sink = ElasticsearchSink(es, dead_letter_fn=dlq, max_bulk_docs=2)
    run(sink, [Action("i", str(n), {"n": n}) for n in range(5)])
    assert sorted(len(b) for b in es.bodies) == [1, 2, 2] and sink.stats.indexed == 5


def test_5xx_on_the_whole_request_is_retried():
    from elasticsearch import ApiError

    meta = ApiResponseMeta(status=503, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "localhost", 9200))
    _es, sink, _ = make([ApiError("unavailable", meta, {}), [201, 201, 201]])
    run(sink, ACTIONS)
    assert sink.stats.indexed == 3


def test_a_pre_encoded_source_is_sent_as_is_and_equals_encoding_the_doc():
    """The worker encodes each event once for Kafka and Elasticsearch (Action.source)."""
    doc = {"message": "héllo", "n": 1, "nested": {"k": [1, 2]}}
    bodies = []
    for action in (Action("i", "a", doc),
                   Action("i", "a", doc, source=orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS))):
        es, sink, _letters = make([[201]])
        run(sink, [action])
        bodies.append(es.bodies)
    assert bodies[0] == bodies[1] == [[doc]]
    marked = Action("i", "a", doc, source=b'{"from":"source"}')  # source wins over doc
    es, sink, _ = make([[201]])
    run(sink, [marked])
    assert es.bodies == [[{"from": "source"}]]


def test_encoded_documents_make_the_same_bulk_bodies_as_actions():
    """write_encoded (the worker's events, encoded once) sends the bytes write sends for the
    same documents, chunked the same way, and retries and dead-letters them alike."""
    docs = [{"n": n, "message": "é" * n} for n in range(7)]
    sources = [orjson.dumps(d) for d in docs]
    indexes = ["a", "a", "b", "a", "b", "b", "a"]
    ids = [f"id{n}" for n in range(7)]
    sent: list[list[bytes]] = []
    for encoded in (False, True):
        es = FakeES([[201] * 3, [201, 429, 400], [201]] + [[201]] * 3)
        raw: list[bytes] = []
        real = es.bulk

        async def bulk(operations: bytes, _real=real, _raw=raw, **kw):
            _raw.append(operations)
            return await _real(operations, **kw)
        es.bulk = bulk  # type: ignore[method-assign]
        letters: list = []

        async def dlq(batch, _letters=letters):
            _letters.extend(batch)
        sink = ElasticsearchSink(es, dead_letter_fn=dlq, max_bulk_docs=3,
                                 backoff_initial=0.001, backoff_max=0.002)
        if encoded:
            asyncio.run(sink.write_encoded(indexes, ids, sources, docs))
        else:
            run(sink, [Action(i, d_id, d, source=s) for i, d_id, d, s in zip(indexes, ids, docs, sources)])
        assert (sink.stats.indexed, sink.stats.dead_lettered, sink.stats.retried_items) == (6, 1, 1)
        assert letters[0]["event_id"] == "id5" and orjson.loads(letters[0]["original"]) == docs[5]
        sent.append(raw)
    assert sent[0] == sent[1]
    assert len(sent[1]) == 4  # 3 + 3 + 1 documents, then the retried one
