"""Novelty: a never-seen template at error level (and its recurrences), a rare template that bursts."""

from __future__ import annotations

from typing import Any

from streams.anomaly.base import (
    Detector,
    Doc,
    anomaly_doc,
    config_version,
    series_id,
    template_counts,
    template_texts,
)


class NoveltyDetector(Detector):
    """Template novelty over all series of the pipeline.

    new error template: a template at error/fatal level in a window that was never seen before
    at any level (after ``warmup_windows``; the seen set is learnt from the start), with at
    least ``min_new_count`` lines in the window, or at least ``min_new_share`` of the lines its
    series wrote in that window. A lone line of a rare error among a busy service's hundreds is
    not an incident; the one line a quiet series (a batch job, a node's kernel) wrote in that
    window being a never-seen error is: how many lines make evidence depends on the volume.
    recurrence: once a new error template was flagged in a series, each following window of
    that series that holds it again is flagged too (the incident goes on), as long as it comes
    back within ``follow_gap`` of the series' *active* windows (windows in which the series
    wrote lines: a series that wrote nothing gave no sign of recovery, which matters for sparse
    series whose lines are minutes or hours apart) and for at most ``follow_windows`` windows
    (after that it is the new normal). The alert stays one incident while its cause recurs.
    rare burst: a known template at error level in this window, present in at most
    ``rare_max_presence`` of past windows, whose count in this window (all keys) reaches
    ``burst_min_count`` and ``burst_factor`` times its largest past window count (a rare
    informational line bursting, a batch job say, is not an incident).
    """

    kind = "novelty"

    def __init__(
        self,
        warmup_windows: int = 10,
        min_new_count: int = 2,
        min_new_share: float = 0.5,
        follow_gap: int = 2,
        follow_windows: int = 60,
        rare_max_presence: float = 0.05,
        burst_min_count: int = 10,
        burst_factor: float = 5.0,
        name: str | None = None,
        windows: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, windows)
        self.warmup_windows = warmup_windows
        self.min_new_count = min_new_count
        self.min_new_share = min_new_share
        self.follow_gap = follow_gap
        self.follow_windows = follow_windows
        self.rare_max_presence = rare_max_presence
        self.burst_min_count = burst_min_count
        self.burst_factor = burst_factor
        self.version = config_version(self.name, {
            "warmup": warmup_windows, "min_new": min_new_count, "rare": rare_max_presence,
            "burst_min": burst_min_count, "burst_factor": burst_factor,
            "min_new_share": min_new_share, "follow_gap": follow_gap,
            "follow_windows": follow_windows,
        })
        self.windows_seen = 0
        self.seen: set[str] = set()
        self.presence: dict[str, int] = {}  # template -> windows it appeared in
        self.max_count: dict[str, int] = {}  # template -> largest per-window count (all keys)
        # series with followed templates -> windows in which it wrote lines since then (only
        # those: the state stays the size of the open incidents, not of every series)
        self.active: dict[str, int] = {}
        # series -> template -> [active index when last flagged, windows flagged]
        self.following: dict[str, dict[str, list[int]]] = {}

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        docs = [d for d in docs if self.accepts(d)]
        if not docs:
            return []
        out: list[Doc] = []
        alerting = self.windows_seen >= self.warmup_windows
        totals: dict[str, int] = {}
        holder: dict[str, tuple[int, int]] = {}  # template -> (count, doc index) of top holder
        for i, doc in enumerate(docs):
            counts = template_counts(doc)
            for t, c in counts.items():
                totals[t] = totals.get(t, 0) + c
                if c > holder.get(t, (0, -1))[0]:
                    holder[t] = (c, i)
            if not alerting:
                continue
            found = self._new_and_recurring(doc)
            if found is not None:
                out.append(found)
        if alerting:
            errors = {t for doc in docs for t in template_counts(doc, "error_template_counts")}
            out.extend(self._bursts(docs, {t: c for t, c in totals.items() if t in errors}, holder))
        self.windows_seen += 1
        for t, c in totals.items():
            self.seen.add(t)
            self.presence[t] = self.presence.get(t, 0) + 1
            self.max_count[t] = max(self.max_count.get(t, 0), c)
        for doc in docs:
            self.seen.update(template_counts(doc, "error_template_counts"))
            sid = series_id(doc)
            if sid in self.following and not (doc.get("logriver") or {}).get("synthetic"):
                self.active[sid] = self.active.get(sid, 0) + 1
        return out

    def _new_and_recurring(self, doc: Doc) -> Doc | None:
        """The finding of one series' window: never-seen error templates with enough lines,
        and the recurrences of those flagged before (see the class docstring)."""
        if (doc.get("logriver") or {}).get("synthetic"):
            return None
        sid = series_id(doc)
        now = self.active.get(sid, 0)
        lines = max(int(doc.get("count") or 0), 1)
        errors = template_counts(doc, "error_template_counts")
        following = self.following.get(sid, {})
        new, again = {}, {}
        for t, c in errors.items():
            if t not in self.seen:
                if c >= self.min_new_count or c >= self.min_new_share * lines:
                    new[t] = c
            elif t in following:
                last, flagged = following[t]
                if now - last <= self.follow_gap and flagged < self.follow_windows:
                    again[t] = c
        for t in [t for t, (last, _) in following.items()
                  if t not in again and now - last >= self.follow_gap]:
            del following[t]  # did not come back in time: that incident is over
        if not new and not again:
            if not following:
                self.following.pop(sid, None)
                self.active.pop(sid, None)
            return None
        following = self.following.setdefault(sid, following)
        for t in new:
            following[t] = [now, 1]
        for t in again:
            following[t] = [now, following[t][1] + 1]
        texts = template_texts(doc)

        def listed(group: dict[str, int], recurring: bool) -> list[dict[str, Any]]:
            return [{"name": t, "kind": "template", "template": texts.get(t), "expected": 0,
                     "observed": c, **({"recurring": True} if recurring else {})}
                    for t, c in sorted(group.items(), key=lambda kv: (-kv[1], kv[0]))]

        fresh, recurring = listed(new, False), listed(again, True)
        parts = [head + ", ".join(f"{i['template'] or i['name']} x{i['observed']}" for i in its[:3])
                 for head, its in ((f"{len(new)} never-seen template(s) at error level: ", fresh),
                                   ("new error template(s) still recurring: ", recurring)) if its]
        return anomaly_doc(doc, self.name, max([*new.values(), *again.values()]),
                           self.min_new_count, self.version, "; ".join(parts), fresh + recurring,
                           severity="critical" if doc.get("error_count", 0) >= 10 else "major")

    def _bursts(self, docs: list[Doc], totals: dict[str, int],
                holder: dict[str, tuple[int, int]]) -> list[Doc]:
        by_doc: dict[int, list[dict[str, Any]]] = {}
        for t, c in sorted(totals.items()):
            if t not in self.seen or c < self.burst_min_count:
                continue
            if self.presence.get(t, 0) > self.rare_max_presence * self.windows_seen:
                continue
            past = self.max_count.get(t, 0)
            if c >= self.burst_factor * max(past, 1):
                by_doc.setdefault(holder[t][1], []).append(
                    {"name": t, "kind": "template", "expected": past, "observed": c})
        out = []
        for i, items in sorted(by_doc.items()):
            texts = template_texts(docs[i])
            for it in items:
                it["template"] = texts.get(it["name"])
            score = max(it["observed"] / max(it["expected"], 1) for it in items)
            summary = "rare template burst: " + ", ".join(
                f"{it['template'] or it['name']} x{it['observed']} (past max {it['expected']})"
                for it in items[:3])
            out.append(anomaly_doc(docs[i], self.name, score, self.burst_factor,
                                   self.version, summary, items))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"windows_seen": self.windows_seen, "seen": sorted(self.seen),
                "presence": dict(self.presence), "max_count": dict(self.max_count),
                "active": dict(self.active),
                "following": {s: {t: list(v) for t, v in f.items()}
                              for s, f in self.following.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.windows_seen = state["windows_seen"]
        self.seen = set(state["seen"])
        self.presence = dict(state["presence"])
        self.max_count = dict(state["max_count"])
        # state written before recurrences were followed has neither (it starts afresh)
        self.active = dict(state.get("active") or {})
        self.following = {s: {t: list(v) for t, v in f.items()}
                          for s, f in (state.get("following") or {}).items()}
