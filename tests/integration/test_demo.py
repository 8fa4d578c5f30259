"""The quick start's first command, ``logriver demo``, end to end against the real services:
node log files written, collected, processed by the Faust worker and verified in
Elasticsearch by the command itself (its exit code says whether every event is searchable
exactly once)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from streams.demo.chain import remove_run
from streams.ops.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_demo_verifies_every_event_once(services, tmp_path: Path):
    env = {**os.environ, "LOGRIVER_KAFKA": services["kafka"].address,
           "LOGRIVER_ES_URL": services["elasticsearch"].address,
           "LOGRIVER_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "streams", "demo", "--no-services", "--lines", "3000",
                           "--workdir", str(tmp_path), "--timeout", "240"],
                          check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    m = re.search(r"Kafka topic (demo-[0-9a-f]+\.)logs\.raw", out)
    try:
        assert proc.returncode == 0, out[-3000:]
        assert "verified: every event is searchable exactly once" in out, out[-3000:]
        written = int(re.search(r"lines written\s+(\d+)", out)[1])
        indexed = int(re.search(r"documents indexed\s+(\d+)", out)[1])
        assert written >= 3000 and 0 < indexed <= written  # stack traces merge lines into events
        assert re.search(r"flagged lines\s+[1-9]", out), out  # the bad lines arrive, flagged
    finally:
        if m:  # the demo keeps its topics and indices for the user to look at; a test does not
            prefix = m[1]
            print(f"removing the demo run {prefix}")
            asyncio.run(remove_run(Settings(kafka_bootstrap=services["kafka"].address,
                                            es_url=services["elasticsearch"].address,
                                            topic_prefix=prefix,
                                            index_prefix=f"logriver-{prefix.rstrip('.')}")))
