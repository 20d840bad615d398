"""Locomotion scores from pass features: an ordinal model stored as JSON, and agreement.

The score model is a cumulative-link (proportional-odds) logistic regression on
standardised pass features::

    P(score <= k | x) = sigmoid(theta_k - w . z),   z = (x - mean) / std

It suits gait scores (Kestin 0-5, cow 1-5): the classes are ordered, a lame bird moves
every feature the same way along one latent axis, and it needs few parameters (one
weight per feature plus one cut point per class boundary), which matters with tens of
human-scored passes. It is fitted by penalised maximum likelihood (L2 on ``w``) with
:func:`scipy.optimize.minimize`; missing features are imputed with the training mean
(``z = 0``). The model is a small JSON file (no pickle): feature names, means, stds,
weights, cut points and the class labels.

Agreement (:func:`compute_agreement`) follows the gait-scoring literature: exact
agreement, agreement within one point, quadratic-weighted Cohen's kappa, Spearman's rho,
Gwet's AC1 (robust when one class dominates) and the confusion matrix.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitlive.fileio import atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "ScoreModel",
    "ScoreModelError",
    "fit_score_model",
    "load_score_model",
    "compute_agreement",
    "round_scores",
    "cross_validated_predictions",
    "gwet_ac1",
    "plot_confusion",
    "format_agreement",
    "read_table",
    "join_scores",
    "feature_columns",
]

FORMAT = "gaitlive-score-model/1"
#: standardised features are clipped to +-Z_MAX: a feature far outside what the model was
#: fitted on (a pose model's gross misses) is not extrapolated linearly into the score
Z_MAX = 4.0


class ScoreModelError(ValueError):
    """A score model file is missing or malformed (the message names it)."""


def _standardise(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """z-scores of feature rows: missing (NaN, inf) is the mean (0), and each is clipped to
    +-``Z_MAX``, in the fit and when scoring alike."""
    Z = (np.asarray(X, dtype=np.float64) - mean) / std
    return np.clip(np.where(np.isfinite(Z), Z, 0.0), -Z_MAX, Z_MAX)


@dataclass
class ScoreModel:
    """A fitted cumulative-link logistic score model.

    Attributes
    ----------
    features
        Feature names, in weight order.
    mean, std
        Standardisation of each feature.
    weights
        One weight per feature (positive: a larger feature means a higher score).
    thresholds
        ``len(classes) - 1`` increasing cut points on the latent axis.
    classes
        The integer score of each class, in order (e.g. 0..5).
    meta
        Provenance: what it was fitted on, cross-validated agreement, ...
    """

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    thresholds: np.ndarray
    classes: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def _z(self, X: np.ndarray) -> np.ndarray:
        return _standardise(X, self.mean, self.std)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` for feature rows ``X`` ``(n, n_features)``
        (NaN features are imputed with the training mean)."""
        eta = self._z(np.atleast_2d(X)) @ self.weights
        cum = _sigmoid(self.thresholds[None, :] - eta[:, None])
        cum = np.concatenate([np.zeros((len(eta), 1)), cum, np.ones((len(eta), 1))], axis=1)
        return np.clip(np.diff(cum, axis=1), 0.0, 1.0)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Expected score, most probable class and its probability, per row."""
        p = self.predict_proba(X)
        cls = np.asarray(self.classes, dtype=np.float64)
        k = p.argmax(axis=1)
        return p @ cls, cls[k].astype(int), p[np.arange(len(p)), k]

    def row(self, features: Mapping[str, float]) -> np.ndarray:
        """The feature vector of one pass (missing names are NaN, i.e. imputed)."""
        return np.array([float(features.get(n, np.nan)) for n in self.features])

    def predict_one(self, features: Mapping[str, float]) -> tuple[float, int, float]:
        """``(score, score_class, confidence)`` of one pass's feature dict."""
        s, c, p = self.predict(self.row(features)[None])
        return float(s[0]), int(c[0]), float(p[0])

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "cumulative_logit", "features": self.features,
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "weights": self.weights.tolist(), "thresholds": self.thresholds.tolist(),
                "classes": self.classes, "meta": self.meta}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON (atomically: a crash never leaves half a file).

        ``.json`` is appended when the name does not end with it (``models/v1.2`` ->
        ``models/v1.2.json``). A model with non-finite numbers is refused (``NaN`` is not
        JSON), and so is a path that is a folder.
        """
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        if path.is_dir():
            raise ScoreModelError(f"{path}: is a folder; expected a model file name")
        d = self.to_dict()
        try:
            text = json.dumps(d, indent=1, allow_nan=False)
        except (ValueError, TypeError) as e:
            raise ScoreModelError(f"{path}: not written: the model has non-finite numbers "
                                  f"or values JSON cannot hold ({e})") from e
        return atomic_write_text(path, text)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> ScoreModel:
        try:
            if d.get("format") != FORMAT:
                raise ScoreModelError(f"{source}: expected format {FORMAT!r}, "
                                      f"got {d.get('format')!r}")
            m = cls(features=list(d["features"]), mean=np.asarray(d["mean"], float),
                    std=np.asarray(d["std"], float), weights=np.asarray(d["weights"], float),
                    thresholds=np.asarray(d["thresholds"], float),
                    classes=[int(c) for c in d["classes"]], meta=dict(d.get("meta", {})))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ScoreModelError):
                raise
            raise ScoreModelError(f"{source}: not a gaitlive score model ({e})") from e
        n = len(m.features)
        for name in ("mean", "std", "weights", "thresholds"):
            v = getattr(m, name)
            if v.ndim != 1 or not np.all(np.isfinite(v)):
                raise ScoreModelError(f"{source}: {name!r} must be a list of finite numbers")
        if not (len(m.mean) == len(m.std) == len(m.weights) == n):
            raise ScoreModelError(f"{source}: features, mean, std and weights must have the "
                                  f"same length ({n})")
        if np.any(m.std <= 0):
            raise ScoreModelError(f"{source}: 'std' must be > 0")
        if len(m.classes) < 2 or np.any(np.diff(m.classes) <= 0):
            raise ScoreModelError(f"{source}: 'classes' must be at least two increasing "
                                  f"scores, got {m.classes}")
        if len(m.thresholds) != len(m.classes) - 1 or np.any(np.diff(m.thresholds) < 0):
            raise ScoreModelError(f"{source}: expected {len(m.classes) - 1} increasing "
                                  "thresholds")
        return m


def load_score_model(path: str | os.PathLike[str]) -> ScoreModel:
    """Read a score model JSON file.

    Raises
    ------
    ScoreModelError
        When the file is missing or is not a score model.
    """
    path = Path(path)
    if path.is_dir():
        raise ScoreModelError(f"{path}: is a folder; expected a score model file (.json, "
                              f"written by 'gaitlive score fit')")
    if not path.is_file():
        raise ScoreModelError(f"{path}: score model file not found")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ScoreModelError(f"{path}: not valid JSON ({e})") from e
    return ScoreModel.from_dict(d, source=str(path))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def round_scores(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Round continuous scores to the nearest class, halves up (2.5 -> 3, 1.84 -> 2).

    Never truncation: ``int(1.84)`` would be 1. NaN stays NaN (the result is float).
    """
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _integer_scores(y: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    """``y`` as an int array; non-finite or non-integer values are an error, not truncated."""
    a = np.asarray(y)
    if a.dtype.kind in "iub":
        return a.astype(int)
    try:
        f = a.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be integer scores ({e})") from e
    bad = ~np.isfinite(f) | (f != np.round(f))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what} must be integer scores (classes of an ordinal scale), "
                         f"got {f[i]:g} at position {i}; round automatic scores with "
                         "round_scores()")
    return f.astype(int)


def fit_score_model(X: np.ndarray, y: Sequence[int], features: Sequence[str], *,
                    classes: Sequence[int] | None = None, l2: float = 1.0,
                    meta: dict[str, Any] | None = None) -> ScoreModel:
    """Fit a cumulative-link logistic model by penalised maximum likelihood.

    Parameters
    ----------
    X
        ``(n, n_features)`` pass features (NaN allowed: imputed with the mean).
    y
        Integer scores.
    features
        Names of the columns of ``X``.
    classes
        All score classes of the scale (default: the sorted unique ``y``); classes
        never seen still get a cut point, pushed to the edge by the data.
    l2
        Ridge penalty on the weights (in standardised units); larger = smoother.

    Returns
    -------
    ScoreModel
    """
    from scipy.optimize import minimize

    X = np.asarray(X, dtype=np.float64)
    X = np.where(np.isfinite(X), X, np.nan)  # inf is missing too (imputed, not a mean of inf)
    y = _integer_scores(y, "y")
    try:
        l2_ok = math.isfinite(float(l2)) and float(l2) >= 0
    except (TypeError, ValueError):
        l2_ok = False
    if not l2_ok:
        raise ValueError(f"l2: expected a finite number >= 0, got {l2!r}")
    l2 = float(l2)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, n_features) with one row per score, got {X.shape} "
                         f"and {len(y)} scores")
    if len(y) < 3:
        raise ValueError(f"need at least 3 scored passes to fit a score model, got {len(y)}")
    classes = sorted(set(int(c) for c in (classes if classes is not None else y)))
    if len(classes) < 2:
        raise ValueError(f"need at least two different scores to fit, got only {classes}")
    missing = sorted(set(y.tolist()) - set(classes))
    if missing:
        raise ValueError(f"scores {missing} are not in the classes {classes}")
    with np.errstate(all="ignore"):
        mean = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    # a feature (nearly) constant over the passes carries nothing: a relative floor keeps
    # round-off from blowing it up to z-scores of 1e8
    std = np.where(np.isfinite(std) & (std > 1e-9 * np.maximum(np.abs(mean), 1.0)), std, 1.0)
    Z = _standardise(X, mean, std)  # as when predicting
    yi = np.searchsorted(classes, y)
    K = len(classes)
    n, d = Z.shape

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = p[:d]
        th = np.cumsum(np.concatenate([[p[d]], np.exp(p[d + 1:])]))
        return w, th

    def nll(p: np.ndarray) -> tuple[float, np.ndarray]:
        """Penalised negative log-likelihood and its analytic gradient."""
        w, th = unpack(p)
        eta = Z @ w
        th_ext = np.concatenate([[-np.inf], th, [np.inf]])
        a = th_ext[yi + 1] - eta  # upper cut point of each row's class
        b = th_ext[yi] - eta  # lower
        Fa, Fb = _sigmoid(a), _sigmoid(b)
        fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)
        pr = np.clip(Fa - Fb, 1e-12, None)
        value = float(-np.sum(np.log(pr)) + 0.5 * l2 * w @ w)
        g_eta = (fa - fb) / pr
        grad_w = Z.T @ g_eta + l2 * w
        # d/d th_k: rows whose upper cut is k (index yi == k) and lower cut is k (yi == k+1)
        g_th = np.zeros(K - 1)
        np.add.at(g_th, yi[yi < K - 1], -(fa / pr)[yi < K - 1])
        np.add.at(g_th, yi[yi > 0] - 1, (fb / pr)[yi > 0])
        tail = np.cumsum(g_th[::-1])[::-1]  # sum over k >= j
        grad_q = np.exp(p[d + 1:]) * tail[1:]
        return value, np.concatenate([grad_w, [tail[0]], grad_q])

    # start: cut points at the empirical cumulative logits
    cum = np.clip(np.array([(yi <= k).mean() for k in range(K - 1)]), 0.02, 0.98)
    th0 = np.log(cum / (1 - cum))
    th0 = np.maximum.accumulate(th0 + np.arange(K - 1) * 1e-3)
    p0 = np.concatenate([np.zeros(d), [th0[0]], np.log(np.maximum(np.diff(th0), 1e-2))])
    res = minimize(nll, p0, jac=True, method="L-BFGS-B")
    if not res.success:
        log.warning("score model fit did not fully converge: %s", res.message)
    with np.errstate(all="ignore"):
        w, th = unpack(res.x)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(th))):
        raise ValueError(f"score model fit failed ({res.message}): non-finite weights or "
                         f"cut points (l2 {l2:g}; try a larger l2)")
    return ScoreModel(features=list(features), mean=mean, std=std, weights=w, thresholds=th,
                      classes=classes, meta=dict(meta or {}))


def cross_validated_predictions(X: np.ndarray, y: Sequence[int], features: Sequence[str], *,
                                folds: int = 5, l2: float = 1.0, seed: int = 0,
                                classes: Sequence[int] | None = None,
                                groups: Sequence[Any] | None = None) -> np.ndarray:
    """Out-of-fold predicted classes (leave-one-out when ``folds >= n``).

    ``groups`` (e.g. the video or bird of each pass) keeps the passes of one group in
    one fold: passes of the same bird scored once by a human must not be fitted on and
    tested on together (the agreement would be inflated). Leave-one-group-out when
    ``folds`` >= the number of groups."""
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, LeaveOneOut

    X = np.asarray(X, dtype=np.float64)
    y = _integer_scores(y, "y")
    if folds < 2:
        raise ValueError(f"folds: expected at least 2, got {folds}")
    n = len(y)
    if groups is not None:
        groups = np.asarray([str(g) for g in groups])
        if len(groups) != n:
            raise ValueError(f"groups: expected one per score ({n}), got {len(groups)}")
    n_units = len(set(groups.tolist())) if groups is not None else n
    what = "groups" if groups is not None else "passes"
    if n_units < 2:
        raise ValueError(f"cross-validation: needs at least 2 {what}, got {n_units}")
    if groups is None:
        splitter = LeaveOneOut() if folds >= n else KFold(folds, shuffle=True,
                                                          random_state=seed)
        splits = list(splitter.split(X))
    else:
        splitter = LeaveOneGroupOut() if folds >= n_units else GroupKFold(
            folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(X, groups=groups))
    smallest = min(len(tr) for tr, _te in splits)  # passes left to fit a fold on
    if smallest < 3:
        raise ValueError(
            f"cross-validation: {n} passes"
            + (f" ({n_units} groups)" if groups is not None else "")
            + f" in {min(folds, n_units)} folds leave {smallest} passes to fit on in a fold, "
            "and a score model needs at least 3; "
            + (f"use more folds (--folds {n_units}: leave-one-"
               + ("group-" if groups is not None else "") + "out) or more passes"
               if folds < n_units and n - math.ceil(n / n_units) >= 3
               else ("score passes of more birds or videos (keys): the passes of a key "
                     "share a fold" if groups is not None
                     else "score more passes (at least 4)")))
    pred = np.zeros(len(y), dtype=int)
    classes = sorted(set(classes) if classes is not None else set(y.tolist()))
    for tr, te in splits:
        if len(set(y[tr].tolist())) < 2:
            pred[te] = int(round_scores(np.mean(y[tr])))  # halves up, as everywhere
            continue
        m = fit_score_model(X[tr], y[tr], features, l2=l2, classes=classes)
        pred[te] = m.predict(X[te])[1]
    return pred


def gwet_ac1(a: Sequence[int], b: Sequence[int],
             categories: Sequence[int] | None = None) -> float:
    """Gwet's AC1 agreement coefficient of two raters (nominal categories).

    ``AC1 = (p_o - p_e) / (1 - p_e)`` with ``p_e = sum_k pi_k (1 - pi_k) / (K - 1)``,
    ``pi_k`` the mean of the two raters' proportions of category ``k`` and ``K`` the
    number of categories of the scale (Gwet 2008): ``categories`` when given (with any
    other score seen), else the scores seen. Unlike kappa it stays meaningful when one
    category dominates.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    cats = np.union1d(np.union1d(a, b), np.asarray(categories if categories is not None
                                                   else [], dtype=a.dtype))
    K = len(cats)
    po = float(np.mean(a == b))
    if K < 2:
        return 1.0 if po == 1.0 else float("nan")
    pi = np.array([(np.mean(a == c) + np.mean(b == c)) / 2 for c in cats])
    pe = float(np.sum(pi * (1 - pi)) / (K - 1))
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


#: the most classes compute_agreement spans between the lowest and highest score seen when
#: not given the scale's labels
MAX_SCALE_SPAN = 100


def compute_agreement(auto: Sequence[int], human: Sequence[int],
                      labels: Sequence[int] | None = None) -> dict[str, Any]:
    """Agreement between automatic and human scores.

    ``auto`` may be continuous: it is rounded to the nearest class (:func:`round_scores`,
    halves up, never truncated). ``human`` must be integer scores (an ordinal scale): a
    fraction is an error. NaN in either is an error (leave unscored passes out first).

    Returns
    -------
    dict
        ``n``, ``exact`` (fraction equal), ``within_one``, ``kappa_quadratic``,
        ``spearman`` (rho), ``spearman_p``, ``gwet_ac1``, ``labels`` and ``confusion``
        (rows human, columns auto, as lists). ``labels`` are the scale's classes: the
        given ones (with any other score seen), else every integer from the lowest score
        seen to the highest, so kappa weighs a disagreement by the score difference and
        AC1 counts every category between even when one is never used.
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    a_f = np.asarray(auto, dtype=np.float64)
    if not np.all(np.isfinite(a_f)):
        raise ValueError("automatic scores must be finite (leave unscored passes out), got "
                         f"{int((~np.isfinite(a_f)).sum())} NaN/inf")
    a = round_scores(a_f).astype(int)
    h = _integer_scores(human, "human scores")
    if len(a) != len(h) or len(a) == 0:
        raise ValueError(f"need the same non-zero number of automatic and human scores, got "
                         f"{len(a)} and {len(h)}")
    seen = set(a.tolist()) | set(h.tolist())
    # the scale's classes (kappa weighs by score difference, AC1 counts the categories):
    # every score from the lowest to the highest when not given, not only those seen
    if labels is None and max(seen) - min(seen) > MAX_SCALE_SPAN:
        raise ValueError(f"scores span {min(seen)}..{max(seen)}, more than {MAX_SCALE_SPAN} "
                         "classes: give the scale's labels (are these scores of one scale?)")
    labels = sorted(set(labels) | seen if labels is not None
                    else range(min(seen), max(seen) + 1))
    with np.errstate(all="ignore"):
        kappa = cohen_kappa_score(h, a, weights="quadratic", labels=labels) \
            if len(set(a.tolist()) | set(h.tolist())) > 1 else float("nan")
        rho = spearmanr(a, h) if len(set(a.tolist())) > 1 and len(set(h.tolist())) > 1 \
            else None
    return {
        "n": int(len(a)),
        "exact": float(np.mean(a == h)),
        "within_one": float(np.mean(np.abs(a - h) <= 1)),
        "kappa_quadratic": float(kappa),
        "spearman": float(rho.statistic) if rho is not None else float("nan"),
        "spearman_p": float(rho.pvalue) if rho is not None else float("nan"),
        "gwet_ac1": gwet_ac1(a, h, labels),
        "labels": [int(x) for x in labels],
        "confusion": confusion_matrix(h, a, labels=labels).tolist(),
    }


def format_agreement(ag: Mapping[str, Any]) -> str:
    """A human-readable agreement report (what ``gaitlive score`` prints)."""
    lines = [f"passes            {ag['n']}",
             f"exact agreement   {ag['exact']:.1%}",
             f"within one point  {ag['within_one']:.1%}",
             f"weighted kappa    {ag['kappa_quadratic']:.3f}  (quadratic)",
             f"Spearman rho      {ag['spearman']:.3f}  (p = {ag['spearman_p']:.3g})",
             f"Gwet's AC1        {ag['gwet_ac1']:.3f}",
             "confusion (rows: human, columns: automatic)",
             "      " + " ".join(f"{c:>4}" for c in ag["labels"])]
    for c, row in zip(ag["labels"], ag["confusion"], strict=True):
        lines.append(f"{c:>4}  " + " ".join(f"{v:>4}" for v in row))
    return "\n".join(lines)


def plot_confusion(ag: Mapping[str, Any], path: str | os.PathLike[str],
                   title: str = "") -> Path:
    """Save the confusion matrix of :func:`compute_agreement` as a PNG (``.png`` is
    appended to a name without a suffix; the path written is returned)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(ag["confusion"])
    labels = ag["labels"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), [str(c) for c in labels])
    ax.set_yticks(range(len(labels)), [str(c) for c in labels])
    ax.set_xlabel("automatic score")
    ax.set_ylabel("human score")
    kap = ag["kappa_quadratic"]
    ax.set_title(title or (f"n={ag['n']}  exact {ag['exact']:.0%}  kappa {kap:.2f}"
                           if math.isfinite(kap) else f"n={ag['n']}"))
    fig.tight_layout()
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    if path.is_dir():
        plt.close(fig)
        raise ValueError(f"{path}: is a folder; expected an image file name (.png)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------
# Tables: passes from ``gaitlive analyze`` joined with human scores
# --------------------------------------------------------------------------------------

NON_FEATURES = {"video", "individual", "pass_id", "start_frame", "end_frame", "n_steps",
                "score", "score_class", "confidence", "scored", "reason", "camera_id",
                "duration_s", "stopped_s"}


def read_table(path: str | os.PathLike[str], keys: Sequence[str] = ()):  # -> pd.DataFrame
    """Read a CSV table with the ``keys`` columns (any case) and every column that looks
    like an id kept as text (so that ``001`` stays ``001``)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        hint = ("; its table of all passes is passes.csv"
                if (path / "passes.csv").is_file() else "")
        raise ScoreModelError(f"{path}: is a folder; expected a CSV file{hint}")
    if not path.is_file():
        raise ScoreModelError(f"{path}: CSV file not found")
    try:
        head = pd.read_csv(path, nrows=0)
    except Exception as e:
        raise ScoreModelError(f"{path}: cannot read as CSV ({e})") from e
    names = {"video", "id", "file", "name", "pass", "key",
             *(part.strip().lower() for k in keys if k for part in k.split(","))}
    text = {c: str for c in head.columns if str(c).lower() in names}
    try:
        return pd.read_csv(path, dtype=text)
    except Exception as e:
        reason = " ".join(str(e).split())  # pandas' C-parser text ends in a line break
        raise ScoreModelError(f"{path}: cannot read as CSV ({reason})") from e


def _find_col(df, name: str, path: str) -> str:
    if name in df:
        return name
    for c in df.columns:
        if str(c).lower() == name.lower():
            return str(c)
    raise ScoreModelError(f"{path}: no column {name!r} (columns: {list(df.columns)})")


def _key_columns(df, key: str, path: str) -> list[str]:
    """The columns of a join key: one name, or several separated by commas (any case)."""
    names = [k.strip() for k in str(key).split(",") if k.strip()]
    if not names:
        raise ScoreModelError(f"{path}: empty join key {key!r}; expected a column name, or "
                              "several separated by commas (e.g. video,pass_id)")
    return [_find_col(df, n, path) for n in names]


def _key_text(df, cols: Sequence[str]):  # -> pd.Series
    """One key per row from the key columns (text; a tuple of texts for several): whole
    numbers without a decimal point (``3``, ``3.0`` and ``"3.0"`` are pass 3: a gap makes
    a column float, a spreadsheet writes 3.0), text ids as they are (``003`` stays)."""
    import pandas as pd

    def text(col):
        v = df[col]
        if pd.api.types.is_numeric_dtype(v) and not pd.api.types.is_bool_dtype(v):
            return v.map(lambda x: "" if pd.isna(x) else str(int(x))
                         if float(x).is_integer() else repr(float(x)))
        # "3.0" (a spreadsheet's export) is 3; "003" keeps its zeros (an id)
        return v.astype(str).str.strip().str.replace(r"^(-?\d+)\.0*$", r"\1", regex=True)

    if len(cols) == 1:
        return text(cols[0])
    # several columns: a tuple per row (joined text could collide: a/b + 1 and a + b/1)
    parts = [text(c) for c in cols]
    return pd.Series(list(zip(*parts, strict=True)), index=df.index, dtype=object)


def _check_human_scores(human, label: str, k2: str, keys, path: str,
                        scale: tuple[int, int] | None, scale_note: str) -> None:
    """Every non-empty cell of the human score column must be an integer on the scale;
    the first bad one is an error naming the file, column, line, key (``k2``: its
    column(s), ``keys``: each row's key) and value."""
    import pandas as pd

    raw = human[label]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = raw.astype(str).str.strip()
    empty = (raw.isna() | text.eq("")).to_numpy()
    expected = (f"expected integer scores {scale[0]}-{scale[1]}{scale_note}" if scale
                else "expected integer scores")

    def where(i: int) -> str:
        # line numbers as an editor shows them: the header is line 1
        return f"{path}: column {label!r}, line {i + 2} ({k2} {str(keys.iloc[i])!r})"

    bad = np.flatnonzero(np.isnan(num) & ~empty)
    if len(bad):
        i = int(bad[0])
        raise ScoreModelError(f"{where(i)}: {raw.iloc[i]!r} is not a number; {expected} "
                              "(choose the human score column with --label)")
    bad = np.flatnonzero(~empty & (~np.isfinite(num) | (num != np.round(num))))
    if len(bad):
        i = int(bad[0])
        raise ScoreModelError(
            f"{where(i)}: {num[i]:g} is not an integer ({len(bad)} of {len(raw)} rows are "
            f"not); human scores are classes of an ordinal scale: {expected}. Is this a "
            "column of automatic scores? Choose the human score column with --label")
    if scale is not None:
        bad = np.flatnonzero(~empty & ((num < scale[0]) | (num > scale[1])))
        if len(bad):
            i = int(bad[0])
            raise ScoreModelError(f"{where(i)}: score {num[i]:g} is outside the scale "
                                  f"({len(bad)} of {len(raw)} rows are); {expected}")
    if empty.all():
        raise ScoreModelError(f"{path}: column {label!r} has no human scores (all "
                              f"{len(raw)} rows empty); choose the column with --label")


def join_scores(passes, human, key: str, human_key: str | None, label: str | None,
                passes_path: str, human_path: str, suffix: str = "",
                scale: tuple[int, int] | None = None, scale_note: str = ""):
    """Join a passes table with a human-score table on their key columns.

    Returns the joined DataFrame and the name of the human score column in it (int).
    Passes without a human score, human scores without a pass and empty human scores
    are reported and left out. A human score that is not a number, not an integer or
    (with ``scale = (lo, hi)``) outside the scale raises :class:`ScoreModelError` naming
    the file, column, line and value (``scale_note`` is appended to the expected range,
    e.g. `` (profile broiler-side)``).
    """
    import pandas as pd

    k1s = _key_columns(passes, key, passes_path)
    k2s = _key_columns(human, human_key or key, human_path)
    if len(k1s) != len(k2s):
        raise ScoreModelError(f"join keys {','.join(k1s)} ({passes_path}) and "
                              f"{','.join(k2s)} ({human_path}) have different numbers of "
                              "columns; expected the same (--key, --human-key)")
    k1, k2 = ",".join(k1s), ",".join(k2s)
    if label is None:
        for cand in ("score", "hard_vote", "human_score", "gait_score"):
            hit = [c for c in human.columns if str(c).lower() == cand]
            if hit:
                label = str(hit[0])
                break
        else:
            others = [str(c) for c in human.columns if str(c) not in k2s]
            if not others:
                raise ScoreModelError(
                    f"{human_path}: no human score column (columns: {list(human.columns)}; "
                    f"{k2!r} is the key): expected a column 'score' (or hard_vote, "
                    "human_score, gait_score), or name it with --label")
            label = others[-1]  # the last column that is not the key
    label = _find_col(human, label, human_path)
    human_keys = _key_text(human, k2s)
    _check_human_scores(human, label, k2, human_keys, human_path, scale, scale_note)
    left = passes.copy()
    left["_key"] = _key_text(left, k1s)
    # cross-validation groups: the first key column (with video,pass_id: the video, whose
    # passes must not be both fitted on and tested on)
    left["_group"] = left["_key"] if len(k1s) == 1 else _key_text(left, k1s[:1])
    label_out = label + (suffix or "_human") if label in left else label
    right = pd.DataFrame({"_key": human_keys, label_out: human[label]})
    if right["_key"].duplicated().any():
        dups = right.loc[right["_key"].duplicated(), "_key"].tolist()
        raise ScoreModelError(
            f"{human_path}: duplicate keys in column {k2!r}: {dups[:5]}; one human score "
            "per key is expected (scores per pass: join on several columns, e.g. --key "
            "video,pass_id)")
    df = left.merge(right, on="_key", how="inner")
    n_un = len(set(left["_key"]) - set(right["_key"]))
    n_uh = len(set(right["_key"]) - set(left["_key"]))
    if n_un or n_uh:
        log.warning("join on %s/%s: %d pass keys without a human score, %d human scores "
                    "without a pass", k1, k2, n_un, n_uh)
    if df.empty:
        raise ScoreModelError(
            f"no pass of {passes_path} (column {k1!r}: {left['_key'].head(3).tolist()}) "
            f"matched a human score of {human_path} (column {k2!r}: "
            f"{right['_key'].head(3).tolist()}); check --key/--human-key")
    df[label_out] = pd.to_numeric(df[label_out], errors="coerce")
    bad = df[label_out].isna()
    if bad.all():
        raise ScoreModelError(
            f"{human_path}: column {label!r} is empty for all {len(df)} rows that matched a "
            f"pass of {passes_path}: no usable human scores")
    if bad.any():
        log.warning("%s: %d joined rows have an empty human score (column %r); left out",
                    human_path, int(bad.sum()), label)
        df = df[~bad]
    df = df.reset_index(drop=True)
    df[label_out] = df[label_out].astype(int)
    return df, label_out


def feature_columns(df, max_missing: float = 0.3, exclude: Sequence[str] = ()) -> list[str]:
    """Numeric feature columns with values in most rows and some variation (never the
    id/score columns of a passes table, nor ``exclude``, e.g. the human score)."""
    import pandas as pd

    out = []
    skip = NON_FEATURES | set(exclude)
    for c in df.columns:
        if c in skip or c.startswith("_") or not pd.api.types.is_numeric_dtype(df[c]):
            continue
        v = df[c].to_numpy(dtype=float)
        ok = np.isfinite(v)  # inf is missing, like NaN
        if ok.mean() >= 1 - max_missing and ok.sum() >= 2 and np.std(v[ok]) > 0:
            out.append(str(c))
    return out
