"""Evaluate pose models against labelled frames.

Two ways, same metrics:

* :func:`evaluate_project`: a trained DeepLabCut 3 project shuffle, on its own train/test
  split (predictions from DeepLabCut's ``evaluate_snapshot``).
* :func:`evaluate_model`: an exported DLC-Live model (what ``gaitlive run`` uses, through
  :func:`gaitlive.pose.load_runner`, with its resize/cropping) on the labelled frames of
  another project (a held-out set: new seed, new backgrounds).

Metrics (:func:`compute_pose_metrics`), overall and per bodypart:

* ``rmse``: root-mean-square Euclidean error in pixels over labelled keypoints;
* ``rmse_pcutoff``: the same over keypoints predicted with likelihood >= pcutoff;
* ``pck``: fraction of labelled keypoints whose error is <= ``pck_fraction`` x body length;
* ``detected``: fraction of labelled keypoints predicted with likelihood >= pcutoff.

Body length of a frame (:func:`compute_body_length`), configurable:

* ``"extent"`` (default): the diagonal of the bounding box of the frame's labelled
  keypoints (for a side-view bird: about head-to-foot);
* ``"a-b,c-d,..."``: the sum of the listed segment lengths (e.g. the leg segments
  ``left_knee-left_hock,left_hock-left_foot``) -- segments with a missing end are skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitlive.fileio import atomic_write_bytes, check_output_dir, file_digest, output_dir

log = logging.getLogger(__name__)

__all__ = ["PoseMetrics", "compute_pose_metrics", "compute_body_length", "parse_body_length",
           "evaluate_project", "evaluate_model", "write_metrics_csv", "write_gallery",
           "EvaluationResult", "load_labels", "MetricDifference", "compare_pose_metrics",
           "write_compare_csv"]


@dataclass
class PoseMetrics:
    """Pose errors of one split (pixels; fractions in 0..1)."""

    n_frames: int
    n_keypoints: int
    rmse: float
    rmse_pcutoff: float
    pck: float
    detected: float
    per_bodypart: dict[str, dict[str, float]] = field(default_factory=dict)
    pcutoff: float = 0.6
    pck_fraction: float = 0.1
    body_length: str = "extent"
    mean_body_length: float = float("nan")
    #: 95 % frame-bootstrap intervals: ``{"all" or bodypart: {"rmse" | "rmse_pcutoff" |
    #: "pck" | "detected": (low, high)}}``; empty when not computed
    ci95: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {"n_frames": self.n_frames, "n_keypoints": self.n_keypoints,
             "rmse_px": _r(self.rmse), "rmse_pcutoff_px": _r(self.rmse_pcutoff),
             f"pck@{self.pck_fraction:g}": _r(self.pck, 4), "detected": _r(self.detected, 4),
             "pcutoff": self.pcutoff, "body_length": self.body_length,
             "mean_body_length_px": _r(self.mean_body_length),
             "per_bodypart": {b: {k: _r(v, 4) for k, v in d.items()}
                              for b, d in self.per_bodypart.items()}}
        if "all" in self.ci95:
            c = self.ci95["all"]
            d["ci95"] = {"rmse_px": [_r(v) for v in c["rmse"]],
                         "rmse_pcutoff_px": [_r(v) for v in c["rmse_pcutoff"]],
                         f"pck@{self.pck_fraction:g}": [_r(v, 4) for v in c["pck"]],
                         "detected": [_r(v, 4) for v in c["detected"]],
                         "method": "frame bootstrap, 2.5-97.5 percentiles"}
        return d


def _r(v: float, nd: int = 2) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


def parse_body_length(spec: str, bodyparts: Sequence[str]) -> list[tuple[int, int]] | None:
    """Parse a body-length spec: ``"extent"`` -> None, ``"a-b,c-d"`` -> index pairs.

    Raises
    ------
    ValueError
        Unknown bodypart or malformed spec (the message names it and the choices).
    """
    spec = spec.strip()
    if spec in ("", "extent"):
        return None
    pairs = []
    for seg in spec.split(","):
        ends = seg.strip().split("-")
        if len(ends) != 2 or not all(ends):
            raise ValueError(f"--body-length: expected 'extent' or segments like "
                             f"'a-b,c-d', got segment {seg!r}")
        for e in ends:
            if e not in bodyparts:
                raise ValueError(f"--body-length: unknown bodypart {e!r}; expected one of "
                                 f"{list(bodyparts)}")
        pairs.append((bodyparts.index(ends[0]), bodyparts.index(ends[1])))
    return pairs


def compute_body_length(gt: np.ndarray, segments: list[tuple[int, int]] | None) -> np.ndarray:
    """Body length of every frame.

    Parameters
    ----------
    gt : ndarray
        ``(n_frames, n_kp, 2)`` labelled positions, NaN where unlabelled.
    segments : list of (int, int) or None
        None: bounding-box diagonal of the labelled keypoints (NaN with fewer than two);
        else sum of segment lengths.

    Returns
    -------
    ndarray
        ``(n_frames,)``; NaN where it cannot be computed.
    """
    if segments is None:
        with np.errstate(invalid="ignore"), _quiet():
            span = np.nanmax(gt, axis=1) - np.nanmin(gt, axis=1)
        length = np.hypot(span[:, 0], span[:, 1])
        length[np.isfinite(gt).all(axis=-1).sum(axis=1) < 2] = np.nan  # no extent
        return length
    total = np.zeros(len(gt))
    any_ok = np.zeros(len(gt), bool)
    for a, b in segments:
        d = np.hypot(*(gt[:, a] - gt[:, b]).T)
        ok = np.isfinite(d)
        total[ok] += d[ok]
        any_ok |= ok
    total[~any_ok] = np.nan
    return total


class _quiet:
    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a: object) -> None:
        self._w.__exit__(*a)


def compute_pose_metrics(gt: np.ndarray, pred: np.ndarray, bodyparts: Sequence[str], *,
                         pcutoff: float = 0.6, pck_fraction: float = 0.1,
                         body_length: str = "extent", bootstrap: int = 1000,
                         seed: int = 0) -> PoseMetrics:
    """Compare predictions with labels.

    Parameters
    ----------
    gt : ndarray
        ``(n_frames, n_kp, 2)`` labels (NaN = unlabelled).
    pred : ndarray
        ``(n_frames, n_kp, 3)`` predictions x, y, likelihood (NaN = missing).
    bodyparts : sequence of str
        Names of the keypoint columns.
    pcutoff : float
        Likelihood threshold for ``rmse_pcutoff`` and ``detected``.
    pck_fraction : float
        PCK threshold as a fraction of the body length.
    body_length : str
        ``"extent"`` or segments ``"a-b,c-d"`` (see :func:`compute_body_length`).
    bootstrap : int
        Resamples of whole frames for the 95 % intervals in ``PoseMetrics.ci95`` (0: none).
        A few gross misses carry the RMSE, so it moves a lot with the frames drawn.
    seed : int
        Seed of the resampling (the intervals are reproducible).

    Returns
    -------
    PoseMetrics
    """
    err, labelled, confident, err_l, thr, blen = _errors(gt, pred, bodyparts, pcutoff,
                                                         pck_fraction, body_length)

    def stats(mask_cols: np.ndarray | slice) -> dict[str, float]:
        e = err_l[:, mask_cols]
        lab = labelled[:, mask_cols]
        conf = confident[:, mask_cols]
        n = int(lab.sum())
        if n == 0:
            return {"rmse": float("nan"), "rmse_pcutoff": float("nan"), "pck": float("nan"),
                    "detected": float("nan"), "n": 0}
        e_raw = err[:, mask_cols]
        fin = e_raw[lab & np.isfinite(e_raw)]  # RMSE over predicted keypoints
        rmse = float(np.sqrt(np.mean(np.square(fin)))) if fin.size else float("nan")
        rp = float(np.sqrt(np.mean(np.square(e_raw[conf])))) if conf.any() else float("nan")
        t = np.broadcast_to(thr, err_l.shape)[:, mask_cols]
        ok = lab & np.isfinite(t)
        pck = float(np.mean(e[ok] <= t[ok])) if ok.any() else float("nan")
        return {"rmse": rmse, "rmse_pcutoff": rp, "pck": pck,
                "detected": float(conf.sum() / n), "n": n}

    overall = stats(slice(None))
    per = {}
    for k, b in enumerate(bodyparts):
        per[b] = stats(np.array([k]))
    ci95: dict[str, dict[str, tuple[float, float]]] = {}
    if bootstrap > 0 and len(err) > 1:
        parts = _count_parts(err, labelled, confident, err_l, thr)
        for name, vals in _resampled(parts, list(bodyparts), bootstrap, seed).items():
            ci95[name] = {k: _interval(v) for k, v in vals.items()}
    return PoseMetrics(n_frames=len(gt), n_keypoints=int(labelled.sum()),
                       rmse=overall["rmse"], rmse_pcutoff=overall["rmse_pcutoff"],
                       pck=overall["pck"], detected=overall["detected"], per_bodypart=per,
                       pcutoff=pcutoff, pck_fraction=pck_fraction, body_length=body_length,
                       mean_body_length=float(np.nanmean(blen)) if np.isfinite(blen).any()
                       else float("nan"), ci95=ci95)


def _errors(gt: np.ndarray, pred: np.ndarray, bodyparts: Sequence[str], pcutoff: float,
            pck_fraction: float, body_length: str) -> tuple[np.ndarray, ...]:
    """Per-keypoint errors ``(n_frames, n_kp)`` and the masks the metrics are made of:
    ``err, labelled, confident, err_l`` (a labelled keypoint without a prediction is an
    infinite error: a PCK miss), the PCK threshold ``thr`` and the body lengths."""
    gt = np.asarray(gt, float)
    pred = np.asarray(pred, float)
    if gt.shape[:2] != pred.shape[:2] or gt.shape[1] != len(bodyparts):
        raise ValueError(f"labels {gt.shape} and predictions {pred.shape} do not match "
                         f"{len(bodyparts)} bodyparts")
    segs = parse_body_length(body_length, list(bodyparts))
    blen = compute_body_length(gt, segs)
    err = np.hypot(*(pred[..., :2] - gt).transpose(2, 0, 1))  # (n, kp)
    labelled = np.all(np.isfinite(gt), axis=-1)
    like = np.nan_to_num(pred[..., 2], nan=0.0)
    confident = labelled & (like >= pcutoff) & np.isfinite(err)
    err_l = np.where(labelled, np.nan_to_num(err, nan=np.inf), np.nan)  # missing pred = miss
    thr = pck_fraction * blen[:, None]
    return err, labelled, confident, err_l, thr, blen


def _count_parts(err: np.ndarray, labelled: np.ndarray, confident: np.ndarray,
                 err_l: np.ndarray, thr: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame and keypoint, the summands of every metric (float ``(n_frames, n_kp)``):
    RMSE = sqrt(sum sq / sum fin), above pcutoff sqrt(sum sq_c / sum conf), PCK = sum hit /
    sum ok, detected = sum conf / sum lab."""
    fin = labelled & np.isfinite(err)
    sq = np.where(fin, np.square(np.nan_to_num(err)), 0.0)
    t = np.broadcast_to(thr, err_l.shape)
    ok = labelled & np.isfinite(t)
    hit = ok & (np.nan_to_num(err_l, nan=np.inf) <= np.nan_to_num(t, nan=-np.inf))
    parts = {"sq": sq, "fin": fin, "sq_c": np.where(confident, sq, 0.0), "conf": confident,
             "ok": ok, "hit": hit, "lab": labelled}
    return {k: a.astype(float) for k, a in parts.items()}


def _resampled(parts: dict[str, np.ndarray], bodyparts: list[str], n_boot: int, seed: int
               ) -> dict[str, dict[str, np.ndarray]]:
    """The metrics on ``n_boot`` resamples of whole frames (keypoints of one frame share its
    difficulty, so frames, not keypoints, are the unit): ``{"all" or bodypart: {"rmse" |
    "rmse_pcutoff" | "pck" | "detected": (n_boot,)}}``. The resamples depend only on the
    number of frames and ``seed``, so two sets of predictions of the same frames get the
    same resamples (paired)."""
    n, n_kp = next(iter(parts.values())).shape
    rng = np.random.default_rng(seed)
    sums: dict[str, list[np.ndarray]] = {k: [] for k in parts}
    chunk = max(1, min(200, 4_000_000 // max(1, n * n_kp)))  # <= 32 MB per gathered array
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        for k, a in parts.items():
            sums[k].append(a[idx].sum(axis=1))  # (chunk, keypoints)
    S = {k: np.concatenate(v) for k, v in sums.items()}

    def ratio(num: np.ndarray, den: np.ndarray, root: bool = False) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return np.sqrt(r) if root else r

    out = {}
    for name, sel in [("all", slice(None)), *[(b, slice(k, k + 1))
                                               for k, b in enumerate(bodyparts)]]:
        s = {k: v[:, sel].sum(axis=1) for k, v in S.items()}
        out[name] = {"rmse": ratio(s["sq"], s["fin"], root=True),
                     "rmse_pcutoff": ratio(s["sq_c"], s["conf"], root=True),
                     "pck": ratio(s["hit"], s["ok"]),
                     "detected": ratio(s["conf"], s["lab"])}
    return out


def _interval(v: np.ndarray) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of the finite values (NaN, NaN when there are none)."""
    v = v[np.isfinite(v)]
    if not len(v):
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(v, [2.5, 97.5])
    return (float(lo), float(hi))


@dataclass
class MetricDifference:
    """One metric of model B minus model A on the same labelled frames."""

    metric: str  # rmse, rmse_pcutoff, pck, detected
    bodypart: str  # or "all"
    a: float
    b: float
    low: float  # 95 % paired-bootstrap interval of b - a
    high: float

    @property
    def diff(self) -> float:
        return self.b - self.a

    @property
    def verdict(self) -> str:
        """``"B better"``, ``"A better"`` or ``"no clear difference"`` (the interval holds 0)."""
        if not (self.low > 0 or self.high < 0):
            return "no clear difference"
        lower_is_better = self.metric in ("rmse", "rmse_pcutoff")
        return "B better" if (self.high < 0) == lower_is_better else "A better"


def compare_pose_metrics(gt: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                         bodyparts: Sequence[str], *, pcutoff: float = 0.6,
                         pck_fraction: float = 0.1, body_length: str = "extent",
                         bootstrap: int = 1000, seed: int = 0) -> list[MetricDifference]:
    """Paired comparison of two models' predictions of the same labelled frames.

    Each resample of whole frames is scored for both models, so what the frames have in
    common (a hard frame is hard for both) cancels out of the difference; the interval of
    ``B - A`` says whether the difference is more than the frames drawn.

    Parameters
    ----------
    gt : ndarray
        ``(n_frames, n_kp, 2)`` labels (NaN = unlabelled).
    pred_a, pred_b : ndarray
        ``(n_frames, n_kp, 3)`` predictions of model A and model B.
    bodyparts, pcutoff, pck_fraction, body_length
        As :func:`compute_pose_metrics`.
    bootstrap : int
        Number of paired resamples (at least 100).
    seed : int
        Seed of the resampling.

    Returns
    -------
    list of MetricDifference
        RMSE, RMSE above pcutoff, PCK and detected, overall (``"all"``) then per bodypart.
    """
    if bootstrap < 100:
        raise ValueError(f"bootstrap: expected at least 100 resamples, got {bootstrap}")
    if len(gt) < 2:
        raise ValueError(f"compare_pose_metrics: needs at least 2 labelled frames, "
                         f"got {len(gt)}")
    full, boot = {}, {}
    for tag, pred in (("a", pred_a), ("b", pred_b)):
        err, labelled, confident, err_l, thr, _ = _errors(gt, pred, bodyparts, pcutoff,
                                                          pck_fraction, body_length)
        parts = _count_parts(err, labelled, confident, err_l, thr)
        boot[tag] = _resampled(parts, list(bodyparts), bootstrap, seed)
        # the metrics on the frames as they are: the "resample" that is every frame once
        full[tag] = _resampled({k: v.sum(axis=0, keepdims=True) for k, v in parts.items()},
                               list(bodyparts), 1, seed)
    out = []
    for name in ["all", *bodyparts]:
        for metric in ("rmse", "rmse_pcutoff", "pck", "detected"):
            lo, hi = _interval(boot["b"][name][metric] - boot["a"][name][metric])
            out.append(MetricDifference(metric, name, float(full["a"][name][metric][0]),
                                        float(full["b"][name][metric][0]), lo, hi))
    return out


def write_compare_csv(path: str | Path, diffs: Sequence[MetricDifference],
                      names: tuple[str, str]) -> Path:
    """Write the paired comparison, one row per bodypart and metric, atomically: bodypart,
    metric, model_a, model_b, a, b, b_minus_a, low, high, verdict."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["bodypart", "metric", "model_a", "model_b", "a", "b", "b_minus_a", "low",
                "high", "verdict"])
    for d in diffs:
        nd = 4 if d.metric in ("pck", "detected") else 3
        w.writerow([d.bodypart, d.metric, names[0], names[1], _fmt(d.a, nd), _fmt(d.b, nd),
                    _fmt(d.diff, nd), _fmt(d.low, nd), _fmt(d.high, nd), d.verdict])
    return atomic_write_bytes(Path(path), buf.getvalue().encode())


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def write_metrics_csv(path: str | Path, splits: dict[str, PoseMetrics],
                      bodyparts: Sequence[str], *, source: dict[str, str] | None = None
                      ) -> Path:
    """Write one row per (split, bodypart) plus an ``all`` row per split, atomically.

    Columns: split, bodypart, n, rmse_px, rmse_pcutoff_px, pck, detected, pcutoff,
    pck_fraction, body_length, then the 95 % frame-bootstrap intervals rmse_px_lo,
    rmse_px_hi, pck_lo, pck_hi (empty when not computed), then what was evaluated:
    shuffle, snapshot (the snapshot's file name) and snapshot_sha256 (the first 16 hex
    digits of its SHA-256: a later training run's snapshot of the same name differs), from
    ``source`` (empty for an exported model).
    """
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["split", "bodypart", "n", "rmse_px", "rmse_pcutoff_px", "pck", "detected",
                "pcutoff", "pck_fraction", "body_length", "rmse_px_lo", "rmse_px_hi",
                "pck_lo", "pck_hi", "shuffle", "snapshot", "snapshot_sha256"])
    src = [(source or {}).get(k, "") for k in ("shuffle", "snapshot", "snapshot_sha256")]
    nan2 = (float("nan"), float("nan"))
    for split, m in splits.items():
        rows = [("all", {"n": m.n_keypoints, "rmse": m.rmse, "rmse_pcutoff": m.rmse_pcutoff,
                         "pck": m.pck, "detected": m.detected})]
        rows += [(b, m.per_bodypart[b]) for b in bodyparts]
        for b, s in rows:
            ci = m.ci95.get(b, {})
            r_ci, p_ci = ci.get("rmse", nan2), ci.get("pck", nan2)
            w.writerow([split, b, s["n"], _fmt(s["rmse"]), _fmt(s["rmse_pcutoff"]),
                        _fmt(s["pck"], 4), _fmt(s["detected"], 4), m.pcutoff, m.pck_fraction,
                        m.body_length, _fmt(r_ci[0]), _fmt(r_ci[1]), _fmt(p_ci[0], 4),
                        _fmt(p_ci[1], 4), *src])
    return atomic_write_bytes(Path(path), buf.getvalue().encode())


def _fmt(v: float, nd: int = 3) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def write_gallery(path: str | Path, images: Sequence[Path], gt: np.ndarray, pred: np.ndarray,
                  bodyparts: Sequence[str], *, pcutoff: float = 0.6, max_images: int = 12,
                  cols: int = 4, tile_width: int = 320, titles: Sequence[str] | None = None
                  ) -> Path:
    """A PNG grid of labelled frames: ground truth (filled circles) and predictions
    (crosses, hollow when below pcutoff), one colour per bodypart, a line between them.

    Returns
    -------
    Path
        ``path``.
    """
    import cv2

    n = min(len(images), max_images)
    if n == 0:
        raise ValueError(f"{path}: no images to draw")
    idx = np.linspace(0, len(images) - 1, n).round().astype(int)
    tiles = []
    cmap = _colors(len(bodyparts))
    for i in idx:
        img = cv2.imread(str(images[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{images[i]}: cannot read image")
        s = tile_width / img.shape[1]
        img = cv2.resize(img, (tile_width, max(1, round(img.shape[0] * s))),
                         interpolation=cv2.INTER_AREA)
        for k, c in enumerate(cmap):
            g = gt[i, k] * s
            p = pred[i, k, :2] * s
            if np.all(np.isfinite(g)) and np.all(np.isfinite(p)):
                cv2.line(img, _pt(g), _pt(p), c, 1, cv2.LINE_AA)
            if np.all(np.isfinite(g)):
                cv2.circle(img, _pt(g), 3, c, -1, cv2.LINE_AA)
            if np.all(np.isfinite(p)):
                th = 2 if pred[i, k, 2] >= pcutoff else 1
                cv2.drawMarker(img, _pt(p), c, cv2.MARKER_TILTED_CROSS, 8, th, cv2.LINE_AA)
        label = titles[i] if titles is not None else \
            f"{Path(images[i]).parent.name}/{Path(images[i]).name}"
        cv2.putText(img, str(label)[-44:], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    cols = min(cols, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])
    legend = np.zeros((18 * len(bodyparts) + 8, grid.shape[1], 3), np.uint8)
    for k, b in enumerate(bodyparts):
        cv2.circle(legend, (10, 12 + 18 * k), 4, cmap[k], -1)
        cv2.putText(legend, f"{b}  (dot: label, x: prediction)", (20, 16 + 18 * k),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    grid = np.vstack([grid, legend])
    ok, buf = cv2.imencode(".png", grid)
    if not ok:  # pragma: no cover
        raise RuntimeError(f"{path}: PNG encoding failed")
    return atomic_write_bytes(Path(path), buf.tobytes())


def _pt(p: np.ndarray) -> tuple[int, int]:
    return (int(round(float(p[0]))), int(round(float(p[1]))))


def _colors(n: int) -> list[tuple[int, int, int]]:
    import cv2

    hues = np.linspace(0, 170, max(n, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 230, np.uint8), np.full(n, 255, np.uint8)], -1)[None]
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]
    return [tuple(int(v) for v in c) for c in bgr]


# --------------------------------------------------------------------------------------
# Evaluations
# --------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    splits: dict[str, PoseMetrics]
    bodyparts: tuple[str, ...]
    csv: Path
    gallery: Path | None
    out_dir: Path
    snapshot: str = ""
    #: with :func:`evaluate_model`: the labels ``(n, n_kp, 2)`` and predictions
    #: ``(n, n_kp, 3)`` the metrics were computed from (for :func:`compare_pose_metrics`)
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None

    def summary(self) -> str:
        lines = []
        for split, m in self.splits.items():
            lines.append(f"{split:>8}: {m.n_frames} frames, RMSE {m.rmse:.2f} px, "
                         f"RMSE(p>={m.pcutoff:g}) {m.rmse_pcutoff:.2f} px, "
                         f"PCK@{m.pck_fraction:g} {100 * m.pck:.1f}%, "
                         f"detected {100 * m.detected:.1f}%")
            if "all" in m.ci95:
                r, pc = m.ci95["all"]["rmse"], m.ci95["all"]["pck"]
                lines.append(f"{'':>10}95% interval (frame bootstrap): RMSE {r[0]:.2f}-"
                             f"{r[1]:.2f} px, PCK {100 * pc[0]:.1f}-{100 * pc[1]:.1f}%")
            for b in self.bodyparts:
                s = m.per_bodypart[b]
                lines.append(f"{'':>10}{b:<14} RMSE {s['rmse']:7.2f} px  "
                             f"PCK {100 * s['pck']:5.1f}%  detected {100 * s['detected']:5.1f}%")
        return "\n".join(lines)


RESULT_FILES = ("metrics.csv", "gallery.png", "compare.csv")


def keep_earlier_results(out: Path) -> Path | None:
    """Move an earlier evaluation's results in ``out`` (:data:`RESULT_FILES`) to
    ``out/previous/<time>/`` before new ones are written; returns that folder, or None."""
    from gaitlive.fileio import move_to_previous

    dest = move_to_previous([out / n for n in RESULT_FILES], out)
    if dest is not None:
        log.warning("%s: the earlier evaluation's results (%s) were moved to %s", out,
                    ", ".join(sorted(f.name for f in dest.iterdir())), dest)
    return dest


def load_labels(project: str | Path) -> tuple[list[Path], np.ndarray, list[str], Any]:
    """Labelled images and keypoints of a DeepLabCut project (single animal).

    Returns
    -------
    images, gt, bodyparts, info
        Absolute image paths, ``(n, n_kp, 2)`` labels, bodyparts (config order), the
        :class:`gaitlive.offline.project.ProjectInfo`.
    """
    import pandas as pd

    from gaitlive.offline.project import open_project, validate_labels

    info = validate_labels(open_project(project, fix_paths=False), check_images=False)
    frames = [pd.read_hdf(f) for f in info.label_files]
    df = pd.concat(frames)
    images: list[Path] = []
    for idx in df.index:
        parts = idx if isinstance(idx, tuple) else tuple(Path(str(idx)).parts)
        images.append(info.path.joinpath(*[str(x) for x in parts]))
    gt = np.full((len(df), len(info.bodyparts), 2), np.nan)
    bps = df.columns.get_level_values("bodyparts")
    coords = df.columns.get_level_values("coords")
    vals = df.to_numpy(float)
    for k, b in enumerate(info.bodyparts):
        for j, c in enumerate(("x", "y")):
            cols = np.flatnonzero((bps == b) & (coords == c))
            if len(cols):
                gt[:, k, j] = vals[:, cols[0]]
    return images, gt, info.bodyparts, info


def evaluate_project(project: str | Path, *, shuffle: int = 1, trainset_index: int = 0,
                     snapshot_index: int | str = -1, device: str = "auto",
                     pcutoff: float | None = None, pck_fraction: float = 0.1,
                     body_length: str = "extent", out_dir: str | Path | None = None,
                     gallery: bool = True) -> EvaluationResult:
    """Evaluate a trained shuffle of a DeepLabCut project on its train and test frames.

    Predictions come from DeepLabCut's ``evaluate_snapshot`` (which also writes DLC's own
    evaluation files); the metrics, ``metrics.csv`` and ``gallery.png`` (test frames) are
    written to ``out_dir`` (default: the shuffle's DeepLabCut evaluation folder).
    """
    from deeplabcut.core.config import ProjectConfig
    from deeplabcut.pose_estimation_pytorch.apis.evaluation import evaluate_snapshot
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_scorer_name, get_scorer_uid

    from gaitlive.offline.project import open_project, resolve_snapshot
    from gaitlive.pose import check_device

    # the settings first: a bad one must not cost a whole DeepLabCut evaluation
    device = check_device(device)
    if out_dir:
        check_output_dir(out_dir)
    _check_settings(open_project(project, fix_paths=False).bodyparts, pck_fraction,
                    body_length, pcutoff)
    info = open_project(project)
    loader, snapshot = resolve_snapshot(info, shuffle=shuffle, trainset_index=trainset_index,
                                        snapshot_index=snapshot_index)
    loader.model_cfg["device"] = device
    cfg = ProjectConfig.from_any(str(info.config_path))
    scorer = get_scorer_name(cfg=cfg, shuffle=shuffle, train_fraction=loader.train_fraction,
                             snapshot_uid=get_scorer_uid(snapshot, None), modelprefix="")
    pc = float(cfg.get("pcutoff", 0.6) if pcutoff is None else pcutoff)
    loader.evaluation_folder.mkdir(parents=True, exist_ok=True)
    df_pred = evaluate_snapshot(cfg=cfg, loader=loader, snapshot=snapshot, scorer=scorer,
                                per_keypoint_evaluation=True, pcutoff=pc, show_errors=False)

    images, gt, bodyparts, _ = load_labels(info.path)
    index = [tuple(p.relative_to(info.path).parts) for p in images]
    pred = _predictions_from_df(df_pred, index, bodyparts)
    splits_idx = {"train": set(), "test": set()}
    for split in ("train", "test"):
        for img in loader.image_filenames(split):
            splits_idx[split].add(tuple(Path(img).resolve().relative_to(info.path).parts))
    splits: dict[str, PoseMetrics] = {}
    test_rows: list[int] = []
    for split in ("train", "test"):
        rows = [i for i, t in enumerate(index) if t in splits_idx[split]]
        if split == "test":
            test_rows = rows
        if not rows:
            continue
        splits[split] = compute_pose_metrics(gt[rows], pred[rows], bodyparts, pcutoff=pc,
                                             pck_fraction=pck_fraction,
                                             body_length=body_length)
    out = output_dir(out_dir) if out_dir else loader.evaluation_folder
    keep_earlier_results(out)
    csv = write_metrics_csv(out / "metrics.csv", splits, bodyparts,
                            source={"shuffle": str(shuffle), "snapshot": snapshot.path.name,
                                    "snapshot_sha256": file_digest(snapshot.path)})
    gal = None
    if gallery:
        rows = test_rows or list(range(len(images)))
        gal = write_gallery(out / "gallery.png", [images[i] for i in rows], gt[rows], pred[rows],
                            bodyparts, pcutoff=pc)
    return EvaluationResult(splits=splits, bodyparts=tuple(bodyparts), csv=csv, gallery=gal,
                            out_dir=out, snapshot=str(snapshot.path))


def _check_settings(bodyparts: Sequence[str], pck_fraction: float, body_length: str,
                    pcutoff: float | None) -> None:
    """Raise a clear ``ValueError`` for a bad PCK fraction, body-length spec (for these
    bodyparts) or pcutoff, before any evaluation work."""
    if not 0 < pck_fraction <= 1:
        raise ValueError(f"--pck: expected a fraction in (0, 1], got {pck_fraction}")
    if pcutoff is not None and not 0 <= pcutoff <= 1:
        raise ValueError(f"--pcutoff: expected a likelihood in [0, 1], got {pcutoff}")
    parse_body_length(body_length, list(bodyparts))


def _predictions_from_df(df: Any, index: list[tuple[str, ...]], bodyparts: Sequence[str]
                         ) -> np.ndarray:
    pred = np.full((len(index), len(bodyparts), 3), np.nan)
    pred[..., 2] = 0.0
    lookup = {}
    for i, idx in enumerate(df.index):
        key = idx if isinstance(idx, tuple) else tuple(Path(str(idx)).parts)
        lookup[tuple(str(x) for x in key)] = i
    bps = df.columns.get_level_values("bodyparts")
    coords = df.columns.get_level_values("coords")
    vals = df.to_numpy(float)
    for r, key in enumerate(index):
        i = lookup.get(tuple(key))
        if i is None:
            continue
        for k, b in enumerate(bodyparts):
            for j, c in enumerate(("x", "y", "likelihood")):
                cols = np.flatnonzero((bps == b) & (coords == c))
                if len(cols):
                    pred[r, k, j] = vals[i, cols[0]]
    return pred


def check_predicts(model: str | Path, bodyparts: Sequence[str], config_path: Path) -> Any:
    """The model card of ``model`` (:func:`gaitlive.pose.read_model_card`), or a one-line
    ``ValueError`` when it does not predict every one of ``bodyparts`` (a project's, named
    by its ``config_path``)."""
    from gaitlive.pose import read_model_card

    card = read_model_card(model)
    missing = [b for b in bodyparts if b not in card.bodyparts]
    if missing:
        raise ValueError(f"{config_path}: bodyparts {missing} are not predicted by {model} "
                         f"(it has {list(card.bodyparts)})")
    return card


def evaluate_model(model: str | Path, labels: str | Path, *, settings: Any = None,
                   pcutoff: float = 0.6, pck_fraction: float = 0.1, body_length: str = "extent",
                   out_dir: str | Path | None = None, gallery: bool = True,
                   max_frames: int | None = None,
                   crop_margin: int | None = None,
                   min_crop: tuple[int, ...] = (),
                   crop_step: int = 1, bird_size: int = 0,
                   max_input_pixels: int = 0, device: str | None = None) -> EvaluationResult:
    """Evaluate an exported model, as ``gaitlive run`` runs it, on a labelled project.

    Parameters
    ----------
    model : str or Path
        Exported model folder (see :func:`gaitlive.pose.load_runner`).
    labels : str or Path
        A DeepLabCut project whose labelled frames are the test set (all of them).
    settings : ModelSettings, optional
        How to run the model (resize ...); default: the model card's resize.
    crop_margin : int, optional
        Infer on the box of each frame's labelled keypoints grown by this many pixels, as
        the live presence crop (``presence.crop``, ``presence.margin``) feeds the model the
        moving bird: still frames have no motion to find it by. None: the whole frame.
    min_crop : tuple of int, optional
        ``(width, height)``: grow each crop to at least this, as ``presence.min_crop``.
    crop_step : int, optional
        Round each crop's sides up to a multiple of this, as ``presence.crop_step``.
    bird_size : int, optional
        With ``crop_margin``: scale a labelled bird larger than this (its keypoints' box,
        larger side) down, as ``presence.bird_size`` does live (margin, min_crop and
        crop_step scale with it). 0: off.
    max_input_pixels : int, optional
        With ``crop_margin``: scale a crop larger than this many pixels down, as
        ``presence.max_input_pixels`` does live. 0: off.
    device : str, optional
        Where the model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``); overrides
        ``settings.device``. The DLC-Live runner does not take ``mps``.
    """
    import cv2

    from gaitlive.config import ModelSettings
    from gaitlive.pose import check_device, load_runner
    from gaitlive.presence import bird_scale, capped_scale, crop_around, scaled_crop_params

    if device is not None and check_device(device) == "mps":
        raise ValueError(f"--device {device}: the DLC-Live runner of an exported model runs "
                         f"on auto, cpu, cuda or cuda:N")
    default_out = (Path(model).parent if Path(model).is_file() else Path(model)) / "evaluation"
    check_output_dir(out_dir or default_out)
    images, gt, bodyparts, info = load_labels(labels)
    _check_settings(bodyparts, pck_fraction, body_length, pcutoff)
    card = check_predicts(model, bodyparts, info.config_path)
    if settings is None:
        settings = ModelSettings(path=str(model), resize=card.resize or 1.0, warmup_frames=0)
    if device is not None:
        settings = dataclasses.replace(settings, device=device)
    if max_frames is not None:
        images, gt = images[:max_frames], gt[:max_frames]
    if crop_margin is not None and crop_margin < 0:
        raise ValueError(f"crop_margin: expected a number of pixels >= 0, got {crop_margin}")
    runner = load_runner(model, settings)
    col = [list(card.bodyparts).index(b) for b in bodyparts]
    pred = np.full((len(images), len(bodyparts), 3), np.nan)
    try:
        for i, p in enumerate(images):
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"{p}: corrupt or unreadable image")
            crop, scale = None, 1.0
            if crop_margin is not None:  # as the live presence gate crops (its settings are
                r = settings.resize  # in pixels of the network's input: frame px x resize)
                if bird_size:
                    pts = gt[i][np.isfinite(gt[i]).all(axis=1)]
                    if len(pts):
                        scale = bird_scale(float(np.ptp(pts, axis=0).max()) * r, bird_size)
                margin, mc, step = scaled_crop_params(crop_margin, min_crop, crop_step,
                                                      scale * r)
                crop = crop_around(gt[i], margin, mc, img.shape[1], img.shape[0], step)
                scale = capped_scale(int((crop[1] - crop[0]) * r), int((crop[3] - crop[2]) * r),
                                     scale, max_input_pixels)
            pose = runner.get_pose(img, crop=crop, scale=scale)
            best = int(np.argmax(np.nan_to_num(pose[..., 2], nan=-1).mean(axis=1)))
            pred[i] = pose[best][col]
    finally:
        runner.close()
    m = compute_pose_metrics(gt, pred, bodyparts, pcutoff=pcutoff, pck_fraction=pck_fraction,
                             body_length=body_length)
    out = output_dir(out_dir or default_out)
    keep_earlier_results(out)
    csv = write_metrics_csv(out / "metrics.csv", {"heldout": m}, bodyparts)
    gal = write_gallery(out / "gallery.png", images, gt, pred, bodyparts,
                        pcutoff=pcutoff) if gallery else None
    return EvaluationResult(splits={"heldout": m}, bodyparts=tuple(bodyparts), csv=csv,
                            gallery=gal, out_dir=out, snapshot=str(model), labels=gt,
                            predictions=pred)
