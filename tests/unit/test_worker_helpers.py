"""Pure helpers of the Faust worker: buffers cut into slices bounded in bytes (memory does not
grow with a backlog), and documents fitted under a topic's message limit."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.sinks.outputs import fit_message
from streams.worker.buffers import slices


@given(st.lists(st.integers(0, 5000), max_size=60), st.integers(1, 8000))
def test_slices_keep_order_and_bound_bytes(sizes, limit):
    events = [SimpleNamespace(value=b"x" * n, i=i) for i, n in enumerate(sizes)]
    out = slices(events, limit)
    assert [e.i for part in out for e in part] == list(range(len(sizes)))
    assert all(part for part in out)
    for part in out:
        assert sum(len(e.value) for e in part) <= limit or len(part) == 1


def test_a_document_over_the_limit_is_cut_and_says_so():
    doc = {"message": "m" * 5000, "event": {"id": "e1"}}
    out = orjson.loads(fit_message(doc, "message", limit=2000))
    assert len(orjson.dumps(out)) <= 2000
    assert out["message"] == "m" * len(out["message"])
    assert out["logriver"]["topic_truncated"] == {"field": "message", "original_chars": 5000}
    small = {"message": "short"}
    assert fit_message(small, "message", limit=2000) == orjson.dumps(small)
