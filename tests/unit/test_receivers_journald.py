"""journald: conversion of ``journalctl -o json`` entries, and following a journalctl process.

The samples are entries as ``journalctl -o json`` prints them (systemd 252): a unit's line, a
Docker journald-driver line, a binary MESSAGE (array of bytes), a MESSAGE too large to show
(null). This machine runs no journald, so no live capture is used.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources.base import ListPublisher
from streams.sources.receivers.journald import (
    FLAG_JOURNALD_PARSE_ERROR,
    JournaldFollower,
    journal_record,
)
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED

WAIT = 10.0

CURSOR = "s=6c8e1b8e4b1f4d43a5d0f1f7a0e4b9a2;i=1a3f;b=0b5a6e3f9d2c4e7f8a1b2c3d4e5f6a7b;m=2c3b1f0;t=640f3a1b2c3d4;x=9f8e7d6c5b4a3921"
UNIT_ENTRY = {
    "__CURSOR": CURSOR,
    "__REALTIME_TIMESTAMP": "1764064800123456",
    "__MONOTONIC_TIMESTAMP": "46379504",
    "_BOOT_ID": "0b5a6e3f9d2c4e7f8a1b2c3d4e5f6a7b",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "3",
    "SYSLOG_IDENTIFIER": "sshd",
    "_PID": "812",
    "_UID": "0",
    "_COMM": "sshd",
    "_EXE": "/usr/sbin/sshd",
    "_SYSTEMD_UNIT": "ssh.service",
    "_TRANSPORT": "syslog",
    "_HOSTNAME": "node-1",
    "MESSAGE": "Accepted publickey for admin from 10.0.0.5 port 50022 ssh2",
}
DOCKER_ENTRY = {
    "__CURSOR": CURSOR.replace("i=1a3f", "i=1a40"),
    "__REALTIME_TIMESTAMP": "1764064800223456",
    "__MONOTONIC_TIMESTAMP": "46479504",
    "PRIORITY": "3",
    "CONTAINER_ID": "4f0c2f8b9a1e",
    "CONTAINER_ID_FULL": "4f0c2f8b9a1e" + "0" * 52,
    "CONTAINER_NAME": "web",
    "CONTAINER_TAG": "4f0c2f8b9a1e",
    "IMAGE_NAME": "nginx:1.27",
    "SYSLOG_IDENTIFIER": "4f0c2f8b9a1e",
    "_TRANSPORT": "journal",
    "_HOSTNAME": "node-1",
    "MESSAGE": "2026/11/25 10:00:00 [error] 7#7: *1 open() failed",
}
BINARY_ENTRY = {
    "__CURSOR": CURSOR.replace("i=1a3f", "i=1a41"),
    "__REALTIME_TIMESTAMP": "1764064800323456",
    "_SYSTEMD_UNIT": "app.service",
    "MESSAGE": [99, 97, 102, 233, 0, 33],
}
NULL_ENTRY = {
    "__CURSOR": CURSOR.replace("i=1a3f", "i=1a42"),
    "_SYSTEMD_UNIT": "app.service",
    "MESSAGE": None,
}


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro(), 60))


async def until(cond: Callable[[], bool], timeout: float = WAIT) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def test_unit_entry() -> None:
    key, r = journal_record(UNIT_ENTRY)  # type: ignore[misc]
    assert key == b"journald/ssh.service"
    assert r["message"] == UNIT_ENTRY["MESSAGE"]
    assert r["time"] == "2025-11-25T10:00:00.123456Z"
    assert r["source"] == {"type": "journald", "cursor": CURSOR, "host": "node-1"}
    assert r["fields"]["_SYSTEMD_UNIT"] == "ssh.service" and "__CURSOR" not in r["fields"]
    assert "flags" not in r and "container" not in r
    assert journal_record(dict(UNIT_ENTRY))[1]["id"] == r["id"]  # type: ignore[index]


def test_docker_driver_entry() -> None:
    key, r = journal_record(DOCKER_ENTRY)  # type: ignore[misc]
    assert r["container"] == {"id": DOCKER_ENTRY["CONTAINER_ID_FULL"], "name": "web",
                              "image": {"name": "nginx:1.27"}, "runtime": "docker"}
    assert r["stream"] == "stderr"  # PRIORITY 3: Docker's journald driver writes stderr so
    assert key == f"journald/{DOCKER_ENTRY['CONTAINER_ID_FULL']}".encode()
    assert r["fields"]["CONTAINER_NAME"] == "web"


def test_event_time_is_the_best_time_the_entry_carries() -> None:
    """Docker's driver: the copier's time in SYSLOG_TIMESTAMP (RFC 3339, nanoseconds), not
    journald's receive time; other senders: the trusted source time, else the receive time;
    a BSD syslog header time in SYSLOG_TIMESTAMP is not taken for RFC 3339."""
    docker = {**DOCKER_ENTRY, "SYSLOG_TIMESTAMP": "2025-11-25T10:00:00.201234567Z"}
    assert journal_record(docker)[1]["time"] == "2025-11-25T10:00:00.201234567Z"  # type: ignore[index]
    sourced = {**UNIT_ENTRY, "_SOURCE_REALTIME_TIMESTAMP": "1764064800100001",
               "SYSLOG_TIMESTAMP": "Nov 25 10:00:00 "}
    assert journal_record(sourced)[1]["time"] == "2025-11-25T10:00:00.100001Z"  # type: ignore[index]
    bad = {**UNIT_ENTRY, "SYSLOG_TIMESTAMP": "2025-13-45T99:00:00Z"}
    assert journal_record(bad)[1]["time"] == "2025-11-25T10:00:00.123456Z"  # type: ignore[index]
    assert journal_record(NULL_ENTRY)[1]["time"] is None  # type: ignore[index]


def test_binary_and_null_messages() -> None:
    _, b = journal_record(BINARY_ENTRY)  # type: ignore[misc]
    assert b["message"] == "caf\ufffd\x00!" and b["flags"] == [FLAG_INVALID_UTF8]
    _, n = journal_record(NULL_ENTRY)  # type: ignore[misc]
    assert n["message"] == "" and n["flags"] == [FLAG_TRUNCATED]
    assert journal_record({"MESSAGE": "no cursor"}) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_output_line_gives_a_record(line: bytes) -> None:
    f = JournaldFollower(ListPublisher())
    item = f.entry(line)
    assert item is None or (isinstance(item[1]["message"], str) and item[1]["id"])


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12),
        st.none()
        | st.text(max_size=12)
        | st.lists(st.integers(-5, 300), max_size=5)
        | st.integers(),
        max_size=6,
    )
)
def test_any_entry_converts_or_is_refused(entry: dict[str, Any]) -> None:
    if not isinstance(entry.get("__CURSOR"), str) or not entry["__CURSOR"]:
        # without a usable cursor journal_record refuses (the follower then publishes an
        # error record instead): covered by test_entry_without_cursor_is_refused below
        entry["__CURSOR"] = "c"
    item = journal_record(entry)
    assert item is not None and isinstance(item[1]["message"], str)


def fake_journalctl(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    """A stand-in for journalctl that prints the entries after ``--after-cursor`` and exits."""
    data = tmp_path / "entries.ndjson"
    data.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries) + b"not json\n")
    script = tmp_path / "journalctl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "after = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--after-cursor=')), None)\n"
        f"lines = open({str(data)!r}, 'rb').read().splitlines(keepends=True)\n"
        "if after:\n"
        "    lines = lines[[i for i, l in enumerate(lines) if after.encode() in l][0] + 1:]\n"
        "sys.stdout.buffer.write(b''.join(lines))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_follower_publishes_and_resumes_from_cursor(tmp_path: Path) -> None:
    script = fake_journalctl(tmp_path, [UNIT_ENTRY, DOCKER_ENTRY, BINARY_ENTRY])

    async def main() -> None:
        pub = ListPublisher()
        follower = JournaldFollower(
            pub, command=[str(script), "-o", "json", "-f"], restart_delay=0.01
        )
        async with follower:
            await until(lambda: follower.restarts >= 1)
        msgs = [r["message"] for r in pub.records]
        assert msgs[:4] == [
            UNIT_ENTRY["MESSAGE"],
            DOCKER_ENTRY["MESSAGE"],
            "caf\ufffd\x00!",
            "not json",
        ]
        assert follower.cursor == BINARY_ENTRY["__CURSOR"]
        assert pub.records[3]["flags"] == [FLAG_JOURNALD_PARSE_ERROR]
        # restarts resume after the cursor: only the unparsable tail line repeats
        assert all(m == "not json" for m in msgs[4:])
        assert follower.errors[FLAG_JOURNALD_PARSE_ERROR] == len(msgs) - 3

        pub2 = ListPublisher()
        again = JournaldFollower(pub2, command=[str(script)], after_cursor=DOCKER_ENTRY["__CURSOR"])
        async with again:
            await until(lambda: len(pub2.records) >= 2)
        assert pub2.records[0]["message"] == "caf\ufffd\x00!"

    run(main)


def test_default_command_prints_long_fields_and_follows_a_namespace() -> None:
    # Without --all, journalctl prints fields over 4,096 bytes as null: a 16 KiB Docker line
    # would arrive empty, flagged truncated.
    plain = JournaldFollower(ListPublisher())
    assert plain.command[:5] == ["journalctl", "-o", "json", "--all", "-f"]
    assert not any(a.startswith("--namespace") for a in plain.command)
    ns = JournaldFollower(ListPublisher(), namespace="docker", after_cursor="c1")
    assert "--namespace=docker" in ns._argv()
    assert "--after-cursor=c1" in ns._argv()


def test_follower_survives_a_missing_command(tmp_path: Path) -> None:
    async def main() -> None:
        follower = JournaldFollower(
            ListPublisher(), command=[os.fspath(tmp_path / "absent")], restart_delay=0.01
        )
        async with follower:
            await until(lambda: follower.restarts >= 2)
        assert follower.errors["command_failed"] >= 2

    run(main)


@pytest.mark.parametrize("cursor", [None, "", 7])
def test_entry_without_cursor_is_refused(cursor: Any) -> None:
    assert journal_record({"__CURSOR": cursor, "MESSAGE": "x"}) is None
    assert journal_record({"MESSAGE": "x"}) is None
