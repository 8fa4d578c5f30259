"""The compiled IsolationForest scorer: same scores as scikit-learn, persisted models included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.ensemble import IsolationForest

from streams.anomaly import IsolationForestDetector
from streams.anomaly.models import CompiledForest
from streams.windows import format_time_us

TOL = 1e-12
T0 = 1_767_225_600 * 10**6


def check(model: IsolationForest, X: np.ndarray) -> None:
    """Compiled scores are ``-score_samples``; every row reaches sklearn's leaf in every tree."""
    forest = CompiledForest(model)
    expected = -model.score_samples(X)
    got = forest.score(X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    leaves = forest.apply(X)
    features = model.estimators_features_
    subsample = model._max_features != model.n_features_in_
    X32 = np.asarray(X, dtype=np.float32)
    for i, est in enumerate(model.estimators_):
        Xt = X32[:, features[i]] if subsample else X32
        np.testing.assert_array_equal(leaves[:, i], est.tree_.apply(Xt))


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 700)), int(rng.integers(1, 80))
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d)
    model = IsolationForest(n_estimators=100, random_state=seed).fit(X)
    check(model, X)  # the training rows themselves
    check(model, rng.normal(size=(int(rng.integers(1, 300)), d)) * 3)
    check(model, X[:1])
    check(model, X[-1:] + 1e-9)


def test_rows_outside_training_range() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6))
    model = IsolationForest(random_state=3).fit(X)
    far = np.array([[1e3] * 6, [-1e3] * 6, [1e30] * 6, [1e300] * 6, [-1e300] * 6,
                    [np.inf] * 6, [-np.inf] * 6, [0, 0, 0, 1e6, -1e6, 0]])
    with np.errstate(over="ignore"):  # 1e300 becomes +-inf in float32, as in sklearn
        check(model, far)


def test_constant_columns_and_constant_data() -> None:
    rng = np.random.default_rng(2)
    X = rng.poisson(3, size=(200, 5)).astype(float)
    X[:, [1, 3]] = 7.0
    model = IsolationForest(random_state=0).fit(X)
    check(model, X)
    check(model, rng.poisson(3, size=(40, 5)).astype(float))
    # all rows equal: every tree is a single leaf
    flat = IsolationForest(random_state=0).fit(np.ones((50, 3)))
    assert CompiledForest(flat).levels == 0
    check(flat, np.array([[1.0, 1.0, 1.0], [5.0, -2.0, 0.0]]))


def test_single_feature_and_tiny_training_sets() -> None:
    rng = np.random.default_rng(4)
    X = rng.exponential(size=(500, 1))
    check(IsolationForest(random_state=5).fit(X), np.linspace(-1, 10, 57)[:, None])
    for n in (1, 2, 3, 9):  # n=1: zero denominator, sklearn's score of 0.5
        small = rng.normal(size=(n, 2))
        probe = np.vstack([small, rng.normal(size=(5, 2))])
        check(IsolationForest(random_state=n).fit(small), probe)


def test_values_at_thresholds_follow_the_float32_cast() -> None:
    """Rows sitting on, just above and just below split thresholds go where the trees send them."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 4)) * 50
    model = IsolationForest(random_state=7).fit(X)
    rows = []
    for est in model.estimators_[:20]:
        t = est.tree_
        for node in np.flatnonzero(t.children_left != -1)[:15]:
            thr = t.threshold[node]
            t32 = np.float32(thr)
            for v in (thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf), float(t32),
                      float(np.nextafter(t32, np.float32(np.inf))),
                      float(np.nextafter(t32, np.float32(-np.inf))),
                      float(t32) + abs(float(t32)) * 2.0**-26):  # rounds back down to t32
                row = X[rng.integers(len(X))].copy()
                row[t.feature[node]] = v
                rows.append(row)
    check(model, np.array(rows))


def test_nan_rows() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 5))
    model = IsolationForest(random_state=9).fit(X)
    Y = rng.normal(size=(30, 5))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    check(model, Y)


@pytest.mark.parametrize("params", [
    {"max_features": 0.5}, {"max_features": 1}, {"max_samples": 40, "n_estimators": 37},
    {"bootstrap": True, "contamination": 0.05},
])
def test_other_forest_parameters(params: dict) -> None:
    rng = np.random.default_rng(10)
    X = rng.normal(size=(250, 7))
    model = IsolationForest(random_state=11, **params).fit(X)
    check(model, X)
    check(model, rng.normal(size=(60, 7)) * 2)


def test_feature_count_checked() -> None:
    model = IsolationForest(random_state=0).fit(np.random.default_rng(0).normal(size=(50, 3)))
    with pytest.raises(ValueError):
        CompiledForest(model).score(np.zeros((2, 4)))


def doc(i: int, templates: dict[str, int], service: str = "api") -> dict:
    """A 60 s metrics document of one service with these template counts."""
    start = T0 + i * 60 * 10**6
    return {
        "@timestamp": format_time_us(start),
        "window": {"start": format_time_us(start), "end": format_time_us(start + 60 * 10**6),
                   "size_seconds": 60, "step_seconds": 60, "kind": "tumbling", "name": "w60"},
        "key": {"service_name": service}, "count": sum(templates.values()),
        "template_counts": [{"id": t, "count": c, "template": f"text {t}"}
                            for t, c in templates.items() if c],
        "logriver": {"pipeline": "test"},
    }


def _model_windows(n: int, seed: int = 0) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    return [[doc(i, {"a": int(rng.poisson(80)), "b": int(rng.poisson(20)),
                     "c": int(rng.poisson(5)), "d": int(rng.poisson(2))}, service=s)
             for s in ("api", "web", "db")] for i in range(n)]


def _trained(seed: int = 0) -> IsolationForestDetector:
    det = IsolationForestDetector(warmup_windows=30, refresh_every=1000)
    for w in _model_windows(40, seed=seed):
        det.process_window(w)
    assert det.model is not None
    return det


PROBE = [doc(41, {"a": 10, "b": 3, "c": 400}),
         doc(41, {"a": 81, "b": 19, "c": 5, "d": 1}, service="web"),
         doc(41, {"a": 80, "b": 20, "c": 5, "zzz": 9}, service="db")]


def test_detector_scores_are_sklearn_scores() -> None:
    det = _trained()
    assert det.forest is not None and det.forest.model is det.model
    rows = np.random.default_rng(0).normal(size=(25, len(det.vocab)))
    np.testing.assert_allclose(det._score(rows), -det.model.score_samples(rows), rtol=0, atol=TOL)
    first = det.forest
    det.train([(f"s{i % 3}", {"a": 80 + i, "b": 20 - i % 5, "c": 5}) for i in range(40)],
              "2026-01-01T10:00:00")
    det.score(PROBE)
    assert det.forest is not first and det.forest.model is det.model  # recompiled on retrain


def test_save_load_scores_identically(tmp_path: Path) -> None:
    det = _trained()
    path = tmp_path / "iforest.joblib"
    det.save(str(path))
    other = IsolationForestDetector()
    other.load(str(path))
    assert other.forest is None  # compiled lazily from the loaded estimator
    np.testing.assert_array_equal(other.score(PROBE), det.score(PROBE))
    assert other.forest is not None and other.forest.model is other.model
    X = other.vectorize([{"a": 10, "b": 3, "c": 400}, {"a": 80, "b": 20, "c": 5}])
    D = other.deviations(["x", "y"], X)
    np.testing.assert_allclose(other._score(D), -other.model.score_samples(D), rtol=0, atol=TOL)


def test_snapshot_restore_scores_identically() -> None:
    det = _trained(seed=5)
    state = orjson.loads(orjson.dumps(det.snapshot()))
    other = IsolationForestDetector(warmup_windows=30, refresh_every=1000)
    other.restore(state)
    np.testing.assert_array_equal(other.score(PROBE), det.score(PROBE))
    windows = _model_windows(50, seed=6)
    for w in windows:
        assert det.process_window(w) == other.process_window(w)


def test_snapshot_encodes_a_model_once_until_it_is_retrained(monkeypatch) -> None:
    from streams.anomaly import models

    det = models.IsolationForestDetector(n_estimators=10)
    rng = np.random.default_rng(3)
    rows = [("s", {f"t{j}": int(rng.poisson(5)) for j in range(6)}) for _ in range(40)]
    det.train(rows, "2026-01-01T00:00:00.000Z")
    dumps = []
    real = models.joblib.dump
    monkeypatch.setattr(models.joblib, "dump", lambda obj, f: (dumps.append(1), real(obj, f)))
    first, second = det.snapshot(), det.snapshot()
    assert first["model"] == second["model"] and len(dumps) == 1
    det.train(rows[::-1], "2026-01-01T00:10:00.000Z")
    assert det.snapshot()["model"] != first["model"] and len(dumps) == 2


@pytest.mark.parametrize("seed", range(6))
def test_fast_fit_grows_the_trees_sklearn_grows(seed: int) -> None:
    """fit_isolation_forest (parameter names read once, per-tree checks skipped) is
    IsolationForest(...).fit: every tree identical, the same scores, in any order of fits."""
    from streams.anomaly.models import fit_isolation_forest

    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(5, 600)), int(rng.integers(1, 60))
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d)
    fast = fit_isolation_forest(X, 100, seed)
    slow = IsolationForest(n_estimators=100, random_state=seed).fit(X)
    assert len(fast.estimators_) == len(slow.estimators_) == 100
    for a, b in zip(fast.estimators_, slow.estimators_):
        for attr in ("feature", "threshold", "children_left", "children_right", "n_node_samples"):
            np.testing.assert_array_equal(getattr(a.tree_, attr), getattr(b.tree_, attr))
    for a, b in zip(fast.estimators_samples_, slow.estimators_samples_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast.score_samples(X), slow.score_samples(X))
    assert fast.get_params() == slow.get_params()
