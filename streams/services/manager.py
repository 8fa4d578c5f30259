"""``up`` / ``status`` / ``down``: fetch, start, wait for, report and stop the local services."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import (
    SERVICES,
    Progress,
    ServiceError,
    ServiceStatus,
    Settings,
    check_ports_free,
    file_size,
    find_java,
    find_mvn,
    owns,
    pids_with_marker,
    read_state,
    remove_state,
    stderr_progress,
    tail,
    terminate,
    write_state,
)
from .elasticsearch import Elasticsearch
from .kafka import Kafka

Service = Kafka | Elasticsearch
TAIL_LINES = 20


def _services(settings: Settings, names: Iterable[str] = SERVICES) -> list[Service]:
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}: choose from {', '.join(SERVICES)}")
    classes = {"kafka": Kafka, "elasticsearch": Elasticsearch}
    return [classes[n](settings) for n in names]


def _settings(home: str | Path | None, **overrides: Any) -> Settings:
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(home=Path(home), **given) if home is not None else Settings(**given)


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialize up/down on one home (two shells, parallel test workers)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        settings.home.chmod(0o755)
    with open(settings.home / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _running_pid(svc: Service) -> tuple[dict[str, Any] | None, int | None]:
    """The recorded state and, when its process is still ours and alive, its pid."""
    state = read_state(svc.run_dir)
    pid = state.get("pid") if state else None
    return state, (pid if owns(pid, svc.marker) else None)


def _status(
    svc: Service, state: dict[str, Any] | None, pid: int | None, detail: str
) -> ServiceStatus:
    state = state or {}
    return ServiceStatus(
        name=svc.name,
        running=pid is not None,
        pid=pid,
        address=state.get("address", svc.address) if pid else svc.address,
        version=state.get("version", svc.version),
        home=str(svc.run_dir),
        logfile=str(svc.logfile),
        detail=detail,
    )


def _log_marks(svc: Service) -> dict[str, int]:
    """Current sizes of the service's log files, so errors quote only what this start wrote."""
    return {str(p): file_size(p) for p in (svc.logfile, svc.outfile)}


def _log_excerpt(svc: Service, marks: dict[str, int]) -> str:
    """The last lines of the service's log and of its console capture, for error messages."""
    parts = []
    for path in (svc.logfile, svc.outfile):
        lines = tail(path, TAIL_LINES, start=marks.get(str(path), 0))
        if lines:
            parts.append(f"last {len(lines)} lines of {path}:\n  " + "\n  ".join(lines))
    return "\n".join(parts) or f"(nothing logged yet in {svc.logfile})"


def up(
    services: Iterable[str] = SERVICES,
    *,
    home: str | Path | None = None,
    progress: Progress = stderr_progress,
    timeout: float = 180.0,
    kafka_port: int | None = None,
    es_port: int | None = None,
    kafka_heap: str | None = None,
    es_heap: str | None = None,
) -> dict[str, ServiceStatus]:
    """Fetch what is missing, start what is not running, wait until every service answers.

    Already running services are left alone and reported. ``timeout`` bounds the wait for
    the services to answer (downloads come first and are not counted). On failure the services
    that this call started and that did not come up are stopped, and ServiceError quotes the
    last lines they logged.
    """
    settings = _settings(
        home, kafka_port=kafka_port, es_port=es_port, kafka_heap=kafka_heap, es_heap=es_heap
    )
    wanted = _services(settings, services)
    with _locked(settings):
        started: dict[str, subprocess.Popen] = {}
        marks: dict[str, dict[str, int]] = {}
        to_start: list[Service] = []
        for svc in wanted:
            state, pid = _running_pid(svc)
            if pid is not None and state:
                note = "" if state["address"] == svc.address else f" (not {svc.address}: kept)"
                progress(f"{svc.name} already running (pid {pid}) at {state['address']}{note}")
            else:
                remove_state(svc.run_dir)
                to_start.append(svc)
        if to_start:
            java = find_java()
            for svc in to_start:
                orphans = pids_with_marker(svc.marker)
                if orphans:
                    raise ServiceError(
                        f"{svc.name} processes {orphans} of an earlier start still run without a "
                        "pid file: run `logriver services down` first"
                    )
                check_ports_free(svc.name, svc.ports(), svc.env_hint)
            missing = [s for s in to_start if not s.fetched()]
            if missing:
                mvn = find_mvn()
                for svc in missing:
                    progress(
                        f"fetching {svc.name} {svc.version} from Maven Central into {svc.dist}"
                    )
                    t0 = time.monotonic()
                    svc.fetch(mvn)
                    progress(f"fetched {svc.name} in {time.monotonic() - t0:.1f} s")
            try:
                for svc in to_start:
                    svc.prepare(java)
                    marks[svc.name] = _log_marks(svc)
                    proc = svc.start(java)
                    started[svc.name] = proc
                    write_state(
                        svc.run_dir,
                        {
                            "pid": proc.pid,
                            "pgid": proc.pid,
                            "address": svc.address,
                            "version": svc.version,
                            "marker": svc.marker,
                            "logfile": str(svc.logfile),
                            "ports": svc.ports(),
                            "started": time.time(),
                        },
                    )
                    progress(f"started {svc.name} (pid {proc.pid}), log {svc.logfile}")
            except BaseException:
                _stop_started(wanted, started)
                raise
        return _wait_all(wanted, started, marks, timeout, progress)


def _wait_all(
    waiting: list[Service],
    started: dict[str, subprocess.Popen],
    marks: dict[str, dict[str, int]],
    timeout: float,
    progress: Progress,
) -> dict[str, ServiceStatus]:
    """Wait for every service in parallel; stop the ones we started that failed."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    results: dict[str, ServiceStatus] = {}
    errors: list[str] = []
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(waiting))) as pool:
        futures = {
            pool.submit(
                _wait_one, s, started.get(s.name), marks.get(s.name, {}), deadline, timeout, cancel
            ): s
            for s in waiting
        }
        try:
            for future in as_completed(futures):
                svc = futures[future]
                try:
                    detail = future.result()
                except ServiceError as exc:
                    errors.append(str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - a probe bug must not leave half-started services
                    errors.append(f"{svc.name}: unexpected error while waiting: {exc!r}")
                    continue
                state, pid = _running_pid(svc)
                results[svc.name] = _status(svc, state, pid, detail)
                if svc.name in started:
                    progress(
                        f"{svc.name} ready at {svc.address} after "
                        f"{time.monotonic() - t0:.1f} s ({detail})"
                    )
        except BaseException:  # Ctrl-C: stop what this call started, then re-raise
            cancel.set()
            _stop_started(waiting, started)
            raise
    failed = [s for s in waiting if s.name not in results]
    if failed:
        _stop_started(failed, started)
        raise ServiceError("\n".join(errors))
    return {s.name: results[s.name] for s in waiting}


def _wait_one(
    svc: Service,
    proc: subprocess.Popen | None,
    marks: dict[str, int],
    deadline: float,
    timeout: float,
    cancel: threading.Event,
) -> str:
    """Poll until ``svc`` answers; raise ServiceError (with its log tail) when it dies or times out."""
    while not cancel.is_set():
        if proc is not None and proc.poll() is not None:
            raise ServiceError(
                f"{svc.name} exited with code {proc.returncode} while starting\n{_log_excerpt(svc, marks)}"
            )
        if proc is None and _running_pid(svc)[1] is None:
            raise ServiceError(
                f"{svc.name} stopped while waiting for it\n{_log_excerpt(svc, marks)}"
            )
        left = deadline - time.monotonic()
        detail = svc.probe(timeout=max(0.5, min(5.0, left)))
        if detail:
            return detail
        if time.monotonic() >= deadline:
            raise ServiceError(
                f"{svc.name} did not answer at {svc.address} within {timeout:.0f} s "
                f"(raise the timeout or check the log)\n{_log_excerpt(svc, marks)}"
            )
        cancel.wait(0.5)
    raise ServiceError(f"{svc.name}: start cancelled")


def _stop_started(services: list[Service], started: dict[str, subprocess.Popen]) -> None:
    for svc in services:
        proc = started.get(svc.name)
        if proc is not None:
            terminate(pids_with_marker(svc.marker) + [proc.pid], proc.pid, timeout=20)
            proc.poll()
            remove_state(svc.run_dir)


def status(home: str | Path | None = None, *, probe: bool = True) -> dict[str, ServiceStatus]:
    """Report both services: running (pid verified against our config path) and, with
    ``probe``, whether they answer. Read-only: stale pid files are reported, not removed."""
    settings = _settings(home)
    result = {}
    for svc in _services(settings):
        state, pid = _running_pid(svc)
        if pid is None:
            detail = "stale pid file (process gone)" if state else "stopped"
        elif probe:
            detail = svc.probe(timeout=2.0) or "running, not answering (yet)"
        else:
            detail = "running"
        result[svc.name] = _status(svc, state if pid else None, pid, detail)
    return result


def down(
    home: str | Path | None = None, timeout: float = 60, *, progress: Progress = stderr_progress
) -> None:
    """Stop both services: SIGTERM their process groups, SIGKILL after ``timeout`` seconds,
    sweep any process still carrying our config path, remove the pid files."""
    settings = _settings(home)
    with _locked(settings):
        for svc in _services(settings):
            state, pid = _running_pid(svc)
            pids = pids_with_marker(svc.marker)
            if pid is not None:
                pids.append(pid)
            if pids:
                progress(f"stopping {svc.name} (pid {', '.join(map(str, sorted(set(pids))))})")
                t0 = time.monotonic()
                killed = terminate(
                    sorted(set(pids)), state.get("pgid") if pid and state else None, timeout
                )
                how = f"killed {killed} after {timeout:.0f} s" if killed else "stopped"
                progress(f"{svc.name} {how} in {time.monotonic() - t0:.1f} s")
            elif state:
                progress(f"{svc.name} was not running; removed stale pid file")
            remove_state(svc.run_dir)


def kafka_bootstrap(home: str | Path | None = None) -> str:
    """``host:port`` of the local Kafka: where it runs, else where ``up`` would start it."""
    svc = Kafka(_settings(home))
    state, pid = _running_pid(svc)
    return state["address"] if pid and state else svc.address


def elasticsearch_url(home: str | Path | None = None) -> str:
    """``http://host:port`` of the local Elasticsearch: where it runs, else where ``up`` would
    start it."""
    svc = Elasticsearch(_settings(home))
    state, pid = _running_pid(svc)
    return state["address"] if pid and state else svc.address
