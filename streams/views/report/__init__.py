"""The replay report: a bounded :class:`ReportCollector` fed as a replay runs, and
:func:`render_html`, one self-contained HTML file (inline CSS, JS and SVG; no network)."""

from streams.views.report.collector import ReportCollector, epoch_seconds, service_of
from streams.views.report.render import render_html


def write_report(collector: ReportCollector, path: str) -> int:
    """Render ``collector`` into ``path``; returns the number of bytes written."""
    data = render_html(collector).encode("utf-8")
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


__all__ = ["ReportCollector", "epoch_seconds", "render_html", "service_of", "write_report"]
