"""A live console served by the worker's own web server (Faust's aiohttp web).

``install_console(app, stats, es_url=..., kafka_bootstrap=...)`` registers two views:

* ``/console``: one self-contained HTML page (inline CSS and JS, no network beyond this
  worker) that fetches ``/console/data.json`` every 2 s and redraws itself;
* ``/console/data.json``: throughput per stage over the last minute, consumer lag per
  partition, the top templates of the last closed windows, the latest anomalies, dead-letter
  counts by stage and reason, and health.

Health is what the worker itself observed (``WorkerStats.elasticsearch_ok`` / ``kafka_ok`` /
lag without progress, see :meth:`WorkerStats.health`) combined with the console's own cheap
probes (HTTP ``GET /_cluster/health`` on Elasticsearch, a TCP connect to a Kafka bootstrap
server; at most one probe every ``probe_interval`` seconds, run in the background so a page
refresh never waits on a dead service). Anything not ok shows a red banner on the page; if
the worker stops answering, the page keeps the last numbers and says so.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import faust

from streams.ops.stats import WorkerStats

THROUGHPUT_WINDOW = 60.0  # seconds
REFRESH_MS = 2000
TOP_TEMPLATES = 15
LATEST_ANOMALIES = 20


def _public_url(url: str) -> str:
    """``url`` without credentials (never echo a password into a page)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


class Console:
    """The state behind the console views: throughput samples and probe results."""

    def __init__(self, stats: WorkerStats, *, es_url: str, kafka_bootstrap: str,
                 probe_interval: float | None = 5.0, probe_timeout: float = 2.0) -> None:
        self.stats = stats
        self.es_url = es_url.rstrip("/")
        self.kafka_bootstrap = kafka_bootstrap
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.samples: deque[tuple[float, dict[str, int], dict[str, int]]] = deque(maxlen=256)
        self.probes: dict[str, dict[str, Any]] = {}
        self._probe_task: asyncio.Task | None = None
        self._last_probe: float | None = None

    # -- throughput -------------------------------------------------------------------
    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.samples and now - self.samples[-1][0] < 0.5:
            return
        self.samples.append((now, dict(self.stats.lines_in), dict(self.stats.lines_out)))
        while len(self.samples) > 2 and now - self.samples[1][0] >= THROUGHPUT_WINDOW:
            self.samples.popleft()

    def throughput(self) -> list[dict[str, Any]]:
        s = self.stats
        stages = sorted(set(s.lines_in) | set(s.lines_out))
        first = self.samples[0] if self.samples else None
        last = self.samples[-1] if self.samples else None
        span = (last[0] - first[0]) if first and last else 0.0
        out = []
        for stage in stages:
            row: dict[str, Any] = {"stage": stage, "in": s.lines_in.get(stage, 0),
                                   "out": s.lines_out.get(stage, 0),
                                   "in_per_s": None, "out_per_s": None}
            if span >= 1.0:
                row["in_per_s"] = round((last[1].get(stage, 0) - first[1].get(stage, 0)) / span, 1)
                row["out_per_s"] = round((last[2].get(stage, 0) - first[2].get(stage, 0)) / span, 1)
            out.append(row)
        return out

    # -- probes -----------------------------------------------------------------------
    def maybe_probe(self) -> None:
        if self.probe_interval is None:
            return
        now = time.monotonic()
        if self._probe_task is not None and not self._probe_task.done():
            return
        if self._last_probe is not None and now - self._last_probe < self.probe_interval:
            return
        self._last_probe = now
        self._probe_task = asyncio.ensure_future(self.probe())

    async def probe(self) -> dict[str, dict[str, Any]]:
        es, kafka = await asyncio.gather(self._probe_es(), self._probe_kafka())
        self.probes = {"elasticsearch": es, "kafka": kafka}
        return self.probes

    async def _probe_es(self) -> dict[str, Any]:
        import aiohttp

        checked = time.time()
        try:
            timeout = aiohttp.ClientTimeout(total=self.probe_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                f"{self.es_url}/_cluster/health"
            ) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else {}
                if resp.status != 200:
                    return {"ok": False, "detail": f"HTTP {resp.status}", "checked": checked}
                status = body.get("status", "?")
                return {"ok": status != "red", "detail": f"cluster {status}", "checked": checked}
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:200] or "unreachable",
                    "checked": checked}

    async def _probe_kafka(self) -> dict[str, Any]:
        checked = time.time()
        errors = []
        for server in self.kafka_bootstrap.split(","):
            server = server.strip().removeprefix("kafka://")
            if not server:
                continue
            host, _, port = server.rpartition(":")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host or server, int(port or 9092)), self.probe_timeout
                )
                writer.close()
                return {"ok": True, "detail": f"{server} accepts connections", "checked": checked}
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{server}: {type(exc).__name__} {exc}".strip())
        return {"ok": False, "detail": "; ".join(errors)[:300] or "no bootstrap server",
                "checked": checked}

    # -- the data document ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        h = self.stats.health()
        reasons = list(h["reasons"])
        for name in ("elasticsearch", "kafka"):
            p = self.probes.get(name)
            if p and not p["ok"]:
                reason = f"{name} unreachable"
                reasons = [r for r in reasons if r != reason]
                reasons.append(f"{reason} ({p['detail']})")
        h["reasons"] = reasons
        h["status"] = "degraded" if reasons else "ok"
        h["elasticsearch"] = {
            "ok": self.stats.elasticsearch_ok and self.probes.get("elasticsearch", {}).get("ok", True),
            "worker_ok": self.stats.elasticsearch_ok, "url": _public_url(self.es_url),
            "probe": self.probes.get("elasticsearch"),
        }
        h["kafka"] = {
            "ok": self.stats.kafka_ok and self.probes.get("kafka", {}).get("ok", True),
            "worker_ok": self.stats.kafka_ok, "bootstrap": self.kafka_bootstrap,
            "probe": self.probes.get("kafka"),
        }
        return h

    def top_templates(self) -> dict[str, Any]:
        """Template counts summed over the recent closed windows of the finest window spec
        (summing overlapping hopping windows would count events twice)."""
        docs = [d for d in self.stats.recent_windows if isinstance(d, dict)]
        if not docs:
            return {"window": None, "windows": 0, "templates": []}

        def size(d: dict[str, Any]) -> float:
            return float((d.get("window") or {}).get("size_seconds") or 0)

        by_name: dict[str, list[dict[str, Any]]] = {}
        for d in docs:
            by_name.setdefault((d.get("window") or {}).get("name", "?"), []).append(d)
        name = min(by_name, key=lambda n: (size(by_name[n][0]), n))
        chosen = by_name[name]
        counts: Counter = Counter()
        texts: dict[str, str] = {}
        events = 0
        for d in chosen:
            events += int(d.get("count") or 0)
            for t in d.get("template_counts") or ():
                counts[t["id"]] += int(t.get("count") or 0)
                if t.get("template"):
                    texts.setdefault(t["id"], t["template"])
        starts = [(d.get("window") or {}).get("start") for d in chosen]
        ends = [(d.get("window") or {}).get("end") for d in chosen]
        return {
            "window": name,
            "windows": len(chosen),
            "events": events,
            "from": min((s for s in starts if s), default=None),
            "to": max((e for e in ends if e), default=None),
            "templates": [{"id": t, "count": c, "template": texts.get(t, "")}
                          for t, c in counts.most_common(TOP_TEMPLATES)],
        }

    def anomalies(self) -> list[dict[str, Any]]:
        out = []
        for d in list(self.stats.recent_anomalies)[::-1][:LATEST_ANOMALIES]:
            exp = d.get("explanation") or {}
            out.append({
                "time": d.get("@timestamp"),
                "window": d.get("window") or {},
                "key": d.get("key") or {},
                "detector": d.get("detector"),
                "score": d.get("score"),
                "threshold": d.get("threshold"),
                "severity": d.get("severity"),
                "model_version": (d.get("model") or {}).get("version"),
                "summary": exp.get("summary"),
                "items": (exp.get("items") or [])[:10],
            })
        return out

    def data(self) -> dict[str, Any]:
        s = self.stats
        self.sample()
        partitions = [
            {"topic": topic, "partition": part, "lag": ps.lag, "last_offset": ps.last_offset,
             "high_watermark": ps.high_watermark, "records_in": ps.records_in,
             "events_out": ps.events_out}
            for (topic, part), ps in sorted(s.partitions.items())
        ]
        dls = [{"stage": st, "reason": rs, "count": n} for (st, rs), n in s.dead_letters.most_common()]
        errors = [{"stage": st, "reason": rs, "count": n} for (st, rs), n in s.errors.most_common()]
        bulk = sorted(s.bulk_seconds)
        return {
            "now": time.time(),
            "pipeline": s.pipeline,
            "role": s.role,
            "health": self.health(),
            "throughput_window_seconds": round(self.samples[-1][0] - self.samples[0][0], 1)
            if self.samples else 0.0,
            "throughput": self.throughput(),
            "partitions": partitions,
            "total_lag": s.total_lag(),
            "windows": self.top_templates(),
            "anomalies": self.anomalies(),
            "anomalies_recent": len(s.recent_anomalies),
            "dead_letters": dls,
            "dead_letters_total": sum(s.dead_letters.values()),
            "errors": errors,
            "late_events": s.late_events,
            "model_versions": dict(s.model_versions),
            "bulk_p50_ms": round(bulk[len(bulk) // 2] * 1000, 1) if bulk else None,
            "bulk_p95_ms": round(bulk[int(len(bulk) * 0.95) if len(bulk) > 1 else 0] * 1000, 1)
            if bulk else None,
            "last_progress_seconds_ago": round(s.seconds_since_progress(), 1),
        }


def install_console(app: faust.App, stats: WorkerStats, *, es_url: str, kafka_bootstrap: str,
                    probe_interval: float | None = 5.0, sample_interval: float | None = 2.0,
                    ) -> Console:
    """Register ``/console`` and ``/console/data.json`` on ``app``'s web server.

    ``probe_interval=None`` turns the console's own Elasticsearch/Kafka probes off (health
    then comes from ``stats`` only); ``sample_interval`` adds a Faust timer sampling the
    throughput counters (None: sample on requests only). Returns the :class:`Console`.
    """
    console = Console(stats, es_url=es_url, kafka_bootstrap=kafka_bootstrap,
                      probe_interval=probe_interval)

    @app.page("/console", name="logriver_console")
    async def console_page(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return self.html(PAGE, headers={"Cache-Control": "no-store"})

    @app.page("/console/data.json", name="logriver_console_data")
    async def console_data(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        console.maybe_probe()
        return self.json(console.data(), headers={"Cache-Control": "no-store"})

    if sample_interval:
        @app.timer(interval=sample_interval, name="logriver_console_sampler")
        async def _sample() -> None:
            console.sample()

    app.logriver_console = console  # type: ignore[attr-defined]
    return console


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Logriver console</title>
<style>
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
h1{margin:0;font-size:18px}header .m{opacity:.8;font-size:12px}
#banner{display:none;background:#b00020;color:#fff;padding:10px 20px;font-weight:600}
#banner.show{display:block}#banner.stale{background:#8a6d3b}
main{padding:10px 20px;display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px;min-width:0;overflow-x:auto}
h2{font-size:15px;margin:4px 0 8px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{overflow-wrap:normal;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b00020;font-weight:600}header .ok{color:#7ee2a8}header .bad{color:#ff9e9e}.sub{color:#777;font-size:11px}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.bar{display:inline-block;height:8px;background:#1f77b4;vertical-align:middle;margin-left:6px}
.sev{white-space:nowrap;padding:0 6px;border-radius:8px;color:#fff;font-size:11px;background:#ff7f0e}.sev-critical{background:#7f0000}.sev-major{background:#d62728}
.empty{color:#777;font-style:italic}
</style></head>
<body>
<header><h1>Logriver console</h1>
<span class="m">pipeline <b id="pipeline" data-testid="pipeline">-</b></span>
<span class="m">health <b id="status" data-testid="health-status">-</b></span>
<span class="m">Elasticsearch <b id="es" data-testid="es-status">-</b></span>
<span class="m">Kafka <b id="kafka" data-testid="kafka-status">-</b></span>
<span class="m">total lag <b id="lag" data-testid="total-lag">-</b></span>
<span class="m">updated <span id="updated" data-testid="updated-at">never</span>
(<span id="refreshes" data-testid="refresh-count">0</span> refreshes)</span></header>
<div id="banner" data-testid="degraded-banner" role="alert"></div>
<main>
<section><h2>Throughput per stage <span class="sub" id="tpwin"></span></h2>
<table><thead><tr><th>stage</th><th>in (total)</th><th>out (total)</th><th>in/s</th><th>out/s</th></tr></thead>
<tbody id="throughput"></tbody></table></section>
<section><h2>Consumer lag per partition</h2>
<table><thead><tr><th>topic</th><th>partition</th><th>lag</th><th>offset</th><th>high watermark</th><th>records</th></tr></thead>
<tbody id="partitions"></tbody></table></section>
<section><h2>Top templates of the last windows <span class="sub" id="winfo"></span></h2>
<table><thead><tr><th>count</th><th>template</th></tr></thead><tbody id="templates"></tbody></table></section>
<section><h2>Latest anomalies</h2>
<table><thead><tr><th>time</th><th>key</th><th>detector</th><th>severity</th><th>score</th><th>explanation</th></tr></thead>
<tbody id="anomalies"></tbody></table></section>
<section><h2>Dead letters <span class="sub">total <b id="dltotal" data-testid="dead-letters-total">-</b></span></h2>
<table><thead><tr><th>stage</th><th>reason</th><th>count</th></tr></thead><tbody id="deadletters"></tbody></table></section>
</main>
<script>
(function(){
  "use strict";
  var url = location.pathname.replace(/\\/+$/, "") + "/data.json";
  var refreshes = 0, failures = 0;
  function $(id){ return document.getElementById(id); }
  function el(tag, text, cls, testid, value){
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    if (testid) e.setAttribute("data-testid", testid);
    if (value !== undefined) e.setAttribute("data-value", String(value));
    return e;
  }
  function fmt(n){ return (n === null || n === undefined) ? "-" : Number(n).toLocaleString("en-US"); }
  function row(cells){ var tr = el("tr"); cells.forEach(function(c){ tr.appendChild(c); }); return tr; }
  function fill(id, rows, cols, empty){
    var body = $(id); body.textContent = "";
    if (!rows.length) { var td = el("td", empty, "empty"); td.colSpan = cols; body.appendChild(row([td])); return; }
    rows.forEach(function(r){ body.appendChild(r); });
  }
  function setStatus(id, ok, text){ var e = $(id); e.textContent = text; e.className = ok ? "ok" : "bad"; }
  function banner(text, stale){
    var b = $("banner");
    if (text) { b.textContent = text; b.className = "show" + (stale ? " stale" : ""); }
    else { b.textContent = ""; b.className = ""; }
  }
  function render(d){
    $("pipeline").textContent = d.pipeline || "-";
    var h = d.health;
    setStatus("status", h.status === "ok", h.status);
    setStatus("es", h.elasticsearch.ok, h.elasticsearch.ok ? "ok" : "unreachable");
    setStatus("kafka", h.kafka.ok, h.kafka.ok ? "ok" : "unreachable");
    $("lag").textContent = fmt(d.total_lag); $("lag").setAttribute("data-value", d.total_lag);
    banner(h.status === "ok" ? "" : "Degraded: " + h.reasons.join("; "), false);
    $("tpwin").textContent = "(rates over the last " + Math.round(d.throughput_window_seconds) + " s)";
    fill("throughput", d.throughput.map(function(t){
      return row([el("td", t.stage), el("td", fmt(t.in), "n", "stage-in-" + t.stage, t.in),
                  el("td", fmt(t.out), "n", "stage-out-" + t.stage, t.out),
                  el("td", t.in_per_s === null ? "-" : t.in_per_s, "n", "stage-rate-" + t.stage, t.in_per_s),
                  el("td", t.out_per_s === null ? "-" : t.out_per_s, "n")]);
    }), 5, "nothing processed yet");
    fill("partitions", d.partitions.map(function(p){
      return row([el("td", p.topic), el("td", p.partition, "n"),
                  el("td", fmt(p.lag), "n", "lag-" + p.topic + "-" + p.partition, p.lag === null ? "" : p.lag),
                  el("td", fmt(p.last_offset), "n"), el("td", fmt(p.high_watermark), "n"), el("td", fmt(p.records_in), "n")]);
    }), 6, "no partition assigned yet");
    var w = d.windows;
    $("winfo").textContent = w.window ? "(" + w.windows + " windows of " + w.window + ", " + (w.from || "") + " to " + (w.to || "") + ")" : "";
    var max = w.templates.length ? w.templates[0].count : 1;
    fill("templates", w.templates.map(function(t){
      var c = el("td", fmt(t.count), "n", "console-template-count", t.count);
      var b = el("span", null, "bar"); b.style.width = Math.max(1, Math.round(80 * t.count / max)) + "px"; c.appendChild(b);
      var txt = el("td"); txt.appendChild(el("code", t.template || t.id)); txt.appendChild(el("div", t.id, "sub"));
      var tr = row([c, txt]); tr.setAttribute("data-testid", "console-template-row"); return tr;
    }), 2, "no closed window yet");
    fill("anomalies", d.anomalies.map(function(a){
      var key = Object.keys(a.key).map(function(k){ return k + "=" + a.key[k]; }).join(", ") || "(all)";
      var ex = el("td", a.summary);
      a.items.forEach(function(it){ ex.appendChild(el("div", it.name + ": expected " + it.expected + ", observed " + it.observed, "sub")); });
      var sev = el("td"); sev.appendChild(el("span", a.severity, "sev sev-" + a.severity));
      var tr = row([el("td", a.time), el("td", key), el("td", a.detector + " " + (a.model_version || "")), sev,
                    el("td", a.score + " / " + a.threshold, "n"), ex]);
      tr.setAttribute("data-testid", "console-anomaly-row"); return tr;
    }), 6, "no anomaly");
    $("dltotal").textContent = fmt(d.dead_letters_total); $("dltotal").setAttribute("data-value", d.dead_letters_total);
    fill("deadletters", d.dead_letters.map(function(x){
      return row([el("td", x.stage), el("td", x.reason), el("td", fmt(x.count), "n", "dl-count-" + x.stage + ":" + x.reason, x.count)]);
    }), 3, "no dead letter");
  }
  function tick(){
    fetch(url, {cache: "no-store"}).then(function(r){
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function(d){
      failures = 0; refreshes++;
      render(d);
      $("refreshes").textContent = refreshes;
      $("updated").textContent = new Date(d.now * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
    }).catch(function(err){
      failures++;
      banner("Console data unavailable (" + err.message + "): the worker may be down; showing the last numbers.", true);
    }).then(function(){ setTimeout(tick, """ + str(REFRESH_MS) + """); });
  }
  tick();
})();
</script>
</body></html>
"""
