"""Count models over windowed template-count vectors (scikit-learn), loglizer style.

Each (window, key) document is a row over the templates present in at least
``min_feature_rows`` training rows of one series (rare or unseen templates, such as startup
lines or a deploy's new messages, are left to the novelty detector). A row is compared with
what its own series' template mix predicts at the row's volume: for template j,
``d_j = A(x_j) - A(n * share_j)`` with ``A(x) = 2 sqrt(x + 3/8)`` (Anscombe: Poisson noise
of about unit variance at any rate), ``n`` the row's total over the features and ``share``
the series' training mix (pooled for a series with fewer than ``min_series_rows`` rows).
So the models see changes of *composition* (an error template taking a larger share, a
template vanishing) in noise units, and ignore volume: daily swings, a quiet night, a deploy's
brief dip do not move them, while volume changes (lost traffic, crash loops) are the rate
detectors' job.

Models train after ``warmup_windows`` windows on the rows buffered so far, retrain every
``refresh_every`` windows on the last ``train_windows`` windows (rows they flagged and
synthetic zero rows excluded), and carry a version
``<name>-<hash of training data>-<event time of the last training window>`` that every
anomaly they raise reports. ``save``/``load`` persist a trained model with joblib.
"""

from __future__ import annotations

import base64
import hashlib
import io
import statistics
from collections import deque
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.tree import ExtraTreeRegressor

from streams.anomaly.base import (
    Detector,
    Doc,
    anomaly_doc,
    series_id,
    template_counts,
    template_texts,
)


def _mix(X: np.ndarray) -> np.ndarray:
    """Share of each template in the summed rows (uniform when they are empty)."""
    total = X.sum(axis=0)
    n = total.sum()
    return total / n if n > 0 else np.full(X.shape[1], 1.0 / max(X.shape[1], 1))


class CountModelDetector(Detector):
    """Shared training, refresh, persistence and explanation of the count models.

    warmup_windows: windows buffered before the first model. refresh_every: windows between
    retrainings. train_windows: windows kept for training. max_features: most frequent
    training templates used as features; min_feature_rows: training rows of one series a
    template must be present in to be a feature. min_series_rows: see the module docstring.
    min_rows: training rows needed to train. top_items: templates listed in an explanation.
    """

    kind = "count_model"

    def __init__(
        self,
        warmup_windows: int = 30,
        refresh_every: int = 10,
        train_windows: int = 60,
        max_features: int = 500,
        min_feature_rows: int = 5,
        min_series_rows: int = 3,
        min_rows: int = 20,
        top_items: int = 5,
        name: str | None = None,
        windows: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, windows)
        self.warmup_windows = warmup_windows
        self.refresh_every = refresh_every
        self.train_windows = train_windows
        self.max_features = max_features
        self.min_feature_rows = min_feature_rows
        self.min_series_rows = min_series_rows
        self.texts: dict[str, str] = {}
        self.min_rows = min_rows
        self.top_items = top_items
        self.buffer: deque[list[tuple[str, dict[str, int]]]] = deque(maxlen=train_windows)
        self.windows_seen = 0
        self.since_train = 0
        self.trainings = 0
        self.last_start: str | None = None
        self._clear_model()

    def _clear_model(self) -> None:
        self.model: Any = None
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}
        self.threshold = 0.0
        self.version = ""
        self.shares: dict[str, np.ndarray] = {}  # series -> template mix in training
        self.pooled = np.zeros(0)
        self._model_blob: tuple[Any, str, str] | None = None  # (model, version, encoded)

    # -- estimator-specific ---------------------------------------------------------------
    def _fit(self, D: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, D: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def vectorize(self, rows: list[dict[str, int]]) -> np.ndarray:
        """Template counts over the vocabulary."""
        X = np.zeros((len(rows), len(self.vocab)))
        for i, counts in enumerate(rows):
            for t, c in counts.items():
                j = self.index.get(t)
                if j is not None:
                    X[i, j] = c
        return X

    def expected(self, sids: list[str], X: np.ndarray) -> np.ndarray:
        """Expected counts: each row's volume spread by its series' training mix."""
        shares = np.array([self.shares.get(sid, self.pooled) for sid in sids]).reshape(X.shape)
        return X.sum(axis=1, keepdims=True) * shares

    def deviations(self, sids: list[str], X: np.ndarray) -> np.ndarray:
        """Anscombe(observed) - Anscombe(expected), per template: the models' input."""
        return 2.0 * (np.sqrt(X + 0.375) - np.sqrt(self.expected(sids, X) + 0.375))

    def train(self, rows: list[tuple[str, dict[str, int]]], trained_at: str) -> None:
        """Fit on (series id, template counts) rows; ``trained_at`` is an event time."""
        freq: dict[str, int] = {}
        present: dict[tuple[str, str], int] = {}  # (series, template) -> rows
        for sid, counts in rows:
            for t, c in counts.items():
                freq[t] = freq.get(t, 0) + c
                present[(sid, t)] = present.get((sid, t), 0) + 1
        vocab = list({t for (_, t), n in present.items() if n >= self.min_feature_rows})
        self.vocab = sorted(sorted(vocab, key=lambda t: (-freq[t], t))[: self.max_features])
        self.index = {t: i for i, t in enumerate(self.vocab)}
        X = self.vectorize([c for _, c in rows])
        self.pooled = _mix(X)
        by_series: dict[str, list[int]] = {}
        for i, (sid, _) in enumerate(rows):
            by_series.setdefault(sid, []).append(i)
        self.shares = {sid: _mix(X[idx]) for sid, idx in by_series.items()
                       if len(idx) >= self.min_series_rows and X[idx].sum() > 0}
        self._fit(self.deviations([sid for sid, _ in rows], X))
        h = hashlib.sha256("\x1f".join(self.vocab).encode())
        h.update(np.ascontiguousarray(X).tobytes())
        stamp = trained_at.replace("-", "").replace(":", "").split(".")[0]
        self.version = f"{self.name}-{h.hexdigest()[:12]}-{stamp}Z"
        self.since_train = 0
        self.trainings += 1  # (a statistic, not state)

    def score(self, docs: list[Doc]) -> np.ndarray:
        """Raw scores of documents under the current model (higher = more anomalous)."""
        if self.model is None:
            raise RuntimeError("model not trained yet")
        X = self.vectorize([template_counts(d) for d in docs])
        return self._score(self.deviations([series_id(d) for d in docs], X))

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        docs = [d for d in docs if self.accepts(d)]
        if not docs:
            return []
        rows = [(series_id(d), template_counts(d)) for d in docs]
        for d in docs:
            if len(self.texts) < 100_000:
                self.texts.update(template_texts(d))
        out: list[Doc] = []
        flagged: set[int] = set()
        if self.model is not None and self.vocab:
            sids = [sid for sid, _ in rows]
            X = self.vectorize([c for _, c in rows])
            D = self.deviations(sids, X)
            E = self.expected(sids, X)
            scores = self._score(D)
            for i, doc in enumerate(docs):
                if scores[i] > self.threshold:
                    flagged.add(i)
                    out.append(self._anomaly(doc, X[i], E[i], D[i], float(scores[i])))
        self.buffer.append([
            rows[i] for i, d in enumerate(docs)
            if i not in flagged and not (d.get("logriver") or {}).get("synthetic")
        ])
        self.windows_seen += 1
        self.since_train += 1
        self.last_start = docs[0]["window"]["end"]
        due = self.model is None and self.windows_seen >= self.warmup_windows
        if due or (self.model is not None and self.since_train >= self.refresh_every):
            train_rows = [r for w in self.buffer for r in w]
            if len(train_rows) >= self.min_rows and any(train_rows):
                self.train(train_rows, self.last_start)
        return out

    def _anomaly(self, doc: Doc, x: np.ndarray, exp: np.ndarray, dev: np.ndarray,
                 score: float) -> Doc:
        """Anomaly doc; items: the templates whose counts deviate most from the series' mix."""
        order = sorted(range(len(self.vocab)), key=lambda j: (-abs(dev[j]), self.vocab[j]))
        items = [{"name": self.vocab[j], "kind": "template", "template": self.texts.get(self.vocab[j]),
                  "expected": round(float(exp[j]), 2), "observed": int(x[j])}
                 for j in order[: self.top_items] if abs(dev[j]) > 1e-9]
        summary = f"{self.kind} score {score:.3f} > {self.threshold:.3f}; " + ", ".join(
            f"{it['template'] or it['name']}: {it['observed']} vs {it['expected']:g} expected"
            for it in items[:3])
        return anomaly_doc(doc, self.name, score, self.threshold, self.version, summary, items)

    # -- persistence ----------------------------------------------------------------------
    def _model_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "vocab": self.vocab,
                "threshold": self.threshold, "version": self.version,
                "shares": self.shares, "pooled": self.pooled, "texts": self.texts,
                "extra": self._extra_state()}

    def _set_model_state(self, st: dict[str, Any]) -> None:
        if st["kind"] != self.kind:
            raise ValueError(f"model file holds a {st['kind']} model, not {self.kind}")
        self.model, self.vocab, self.threshold = st["model"], st["vocab"], st["threshold"]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.version, self.shares, self.pooled = st["version"], st["shares"], st["pooled"]
        self.texts = dict(st["texts"])
        self._set_extra_state(st["extra"])

    def _extra_state(self) -> Any:
        return None

    def _set_extra_state(self, extra: Any) -> None:
        pass

    def save(self, path: str) -> None:
        """Persist the trained model (joblib)."""
        if self.model is None:
            raise RuntimeError("no trained model to save")
        joblib.dump(self._model_state(), path)

    def load(self, path: str) -> None:
        """Load a model saved by :meth:`save`; scoring resumes with its version."""
        self._set_model_state(joblib.load(path))
        self.since_train = 0

    def snapshot(self) -> dict[str, Any]:
        model = None
        if self.model is not None:
            # the model changes only when it is trained or loaded, while the worker snapshots
            # after every window close: encode it once per model
            cached = self._model_blob
            if cached is not None and cached[0] is self.model and cached[1] == self.version:
                model = cached[2]
            else:
                buf = io.BytesIO()
                joblib.dump(self._model_state(), buf)
                model = base64.b64encode(buf.getvalue()).decode()
                self._model_blob = (self.model, self.version, model)
        return {"buffer": [[list(r) for r in w] for w in self.buffer],
                "windows_seen": self.windows_seen, "since_train": self.since_train,
                "last_start": self.last_start, "model": model}

    def restore(self, state: dict[str, Any]) -> None:
        self.buffer = deque(([(sid, c) for sid, c in w] for w in state["buffer"]),
                            maxlen=self.train_windows)
        self.windows_seen = state["windows_seen"]
        self.last_start = state["last_start"]
        self._clear_model()
        if state["model"] is not None:
            self._set_model_state(joblib.load(io.BytesIO(base64.b64decode(state["model"]))))
        self.since_train = state["since_train"]


class CompiledForest:
    """A fitted IsolationForest as flat arrays, scoring every row against every tree at once.

    ``score(X)`` is ``-model.score_samples(X)`` (scikit-learn walks the 100 trees one by one:
    milliseconds a call; this: 50-100 us for a few rows), by the same steps: X cast to
    float32, each row sent left when ``x <= threshold`` (NaN: the node's
    ``missing_go_to_left``), leaf path lengths ``depth + c(n_node_samples) - 1`` summed over
    the trees in order, score ``2 ** -(sum / (n_trees * c(max_samples)))``. ``model`` stays
    the scikit-learn estimator (what is persisted); the arrays are rebuilt from it.
    """

    def __init__(self, model: IsolationForest) -> None:
        self.model = model
        trees = [e.tree_ for e in model.estimators_]
        sizes = np.array([t.node_count for t in trees])
        self.roots = np.concatenate(([0], np.cumsum(sizes)[:-1]))  # global id of each root
        self.n_features = model.n_features_in_
        # sklearn hands each tree its feature subset only when max_features < n_features
        subsample = model._max_features != model.n_features_in_
        feature, left, right, depth = [], [], [], []
        for t, feats, root in zip(trees, model.estimators_features_, self.roots):
            leaf = t.children_left == -1
            ids = root + np.arange(t.node_count)
            f = np.where(leaf, 0, t.feature)
            feature.append(np.asarray(feats)[f] if subsample else f)
            left.append(np.where(leaf, ids, root + t.children_left))  # leaves loop on themselves
            right.append(np.where(leaf, ids, root + t.children_right))
            depth.append(t.compute_node_depths())  # root = 1
        depth_all = np.concatenate(depth)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.children = np.stack([np.concatenate(left), np.concatenate(right)], axis=1).ravel()
        self.threshold = np.concatenate([t.threshold for t in trees])
        self.missing_left = np.concatenate([t.missing_go_to_left for t in trees]).astype(bool)
        n_node_samples = np.concatenate([t.n_node_samples for t in trees])
        self.path = depth_all + _average_path_length(n_node_samples) - 1.0  # per node, as sklearn
        self.levels = int(depth_all.max()) - 1
        self.denominator = len(trees) * _average_path_length([model._max_samples])[0]

    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) global leaf ids of float32 rows, descending all trees level by level."""
        n = X.shape[0]
        flat = X.ravel()
        base = (np.arange(n) * self.n_features)[:, None]
        node = np.broadcast_to(self.roots, (n, len(self.roots)))
        nan = bool(np.isnan(flat).any())
        for _ in range(self.levels):
            x = flat[base + self.feature[node]]
            right = x > self.threshold[node]  # float32 vs float64 threshold, as the trees do
            if nan:
                right |= np.isnan(x) & ~self.missing_left[node]
            node = self.children[2 * node + right]
        return node

    def apply(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf index of each row within each tree (as ``tree_.apply``)."""
        return self._leaves(self._validate(X)) - self.roots

    def score(self, X: np.ndarray) -> np.ndarray:
        """``-model.score_samples(X)``: higher = more anomalous."""
        path = self.path[self._leaves(self._validate(X))]
        depths = np.cumsum(path, axis=1)[:, -1]  # summed tree by tree, in sklearn's order
        ratio = depths / self.denominator if self.denominator != 0 else np.ones_like(depths)
        return 2 ** (-ratio)

    def _validate(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)  # sklearn's cast before the trees
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; the forest expects {self.n_features} columns")
        return X


class _ParamNamesOnce:
    """scikit-learn reads an estimator's parameter names with ``inspect.signature`` at every
    ``get_params``/``clone``: four times per tree of a forest, a third of fitting 100 small
    trees. They are fixed per class: read them once."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        names = cls.__dict__.get("_param_names")
        if names is None:
            names = super()._get_param_names()  # type: ignore[misc]
            cls._param_names = names  # type: ignore[attr-defined]
        return names


class _IsolationTree(_ParamNamesOnce, ExtraTreeRegressor):
    """scikit-learn's isolation tree (the same parameters, the same random draws)."""


class _IsolationForest(_ParamNamesOnce, IsolationForest):
    """IsolationForest growing ``_IsolationTree``s: the same trees as IsolationForest for the
    same data and ``random_state``, fitted with less per-tree overhead."""

    def _get_estimator(self) -> ExtraTreeRegressor:
        return _IsolationTree(max_features=1, splitter="random", random_state=self.random_state)


def fit_isolation_forest(X: np.ndarray, n_estimators: int, random_state: int) -> IsolationForest:
    """``IsolationForest(n_estimators, random_state).fit(X)``, the same model at less cost:
    parameter names read once per class, and scikit-learn's per-tree parameter and
    finiteness checks skipped (the parameters are ours; deviation rows are finite)."""
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        return _IsolationForest(n_estimators=n_estimators, random_state=random_state).fit(X)


class IsolationForestDetector(CountModelDetector):
    """IsolationForest on the deviation rows; score = -score_samples (higher = stranger).

    threshold = the ``threshold_quantile`` of the training scores + ``threshold_margin`` (the
    score is bounded, about 0.3-0.8, so the margin is additive). Trees split within the
    training range, so a row far beyond it in a single template scores like the most extreme
    training row: IsolationForest flags rows unusual in several templates at once; PCA and
    the rate detectors cover single-template extremes.
    """

    kind = "isolation_forest"

    def __init__(self, n_estimators: int = 100, threshold_quantile: float = 1.0,
                 threshold_margin: float = 0.02, random_state: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.n_estimators = n_estimators
        self.threshold_quantile = threshold_quantile
        self.threshold_margin = threshold_margin
        self.random_state = random_state

    def _clear_model(self) -> None:
        super()._clear_model()
        self.forest: CompiledForest | None = None  # self.model compiled, built on first score

    def _fit(self, X: np.ndarray) -> None:
        self.model = fit_isolation_forest(X, self.n_estimators, self.random_state)
        train = self._score(X)
        self.threshold = float(np.quantile(train, self.threshold_quantile)) + self.threshold_margin

    def _score(self, X: np.ndarray) -> np.ndarray:
        """``-self.model.score_samples(X)``, computed by the compiled forest."""
        if self.forest is None or self.forest.model is not self.model:  # fit, load, restore
            self.forest = CompiledForest(self.model)
        return self.forest.score(X)


class PCADetector(CountModelDetector):
    """PCA residuals: squared prediction error (SPE) of a row outside the normal subspace.

    The normal subspace keeps the components explaining ``variance`` of the (centred)
    training rows, but only those whose variance exceeds ``noise_eigenvalue`` (Poisson noise
    is about 1 in these deviations): independent templates leave no systematic
    structure, and a residual space of pure noise is what makes the SPE meaningful. The threshold is the Q-statistic (Jackson & Mudholkar) at confidence
    1 - ``alpha``, as in the loglizer study, but never below the ``train_quantile`` of the
    training rows' SPE (counts are not Gaussian, so the Q-statistic alone may flag a few
    percent of normal rows; ``train_quantile=None`` keeps the pure Q-statistic), times
    ``threshold_factor``.
    """

    kind = "pca"

    def __init__(self, variance: float = 0.95, noise_eigenvalue: float = 2.0, alpha: float = 0.001,
                 train_quantile: float | None = 1.0, threshold_factor: float = 2.0,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.variance = variance
        self.noise_eigenvalue = noise_eigenvalue
        self.alpha = alpha
        self.train_quantile = train_quantile
        self.threshold_factor = threshold_factor

    def _fit(self, X: np.ndarray) -> None:
        mean = X.mean(axis=0)
        cov = np.cov(X - mean, rowvar=False, bias=False).reshape(X.shape[1], X.shape[1])
        lam, vec = np.linalg.eigh(cov)
        lam, vec = np.clip(lam[::-1], 0, None), vec[:, ::-1]
        total = lam.sum()
        k = int(np.searchsorted(np.cumsum(lam) / total, self.variance) + 1) if total > 0 else 0
        k = min(k, int((lam > self.noise_eigenvalue).sum()))
        P = vec[:, :k]
        self.model = {"mean": mean, "C": np.eye(X.shape[1]) - P @ P.T, "k": k}
        q = self._q_statistic(lam[k:])
        floor = float(np.quantile(self._score(X), self.train_quantile)) if self.train_quantile else 0.0
        self.threshold = max(q, floor) * self.threshold_factor + 1e-9

    def _q_statistic(self, lam: np.ndarray) -> float:
        t1, t2, t3 = (float((lam**i).sum()) for i in (1, 2, 3))
        if t1 <= 0 or t2 <= 0:
            return 0.0
        h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2)
        c = statistics.NormalDist().inv_cdf(1 - self.alpha)
        inner = c * np.sqrt(2.0 * t2 * h0 * h0) / t1 + 1.0 + t2 * h0 * (h0 - 1.0) / (t1 * t1)
        return float(t1 * max(inner, 0.0) ** (1.0 / h0)) if h0 > 0 else t1

    def _score(self, X: np.ndarray) -> np.ndarray:
        R = (X - self.model["mean"]) @ self.model["C"]
        return (R * R).sum(axis=1)

