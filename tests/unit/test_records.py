import orjson
import pytest

from streams.transport.deadletter import dead_letter
from streams.transport.records import (
    BatchDecodeError,
    EventIds,
    add_flag,
    decode_batch,
    decode_text,
    encode_batch,
    event_id,
)


def test_event_id_is_deterministic_and_distinguishes_parts():
    assert event_id("node1", "abc", 10) == event_id("node1", "abc", 10)
    assert event_id("node1", "abc", 10) != event_id("node1", "abc", 11)
    # the separator keeps ("a", "bc") apart from ("ab", "c")
    assert event_id("a", "bc") != event_id("ab", "c")
    assert len(event_id("x")) == 24


def test_event_ids_with_a_prefix_equal_event_id():
    ids = EventIds("node1", "abc")
    for last in (0, 10, 123456789, "x", b"raw"):
        assert ids(last) == event_id("node1", "abc", last)
    assert EventIds()("x") == event_id("x")


def test_decode_text_flags_invalid_utf8():
    assert decode_text("héllo".encode()) == ("héllo", True)
    text, ok = decode_text(b"bad \xff\xfe")
    assert not ok and "\ufffd" in text


def test_batch_round_trip_and_errors():
    recs = [{"id": "1", "message": "a"}, {"id": "2", "message": "b"}]
    assert decode_batch(encode_batch(recs)) == recs
    with pytest.raises(BatchDecodeError, match="not JSON"):
        decode_batch(b"\x00garbage")
    with pytest.raises(BatchDecodeError, match="records"):
        decode_batch(b'{"v":1}')
    with pytest.raises(BatchDecodeError, match="lacks"):
        decode_batch(b'{"v":1,"records":[{"message":"no id"}]}')


def test_add_flag_is_idempotent():
    r = {}
    add_flag(r, "truncated")
    add_flag(r, "truncated")
    add_flag(r, "invalid_utf8")
    assert r["flags"] == ["truncated", "invalid_utf8"]


def test_dead_letter_keeps_original_bytes():
    dl = dead_letter("decode", "bad_raw_message", b"\xff\x00", topic="t", partition=1, offset=7)
    assert dl["original_encoding"] == "base64" and dl["source"] == {"topic": "t", "partition": 1, "offset": 7}
    dl = dead_letter("index", "mapper_parsing_exception", {"a": 1}, step="es", detail="x" * 10000)
    assert orjson.loads(dl["original"]) == {"a": 1} and len(dl["detail"]) == 4096
