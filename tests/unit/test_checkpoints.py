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
