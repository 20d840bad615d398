"""What gaitlive runs on: package versions, GPU, OpenCV GUI support."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import logging
import os

log = logging.getLogger(__name__)

__all__ = ["environment_report", "cv2_has_gui", "has_display"]


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def cv2_has_gui() -> bool:
    """True when the imported ``cv2`` was built with HighGUI (Qt or GTK), i.e. it comes from
    ``opencv-python`` and not ``opencv-python-headless``."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        s = line.strip()
        if s.startswith("GUI:"):
            return s.split(":", 1)[1].strip().upper() not in ("", "NONE", "NO")
    return False


def has_display() -> bool:
    """True when a window can be opened (an X/Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def environment_report(tensorflow: bool = True) -> dict[str, str]:
    from gaitlive import __version__

    rep: dict[str, str] = {"gaitlive": __version__}
    rep["dlclive"] = _version("deeplabcut-live")
    try:
        import torch

        rep["torch"] = torch.__version__
        gpu = torch.cuda.is_available()
        rep["gpu"] = (f"yes ({torch.cuda.get_device_name(0)})" if gpu else "no (CPU only)")
    except Exception as e:  # pragma: no cover - torch is a hard dependency
        rep["torch"] = f"unavailable ({e})"
        rep["gpu"] = "unknown"
    if tensorflow:
        if importlib.util.find_spec("tensorflow") is None:
            rep["tensorflow"] = "not installed"
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # XLA factory noise (pose.py)
            try:
                import tensorflow as tf

                rep["tensorflow"] = tf.__version__
            except Exception as e:
                rep["tensorflow"] = f"broken ({e})"
    else:
        rep["tensorflow"] = _version("tensorflow")
    import cv2

    rep["opencv"] = f"{cv2.__version__} (HighGUI: {'yes' if cv2_has_gui() else 'NO'})"
    rep["numba"] = _version("numba")
    rep["pyzmq"] = _version("pyzmq")
    import zmq

    rep["libzmq"] = zmq.zmq_version()
    rep["deeplabcut"] = _version("deeplabcut")
    return {k: rep[k] for k in ("gaitlive", "dlclive", "torch", "tensorflow", "opencv",
                                "numba", "pyzmq", "libzmq", "deeplabcut", "gpu")}
