"""Frame index -> seconds for a source whose frame rate may change mid-stream.

A file's frames are ``index / fps`` seconds apart for good. A live camera may change its
rate while it runs: a USB camera in low light lengthens its exposure and delivers 15 of
its 30 frames per second. :class:`FrameClock` keeps the piecewise-linear mapping of such a
stream: the times of the frames before a rate change stay what they were.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

__all__ = ["FrameClock"]


class FrameClock:
    """Seconds since the start of the stream for each frame index.

    Parameters
    ----------
    fps
        The frame rate from frame 0 on.

    Examples
    --------
    >>> clock = FrameClock(30.0)
    >>> clock.seconds(60)
    2.0
    >>> clock.retime(60, 15.0)   # from frame 60 on, 15 frames a second
    >>> clock.seconds(75), clock.seconds(30)
    (3.0, 1.0)
    >>> clock.rate(30), clock.rate(75)
    (30.0, 15.0)
    """

    def __init__(self, fps: float):
        # (first frame, its seconds, fps) per segment, replaced as a whole by retime (a
        # reader in another thread sees the old or the new mapping, never half of one)
        self._segs: tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]] = (
            (0,), (0.0,), (self._check(fps),))

    @classmethod
    def from_changes(cls, fps: float, changes: Sequence[tuple[int, float]] = ()
                     ) -> FrameClock:
        """A clock at ``fps`` from frame 0 that changes rate at each ``(frame, fps)``
        of ``changes`` (in order), e.g. those a live run's ``poses.h5`` notes."""
        clock = cls(fps)
        for frame, rate in changes:
            clock.retime(frame, rate)
        return clock

    @staticmethod
    def _check(fps: float) -> float:
        fps = float(fps)
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps: expected a frame rate > 0, got {fps!r}")
        return fps

    @property
    def fps(self) -> float:
        """The current frame rate (of the latest frames)."""
        return self._segs[2][-1]

    @property
    def changes(self) -> list[tuple[int, float]]:
        """``(frame, fps)`` of every rate change, in order (not the starting rate)."""
        frames, _, rates = self._segs
        return list(zip(frames[1:], rates[1:], strict=True))

    def seconds(self, frame: float) -> float:
        """Seconds since frame 0 of ``frame`` (frames before 0 extrapolate the first
        rate)."""
        frames, starts, rates = self._segs
        i = max(0, bisect.bisect_right(frames, frame) - 1)
        return starts[i] + (frame - frames[i]) / rates[i]

    def rate(self, frame: float) -> float:
        """The frame rate at ``frame`` (frames before 0 have the first rate)."""
        frames, _, rates = self._segs
        return rates[max(0, bisect.bisect_right(frames, frame) - 1)]

    def retime(self, frame: int, fps: float) -> None:
        """Run at ``fps`` from ``frame`` on (not before the latest change)."""
        fps = self._check(fps)
        frame = int(frame)
        frames, starts, rates = self._segs
        if frame < frames[-1]:
            raise ValueError(f"frame: a rate change at frame {frame} is before the last one, "
                             f"at frame {frames[-1]}")
        if frame == frames[-1]:  # a second change at the same frame replaces it
            if len(frames) > 1 and fps == rates[-2]:  # ... and undoes it
                self._segs = (frames[:-1], starts[:-1], rates[:-1])
            else:
                self._segs = (frames, starts, rates[:-1] + (fps,))
            return
        self._segs = (frames + (frame,), starts + (self.seconds(frame),), rates + (fps,))
