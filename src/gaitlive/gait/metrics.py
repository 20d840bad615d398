"""Agreement of detected gait events with ground truth (used by tests and
``tools/eval_gait_on_video.py``)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["match_events"]


def match_events(truth: Sequence[int], detected: Sequence[int], tol: int = 2
                 ) -> tuple[int, int, int]:
    """Match detected event frames to true ones, one-to-one, within ``tol`` frames, so
    that as many as possible are matched.

    Both lists are walked in time order and each true event takes the earliest unmatched
    detection within ``tol`` of it. With the same window for every event this is a
    maximum matching (a nearest-first greedy is not: it can take a detection the next true
    event needed).

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
    >>> match_events([10, 12], [8, 11])  # nearest-first would match 10-11 and miss 12
    (2, 0, 0)
    """
    t = sorted(truth)
    d = sorted(detected)
    i = j = tp = 0
    while i < len(t) and j < len(d):
        if abs(d[j] - t[i]) <= tol:
            tp += 1
            i += 1
            j += 1
        elif d[j] < t[i]:  # too early for this and every later true event
            j += 1
        else:  # no detection left can reach this true event
            i += 1
    return tp, len(d) - tp, len(t) - tp
