"""What the gait stage emits: step events, finished passes and per-bird running state.

These plain dataclasses are the contract between the gait stage and its consumers (the
ZeroMQ publisher, the overlay, ``gaitlive analyze``, reports). Frame numbers are source
frame indices; ``strike_frame`` is the first frame of a stance and ``lift_frame`` its last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StepEvent", "PassResult", "TrackState", "GaitUpdate", "Stance",
           "StanceCollector"]


@dataclass(frozen=True)
class StepEvent:
    """A foot event: ``kind`` is ``"strike"`` (stance starts; ``lift_frame`` is None) or
    ``"lift"`` (stance ended; both frames set, so the stance is complete)."""

    individual: int
    pass_id: int
    foot: str  # leg name from the profile, e.g. "left" / "right"
    kind: str  # "strike" | "lift"
    strike_frame: int
    lift_frame: int | None = None
    t: float = 0.0  # seconds since the start of the stream (GaitStage.clock)

    def __post_init__(self) -> None:
        if self.kind not in ("strike", "lift"):
            raise ValueError(f"StepEvent.kind must be 'strike' or 'lift', got {self.kind!r}")
        if self.kind == "lift" and (self.lift_frame is None or self.lift_frame < self.strike_frame):
            raise ValueError("a lift event needs lift_frame >= strike_frame")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PassResult:
    """One bird's finished pass through the corridor, with its features and score.

    ``features`` holds every pass feature by name (cadence_hz, stance_fraction_left, ...,
    and their asymmetries); ``score`` is on the profile's scale (Kestin 0-5 by default),
    ``None`` when the pass had too few steps to be scored (``scored`` is False then).
    """

    individual: int
    pass_id: int
    start_frame: int
    end_frame: int
    n_steps: int
    features: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    score_class: int | None = None
    confidence: float | None = None
    scored: bool = False
    camera_id: str = "cam0"
    reason: str = ""  # why a pass was not scored, e.g. "3 steps < min_steps 4"

    def __post_init__(self) -> None:
        if self.end_frame < self.start_frame:
            raise ValueError("PassResult.end_frame must be >= start_frame")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrackState:
    """A bird being tracked now: what the overlay draws beside it."""

    individual: int
    pass_id: int
    pose_row: int  # row of this bird in the frame's pose array, -1 if not seen this frame
    complete: bool  # all skeleton keypoints above pcutoff this frame
    angles: dict[str, float] = field(default_factory=dict)  # degrees, NaN if unknown
    stance: dict[str, bool] = field(default_factory=dict)  # leg -> foot on the ground
    features: dict[str, float] = field(default_factory=dict)  # rolling features
    n_steps: int = 0
    scale_px: float = float("nan")  # leg length in pixels (marker sizes scale with it)


@dataclass
class GaitUpdate:
    """What one call of the gait stage produced for one frame."""

    frame_index: int
    tracks: list[TrackState] = field(default_factory=list)
    steps: list[StepEvent] = field(default_factory=list)
    passes: list[PassResult] = field(default_factory=list)


@dataclass(frozen=True)
class Stance:
    """One stance as it ends up in a steps table: ``lift_frame`` is None when the stance was
    still open when its pass ended (the bird left, or the stream stopped, mid-stance)."""

    individual: int
    pass_id: int
    foot: str
    strike_frame: int
    lift_frame: int | None = None


class StanceCollector:
    """Turns the stage's step events into final stances, exactly one per stance.

    The event stream is live, so it carries provisional information that a table of stances
    must not: a ``strike`` event is the stage's first estimate when a stance is confirmed,
    and the stance's ``lift`` event carries the final strike frame, refined on the whole
    stance (often a few frames off the first estimate); a strike never followed by a lift
    was a stance found too short or one still open; a ``lift`` event whose strike frame
    equals that of the foot's previous stance replaces it (the two were joined: the foot
    did not step, ``gait.min_step_length`` / ``gait.min_swing_s``). So a completed stance
    is final only when the foot's next stance ends or its pass ends; at most one stance per
    foot is held back.

    ``add(event)`` returns the stances that became final; ``end_pass(individual, pass_id)``
    those of a finished pass (its held stances and a stance left open after the last
    lift); ``flush()`` all that are left, at the end of a stream.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[int, int, str], Stance] = {}  # last completed stance per foot
        self._open: dict[tuple[int, int, str], int] = {}  # strike after the last lift

    def add(self, ev: StepEvent) -> list[Stance]:
        key = (ev.individual, ev.pass_id, ev.foot)
        if ev.kind == "strike":
            self._open[key] = ev.strike_frame
            return []
        self._open.pop(key, None)
        prev = self._held.get(key)
        self._held[key] = Stance(*key, ev.strike_frame, ev.lift_frame)
        if prev is None or prev.strike_frame == ev.strike_frame:
            return []  # the first stance of this foot, or this one replaces it (joined)
        return [prev]

    def end_pass(self, individual: int, pass_id: int) -> list[Stance]:
        return self._take(lambda k: k[:2] == (individual, pass_id))

    def flush(self) -> list[Stance]:
        return self._take(lambda k: True)

    def _take(self, which: Callable[[tuple[int, int, str]], bool]) -> list[Stance]:
        out = [self._held.pop(k) for k in [k for k in self._held if which(k)]]
        for k in [k for k in self._open if which(k)]:
            out.append(Stance(*k, self._open.pop(k), None))
        return sorted(out, key=lambda st: (st.pass_id, st.strike_frame, st.foot))
