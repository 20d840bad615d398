"""Writing the overlay to a video file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gaitlive.frames import even_size

__all__ = ["VideoOut"]


def _fourcc_for(path: Path) -> str:
    return {".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}.get(path.suffix.lower(), "mp4v")


class VideoOut:
    """A ``cv2.VideoWriter`` that opens on the first frame and keeps its size.

    The codec follows the suffix of ``path`` (``.avi``: MJPG, else mp4v); frames of another
    size are resized to the first frame's; odd sides get one more replicated row or column
    (:func:`gaitlive.frames.even_size`: the encoder would drop the last one).
    """

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 30.0
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame (opens the file on the first)."""
        image = even_size(image)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*_fourcc_for(self.path))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                self.writer = None
                raise ValueError(f"cannot open video file {self.path} for writing (expected "
                                 f"a writable path ending in .mp4 or .avi)")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
