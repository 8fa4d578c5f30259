"""Render a :class:`~streams.views.report.collector.ReportCollector` as ONE self-contained HTML file.

Everything is inline: CSS, a small script (template table pagination and filtering) and SVG
charts drawn here in Python from the already aggregated buckets (at most ``max_buckets``
bars per chart whatever the input size). No network access is needed to open the file.

Numbers tests read carry a stable ``data-testid`` (see ``TESTIDS`` in tests/browser).
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.views.report.collector import OTHER, ReportCollector, TemplateStat, iso

LEVEL_ORDER = ("fatal", "critical", "error", "warn", "warning", "notice", "info", "debug", "trace")
LEVEL_COLORS = {
    "fatal": "#7f0000", "critical": "#7f0000", "error": "#d62728", "warn": "#ff7f0e",
    "warning": "#ff7f0e", "notice": "#17becf", "info": "#1f77b4", "debug": "#7f7f7f",
    "trace": "#c7c7c7", "-": "#bcbd22",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
SEVERITY_COLORS = {"critical": "#7f0000", "major": "#d62728", "minor": "#ff7f0e"}
TOP_SERVICES = 8
W, H = 1000, 220  # chart viewBox
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 10, 28


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")  # narrow no-break space; data-value holds the raw


def _num(testid: str, value: Any, text: str | None = None) -> str:
    """A number with a stable test id; ``data-value`` holds the raw value."""
    shown = text if text is not None else (fmt_int(value) if isinstance(value, int) else str(value))
    return f'<span data-testid="{esc(testid)}" data-value="{esc(value)}">{esc(shown)}</span>'


def _fmt_time(epoch: float, span: float) -> str:
    dt = datetime.fromtimestamp(epoch, UTC)
    if span <= 2 * 86400:
        return dt.strftime("%H:%M:%S") if span < 3600 else dt.strftime("%H:%M")
    return dt.strftime("%m-%d %H:%M")


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _axes(t0: float, t1: float, ymax: float, ylabel: str) -> list[str]:
    parts = []
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    for i in range(5):
        y = PAD_T + ph - ph * i / 4
        val = ymax * i / 4
        label = fmt_int(int(val)) if val == int(val) else f"{val:.1f}"
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">{esc(label)}</text>')
    span = max(t1 - t0, 1)
    for i in range(7):
        t = t0 + span * i / 6
        x = PAD_L + pw * i / 6
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T + ph}" y2="{PAD_T + ph + 4}" class="tick"/>')
        anchor = "start" if i == 0 else "end" if i == 6 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{H - 8}" class="ax" text-anchor="{anchor}">{esc(_fmt_time(t, span))}</text>')
    parts.append(f'<text x="12" y="{PAD_T + ph / 2:.1f}" class="ax" transform="rotate(-90 12 {PAD_T + ph / 2:.1f})" text-anchor="middle">{esc(ylabel)}</text>')
    return parts


def stacked_bars(
    testid: str, buckets: list[tuple[int, dict[str, int]]], bucket_seconds: int,
    series: list[str], colors: dict[str, str], ylabel: str,
) -> str:
    """A stacked bar chart over time; ``buckets`` = [(start, {series: count})]."""
    if not buckets:
        return f'<p class="empty" data-testid="{esc(testid)}-empty">No timestamped events.</p>'
    t0 = buckets[0][0]
    t1 = buckets[-1][0] + bucket_seconds
    ymax = _nice_max(max((sum(c.values()) for _, c in buckets), default=1))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    bw = pw / len(buckets)
    parts = [(f'<svg data-testid="{esc(testid)}" viewBox="0 0 {W} {H}" class="chart" role="img" '
              f'aria-label="{esc(ylabel)}">')]
    parts += _axes(t0, t1, ymax, ylabel)
    for i, (start, counts) in enumerate(buckets):
        total = sum(counts.values())
        if not total:
            continue
        x = PAD_L + i * bw
        y = PAD_T + ph
        tip = [f"{iso(start)} (+{_duration(bucket_seconds)}): {total}"]
        rects = []
        for s in series:
            c = counts.get(s, 0)
            if not c:
                continue
            h = ph * c / ymax
            y -= h
            rects.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bw - 0.6, 0.6):.2f}" '
                         f'height="{h:.2f}" fill="{colors.get(s, "#999")}"/>')
            tip.append(f"{s}: {c}")
        parts.append(f'<g class="bar"><title>{esc(chr(10).join(tip))}</title>{"".join(rects)}</g>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="lg"><i style="background:{colors.get(s, "#999")}"></i>{esc(s)}</span>'
        for s in series
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _level_series(c: ReportCollector) -> list[str]:
    known = [lv for lv in LEVEL_ORDER if lv in c.by_level]
    rest = sorted(lv for lv in c.by_level if lv not in LEVEL_ORDER)
    return known + rest


def _level_colors(levels: list[str]) -> dict[str, str]:
    out, extra = {}, iter(PALETTE[4:])
    for lv in levels:
        out[lv] = LEVEL_COLORS.get(lv) or next(extra, "#999")
    return out


def _service_chart(c: ReportCollector, timeline: list) -> str:
    top = [s for s, _ in c.by_service.most_common() if s != OTHER][:TOP_SERVICES]
    topset = set(top)
    rows = []
    has_other = False
    for start, b in timeline:
        counts = {s: b.services.get(s, 0) for s in top}
        other = sum(n for s, n in b.services.items() if s not in topset)
        if other:
            counts[OTHER] = other
            has_other = True
        rows.append((start, counts))
    series = top + ([OTHER] if has_other else [])
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(top)}
    colors[OTHER] = "#c7c7c7"
    return stacked_bars("chart-services", rows, c.bucket_seconds, series, colors, "events")


def _anomaly_timeline(c: ReportCollector, docs: list[dict[str, Any]], t0: float | None,
                      t1: float | None) -> str:
    if not docs:
        return '<p class="empty" data-testid="chart-anomalies-empty">No anomalies.</p>'
    from streams.views.report.collector import epoch_seconds

    times = [epoch_seconds(d.get("@timestamp") or (d.get("window") or {}).get("start")) for d in docs]
    known = [t for t in times if t is not None]
    lo = min([*known, *( [t0] if t0 is not None else [])], default=0)
    hi = max([*known, *( [t1] if t1 is not None else [])], default=lo + 1)
    hi = max(hi, lo + 1)
    detectors = sorted({_subject(d) for d in docs})
    lane_h = 26
    h = PAD_T + PAD_B + lane_h * len(detectors)
    pw = W - PAD_L - PAD_R - 60
    left = PAD_L + 60
    parts = [(f'<svg data-testid="chart-anomalies" viewBox="0 0 {W} {h}" class="chart" role="img" '
              'aria-label="anomalies over time">')]
    for i, det in enumerate(detectors):
        y = PAD_T + lane_h * i + lane_h / 2
        parts.append(f'<line x1="{left}" x2="{W - PAD_R}" y1="{y}" y2="{y}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4}" class="ax" text-anchor="end">{esc(det[:18])}</text>')
    span = hi - lo
    for i in range(7):
        t = lo + span * i / 6
        x = left + pw * i / 6
        anchor = "start" if i == 0 else "end" if i == 6 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{h - 8}" class="ax" text-anchor="{anchor}">{esc(_fmt_time(t, span))}</text>')
    for idx, (d, t) in enumerate(zip(docs, times)):
        if t is None:
            continue
        det = _subject(d)
        y = PAD_T + lane_h * detectors.index(det) + lane_h / 2
        x = left + pw * (t - lo) / span
        sev = str(d.get("severity") or "minor")
        r = {"critical": 7, "major": 5.5}.get(sev, 4)
        summary = (d.get("explanation") or {}).get("summary") or ""
        tip = f"{d.get('@timestamp')} {det} {sev} score={d.get('score')}: {summary}"
        parts.append(f'<a href="#anomaly-{idx}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" '
                     f'fill="{SEVERITY_COLORS.get(sev, "#999")}" fill-opacity="0.8">'
                     f'<title>{esc(tip)}</title></circle></a>')
    parts.append("</svg>")
    legend = "".join(f'<span class="lg"><i style="background:{col}"></i>{s}</span>'
                     for s, col in SEVERITY_COLORS.items())
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _subject(d: dict[str, Any]) -> str:
    """What an alert is about: its service (else its key), the timeline's lane."""
    service = (d.get("service") or {}).get("name")
    if service:
        return str(service)
    return _key_text(d.get("key") or {})


def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((key or {}).items())) or "(all)"


def _influencer_table(d: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td>{esc(it.get("field"))}</td>'
        f'<td>{esc(it.get("template") or it.get("value"))}</td>'
        f'<td class="n">{esc(it.get("expected"))}</td><td class="n">{esc(it.get("observed"))}</td></tr>'
        for it in (d.get("influencers") or [])[:20])
    if not rows:
        exp = d.get("explanation") or {}
        rows = "".join(
            f'<tr><td>driver</td><td>{esc(it.get("template") or it.get("name"))}</td>'
            f'<td class="n">{esc(it.get("expected"))}</td><td class="n">{esc(it.get("observed"))}</td></tr>'
            for it in (exp.get("items") or [])[:20])
    if not rows:
        return ""
    return ('<table class="inner" data-testid="influencers"><tr><th>what moved</th><th>value</th>'
            f'<th>expected</th><th>observed</th></tr>{rows}</table>')


def _anomaly_table(docs: list[dict[str, Any]]) -> str:
    if not docs:
        return ""
    rows = []
    for idx, d in enumerate(docs):
        win = d.get("window") or {}
        alert = d.get("alert") or {}
        exp = d.get("explanation") or {}
        sev = str(d.get("severity") or "")
        span = (f'{esc(alert.get("start"))} → {esc(alert.get("end"))} · {esc(alert.get("status"))}'
                f' · {esc(alert.get("windows"))} window(s)') if alert else \
            f'{esc(win.get("start"))} → {esc(win.get("end"))}'
        detectors = ", ".join(d.get("detectors") or [str(d.get("detector"))])
        rows.append(
            f'<tr id="anomaly-{idx}" data-testid="anomaly-row">'
            f'<td>{esc(d.get("@timestamp"))}<div class="sub">{span}</div></td>'
            f'<td data-testid="anomaly-service">{esc(_subject(d))}'
            f'<div class="sub">{esc(_key_text(d.get("key") or {}))}</div></td>'
            f'<td>{esc(detectors)}<div class="sub">{esc((d.get("model") or {}).get("version"))}</div></td>'
            f'<td><span class="sev sev-{esc(sev)}">{esc(sev)}</span></td>'
            f'<td class="n">{esc(d.get("score"))}</td><td class="n">{esc(d.get("threshold"))}</td>'
            f'<td>{esc(exp.get("summary"))}{_influencer_table(d)}</td></tr>'
        )
    return ('<table class="data"><thead><tr><th>start / span</th><th>service</th><th>detectors / model</th>'
            '<th>severity</th><th>score</th><th>threshold</th><th>explanation, what moved</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _template_row(rank: int, s: TemplateStat, total: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": s.id,
        "template": s.template if len(s.template) <= 400 else s.template[:399] + "…",
        "count": s.count,
        "share": round(100.0 * s.count / total, 2) if total else 0.0,
        "levels": dict(s.levels.most_common()),
        "services": dict(s.services.most_common(5)),
        "first": iso(s.first_seen) if s.first_seen is not None else None,
        "last": iso(s.last_seen) if s.last_seen is not None else None,
        "new_at": iso(s.new_at) if s.new_at is not None else None,
        "examples": s.examples,
        "params": [
            {"values": dict(vals.most_common()), "other": s.params_other[i]}
            for i, vals in enumerate(s.params)
        ],
    }


def _json_for_script(value: Any) -> str:
    """JSON safe inside <script type="application/json">."""
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(collector: ReportCollector, *, max_template_rows: int = 5000,
                page_size: int = 50) -> str:
    """The report as one self-contained HTML document."""
    c = collector
    totals = c.totals()
    timeline = c.timeline()
    levels = _level_series(c)
    level_colors = _level_colors(levels)
    level_rows = [(start, dict(b.levels)) for start, b in timeline]
    new_rows = [(start, {"new templates": b.new_templates}) for start, b in timeline]
    t0 = timeline[0][0] if timeline else None
    t1 = timeline[-1][0] + c.bucket_seconds if timeline else None
    anomalies = c.anomalies()

    ranked = c.top_templates()
    shown = ranked[:max_template_rows]
    template_rows = [_template_row(i + 1, s, c.events_with_template) for i, s in enumerate(shown)]
    hidden_templates = len(ranked) - len(shown)
    hidden_events = sum(s.count for s in ranked[len(shown):]) + c.other_template_events
    notes = []
    if hidden_templates or c.other_template_events:
        notes.append(
            f"Showing the top {len(shown):,} of {c.distinct_templates:,} templates; "
            f"{hidden_events:,} events belong to the templates not listed"
            + (f" (past the collector's cap of {c.max_templates:,} templates, counted together)"
               if c.other_template_events else "") + "."
        )

    run = c.run
    meta = []
    for label, key in (("source", "source"), ("pipeline", "pipeline"), ("lines", "lines"),
                       ("seconds", "seconds"), ("template changes", "template_changes")):
        if key in run:
            val = run[key]
            meta.append(f'<span>{esc(label)}: <b>'
                        f'{_num("run-" + key.replace("_", "-"), val) if key != "source" else esc(val)}'
                        f'</b></span>')
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    kpis = [
        ("events", "total-events", totals["events"]),
        ("dead letters", "total-dead-letters", totals["dead_letters"]),
        ("distinct templates", "distinct-templates", totals["distinct_templates"]),
        ("new templates", "new-templates", totals["new_templates"]),
        ("anomalies", "total-anomalies", totals["anomalies"]),
    ]
    kpi_html = "".join(
        f'<div class="kpi"><div class="kv">{_num(tid, val)}</div><div class="kl">{esc(label)}</div></div>'
        for label, tid, val in kpis
    )
    span_html = (
        f'{esc(totals["first_event"])} → {esc(totals["last_event"])}, buckets of '
        f'{_num("bucket-seconds", c.bucket_seconds, _duration(c.bucket_seconds))} '
        f'({_num("bucket-count", len(timeline))} buckets)'
        if timeline else "no timestamped events"
    )
    if c.events_without_time:
        span_html += f'; {_num("events-without-time", c.events_without_time)} events without a usable timestamp'

    def count_table(testprefix: str, counts: dict[str, int], label: str,
                    colors: dict[str, str] | None = None, limit: int = 50) -> str:
        total = sum(counts.values()) or 1
        items = list(counts.items())
        rows = "".join(
            f'<tr><td>{"<i class=sw style=background:" + colors[k] + "></i>" if colors and k in colors else ""}'
            f'{esc(k)}</td><td class="n">{_num(f"{testprefix}-{k}", v)}</td>'
            f'<td class="n">{100.0 * v / total:.1f}%</td></tr>'
            for k, v in items[:limit]
        )
        rest = items[limit:]
        more = (f'<tr><td colspan="3" class="note">{len(rest):,} more with '
                f'{sum(v for _, v in rest):,} events</td></tr>' if rest else "")
        return (f'<table class="data small"><thead><tr><th>{esc(label)}</th><th>events</th><th>share</th>'
                f'</tr></thead><tbody>{rows}{more}</tbody></table>')

    dl_rows = []
    for key, n in c.dead_letter_reasons.most_common():
        stage, _, reason = key.partition(":")
        ex = "".join(
            f'<div class="ex"><div><b>{esc(e.get("time"))}</b>'
            f'{" step " + esc(e["step"]) if e.get("step") else ""}'
            f'{" event " + esc(e["event_id"]) if e.get("event_id") else ""}</div>'
            f'<div>{esc(e.get("detail"))}</div>'
            f'<pre>{esc(e.get("original"))}</pre></div>'
            for e in c.dead_letter_examples.get(key, [])
        )
        dl_rows.append(
            f'<tr data-testid="dead-letter-row"><td>{esc(stage)}</td><td>{esc(reason)}</td>'
            f'<td class="n">{_num("dead-letter-count-" + key, n)}</td>'
            f'<td><details><summary>{len(c.dead_letter_examples.get(key, []))} examples</summary>{ex}</details></td></tr>'
        )
    dl_html = (
        '<table class="data"><thead><tr><th>stage</th><th>reason</th><th>count</th><th>examples (detail, original)</th>'
        f'</tr></thead><tbody>{"".join(dl_rows)}</tbody></table>'
        if dl_rows else '<p class="empty" data-testid="dead-letters-empty">No dead letters.</p>'
    )

    anomaly_note = ""
    if c.anomalies_dropped:
        anomaly_note = (f'<p class="note">Showing the {len(anomalies):,} most severe of '
                        f'{c.anomalies_total:,} anomalies.</p>')
    sev_counts = ", ".join(f'{esc(s)} {_num("anomalies-" + s, n)}'
                           for s, n in c.anomalies_by_severity.most_common())
    new_templates_list = sorted((s for s in ranked if s.new_at is not None), key=lambda s: (s.new_at, s.id))
    new_list_rows = "".join(
        f'<tr><td>{esc(iso(s.new_at))}</td><td class="n">{fmt_int(s.count)}</td>'
        f'<td><code>{esc(s.template[:400])}</code></td></tr>'
        for s in new_templates_list[:200]
    )
    new_more = (f'<p class="note">First 200 of {len(new_templates_list):,} new templates.</p>'
                if len(new_templates_list) > 200 else "")

    data = {"templates": template_rows, "pageSize": page_size, "totalTemplates": c.distinct_templates}

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(c.title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{esc(c.title)}</h1><div class="meta">{" · ".join(meta)} · generated {esc(generated)}</div></header>
<main>
<section id="summary"><div class="kpis">{kpi_html}</div>
<p class="span" data-testid="time-span">{span_html}</p></section>

<section id="volume"><h2>Volume over time by level</h2>
{stacked_bars("chart-levels", level_rows, c.bucket_seconds, levels, level_colors, "events")}
<div class="cols"><div>{count_table("level-count", dict(c.by_level.most_common()), "level", level_colors)}</div>
<div>{count_table("service-count", dict(c.by_service.most_common()), "service", limit=15)}</div></div>
<h2>Volume over time by service</h2>
<p class="sub">service = service.name, else kubernetes.container.name, else kubernetes.namespace</p>
{_service_chart(c, timeline)}
</section>

<section id="templates"><h2>Templates ranked by count</h2>
<p>{_num("template-total", c.distinct_templates)} distinct templates over {_num("events-with-template", c.events_with_template)} templated events.</p>
{"".join(f'<p class="note" data-testid="templates-note">{esc(n)}</p>' for n in notes)}
<div class="tools"><input id="tfilter" type="search" placeholder="filter templates (text or id)" aria-label="filter templates">
<button id="tprev" type="button">‹ prev</button><span id="tpage" data-testid="template-page"></span>
<button id="tnext" type="button">next ›</button></div>
<table class="data" id="ttable"><thead><tr><th>#</th><th>count</th><th>share</th><th>template</th><th>levels</th><th>services</th><th>first / last seen</th></tr></thead>
<tbody id="tbody"><tr><td colspan="7" class="note">The template table needs JavaScript.</td></tr></tbody></table>
</section>

<section id="new-templates"><h2>New templates over time</h2>
{stacked_bars("chart-new-templates", new_rows, c.bucket_seconds, ["new templates"], {"new templates": "#2ca02c"}, "new templates")}
<details><summary>{fmt_int(len(new_templates_list))} templates first created in this run</summary>
<table class="data small"><thead><tr><th>created</th><th>events</th><th>template</th></tr></thead><tbody>{new_list_rows}</tbody></table>{new_more}</details>
</section>

<section id="anomalies"><h2>Anomalies</h2>
<p>{_num("anomaly-total", c.anomalies_total)} anomalies{": " + sev_counts if sev_counts else ""}.</p>
{anomaly_note}
{_anomaly_timeline(c, anomalies, t0, t1)}
{_anomaly_table(anomalies)}
</section>

<section id="dead-letters"><h2>Dead letters</h2>
<p>{_num("dead-letter-total", c.dead_letters)} dead letters.</p>
{dl_html}
</section>
</main>
<script type="application/json" id="report-data">{_json_for_script(data)}</script>
<script>{JS}</script>
</body></html>
"""


CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:14px 24px}h1{margin:0;font-size:20px}.meta{opacity:.8;font-size:12px;margin-top:4px}
.meta span{margin-right:4px}main{padding:12px 24px;max-width:1400px;margin:auto}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;margin:12px 0}
h2{font-size:16px;margin:6px 0 10px}.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #e1e4e8;border-radius:6px;padding:8px 14px;min-width:140px}.kv{font-size:22px;font-weight:600}.kl{color:#666;font-size:12px}
.chart{width:100%;height:auto;display:block}.chart .grid{stroke:#eee}.chart .tick{stroke:#999}.chart .ax{font-size:11px;fill:#666}
.chart .bar:hover rect{opacity:.75}.legend{font-size:12px;margin:4px 0 10px}.lg{margin-right:12px;white-space:nowrap}
.lg i,.sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px;vertical-align:middle}
table.data{border-collapse:collapse;width:100%;font-size:13px}table.data th,table.data td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
table.data th{background:#fafbfc}table.data td{overflow-wrap:anywhere}
#ttable td:last-child{white-space:pre}table.small{width:auto;min-width:320px}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cols{display:flex;gap:24px;flex-wrap:wrap}.note{color:#8a6d3b;background:#fcf8e3;padding:4px 8px;border-radius:4px}
.sub{color:#777;font-size:11px}.empty{color:#777;font-style:italic}code,pre{font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
pre{background:#f6f8fa;padding:4px 6px;margin:2px 0}.ex{border-left:3px solid #ddd;padding-left:6px;margin:4px 0}
.sev{padding:1px 6px;border-radius:8px;color:#fff;font-size:11px}.sev-critical{background:#7f0000}.sev-major{background:#d62728}.sev-minor{background:#ff7f0e}
table.inner{border-collapse:collapse;margin-top:4px;font-size:12px}table.inner td,table.inner th{border:1px solid #eee;padding:1px 6px}
.tools{display:flex;gap:8px;align-items:center;margin:6px 0}.tools input{flex:1;max-width:420px;padding:4px 6px}
.params span{display:inline-block;background:#eef3f8;border-radius:3px;padding:0 4px;margin:1px}
:target{background:#fff4cc}
"""

JS = r"""
(function(){
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = data.templates, size = data.pageSize, page = 0, shown = rows;
  var tbody = document.getElementById("tbody"), label = document.getElementById("tpage");
  var filter = document.getElementById("tfilter");
  function el(tag, cls, text){ var e = document.createElement(tag); if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text); return e; }
  function fmt(n){ return Number(n).toLocaleString("en-US"); }
  function kv(obj){ return Object.keys(obj).map(function(k){ return k + " " + fmt(obj[k]); }).join(", "); }
  function details(r){
    var d = el("details"), s = el("summary", null, r.examples.length + " examples, " + r.params.length + " parameters");
    d.appendChild(s);
    r.examples.forEach(function(ex){
      var box = el("div", "ex");
      box.appendChild(el("div", "sub", (ex.time || "") + " " + ex.level + " " + ex.service));
      box.appendChild(el("pre", null, ex.message));
      if (ex.params && ex.params.length) box.appendChild(el("div", "sub", "params: " + JSON.stringify(ex.params)));
      d.appendChild(box);
    });
    r.params.forEach(function(p, i){
      var line = el("div", "params"); line.appendChild(el("b", null, "<*>#" + (i + 1) + " "));
      Object.keys(p.values).forEach(function(v){ line.appendChild(el("span", null, v + " ×" + fmt(p.values[v]))); });
      if (p.other) line.appendChild(el("span", null, "other ×" + fmt(p.other)));
      d.appendChild(line);
    });
    return d;
  }
  function render(){
    var pages = Math.max(1, Math.ceil(shown.length / size));
    if (page >= pages) page = pages - 1;
    if (page < 0) page = 0;
    tbody.textContent = "";
    shown.slice(page * size, page * size + size).forEach(function(r){
      var tr = el("tr"); tr.setAttribute("data-testid", "template-row"); tr.setAttribute("data-template-id", r.id);
      tr.appendChild(el("td", "n", r.rank));
      var c = el("td", "n", fmt(r.count)); c.setAttribute("data-testid", "template-count"); c.setAttribute("data-value", r.count);
      tr.appendChild(c);
      tr.appendChild(el("td", "n", r.share.toFixed(2) + "%"));
      var t = el("td"); t.appendChild(el("code", null, r.template)); t.appendChild(el("div", "sub", r.id + (r.new_at ? " · new at " + r.new_at : "")));
      t.appendChild(details(r)); tr.appendChild(t);
      tr.appendChild(el("td", null, kv(r.levels)));
      tr.appendChild(el("td", null, kv(r.services)));
      tr.appendChild(el("td", "sub", (r.first || "-") + " →\n" + (r.last || "-")));
      tbody.appendChild(tr);
    });
    if (!shown.length) { var tr = el("tr"); var td = el("td", "empty", "No templates."); td.colSpan = 7; tr.appendChild(td); tbody.appendChild(tr); }
    label.textContent = "page " + (page + 1) + " / " + pages + " (" + fmt(shown.length) + " templates)";
  }
  document.getElementById("tprev").addEventListener("click", function(){ page--; render(); });
  document.getElementById("tnext").addEventListener("click", function(){ page++; render(); });
  filter.addEventListener("input", function(){
    var q = filter.value.toLowerCase();
    shown = q ? rows.filter(function(r){ return r.template.toLowerCase().indexOf(q) >= 0 || r.id.indexOf(q) === 0; }) : rows;
    page = 0; render();
  });
  render();
})();
"""
