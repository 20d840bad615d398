"""The frame record that flows through the live path, and pose-array helpers.

Pose layout, everywhere in gaitlive (the layout dlclive returns, stacked over time):

* one frame: ``float32 (n_individuals, n_keypoints, 3)`` with columns x, y, likelihood;
* a series: ``float32 (n_frames, n_individuals, n_keypoints, 3)``.

Missing keypoints are NaN in x and y with likelihood 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FrameRecord", "FrameEvent", "as_pose_frame", "empty_pose", "validate_pose_series"]


class FrameEvent:
    """Event tags carried by a :class:`FrameRecord` instead of (or with) an image."""

    FRAME = "frame"
    STREAM_RESET = "stream_reset"  # the source reconnected: gait windows must be cleared
    # a live source stopped delivering frames and is being reopened: the birds in view are
    # gone from it (their passes end now, not when it comes back)
    STREAM_LOST = "stream_lost"
    END = "end"  # the source is exhausted


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One captured frame and what the stages learnt from it.

    Stages never mutate a record; they return ``record.with_(...)`` copies.

    Attributes
    ----------
    index
        Frame index at the source (0-based; counts every frame read, dropped ones too).
    t_capture
        ``time.monotonic()`` when the frame was read.
    t_wall
        ``time.time()`` when the frame was read.
    camera_id
        The camera this frame came from.
    image
        BGR ``uint8 (H, W, 3)`` image, dropped (``None``) once no stage needs it.
    poses
        ``float32 (n_individuals, n_keypoints, 3)`` or ``None`` when inference was skipped
        (presence gating) or has not run yet.
    t_pose
        ``time.monotonic()`` when the pose stage finished this frame.
    event
        A :class:`FrameEvent` value.
    info
        Stage annotations (e.g. ``{"presence": True, "crop": (x1, x2, y1, y2)}``).
    """

    index: int
    t_capture: float
    t_wall: float
    camera_id: str = "cam0"
    image: np.ndarray | None = None
    poses: np.ndarray | None = None
    t_pose: float | None = None
    event: str = FrameEvent.FRAME
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"FrameRecord.index must be >= 0, got {self.index}")
        if self.image is not None and (self.image.ndim not in (2, 3)):
            raise ValueError(f"FrameRecord.image must be (H, W[, C]), got {self.image.shape}")
        if self.poses is not None:
            p = self.poses
            if p.ndim != 3 or p.shape[-1] != 3:
                raise ValueError(
                    f"FrameRecord.poses must be (n_individuals, n_keypoints, 3), got {p.shape}")

    def with_(self, **changes: Any) -> FrameRecord:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


def empty_pose(n_individuals: int, n_keypoints: int) -> np.ndarray:
    """A pose frame with every keypoint missing (NaN, likelihood 0)."""
    p = np.full((n_individuals, n_keypoints, 3), np.nan, dtype=np.float32)
    p[..., 2] = 0.0
    return p


def as_pose_frame(pose: np.ndarray, n_keypoints: int | None = None) -> np.ndarray:
    """Coerce what dlclive returns into ``float32 (n_individuals, n_keypoints, 3)``.

    dlclive returns ``(n_keypoints, 3)`` for single-animal models and
    ``(n_individuals, n_keypoints, 3)`` for multi-animal ones.
    """
    a = np.asarray(pose, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected a pose of shape (n_keypoints, 3) or "
                         f"(n_individuals, n_keypoints, 3), got {a.shape}")
    if n_keypoints is not None and a.shape[1] != n_keypoints:
        raise ValueError(f"expected {n_keypoints} keypoints per individual, got {a.shape[1]}")
    return a


def validate_pose_series(poses: np.ndarray, name: str = "poses") -> np.ndarray:
    """Check a pose series is ``(n_frames, n_individuals, n_keypoints, 3)``; return float32."""
    a = np.asarray(poses)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (n_frames, n_individuals, n_keypoints, 3), "
                         f"got {a.shape}")
    return a.astype(np.float32, copy=False)


def even_size(image: np.ndarray) -> np.ndarray:
    """``image`` grown by one replicated row and/or column to even sides.

    MPEG-4 encoders (OpenCV's ``mp4v``) need even frame sides and silently drop an odd last
    row or column; padding keeps every pixel of the frame (at the top left, where its
    coordinates stay the same)."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (image.ndim - 2), mode="edge")
