"""The file tailer behind the node agent (``logriver collect``) and the sidecar mode.

How it keeps every line (the cases Fluent Bit and Fluentd failed in Vector's test harness):

- **Identity by content.** A file is identified by a fingerprint of its first line (up to
  1 KiB) and its container, not by path or inode: a renamed file keeps its identity, a file
  truncated in place (copytruncate) gets a new one, and the rotated copy of a copytruncate
  is recognized as the file we were reading, so reading resumes in the copy where it stopped.
- **Ids from identity + offset.** ``event_id(host, identity, offset)``: a line read twice
  (after a crash) has the same id, so downstream drops the duplicate.
- **Rotation by rename.** The open handle is drained to its end before it is released; the
  new file at the path is read from its start.
- **Checkpoints after acks.** The checkpoint (identity -> offset) advances only after the
  publisher acknowledged the lines, and never past a line still being assembled.
- **Multiline after reassembly.** Whole lines go through the multiline merger per
  (file, stream): stack traces become one event, with the first line's offset as its id.
- **Bounded memory.** A poll reads at most ``read_size`` per file; a line longer than
  ``max_line_bytes`` is cut with a marker and flagged ``truncated``; publishing awaits the
  broker's acknowledgement, so when Kafka is slow reading pauses.
"""

from __future__ import annotations

import asyncio
import glob as globmod
import hashlib
import logging
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from streams.framing.multiline import BUILTIN_RULES, MultilineMerger, MultilineRule
from streams.framing.runtime import TRUNCATION_MARKER, Line, PartialAssembler, decode_line, detect
from streams.sources.base import Publisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.kubernetes import metadata_from_path
from streams.transport.records import (
    FLAG_TRUNCATED,
    EventIds,
    Record,
    add_flag,
    event_id,
    now_rfc3339,
)

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
SIBLING_SCAN_SECONDS = 5.0  # how often rotated files next to the tailed ones are looked for
_STREAMS = ("stdout", "stderr", None)
_RAW_CUT = "_raw_cut"  # internal marker: the raw line was cut before decoding


# Rotated copies that are compressed (kubelet gzips all but the newest rotated file, dockerd
# with ``compress=true``, logrotate's ``compress``) or being written (kubelet's ``.tmp`` while
# compressing) are not text we can tail: skipped, and counted by reason (``skipped``, /metrics).
_SKIP_SUFFIXES = {".gz": "compressed", ".zst": "compressed", ".bz2": "compressed",
                  ".xz": "compressed", ".lz4": "compressed", ".zip": "compressed",
                  ".tmp": "being_written"}
# The rotation suffix of a file name: ``0.log.20261125-101500``, ``app.log.1``, ``app.log-20261125``.
_ROTATED = re.compile(r"^(?P<stem>.+?\.log)(?:[.-][^/]+)?$|^(?P<plain>.+?)(?:\.\d+|-\d{8}(?:-\d+)?)$")


def default_docker_root(root: str) -> str:
    """dockerd's data root beside a node's log root: ``/var/log`` -> ``/var/lib/docker``."""
    return os.path.join(os.path.dirname(os.path.normpath(root)), "lib", "docker")


def default_node_globs(root: str, docker_root: str | None = None) -> list[str]:
    """What a node agent tails under ``root`` (``/var/log`` on a node): the ``containers/``
    symlinks (which carry the container id), the ``pods/`` files they point at, and the rotated
    files next to them: kubelet's ``<n>.log.<timestamp>`` (rename) and uncompressed copies of a
    copytruncate (``<n>.log.1``). With dockerd (dockershim, cri-dockerd) those symlinks lead to
    ``<docker_root>/containers/<id>/<id>-json.log``, which dockerd rotates to
    ``<id>-json.log.1``, ``.2``...: those files are tailed too (``docker_root`` defaults to
    ``/var/lib/docker`` beside ``/var/log``). A file seen through a symlink and its real path is
    read once (same real path and inode, same identity); compressed copies are skipped."""
    pods = os.path.join(root, "pods", "*", "*")
    docker = os.path.join(docker_root or default_docker_root(root), "containers", "*")
    return [os.path.join(root, "containers", "*.log"), os.path.join(pods, "*.log"),
            os.path.join(pods, "*.log.*"), os.path.join(docker, "*-json.log"),
            os.path.join(docker, "*-json.log.*")]


def skip_reason(path: str) -> str | None:
    """Why a matched file is not tailed (compressed, being written), or None."""
    for suffix, reason in _SKIP_SUFFIXES.items():
        if path.endswith(suffix):
            return reason
    return None


def rotation_stem(name: str) -> str:
    """The file name without its rotation suffix (``0.log.20261125-101500`` -> ``0.log``)."""
    m = _ROTATED.match(name)
    if not m:
        return name
    return m["stem"] or m["plain"] or name


@dataclass
class TailedFile:
    path: str
    real: str
    identity: str
    fh: BinaryIO
    ino: int
    offset: int  # next byte to read
    fmt: str | None
    meta: dict[str, Any]
    buf: bytearray = field(default_factory=bytearray)
    buf_start: int = 0  # file offset of buf[0]
    discarding: bool = False  # inside an over-long line, skipping to its end
    gone_since: float | None = None  # path no longer points at this file
    fp: str | None = None  # fingerprint of the first line: changes when truncated in place
    scope: str = ""  # the rotation family (directory + name without rotation suffix)
    failed: bool = False  # a publish failed: lines were lost from memory, never checkpoint again
    ids: EventIds | None = None  # event_id(host, identity, offset), the prefix hashed once
    merge_keys: dict[str | None, tuple[str, str | None]] | None = None  # multiline key per stream


class FileTailer:
    def __init__(
        self,
        globs: list[str],
        publisher: Publisher,
        checkpoints: CheckpointStore,
        *,
        host: str | None = None,
        fmt: str | None = None,  # None: detect per line ("docker", "cri" or "plain")
        metadata: Callable[[str], dict[str, Any]] = metadata_from_path,
        extra_metadata: dict[str, Any] | None = None,
        max_line_bytes: int = 1024 * 1024,
        read_size: int = 256 * 1024,
        batch_lines: int = 2000,
        release_after: float = 5.0,
        poll_interval: float = 0.25,
        multiline: Iterable[MultilineRule] | None = BUILTIN_RULES,
        multiline_timeout: float = 2.0,
        checkpoint_ttl: float = 24 * 3600.0,
    ) -> None:
        self.globs = globs
        self.publisher = publisher
        self.checkpoints = checkpoints
        self.host = host or socket.gethostname()
        self.fmt = fmt
        self.metadata = metadata
        self.extra_metadata = extra_metadata or {}
        self.max_line_bytes = max_line_bytes
        self.read_size = read_size
        self.batch_lines = batch_lines
        self.release_after = release_after
        self.poll_interval = poll_interval
        self.checkpoint_ttl = checkpoint_ttl  # see CheckpointStore.prune
        self._last_prune = time.monotonic()
        self.checkpoints_pruned = 0
        self.files: dict[tuple[str, int], TailedFile] = {}  # by (real path, inode)
        self.assembler = PartialAssembler(max_line_bytes)  # keyed by file identity
        # keyed by (file identity, stream); None disables multiline merging
        self.merger = (
            MultilineMerger(multiline, flush_timeout=multiline_timeout, max_bytes=max_line_bytes)
            if multiline is not None else None
        )
        # Raw lines may be longer than their content (JSON escaping): cut them later.
        self.max_raw_bytes = 2 * max_line_bytes + 4096
        self.lines_published = 0
        self.truncated_lines = 0
        self.skipped: Counter[str] = Counter()  # files not tailed, by reason (see skip_reason)
        self._skipped_seen: set[str] = set()
        self.copies_missing = 0  # truncated in place without a readable copy next to it
        self._next_sibling_scan: float | None = None  # monotonic; None: at the next poll
        self._scope_meta: dict[str, dict[str, Any]] = {}  # rotation family -> metadata with a container id
        # Publish failures: retried with backoff in ``run`` (the same batch, same ids, the
        # checkpoint not advanced, reading paused); raised in ``drain``/``poll_once``.
        self.retry_publish = False
        self.retry_max_delay = 10.0
        self.publish_failures = 0
        self._stop: asyncio.Event | None = None

    # -- discovery ---------------------------------------------------------------------
    def _discover(self) -> None:
        """Open what the globs match, then the rotated siblings of what is open (a rotated
        file outside the globs, e.g. a copytruncate copy, is resumed from its checkpoint)."""
        known_ids = {tf.identity for tf in self.files.values()}
        seen_skipped: set[str] = set()
        for pattern in self.globs:
            for path in sorted(globmod.glob(pattern)):
                self._consider(path, known_ids, seen_skipped, resume_only=False)
        now = time.monotonic()
        if self._next_sibling_scan is None or now >= self._next_sibling_scan:
            self._next_sibling_scan = now + SIBLING_SCAN_SECONDS
            for path in self._rotated_siblings():
                self._consider(path, known_ids, seen_skipped, resume_only=True)
        else:  # not listed this time: still known
            seen_skipped |= {p for p in self._skipped_seen if os.path.lexists(p)}
        self._skipped_seen = seen_skipped

    def _consider(self, path: str, known_ids: set[str], seen_skipped: set[str], *,
                  resume_only: bool) -> None:
        reason = skip_reason(path)
        if reason is not None:
            if path not in self._skipped_seen and path not in seen_skipped:  # once per file
                self.skipped[reason] += 1
                log.info("tail: not reading %s (%s)", path, reason)
            seen_skipped.add(path)
            return
        real = os.path.realpath(path)
        self._learn_scope(path, real)
        try:
            st = os.stat(real)
            if (real, st.st_ino) in self.files or not os.path.isfile(real):
                return
            tf = self._open(path, real, resume_only=resume_only)
        except OSError as exc:
            log.warning("tail: cannot open %s: %s", path, exc)
            return
        if tf is None:
            return
        if tf.identity in known_ids:  # same file seen through another path
            tf.fh.close()
            return
        known_ids.add(tf.identity)
        self.files[(real, tf.ino)] = tf

    def _rotated_siblings(self) -> list[str]:
        """Files next to the open ones (real directory and symlink directory) whose name is
        the same but for a rotation suffix."""
        families: dict[str, set[str]] = {}
        for tf in self.files.values():
            for p in (tf.real, tf.path):
                stem = rotation_stem(os.path.basename(p))
                families.setdefault(os.path.dirname(p), set()).add(stem)
        out = []
        for d, stems in families.items():
            try:
                names = os.listdir(d)
            except OSError:
                continue
            out += [os.path.join(d, n) for n in sorted(names)
                    if n not in stems and rotation_stem(n) in stems]
        return out

    def _learn_scope(self, path: str, real: str) -> None:
        """Remember the metadata a ``containers/`` symlink carries (the container id) for
        the rotation family it points at, even while its target is missing: between a
        rename rotation and the runtime creating the new file, the symlink dangles, and a
        rotated file of that family discovered then must still get the container id."""
        if real == path or not os.path.islink(path):
            return
        meta = self.metadata(path)
        if (meta.get("container") or {}).get("id"):
            scope = os.path.join(os.path.dirname(real), rotation_stem(os.path.basename(real)))
            self._scope_meta[scope] = {**meta, **self.extra_metadata}

    def _fingerprint(self, fh: BinaryIO) -> str | None:
        head = os.pread(fh.fileno(), FINGERPRINT_BYTES, 0)
        nl = head.find(b"\n")
        if nl < 0 and len(head) < FINGERPRINT_BYTES:
            return None  # not even one whole line yet: wait
        return hashlib.blake2b(head[: nl + 1] if nl >= 0 else head, digest_size=10).hexdigest()

    def _open(self, path: str, real: str, *, resume_only: bool = False) -> TailedFile | None:
        """Open ``path`` at its checkpoint (or at 0); with ``resume_only``, only a file we
        have a checkpoint for (a rotated file of one we were reading)."""
        fh = open(real, "rb")  # noqa: SIM115 - held open while tailing
        fp = self._fingerprint(fh)
        if fp is None:
            fh.close()
            return None
        meta = {**self.metadata(path), **self.extra_metadata}
        # The identity's scope is the rotation family of the real file, the same whichever
        # path found it (a containers/ symlink or pods/) and whatever its rotation suffix, so
        # a rotated file resumes at its checkpoint and keeps its ids.
        scope = os.path.join(os.path.dirname(real), rotation_stem(os.path.basename(real)))
        if (meta.get("container") or {}).get("id"):
            self._scope_meta[scope] = meta
        elif scope in self._scope_meta:  # a rotated file of a container seen via its symlink
            meta = {**self._scope_meta[scope], **meta,
                    "container": self._scope_meta[scope].get("container")}
        identity = event_id(scope, fp)
        cp = self.checkpoints.get(identity)
        if cp is None and resume_only:
            fh.close()
            return None
        offset = cp.offset if cp else 0
        head = os.pread(fh.fileno(), FINGERPRINT_BYTES, 0)
        fmt = self.fmt  # None: each line's framing is detected (a file may mix them)
        log.info("tail: %s (%s) from offset %d", path,
                 fmt or detect(head.split(b"\n", 1)[0]) + ", detected per line", offset)
        return TailedFile(path, real, identity, fh, os.fstat(fh.fileno()).st_ino, offset, fmt,
                          meta, buf_start=offset, fp=fp, scope=scope)

    # -- reading -----------------------------------------------------------------------
    async def poll_once(self) -> int:
        """Discover files, read what is new in each, publish it. Returns lines published."""
        self._discover()
        counts = await asyncio.gather(*(self._pump(tf) for tf in list(self.files.values())))
        await self._expire_idle()
        await self._check_rotation()
        if time.monotonic() - self._last_prune >= min(self.checkpoint_ttl, 300.0):
            self._last_prune = time.monotonic()
            active = {tf.identity for tf in self.files.values()}
            self.checkpoints_pruned += self.checkpoints.prune(active, self.checkpoint_ttl)
        self.checkpoints.flush()
        return sum(counts)

    async def _pump(self, tf: TailedFile) -> int:
        total = 0
        while True:
            chunk = os.pread(tf.fh.fileno(), self.read_size, tf.offset)
            if not chunk:
                return total
            if self._fingerprint(tf.fh) != tf.fp:
                # truncated in place (copytruncate) and maybe rewritten past our offset
                # before this read, or since the file was opened (also at offset 0): the
                # chunk may be new content, not ours; _check_rotation restarts the file and
                # the copy has ours. (Checked after the read: a truncation after the check
                # would leave new content in the chunk.)
                return total
            tf.offset += len(chunk)
            records = self._split(tf, chunk)
            if records:
                await self._publish_file(tf, records)
                total += len(records)
            self._checkpoint(tf, self._safe_offset(tf), tf.path)
            if len(chunk) < self.read_size:
                return total

    async def _publish(self, key: bytes, records: list[Record]) -> None:
        """Publish one batch. In ``run`` mode a failure is retried with backoff (the same
        records, so the same ids) until it succeeds or the tailer stops: reading this file
        pauses meanwhile, memory stays bounded to the batch, the checkpoint stays put."""
        delay = 0.1
        while True:
            try:
                await self.publisher.publish(key, records)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.publish_failures += 1
                if not self.retry_publish or (self._stop is not None and self._stop.is_set()):
                    raise
                log.warning("tail: publish failed (%s: %s); retrying %d lines in %.1fs",
                            type(exc).__name__, exc, len(records), delay)
                if self._stop is not None:
                    try:
                        await asyncio.wait_for(self._stop.wait(), delay)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_delay)

    def _checkpoint(self, tf: TailedFile, offset: int, path: str) -> None:
        if not tf.failed:  # after a failed publish the lines it held exist only in the file
            self.checkpoints.set(tf.identity, offset, path)

    def _key(self, tf: TailedFile) -> bytes:
        cid = (tf.meta.get("container") or {}).get("id")
        return (cid or tf.scope or tf.identity).encode()  # the same across rotations

    def _safe_offset(self, tf: TailedFile) -> int:
        """Where a restart must resume: before any line still buffered or being assembled."""
        offsets = [tf.buf_start, self.assembler.pending_offset(tf.identity)]
        if self.merger is not None:
            offsets += [self.merger.pending_offset((tf.identity, s)) for s in _STREAMS]
        return min(o for o in offsets if o is not None)

    def _split(self, tf: TailedFile, chunk: bytes) -> list[Record]:
        tf.buf += chunk
        records: list[Record] = []
        observed = now_rfc3339()
        start = 0
        buf = tf.buf
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line_offset = tf.buf_start + start
            line = bytes(buf[start:nl])
            start = nl + 1
            if tf.discarding:  # the tail of an over-long line: skip it
                tf.discarding = False
                continue
            self._emit(tf, line, line_offset, observed, records)
        del buf[:start]
        tf.buf_start += start
        if len(buf) > self.max_raw_bytes:  # a line without end in sight: cut it now
            line = bytes(buf[: self.max_raw_bytes])
            if not tf.discarding:
                self._emit(tf, line, tf.buf_start, observed, records, truncated=True)
            tf.buf_start += len(buf)
            buf.clear()
            tf.discarding = True
        return records

    def _emit(self, tf: TailedFile, line: bytes, offset: int, observed: str,
              records: list[Record], truncated: bool = False) -> None:
        if len(line) > self.max_raw_bytes:
            line, truncated = line[: self.max_raw_bytes], True
        decoded = decode_line(line, tf.fmt)
        whole = self.assembler.feed(tf.identity, decoded, offset)
        if whole is None:
            return
        if truncated:
            whole.flags.append(_RAW_CUT)
        if self.merger is None:
            records.append(self._record(tf, whole, observed))
            return
        # A line of another stream closes what this file's other streams hold: events keep
        # the file's order (a trace interleaved with another stream's lines is split).
        merger = self.merger
        keys = tf.merge_keys
        if keys is None:
            keys = tf.merge_keys = {s: (tf.identity, s) for s in _STREAMS}
        held = merger.held
        stream = whole.stream
        for other, key in keys.items():
            if other != stream and key in held:
                for line_ in merger.flush(key):
                    records.append(self._record(tf, line_, observed))
        for line_ in merger.feed(keys.get(stream) or (tf.identity, stream), whole, time.monotonic()):
            records.append(self._record(tf, line_, observed))

    def _record(self, tf: TailedFile, whole: Line, observed: str) -> Record:
        ids = tf.ids
        if ids is None:
            ids = tf.ids = EventIds(self.host, tf.identity)
        rec: Record = {
            "id": ids(whole.offset),
            "message": whole.message,
            "time": whole.time,
            "observed": observed,
            "stream": whole.stream,
            # identity + offset: the line's position, which a line read again keeps
            "source": {"type": "file", "path": tf.path, "offset": whole.offset, "host": self.host,
                       "identity": tf.identity},
            **tf.meta,
        }
        if not whole.flags:
            return rec
        truncated = _RAW_CUT in whole.flags
        for flag in whole.flags:
            if flag != _RAW_CUT:
                add_flag(rec, flag)
        if truncated and FLAG_TRUNCATED not in whole.flags:
            add_flag(rec, FLAG_TRUNCATED)
            rec["message"] += TRUNCATION_MARKER
        if truncated or FLAG_TRUNCATED in whole.flags:
            self.truncated_lines += 1
        return rec

    # -- rotation and release ----------------------------------------------------------
    async def _release(self, key: tuple[str, int], tf: TailedFile) -> None:
        """Close a drained file (renamed away or deleted: its writer has moved on, it is
        final); a last line without newline and lines still held in assembly are emitted,
        then the checkpoint covers the whole file (a rotated copy found again is not re-read)."""
        tf.fh.close()
        del self.files[key]
        await self._emit_unterminated(tf)
        await self._publish_held(tf)
        self._checkpoint(tf, tf.offset, tf.path)

    async def _emit_unterminated(self, tf: TailedFile) -> None:
        """Publish a complete file's last line, which has no newline."""
        if not tf.buf or tf.discarding:
            return
        records: list[Record] = []
        self._emit(tf, bytes(tf.buf), tf.buf_start, now_rfc3339(), records)
        tf.buf_start += len(tf.buf)
        tf.buf.clear()
        if records:
            await self._publish_file(tf, records)

    def _discard_held(self, tf: TailedFile) -> None:
        """Forget what is held for a file without emitting it: its checkpoint is before the
        held lines, so whoever resumes this identity (the rotated copy) reads them again."""
        self.assembler.flush(tf.identity)
        if self.merger is not None:
            for stream in _STREAMS:
                self.merger.flush((tf.identity, stream))

    def _held_lines(self, tf: TailedFile) -> list[Line]:
        """Everything still held for a file: partial chunks, then open multiline events."""
        lines = self.assembler.flush(tf.identity)
        if self.merger is None:
            return lines
        out: list[Line] = []
        for line in lines:
            out += self.merger.feed((tf.identity, line.stream), line, time.monotonic())
        for stream in _STREAMS:
            out += self.merger.flush((tf.identity, stream))
        return sorted(out, key=lambda l: l.offset)

    async def _publish_held(self, tf: TailedFile) -> None:
        observed = now_rfc3339()
        records = [self._record(tf, line, observed) for line in self._held_lines(tf)]
        if records:
            await self._publish_file(tf, records)

    async def _publish_file(self, tf: TailedFile, records: list[Record]) -> None:
        """Publish a file's records; a failure marks the file failed (nothing more is read or
        checkpointed for it until it is reopened) and goes on up."""
        try:
            await self._publish(self._key(tf), records)
        except BaseException:
            tf.failed = True
            raise
        self.lines_published += len(records)

    async def flush_pending(self, *, unterminated: bool = False) -> None:
        """Emit every line still held in assembly or merging (end of a replay, shutdown).
        ``unterminated`` (a replay's end: the file is complete) also emits a last line the
        file does not end with a newline; a live agent waits for its newline instead."""
        for tf in list(self.files.values()):
            if tf.failed:
                continue
            if unterminated:
                await self._emit_unterminated(tf)
            await self._publish_held(tf)
            self._checkpoint(tf, self._safe_offset(tf), tf.path)

    async def _expire_idle(self) -> None:
        """Emit multiline events idle for longer than their flush timeout."""
        if self.merger is None:
            return
        by_identity = {tf.identity: tf for tf in self.files.values()}
        observed = now_rfc3339()
        for (identity, _stream), line in self.merger.poll(time.monotonic()):
            tf = by_identity.get(identity)
            if tf is None:
                continue
            await self._publish_file(tf, [self._record(tf, line, observed)])
            self._checkpoint(tf, self._safe_offset(tf), tf.path)

    async def _truncated(self, key: tuple[str, int], tf: TailedFile) -> None:
        """Truncated in place (copytruncate): the rest of the old content is in the rotated
        copy, read under the old identity from its checkpoint (found next to the file, in the
        globs or not); start over here. Held lines are then not emitted: the copy has them
        whole. Without a readable copy (compressed, moved away) they are emitted now, and what
        was written after our offset is gone (counted, logged)."""
        tf.fh.close()
        del self.files[key]
        self._next_sibling_scan = None  # look for the copy at the next poll
        if self._copy_of(tf) is not None:
            log.info("tail: %s truncated; restarting it at 0, the rest from its copy", tf.path)
            self._discard_held(tf)
            return
        self.copies_missing += 1
        log.warning("tail: %s truncated and no readable copy of it beside it: the lines held "
                    "are published, anything written after offset %d is lost", tf.path, tf.offset)
        await self._publish_held(tf)
        self._checkpoint(tf, tf.offset, tf.path)

    def _copy_of(self, tf: TailedFile) -> str | None:
        """A readable rotated file beside ``tf`` (its real file or the path it was found by)
        that starts like it: its copytruncate copy."""
        for p in dict.fromkeys((tf.real, tf.path)):
            d, stem = os.path.dirname(p), rotation_stem(os.path.basename(p))
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for name in names:
                path = os.path.join(d, name)
                if path in (tf.real, tf.path) or rotation_stem(name) != stem or skip_reason(path):
                    continue
                try:
                    with open(path, "rb") as fh:
                        if self._fingerprint(fh) == tf.fp:
                            return path
                except OSError:
                    continue
        return None

    async def _check_rotation(self) -> None:
        now = time.monotonic()
        for key, tf in list(self.files.items()):
            try:
                st = os.stat(tf.real)
                same = st.st_ino == tf.ino
            except FileNotFoundError:
                st, same = None, False
            if st is not None and same and (st.st_size < tf.offset
                                            or self._fingerprint(tf.fh) != tf.fp):
                await self._truncated(key, tf)
                continue
            if same:
                tf.gone_since = None
                continue
            # renamed or deleted: we hold the old handle; drain it, then release it.
            size = os.fstat(tf.fh.fileno()).st_size
            if size > tf.offset:
                continue
            if tf.gone_since is None:
                tf.gone_since = now
            elif now - tf.gone_since >= self.release_after:
                log.info("tail: released %s (rotated or deleted, drained)", tf.path)
                await self._release(key, tf)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the files until ``stop`` is set. Publish failures never end it: the batch
        is retried (see ``_publish``); when stopped while the publisher fails, what was not
        acknowledged stays before the checkpoint and is read again on restart."""
        self.retry_publish, self._stop = True, stop
        try:
            while not stop.is_set():
                try:
                    n = await self.poll_once()
                except Exception:
                    if stop.is_set():  # stopped during a retry: the checkpoint is safe
                        break
                    raise
                if n == 0:
                    try:
                        await asyncio.wait_for(stop.wait(), self.poll_interval)
                    except TimeoutError:
                        pass
            try:
                await asyncio.wait_for(self.flush_pending(), 10.0)
            except Exception as exc:  # noqa: BLE001 - the publisher is down: held lines are re-read on restart
                log.warning("tail: could not flush held lines at stop (%s)", exc)
            self.checkpoints.flush(force=True)
        finally:
            self.retry_publish, self._stop = False, None

    async def drain(self, idle_polls: int = 2) -> int:
        """Poll until nothing new arrives for ``idle_polls`` polls in a row."""
        total, idle = 0, 0
        while idle < idle_polls:
            n = await self.poll_once()
            total += n
            idle = idle + 1 if n == 0 else 0
            if n == 0:
                await asyncio.sleep(self.poll_interval)
        before = self.lines_published
        await self.flush_pending()
        self.checkpoints.flush(force=True)
        return total + self.lines_published - before

    def close(self) -> None:
        self.checkpoints.flush(force=True)
        for tf in self.files.values():
            tf.fh.close()
        self.files.clear()
