"""Agreement of detected gait events with ground truth (used by tests and
``tools/eval_gait_on_video.py``)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["match_events"]


def match_events(truth: Sequence[int], detected: Sequence[int], tol: int = 2
                 ) -> tuple[int, int, int]:
    """Match detected event frames to true ones, greedily and one-to-one, within ``tol``
    frames.

    Parameters
    ----------
    truth, detected
        Frame numbers of the true and the detected events (e.g. foot strikes).
    tol
        Largest frame difference that still counts as a match.

    Returns
    -------
    tuple of int
        ``(true_positives, false_positives, false_negatives)``.

    Examples
    --------
    >>> match_events([10, 20, 30], [11, 19, 45])
    (2, 1, 1)
    """
    det = sorted(detected)
    used: set[int] = set()
    tp = 0
    for t in truth:
        cands = [j for j, d in enumerate(det) if j not in used and abs(d - t) <= tol]
        if cands:
            used.add(min(cands, key=lambda j: abs(det[j] - t)))
            tp += 1
    return tp, len(det) - tp, len(truth) - tp
