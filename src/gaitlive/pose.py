"""Pose inference with DeepLabCut-Live behind one small interface.

:func:`load_runner` looks at a model folder, picks the engine (a DeepLabCut 3 PyTorch
export ``*.pt`` -> dlclive ``model_type="pytorch"``; a DeepLabCut 2.x TensorFlow export
folder with ``pose_cfg.yaml`` and a frozen ``*.pb`` graph -> ``model_type="base"``) and
returns a :class:`PoseRunner`. Every pose it returns is float32 ``(n_individuals,
n_keypoints, 3)`` (x, y, likelihood) in FULL-FRAME pixel coordinates, whatever cropping
and resizing happened on the way.

Cropping is done here, not by dlclive:

* a static crop (``ModelSettings.cropping``),
* a per-call crop (``get_pose(frame, crop=...)``; presence gating runs inference on a crop
  around the bird),
* dynamic cropping around the last pose (``ModelSettings.dynamic_crop``). dlclive 1.1.0's
  own PyTorch ``DynamicCropper`` raises "DynamicCropper can only be used with batch size 1"
  because the runner hands it an unbatched CHW tensor; we never give dlclive a dynamic
  cropper and crop the numpy frame ourselves, which works for both engines.

Examples
--------
>>> from gaitlive.pose import load_runner
>>> runner = load_runner("models/gaitlive-corridor")       # doctest: +SKIP
>>> runner.init(frame)                                      # doctest: +SKIP
>>> pose = runner.get_pose(frame)                           # doctest: +SKIP
>>> pose.shape                                              # doctest: +SKIP
(1, 8, 3)
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gaitlive.config import ModelSettings
from gaitlive.frames import empty_pose
from gaitlive.paths import resolve_asset

log = logging.getLogger(__name__)

__all__ = [
    "ModelError",
    "check_device",
    "ModelCard",
    "PoseRunner",
    "DLCLiveRunner",
    "load_runner",
    "read_model_card",
    "find_model_file",
    "detect_engine",
    "compute_dynamic_crop",
    "check_resize",
    "MODEL_CARD",
]

#: File name of gaitlive's model card inside a model folder.
MODEL_CARD = "model.yaml"

Crop = tuple[int, int, int, int]  # x1, x2, y1, y2 (pixels, end exclusive)


class ModelError(ValueError):
    """A model path is not a usable pose model (the message names the path and what was
    expected)."""


#: What ``--device`` takes (:func:`check_device`).
DEVICES = "auto, cpu, cuda, cuda:N or mps"


def check_device(device: str, what: str = "--device", *, available: bool = True,
                 runner: bool = False) -> str:
    """Check a torch device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) before
    any work, and that the machine has it.

    Parameters
    ----------
    device : str
        The name as given.
    what : str
        The option it came from (named in the error).
    available : bool
        Also check that torch finds the device here (a CUDA GPU with that index, Apple's
        MPS); False: the name only (a command line for another machine).
    runner : bool
        A device for the live runner (DLC-Live), which does not take ``mps``.

    Returns
    -------
    str
        ``device``, with ``auto`` resolved (``cuda`` when torch finds a CUDA GPU, else
        ``cpu``) when ``available``.

    Raises
    ------
    ValueError
        One line naming ``what``: not a device name, or the device is not on this machine.
    """
    from gaitlive.config import DEVICE_RE, RUNNER_DEVICES

    m = DEVICE_RE.fullmatch(str(device))
    if m is None or (runner and device == "mps"):
        raise ValueError(f"{what} {device}: expected a torch device: "
                         f"{RUNNER_DEVICES if runner else DEVICES}")
    if not available:
        return str(device)
    import torch

    kind = str(device).split(":")[0]
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {device}: CUDA is not available here (torch finds no "
                             f"NVIDIA GPU or driver); use --device cpu or auto")
        n = torch.cuda.device_count()
        if int(m.group(1) or 0) >= n:
            raise ValueError(f"{what} {device}: no such GPU; torch finds {n} CUDA device(s) "
                             f"here (cuda:0 to cuda:{n - 1})")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{what} {device}: Apple's MPS is not available here; use "
                             f"--device cpu or auto")
    return str(device)


# --------------------------------------------------------------------------------------
# Finding the model and its engine
# --------------------------------------------------------------------------------------

_EXPECTED = ("expected a DeepLabCut-Live export: a PyTorch '.pt' file (or a folder holding "
             "one, e.g. made by 'gaitlive export'), or a TensorFlow export folder with "
             "'pose_cfg.yaml' and a frozen '.pb' graph")


def detect_engine(path: str | Path) -> str:
    """Return ``"pytorch"`` or ``"tensorflow"`` for a model file or folder.

    Parameters
    ----------
    path : str or Path
        A ``.pt`` file, a folder with one ``.pt`` file, or a TensorFlow export folder.

    Returns
    -------
    str
        The engine name.

    Raises
    ------
    ModelError
        When ``path`` is missing or holds no recognisable model.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: model path does not exist; {_EXPECTED}")
    if p.is_file():
        if p.suffix == ".pt":
            return "pytorch"
        raise ModelError(f"{p}: not a model file; {_EXPECTED}")
    if (p / "pose_cfg.yaml").is_file() and any(p.glob("*.pb")):
        return "tensorflow"
    if any(p.glob("*.pt")):
        return "pytorch"
    found = sorted(x.name for x in p.iterdir())[:10]
    raise ModelError(f"{p}: no model found in this folder (it holds {found}); {_EXPECTED}")


def find_model_file(path: str | Path) -> Path:
    """The file (PyTorch) or folder (TensorFlow) dlclive should load for ``path``.

    A folder with several ``.pt`` files must name the one to use in its ``model.yaml``
    (key ``file``).

    Raises
    ------
    ModelError
        When no unique model can be found.
    """
    p = Path(path)
    engine = detect_engine(p)
    if engine == "tensorflow" or p.is_file():
        return p
    card = p / MODEL_CARD
    if card.is_file():
        name = _read_card(card).get("file")
        if name:
            f = p / str(name)
            if not f.is_file():
                raise ModelError(f"{card}: file: {name!r} does not exist in {p}")
            return f
    pts = sorted(p.glob("*.pt"))
    if len(pts) > 1:
        raise ModelError(f"{p}: {len(pts)} '.pt' files ({[x.name for x in pts]}); expected one, "
                         f"or a {MODEL_CARD} whose 'file' key names the one to use")
    return pts[0]


def _read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        from gaitlive.config import yaml_error_line

        raise ModelError(f"{path}: not valid YAML: {yaml_error_line(e)}") from None


def _read_card(card_file: Path) -> dict[str, Any]:
    """The mapping in ``model.yaml`` (empty for an empty file)."""
    card = _read_yaml(card_file)
    if card is None:
        return {}
    if not isinstance(card, dict):
        raise ModelError(f"{card_file}: expected a mapping of card keys (name, file, "
                         f"bodyparts, resize ...), got {type(card).__name__}")
    return card


def _positive_number(value: Any) -> bool:
    """True for a finite number > 0 (not a bool, not a string)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def check_resize(value: Any, what: str) -> float:
    """``value`` as a float when it is a finite number > 0, else a :class:`ModelError`
    naming ``what`` (e.g. ``"model.resize"`` or ``"model.yaml: resize"``)."""
    if not _positive_number(value):
        raise ModelError(f"{what}: expected a finite scale factor > 0 (e.g. 0.5 or 1.0), "
                         f"got {value!r}")
    return float(value)


def _card_value(card: dict[str, Any], card_file: Path, key: str, kind: type | tuple[type, ...],
                expected: str) -> Any:
    """``card[key]`` (None when absent or null) checked to be of ``kind``."""
    value = card.get(key)
    if value is not None and not isinstance(value, kind):
        raise ModelError(f"{card_file}: {key}: expected {expected}, got {value!r}")
    return value


def _load_pt_config(pt: Path) -> dict[str, Any]:
    import torch

    try:
        raw = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file
        import pickle

        # (a text file gives KeyError('174812789'), an empty one EOFError(''))
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e):
            why = ("a torch file holding objects other than tensors and plain data, which "
                   "torch's safe loading refuses")
        elif isinstance(e, (RuntimeError, ValueError, OSError)) and str(e):
            why = str(e).splitlines()[0].split(". ")[0]  # torch's advice follows
        else:
            why = "not a torch file: corrupt, truncated or another format"
        raise ModelError(f"{pt}: cannot be read as a DeepLabCut-Live PyTorch export "
                         f"({why})") from e
    if not isinstance(raw, dict) or "config" not in raw or "pose" not in raw:
        keys = list(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
        raise ModelError(f"{pt}: not a DeepLabCut-Live PyTorch export; expected a dict with "
                         f"'config' and 'pose' keys (as deeplabcut.export_model writes), "
                         f"got {keys}")
    return raw["config"]


# --------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """What a model detects and how it was made (``model.yaml``, or read from the DLC
    model configuration when there is no card)."""

    path: str
    engine: str
    bodyparts: tuple[str, ...]
    skeleton: tuple[tuple[str, str], ...] = ()
    net: str = ""
    input_size: tuple[int, int] | None = None  # (width, height) the model expects
    resize: float | None = None  # model.resize the model was trained for
    individuals: int = 1
    file: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    date: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def read_model_card(path: str | Path) -> ModelCard:
    """Read a model's card.

    Parameters
    ----------
    path : str or Path
        A model folder or ``.pt`` file.

    Returns
    -------
    ModelCard
        From the folder's ``model.yaml`` when present, else from the DeepLabCut model
        configuration (PyTorch export ``config``, or TensorFlow ``pose_cfg.yaml``).

    Raises
    ------
    ModelError
        When ``path`` is not a model or the card is malformed.
    """
    p = Path(path)
    engine = detect_engine(p)
    folder = p if p.is_dir() else p.parent
    card_file = folder / MODEL_CARD
    card: dict[str, Any] = _read_card(card_file) if card_file.is_file() else {}

    # From the model itself: the truth for bodyparts
    net = ""
    individuals = 1
    if engine == "pytorch":
        model_file = find_model_file(p)
        cfg = _load_pt_config(model_file)
        meta = cfg.get("metadata", {}) or {}
        bodyparts = tuple(meta.get("bodyparts", ()))
        individuals = max(1, len(meta.get("individuals", []) or [1]))
        net = str(cfg.get("net_type", ""))
        file_name = model_file.name
    else:
        pose_cfg = _read_yaml(folder / "pose_cfg.yaml") or {}
        bodyparts = tuple(str(b) for b in pose_cfg.get("all_joints_names", ()))
        net = str(pose_cfg.get("net_type", ""))
        individuals = int(pose_cfg.get("num_outputs", 1) or 1)
        file_name = sorted(x.name for x in folder.glob("*.pb"))[0]
    if not bodyparts:
        raise ModelError(f"{p}: the model configuration lists no bodyparts")
    card_bps = _card_value(card, card_file, "bodyparts", list, "a list of bodypart names")
    if card_bps and tuple(card_bps) != bodyparts:
        raise ModelError(f"{card_file}: bodyparts: {card_bps} disagree with the "
                         f"model's own {list(bodyparts)}")
    edges = _card_value(card, card_file, "skeleton", list,
                        f"a list of [a, b] pairs of {list(bodyparts)}") or []
    for i, e in enumerate(edges):
        if not isinstance(e, (list, tuple)) or len(e) != 2 or any(b not in bodyparts for b in e):
            raise ModelError(f"{card_file}: skeleton[{i}]: expected two of {list(bodyparts)}, "
                             f"got {e!r}")
    skeleton = tuple((str(a), str(b)) for a, b in edges)
    size = card.get("input_size")
    input_size = None
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2
                and all(_positive_number(v) and float(v).is_integer() for v in size)):
            raise ModelError(f"{card_file}: input_size: expected [width, height] in whole "
                             f"pixels > 0 (e.g. [320, 240]) or null, got {size!r}")
        input_size = (int(size[0]), int(size[1]))
    resize = card.get("resize")
    if resize is not None:
        resize = check_resize(resize, f"{card_file}: resize")
    card_file_name = _card_value(card, card_file, "file", str, "the name of the model's file")
    mappings = {key: _card_value(card, card_file, key, dict, "a mapping") or {}
                for key in ("training_data", "metrics")}
    return ModelCard(
        path=str(p), engine=engine, bodyparts=bodyparts, skeleton=skeleton,
        net=str(card.get("net", net)), input_size=input_size, resize=resize,
        individuals=individuals, file=card_file_name or file_name,
        training_data=dict(mappings["training_data"]), metrics=dict(mappings["metrics"]),
        date=str(card.get("date", "")), raw=card)


# --------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------


def compute_dynamic_crop(pose: np.ndarray, shape: tuple[int, int], threshold: float,
                         margin: int) -> Crop | None:
    """The crop window around a pose, for the next frame.

    Parameters
    ----------
    pose : ndarray
        ``(n_ind, n_kp, 3)`` full-frame pose of the last frame.
    shape : tuple of int
        ``(height, width)`` of the frame.
    threshold : float
        Keypoints with likelihood >= threshold define the window.
    margin : int
        Pixels added on every side.

    Returns
    -------
    tuple of int or None
        ``(x1, x2, y1, y2)`` clipped to the frame, or None when no keypoint passes the
        threshold (the next frame is then analysed whole).
    """
    pts = pose.reshape(-1, 3)
    ok = (pts[:, 2] >= threshold) & np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1])
    if not np.any(ok):
        return None
    h, w = shape
    x, y = pts[ok, 0], pts[ok, 1]
    x1 = max(0, int(np.floor(x.min())) - margin)
    x2 = min(w, int(np.ceil(x.max())) + 1 + margin)
    y1 = max(0, int(np.floor(y.min())) - margin)
    y2 = min(h, int(np.ceil(y.max())) + 1 + margin)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, x2, y1, y2)


def _intersect(a: Crop | None, b: Crop | None) -> Crop | None:
    if a is None:
        return b
    if b is None:
        return a
    return (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))


class PoseRunner:
    """The interface every pose runner implements (see :class:`DLCLiveRunner`).

    Attributes
    ----------
    bodyparts : tuple of str
        Keypoint names in output order.
    engine : str
        ``"pytorch"`` or ``"tensorflow"``.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (TensorFlow: ``"tensorflow"``, it places ops).
    """

    bodyparts: tuple[str, ...] = ()
    engine: str = ""
    device: str = ""

    def init(self, frame: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def get_pose(self, frame: np.ndarray, crop: Sequence[int] | None = None,
                 scale: float = 1.0) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state carried between frames (the dynamic crop), e.g. on a stream reset."""

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def stats(self) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self) -> PoseRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DLCLiveRunner(PoseRunner):
    """A :class:`dlclive.DLCLive` with explicit settings and our own cropping.

    Use :func:`load_runner` to make one.
    """

    def __init__(self, model_path: Path, engine: str, settings: ModelSettings,
                 card: ModelCard) -> None:
        check_resize(settings.resize, "model.resize")
        self.settings = settings
        self.card = card
        self.model_path = model_path
        self.engine = engine
        self.bodyparts = card.bodyparts
        self.n_keypoints = len(card.bodyparts)
        self.device = self._resolve_device(settings.device, engine)
        self._static: Crop | None = (
            tuple(settings.cropping) if settings.cropping else None)  # type: ignore[assignment]
        self._dynamic: Crop | None = None
        self.last_crop: Crop | None = None  # the window the last inference ran on
        self._times: deque[float] = deque(maxlen=1000)
        self._n = 0
        self._initialized = False
        self._closed = False
        self._dlc = self._build()

    @staticmethod
    def _resolve_device(device: str, engine: str) -> str:
        if engine == "tensorflow":
            if device not in ("auto", ""):
                log.warning("model.device=%r is ignored for TensorFlow models (TensorFlow "
                            "places operations itself)", device)
            return "tensorflow"
        try:
            return check_device(device or "auto", "model.device", runner=True)
        except ValueError as e:
            raise ModelError(str(e)) from None

    def _build(self) -> Any:
        import os
        import warnings

        # dlclive imports TensorFlow, whose XLA plugins print "E ... Unable to register
        # cuFFT/cuDNN/cuBLAS factory" when torch has registered them first: harmless noise
        # on every run. Level 3 hides it; real failures still raise in Python. A user's own
        # setting wins.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
            from dlclive import DLCLive  # imports torch (and TF lazily for TF models)

        s = self.settings
        if s.threads and self.engine == "pytorch":
            import torch

            if torch.get_num_threads() != s.threads:
                log.info("torch CPU threads: %d -> %d (model.threads)", torch.get_num_threads(),
                         s.threads)
                torch.set_num_threads(int(s.threads))
        common: dict[str, Any] = dict(
            precision=s.precision, cropping=None, dynamic=(False, 0.5, 0),
            resize=float(s.resize), convert2rgb=True, display=False)
        if self.engine == "pytorch":
            if s.precision == "FP16" and self.device == "cpu":
                log.warning("model.precision FP16 on CPU is slow or unsupported in PyTorch; "
                            "consider FP32 on CPU")
            return DLCLive(str(self.model_path), model_type="pytorch", device=self.device,
                           single_animal=False, **common)
        return DLCLive(str(self.model_path), model_type="base", **common)

    # -- inference ---------------------------------------------------------------------

    def _window(self, frame: np.ndarray, crop: Sequence[int] | None) -> Crop | None:
        h, w = frame.shape[:2]
        if crop is not None:
            if len(crop) != 4:
                raise ValueError(f"crop: expected (x1, x2, y1, y2), got {crop!r}")
            win: Crop | None = tuple(int(v) for v in crop)  # type: ignore[assignment]
            win = _intersect(win, self._static)
        elif self.settings.dynamic_crop and self._dynamic is not None:
            win = _intersect(self._dynamic, self._static)
        else:
            win = self._static
        if win is None:
            return None
        x1, x2, y1, y2 = max(0, win[0]), min(w, win[1]), max(0, win[2]), min(h, win[3])
        return (x1, x2, y1, y2)

    def _as_pose(self, raw: Any) -> np.ndarray:
        pose = np.asarray(raw, dtype=np.float32)
        if pose.ndim == 2:
            if pose.shape[0] % self.n_keypoints == 0 and pose.shape[0] > self.n_keypoints:
                pose = pose.reshape(-1, self.n_keypoints, pose.shape[-1])
            else:
                pose = pose[None]
        if pose.size == 0:
            return empty_pose(1, self.n_keypoints)
        pose = np.ascontiguousarray(pose[..., :3], dtype=np.float32)
        return pose

    def _infer(self, sub: np.ndarray, first: bool) -> np.ndarray:
        if first:
            raw = self._dlc.init_inference(sub)
        else:
            raw = self._dlc.get_pose(sub)
        return self._as_pose(raw)

    def init(self, frame: np.ndarray) -> np.ndarray:
        """Load the model and run it on ``frame`` (the first inference is slow), then
        ``settings.warmup_frames`` more times.

        Returns
        -------
        ndarray
            The pose of ``frame``, full-frame coordinates.
        """
        if self._closed:
            raise RuntimeError("pose runner is closed")
        if frame is None or frame.ndim not in (2, 3) or frame.size == 0:
            raise ValueError(f"init: expected an image array, got "
                             f"{None if frame is None else frame.shape}")
        pose = self._infer(frame, first=True)
        self._initialized = True
        for _ in range(self.settings.warmup_frames):
            pose = self._infer(frame, first=False)
        if self._static is not None:
            # warm-up ran on the whole frame only to load the model; redo it on the crop
            return self.get_pose(frame)
        return self._finish(pose, None, frame.shape[:2])

    def get_pose(self, frame: np.ndarray, crop: Sequence[int] | None = None,
                 scale: float = 1.0) -> np.ndarray:
        """Pose of one frame.

        Parameters
        ----------
        frame : ndarray
            BGR (OpenCV) ``(H, W, 3)`` uint8 image, or grayscale ``(H, W)``.
        crop : sequence of int, optional
            ``(x1, x2, y1, y2)``: run inference on this window only (intersected with the
            static crop). Overrides dynamic cropping for this call.
        scale : float, optional
            Extra factor on ``model.resize`` for this call (the presence gate's
            :attr:`~gaitlive.presence.PresenceResult.scale`: a bird larger than the model
            was trained on is scaled down). Keypoints are returned in frame pixels.

        Returns
        -------
        ndarray
            float32 ``(n_individuals, n_keypoints, 3)``, full-frame pixel coordinates.
        """
        if self._closed:
            raise RuntimeError("pose runner is closed")
        if frame is None or frame.ndim not in (2, 3) or frame.size == 0:
            raise ValueError(f"get_pose: expected an image array, got "
                             f"{None if frame is None else frame.shape}")
        if not (0.0 < scale <= 1.0):
            raise ValueError(f"get_pose: scale must be in (0, 1], got {scale!r}")
        # dlclive resizes by its .resize and scales the keypoints back by it
        self._dlc.resize = float(self.settings.resize) * float(scale)
        win = self._window(frame, crop)
        first = not self._initialized
        t0 = time.perf_counter()
        if win is not None and (win[1] - win[0] < 2 or win[3] - win[2] < 2):
            pose = empty_pose(1, self.n_keypoints)
        else:
            sub = frame if win is None else frame[win[2]:win[3], win[0]:win[1]]
            pose = self._infer(sub, first=first)
            self._initialized = True
            if win is not None:
                pose[..., 0] += win[0]
                pose[..., 1] += win[2]
        if not first:  # the first call loads the model
            self._times.append(time.perf_counter() - t0)
        self._n += 1
        return self._finish(pose, win, frame.shape[:2])

    def _finish(self, pose: np.ndarray, win: Crop | None, shape: tuple[int, int]) -> np.ndarray:
        self.last_crop = win
        if self.settings.dynamic_crop:
            self._dynamic = compute_dynamic_crop(
                pose, shape, self.settings.dynamic_crop_threshold,
                self.settings.dynamic_crop_margin)
        return pose

    def reset(self) -> None:
        """Forget the dynamic crop (e.g. on a stream reset)."""
        self._dynamic = None

    def close(self) -> None:
        """Release the engine (TensorFlow session)."""
        if not self._closed:
            self._closed = True
            try:
                self._dlc.close()
            except Exception as e:  # pragma: no cover - best effort
                log.debug("closing dlclive: %s", e)

    @property
    def stats(self) -> dict[str, float]:
        """Timing of :meth:`get_pose` (crop, pre-processing, inference) over the last 1000
        calls: ``frames``, ``mean_ms``, ``p50_ms``, ``p95_ms``, ``last_ms``, ``fps``."""
        if not self._times:
            return {"frames": float(self._n), "mean_ms": float("nan"), "p50_ms": float("nan"),
                    "p95_ms": float("nan"), "last_ms": float("nan"), "fps": float("nan")}
        t = np.asarray(self._times) * 1000.0
        mean = float(t.mean())
        return {"frames": float(self._n), "mean_ms": mean, "p50_ms": float(np.median(t)),
                "p95_ms": float(np.percentile(t, 95)), "last_ms": float(t[-1]),
                "fps": 1000.0 / mean if mean > 0 else float("inf")}


def load_runner(model_path: str | Path | None = None,
                settings: ModelSettings | None = None) -> PoseRunner:
    """Make the pose runner for a model folder.

    Parameters
    ----------
    model_path : str or Path, optional
        A DeepLabCut-Live export: a ``.pt`` file or a folder holding one (PyTorch), or a
        folder with ``pose_cfg.yaml`` and a ``.pb`` graph (TensorFlow). Relative paths
        resolve like other assets. Default: ``settings.path``.
    settings : ModelSettings, optional
        Engine, device, precision, resize, cropping. Default: ``ModelSettings()``.

    Returns
    -------
    PoseRunner
        Not yet initialised; call :meth:`PoseRunner.init` with a first frame (or just
        :meth:`PoseRunner.get_pose`).

    Raises
    ------
    ModelError
        When the path is not a model, or ``settings.engine`` contradicts the files.
    """
    settings = settings or ModelSettings()
    path = resolve_asset(model_path if model_path is not None else settings.path)
    engine = detect_engine(path)
    if settings.engine != "auto" and settings.engine != engine:
        raise ModelError(f"{path}: model.engine is {settings.engine!r} but this is a "
                         f"{engine} model")
    check_resize(settings.resize, "model.resize")
    card = read_model_card(path)
    target = find_model_file(path)
    if card.resize is not None and abs(card.resize - settings.resize) > 1e-6:
        log.warning("%s was trained for model.resize=%s but runs with resize=%s",
                    path, card.resize, settings.resize)
    runner = DLCLiveRunner(target, engine, settings, card)
    log.info("pose model %s (%s, %s, %d keypoints)", target, engine, runner.device,
             len(card.bodyparts))
    return runner
