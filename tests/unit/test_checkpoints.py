import orjson

from streams.sources.checkpoints import CheckpointStore


def test_checkpoints_persist_atomically(tmp_path):
    path = tmp_path / "cp" / "checkpoints.json"
    cp = CheckpointStore(path, min_interval=0)
    cp.set("file-a", 120, "/x/a.log")
    cp.flush()
    assert not path.with_suffix(".tmp").exists()
    again = CheckpointStore(path)
    assert again.get("file-a").offset == 120 and again.get("file-a").path == "/x/a.log"
    assert orjson.loads(path.read_bytes())["v"] == 1


def test_flush_is_rate_limited_unless_forced(tmp_path):
    path = tmp_path / "c.json"
    cp = CheckpointStore(path, min_interval=3600)
    cp.set("a", 1, "p")
    cp.flush()
    cp.set("a", 2, "p")
    cp.flush()  # within the interval: not written
    assert CheckpointStore(path).get("a").offset == 1
    cp.flush(force=True)
    assert CheckpointStore(path).get("a").offset == 2


def test_prune_drops_only_files_gone_for_good(tmp_path):
    live = tmp_path / "live.log"
    live.write_text("x")
    store = CheckpointStore(tmp_path / "cp.json")
    store.set("open-old", 10, str(tmp_path / "deleted-but-open.log"))
    store.set("deleted-old", 10, str(tmp_path / "deleted.log"))
    store.set("rotated-away", 10, str(live))  # an older identity of the same path
    store.set("deleted-recent", 10, str(tmp_path / "gone-recently.log"))
    store.set("current", 10, str(live))
    day = 24 * 3600
    # age the first three by two days; "current" took the live path later
    for ident in ("open-old", "deleted-old", "rotated-away"):
        store._data[ident].updated -= 2 * day
    store._data["deleted-recent"].updated -= day / 2
    store.flush(force=True)

    assert store.prune({"open-old"}, max_age=day) == 2
    assert sorted(store._data) == ["current", "deleted-recent", "open-old"]
    store.flush(force=True)
    assert sorted(CheckpointStore(tmp_path / "cp.json")._data) == sorted(store._data)
    # the only identity of a path that still exists is kept however old it is
    store._data["current"].updated -= 10 * day
    assert store.prune({"open-old"}, max_age=day) == 0
    assert store.prune(set(), max_age=day) == 1 and "current" in store._data  # once closed


def test_first_flush_writes_on_a_freshly_booted_machine(tmp_path, monkeypatch):
    """``time.monotonic()`` counts from boot: a machine up for 5 s must still write the first
    checkpoint at once, whatever ``min_interval`` is."""
    from streams.sources import checkpoints

    monkeypatch.setattr(checkpoints.time, "monotonic", lambda: 5.0)
    path = tmp_path / "c.json"
    cp = CheckpointStore(path, min_interval=3600)
    cp.set("a", 1, "p")
    cp.flush()
    assert CheckpointStore(path).get("a").offset == 1
