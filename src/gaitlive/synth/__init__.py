"""The synthetic corridor world: birds walking past a barn camera, with exact truth.

gaitlive has no real poultry footage, so it renders its own, deterministic per seed.

Truth without rendering
-----------------------
``simulate_pass(*, severity, view="side"|"rear", species="broiler"|"turkey", fps=30.0,
seed=0, width=640, height=480, plumage=None, size=None, direction=None, pad_s=0.3)``
returns a :class:`SynthPass`:

* ``poses``: ``float32 (n_frames, 1, 8, 3)`` image keypoints (x, y, likelihood) of
  :data:`BODYPARTS` = head, neck, left_knee, right_knee, left_hock, right_hock, left_foot,
  right_foot. Likelihood is 1 where the keypoint is inside the image, else 0 with NaN x, y.
* ``strikes`` / ``lifts``: ``{"left": [...], "right": [...]}`` frame numbers; a strike is
  the first frame of a stance, a lift its last frame (only complete stances seen in the
  image are listed).
* ``cadence_hz`` (steps/s, both feet), ``stance_fraction`` (per foot), ``step_lengths``
  (relative to leg length; ``truth.step_lengths_m`` / ``_px`` too), ``severity``,
  ``start_frame`` / ``end_frame`` (first / last frame the bird is visible), and ``truth``
  (a :class:`PassTruth` with everything, ``truth.to_dict()`` for JSON).

``simulate_sequence(*, passes=3, severities=None, view, species="broiler"|"turkey"|"mixed",
fps, seed, width, height, gap_s=(1, 3), background=0.0, plumage=None)`` returns a
:class:`SynthSequence`: several passes past one fixed camera separated by empty corridor,
``poses`` ``(n_frames, n_individuals, 8, 3)`` (individual 1 = background birds when
``background`` > 0) and ``passes`` (one :class:`PassTruth` per appearance).

Keypoints: head = centre of the head at eye level; neck = base of the neck where it meets
the body; knee = femur-tibiotarsus joint (inside the body contour, still labelled); hock =
intertarsal joint; foot = where the tarsometatarsus meets the toes (on the floor in stance).

Rendering and files
-------------------
``render_frames(seq, frames=None, *, debug=False, quality="full")`` yields BGR images of
a sequence (:mod:`gaitlive.synth.render`); :mod:`gaitlive.synth.export` writes videos with
their truth (``write_video_set``) and DeepLabCut training projects (``write_project``).
The same seed gives byte-identical truth and identical frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gaitlive.synth.kinematics import BODYPARTS, PLUMAGES, SPECIES, gait_params, make_bird
from gaitlive.synth.world import (
    VIEWS,
    PassTruth,
    SynthPass,
    SynthSequence,
    simulate_pass,
    simulate_sequence,
)

__all__ = [
    "BODYPARTS",
    "PLUMAGES",
    "SPECIES",
    "VIEWS",
    "PassTruth",
    "SynthPass",
    "SynthSequence",
    "gait_params",
    "make_bird",
    "render_frames",
    "simulate_pass",
    "simulate_sequence",
]


def render_frames(seq: SynthSequence, frames: Iterable[int] | None = None,
                  **kwargs: Any) -> Iterator[Any]:
    """Render frames of ``seq`` (OpenCV is imported on first use).

    See :func:`gaitlive.synth.render.render_frames` for the options; yields
    :class:`gaitlive.synth.render.RenderedFrame` (``index``, ``image``, ``visible``,
    ``unoccluded``).
    """
    from gaitlive.synth.render import render_frames as _render

    return _render(seq, frames, **kwargs)
