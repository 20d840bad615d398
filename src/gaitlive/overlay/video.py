"""Writing the overlay to a video file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from gaitlive.fileio import check_output_file
from gaitlive.frames import even_size

__all__ = ["VideoOut", "VIDEO_OUT_SUFFIXES", "check_video_out"]


#: the codec of each video suffix written (:class:`VideoOut`, :func:`check_video_out`)
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}
VIDEO_OUT_SUFFIXES = tuple(FOURCC)


def _fourcc_for(path: Path) -> str:
    return FOURCC.get(path.suffix.lower(), "mp4v")


def check_video_out(path: str | os.PathLike[str], *, overwrite: bool = False,
                    what: str = "--out") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if a video can be written there, else
    raise a one-line ``ValueError`` naming ``what``: not a folder, a suffix the viewer
    writes (:data:`VIDEO_OUT_SUFFIXES`), then the checks every output file gets
    (:func:`gaitlive.fileio.check_output_file`: its folder existing or possible to create,
    and writable; no existing file unless ``overwrite``). Leaves nothing behind."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p}: is a folder (expected a video file name ending in "
                         f".mp4 or .avi)")
    if p.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        raise ValueError(f"{what} {p}: expected a video file name ending in .mp4 or .avi "
                         f"(.mkv and .mov work too), got "
                         f"{repr(p.suffix) if p.suffix else 'no suffix'}")
    return check_output_file(p, f"{what} {p}", overwrite=overwrite)


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

    def write(self, image: np.ndarray, copies: int = 1) -> None:
        """Append a BGR frame ``copies`` times (opens the file on the first; 0 writes
        nothing)."""
        if copies < 1:
            return
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
        for _ in range(copies):
            self.writer.write(image)
        self.frames += copies

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
