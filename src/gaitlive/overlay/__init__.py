"""The live overlay: what a person watching the barn camera sees.

Drawing is split into small functions that draw one thing in place on a BGR ``uint8`` image
(``draw_pose``, ``draw_angles``, ``draw_track_label``, ``draw_footprint``,
``draw_score_badge``, ``draw_hud``) and :func:`annotate`, which draws a whole frame on a
*copy* (supervision style: ``annotate(frame, ...) -> frame``). What must outlive one frame
(foot prints of recent strikes, the score of a pass that just ended) lives in an
:class:`OverlayState` fed with each :class:`~gaitlive.gait.events.GaitUpdate`.

Three consumers use it:

* :class:`OverlaySink`, a thread of the live pipeline that shows the overlay in a window
  (OpenCV HighGUI) and/or writes it to a video file, dropping frames when it is busy so that
  drawing never slows inference;
* :func:`write_labelled_video`, the result movie of ``gaitlive analyze``;
* ``gaitlive view``, the remote viewer (:mod:`gaitlive.commands.view`).

Poses are the gaitlive layout, ``float32 (n_individuals, n_keypoints, 3)`` per frame with
x, y, likelihood; missing keypoints are NaN with likelihood 0.

Modules
-------
``style``
    :class:`OverlayStyle`, colours (bodyparts, legs, :func:`score_colour`), marker sizes.
``geometry``
    :func:`compute_scale_px`, :func:`compute_angles`.
``state``
    :class:`OverlayState`, what is remembered across frames.
``draw``
    The ``draw_*`` primitives and :func:`annotate`.
``window``, ``video``
    The OpenCV window and the video file the overlay goes to.
``sink``
    :func:`choose_overlay_mode` and the :class:`OverlaySink` thread of ``gaitlive run``.
``movie``
    :func:`write_labelled_video` and :func:`pass_pose_row`.
``viewer``
    :class:`RemoteViewer`, behind ``gaitlive view``.
"""

from __future__ import annotations

from gaitlive.overlay.draw import (
    annotate,
    draw_angles,
    draw_footprint,
    draw_hud,
    draw_pose,
    draw_score_badge,
    draw_stance,
    draw_track_label,
)
from gaitlive.overlay.geometry import compute_angles, compute_scale_px
from gaitlive.overlay.movie import pass_pose_row, write_labelled_video
from gaitlive.overlay.sink import OverlayMode, OverlaySink, choose_overlay_mode
from gaitlive.overlay.state import OverlayState
from gaitlive.overlay.style import OverlayStyle, bodypart_colours, marker_radius, score_colour
from gaitlive.overlay.viewer import RemoteViewer, ViewStats
from gaitlive.overlay.window import display_available

__all__ = [
    "OverlayStyle",
    "OverlayState",
    "OverlaySink",
    "OverlayMode",
    "RemoteViewer",
    "ViewStats",
    "annotate",
    "bodypart_colours",
    "choose_overlay_mode",
    "compute_angles",
    "compute_scale_px",
    "display_available",
    "draw_angles",
    "draw_footprint",
    "draw_hud",
    "draw_pose",
    "draw_score_badge",
    "draw_stance",
    "draw_track_label",
    "marker_radius",
    "pass_pose_row",
    "score_colour",
    "write_labelled_video",
]
