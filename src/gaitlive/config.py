"""Typed, immutable, validated configuration.

A run is configured by one YAML file (``configs/default.yaml``) that names a *profile*
(``configs/broiler-side.yaml`` ...). The profile describes the animal and the view: its
bodyparts, skeleton, angles, pcutoff and gait settings. Both load into frozen dataclasses
and are validated when loaded; every problem raises :class:`ConfigError` naming the file,
the key path and what was expected.

Examples
--------
>>> from gaitlive.config import load_config
>>> cfg = load_config()                      # configs/default.yaml
>>> cfg.profile.bodyparts[:2]
('head', 'neck')
>>> cfg = load_config(overrides={"source": "barn.mp4", "publish.endpoint": "tcp://127.0.0.1:6000"})
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from gaitlive.paths import CONFIG_DIR, resolve_asset

__all__ = [
    "ConfigError",
    "Config",
    "Profile",
    "GaitSettings",
    "LegSpec",
    "ModelSettings",
    "PresenceSettings",
    "PublishSettings",
    "CurveSettings",
    "OverlaySettings",
    "RecordSettings",
    "ScoreSettings",
    "load_config",
    "load_profile",
    "from_mapping",
]


#: every torch device name gaitlive takes (``--device``, ``model.device``); group 1 is a
#: CUDA index. The live runner takes all but ``mps`` (:data:`RUNNER_DEVICES`).
DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(?::(\d+))?")
RUNNER_DEVICES = "auto, cpu, cuda or cuda:N"


class ConfigError(ValueError):
    """A configuration file or value is invalid.

    The message always names the file (when there is one), the key path and what was
    expected, e.g. ``configs/x.yaml: gait.min_steps: expected an integer >= 1, got -2``.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, key: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        self.message = message  # without the file and key
        prefix = ""
        if self.file:
            prefix += f"{self.file}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


def _rng(lo: float | None = None, hi: float | None = None, **kw: Any) -> dict[str, Any]:
    """Field metadata for an inclusive numeric range."""
    return {"lo": lo, "hi": hi, **kw}


def _field(default: Any = dataclasses.MISSING, *, lo: float | None = None,
           hi: float | None = None, choices: tuple[Any, ...] | None = None,
           doc: str = "", default_factory: Any = dataclasses.MISSING) -> Any:
    meta = {"lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------
# Profile: the animal and the view
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegSpec:
    """The keypoints of one leg, proximal to distal. ``knee`` may be empty for a leg
    tracked from hock down only; ``foot`` is required (it is what touches the floor)."""

    knee: str = ""
    hock: str = ""
    foot: str = ""

    def __post_init__(self) -> None:
        if not self.foot:
            raise ConfigError("a leg needs a 'foot' bodypart", key="foot")


@dataclass(frozen=True)
class GaitSettings:
    """Settings of the gait stage (step detection, rolling features, pass segmentation)."""

    legs: dict[str, LegSpec] = _field(default_factory=dict,
                                      doc="leg name -> keypoints; e.g. left/right")
    # Pairs of legs compared for left/right asymmetry, e.g. [[left, right]].
    pairs: tuple[tuple[str, str], ...] = ()
    # Bodyparts whose mean position is the body centre (for body motion and sway).
    body: tuple[str, ...] = ()
    # Segments (bodypart pairs) summed to the image-space scale used to make features
    # scale-invariant (e.g. knee-hock + hock-foot = leg length).
    scale_segments: tuple[tuple[str, str], ...] = ()
    head: str = ""
    # Foot is "on the ground" when its speed relative to the floor is below this fraction of
    # the scale per second.
    stance_speed: float = _field(0.6, lo=0.0, hi=100.0)
    # ... or below this fraction of the bird's recent peak foot speed, whichever is higher
    # (a lame bird swings its feet slowly; see docs/gait.md).
    stance_rel: float = _field(0.2, lo=0.0, hi=1.0)
    # leaving a stance needs the speed to exceed the threshold times this (hysteresis)
    stance_hysteresis: float = _field(1.3, lo=1.0, hi=10.0)
    # time constant (s) of the decaying peak foot speed
    peak_tau_s: float = _field(2.0, lo=0.05, hi=600.0)
    # strikes/lifts are refined to where the foot is within this fraction of the scale
    # (or 3 noise sigmas) of its foothold
    foothold_eps: float = _field(0.01, lo=0.0, hi=1.0)
    # At the lift the strike is refined again on the whole stance's foothold and may move
    # up to this many seconds later than where the stance was first found (rear view: the
    # slow end of a swing along the line of sight is only clear on the whole stance). 0
    # keeps it there, so a pose model's foot drifting during the stance cannot pull the
    # strike late (side view, where the end of a swing is plain in the image).
    restrike_shift_s: float = _field(0.4, lo=0.0, hi=10.0)
    # samples of the least-squares foot velocity fit (odd). The windows below all live in
    # the gait kernel's 64 frames of foot history (gait.stage.RING), hence their limits.
    fit_frames: int = _field(5, lo=3, hi=31)
    # tracks seen in fewer frames than this many seconds are dropped (false detections)
    min_pass_s: float = _field(0.3, lo=0.0, hi=600.0)
    # Frames a stance/swing state must persist before it is accepted (debounce).
    min_stance_frames: int = _field(2, lo=1, hi=30)
    min_swing_frames: int = _field(2, lo=1, hi=30)
    # Plausible step timing: a stance shorter than min_stance_s is no step, and a swing
    # shorter than min_swing_s joins the stances around it (pose-model noise splits and
    # fakes short stances; a bird does not step at 10 Hz). The swing of a lame bird can be
    # 0.15 s and detected a few frames shorter, so min_swing_s is off (0) by default.
    min_stance_s: float = _field(0.1, lo=0.0, hi=10.0)
    min_swing_s: float = _field(0.0, lo=0.0, hi=10.0)
    # A stance whose foothold is closer than this many leg lengths to the foothold of the
    # same foot's previous stance continues it: the foot did not step (a pose model's foot
    # keypoint pulled off its foothold for a few frames, e.g. by the other leg passing it,
    # splits a stance in two). A walking bird's step is longer (side view: > 0.4 leg
    # lengths even for a severely lame bird); 0 = off.
    min_step_length: float = _field(0.0, lo=0.0, hi=10.0)
    # A pass whose cadence (steps/s) is above this is not scored (noise, not gait).
    max_cadence_hz: float = _field(4.0, lo=0.0, hi=1000.0)
    smoothing_frames: int = _field(3, lo=1, hi=31)
    window_s: float = _field(4.0, lo=0.1, hi=600.0)
    min_steps: int = _field(4, lo=1, hi=1000)
    lost_s: float = _field(1.0, lo=0.0, hi=600.0)
    # A bird that vanishes away from the edges of the view (the frame size is known) went
    # behind something (a post, a feeder, another bird): its pass goes on for this long,
    # or lost_s if that is longer, before it ends (a slow, lame bird takes well over
    # lost_s to pass a post).
    occluded_s: float = _field(3.0, lo=0.0, hi=600.0)
    min_present_keypoints: int = _field(3, lo=1, hi=1000)
    max_match_distance: float = _field(1.5, lo=0.0, hi=100.0,
                                       doc="max tracking distance, in body scales")


@dataclass(frozen=True)
class ScoreSettings:
    scale: str = _field("kestin", choices=("kestin", "cow5", "custom"))
    min_score: int = 0
    max_score: int = 5
    model: str = ""  # path of a score model file (models/...), "" = none

    def __post_init__(self) -> None:
        if self.max_score <= self.min_score:
            raise ConfigError(
                f"expected max_score > min_score, got {self.min_score}..{self.max_score}",
                key="max_score")


@dataclass(frozen=True)
class Profile:
    """A species/view profile: what the pose model detects and how to read gait from it."""

    name: str
    species: str
    view: str = _field("side", choices=("side", "rear"))
    bodyparts: tuple[str, ...] = ()
    skeleton: tuple[tuple[str, str], ...] = ()
    # angle name -> (a, vertex, c): the angle at `vertex` between a and c, in degrees
    angles: dict[str, tuple[str, str, str]] = _field(default_factory=dict)
    pcutoff: float = _field(0.5, lo=0.0, hi=1.0)
    gait: GaitSettings = _field(default_factory=GaitSettings)
    score: ScoreSettings = _field(default_factory=ScoreSettings)
    # the profile file it came from (set by the loader; "" for one written inside a run
    # config): relative paths in it (score.model) are looked for beside it, errors name it
    file: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.bodyparts:
            raise ConfigError("expected a non-empty list of bodypart names", key="bodyparts")
        if len(set(self.bodyparts)) != len(self.bodyparts):
            raise ConfigError(f"bodypart names must be unique, got {list(self.bodyparts)}",
                              key="bodyparts")
        known = set(self.bodyparts)

        def check(names: typing.Iterable[str], key: str) -> None:
            for n in names:
                if n and n not in known:
                    raise ConfigError(
                        f"unknown bodypart {n!r}; expected one of {list(self.bodyparts)}",
                        key=key)

        for i, edge in enumerate(self.skeleton):
            check(edge, f"skeleton[{i}]")
        for name, triple in self.angles.items():
            check(triple, f"angles.{name}")
        for leg, spec in self.gait.legs.items():
            check((spec.knee, spec.hock, spec.foot), f"gait.legs.{leg}")
        for i, pair in enumerate(self.gait.pairs):
            for leg in pair:
                if leg not in self.gait.legs:
                    raise ConfigError(
                        f"unknown leg {leg!r}; expected one of {list(self.gait.legs)}",
                        key=f"gait.pairs[{i}]")
        check(self.gait.body, "gait.body")
        for i, seg in enumerate(self.gait.scale_segments):
            check(seg, f"gait.scale_segments[{i}]")
        check((self.gait.head,), "gait.head")

    def index(self, bodypart: str) -> int:
        """Column of ``bodypart`` in pose arrays; -1 for ``""``."""
        if not bodypart:
            return -1
        return self.bodyparts.index(bodypart)

    @property
    def n_keypoints(self) -> int:
        return len(self.bodyparts)


# --------------------------------------------------------------------------------------
# Run configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSettings:
    """The pose model and how DLC-Live runs it."""

    path: str = "models/gaitlive-corridor"
    engine: str = _field("auto", choices=("auto", "pytorch", "tensorflow"))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = _field("FP32", choices=("FP32", "FP16"))
    resize: float = _field(1.0, lo=0.05, hi=4.0)
    # static crop [x1, x2, y1, y2] in pixels, or empty for none
    cropping: tuple[int, ...] = ()
    dynamic_crop: bool = False
    dynamic_crop_margin: int = _field(40, lo=0, hi=10000)
    dynamic_crop_threshold: float = _field(0.5, lo=0.0, hi=1.0)
    warmup_frames: int = _field(2, lo=0, hi=1000)
    # number of individuals the model outputs; 1 for single-animal models
    max_individuals: int = _field(1, lo=1, hi=1000)
    # torch CPU threads for inference; 0 = torch's default. On a small shared CPU one
    # thread is several times faster than two (OpenMP threads fight other threads).
    threads: int = _field(0, lo=0, hi=1024)

    def __post_init__(self) -> None:
        if not DEVICE_RE.fullmatch(self.device) or self.device == "mps":
            raise ConfigError(f"expected {RUNNER_DEVICES}, got {self.device!r}", key="device")
        if self.cropping and len(self.cropping) != 4:
            raise ConfigError(f"expected [x1, x2, y1, y2], got {list(self.cropping)}",
                              key="cropping")
        if self.cropping:
            x1, x2, y1, y2 = self.cropping
            if not (0 <= x1 < x2 and 0 <= y1 < y2):
                raise ConfigError(
                    f"expected 0 <= x1 < x2 and 0 <= y1 < y2, got {list(self.cropping)}",
                    key="cropping")


@dataclass(frozen=True)
class PresenceSettings:
    """Background-subtraction presence gating: skip inference on an empty corridor."""

    enabled: bool = True
    history: int = _field(300, lo=1, hi=100000)
    var_threshold: float = _field(25.0, lo=0.0, hi=10000.0)
    min_area_fraction: float = _field(0.004, lo=0.0, hi=1.0)
    downscale: int = _field(4, lo=1, hi=32)
    margin: int = _field(48, lo=0, hi=10000)
    # frames to keep running inference after the last motion
    hold_frames: int = _field(15, lo=0, hi=100000)
    crop: bool = True
    # the last inference's confident keypoints keep a bird present (and in the crop) when it
    # barely moves in the image (standing, or walking along the camera axis)
    track_pose: bool = True
    track_min_keypoints: int = _field(4, lo=1, hi=1000)
    # smallest crop [width, height] in pixels, grown around the bird (empty: no minimum): a
    # model trained on crops of this size loses confidence on tighter ones
    min_crop: tuple[int, ...] = ()
    # crop width and height are rounded up to a multiple of this (1: exact box): the network
    # runs much faster on a few recurring input shapes than on a new shape every frame
    crop_step: int = _field(32, lo=1, hi=4096)
    # largest bird (its confident keypoints' box, larger side; before the first pose, its
    # motion blob) in pixels of the network's input: a larger bird (a camera nearer the
    # corridor, or more pixels than the model was trained on) has its crop scaled down by
    # factors of 2^(-1/4) until it fits, margin, min_crop and crop_step scaled with it so
    # the network sees what it was trained on; 0 = off (model.resize only)
    bird_size: int = _field(0, lo=0, hi=100000)
    # largest network input in pixels (width x height of the crop at its scale; with crop
    # on, warm-up whole frames included): a larger one is scaled down by factors of
    # 2^(-1/4) until it fits, which bounds the inference time; 0 = off
    max_input_pixels: int = _field(0, lo=0, hi=100_000_000)

    def __post_init__(self) -> None:
        if self.min_crop and (len(self.min_crop) != 2
                              or not all(isinstance(v, int) and v > 0 for v in self.min_crop)):
            raise ConfigError(f"expected [width, height] in pixels (two positive integers) or "
                              f"[], got {list(self.min_crop)}", key="min_crop")


@dataclass(frozen=True)
class CurveSettings:
    enabled: bool = False
    keys_dir: str = "keys"  # server.key_secret lives here
    allow_dir: str = "keys/allowed"  # public keys of allowed subscribers


@dataclass(frozen=True)
class PublishSettings:
    enabled: bool = True
    endpoint: str = "tcp://127.0.0.1:5556"
    side_channel: str = "tcp://127.0.0.1:5557"
    # side-channel endpoint announced to subscribers in pass/status headers ("" = the bound
    # one); set it when binding to 0.0.0.0 / * or behind NAT, e.g. tcp://barn-pc:5557
    advertise: str = ""
    journal: str = "gaitlive-journal.sqlite"
    sndhwm: int = _field(1000, lo=1, hi=10_000_000)
    queue_size: int = _field(256, lo=1, hi=10_000_000)
    heartbeat_s: float = _field(1.0, lo=0.05, hi=3600.0)
    publish_poses: bool = True
    jpeg: bool = False
    jpeg_quality: int = _field(75, lo=1, hi=100)
    jpeg_every: int = _field(1, lo=1, hi=1000)
    curve: CurveSettings = _field(default_factory=CurveSettings)

    def __post_init__(self) -> None:
        from gaitlive.publish.messages import MessageError, validate_endpoint

        for key in ("endpoint", "side_channel", "advertise"):
            value = getattr(self, key)
            if value or key != "advertise":
                # an advertised endpoint, or one with '>', is connected to: no wildcard port,
                # no 'every interface' host (*, 0.0.0.0)
                connect = key == "advertise" or value.startswith(">")
                try:
                    validate_endpoint(value, key, wildcard=not connect)
                except MessageError as e:
                    raise ConfigError(str(e).split(": ", 1)[1], key=key) from None
        if self.side_channel == self.endpoint and not self.endpoint.endswith((":*", ":0")):
            # the second bind would fail with a bare "Address already in use"
            raise ConfigError(f"{self.side_channel!r} is publish.endpoint too; the side "
                              f"channel needs an address of its own (e.g. the next port)",
                              key="side_channel")
        # the journal is opened only when the publisher starts (after the model loads):
        # refuse what can never be a journal file now
        if self.enabled:
            journal = self.journal
            if not journal.strip():
                raise ConfigError(f"expected the path of the pass journal file, e.g. "
                                  f"gaitlive-journal.sqlite, got {journal!r}", key="journal")
            if Path(journal).is_dir():
                raise ConfigError(f"{journal!r} is a folder; expected the path of the pass "
                                  f"journal file in it, e.g. "
                                  f"{(Path(journal) / 'gaitlive-journal.sqlite').as_posix()}",
                                  key="journal")


@dataclass(frozen=True)
class OverlaySettings:
    window: str = _field("auto", choices=("auto", "on", "off"))
    video: str = ""  # overlay video path for --headless; "" = <out_dir>/overlay.mp4
    queue_size: int = _field(4, lo=1, hi=10000)

    def __post_init__(self) -> None:
        if not self.video:
            return
        from gaitlive.overlay.video import VIDEO_OUT_SUFFIXES  # cv2: only when one is set

        p = Path(self.video)
        if p.is_dir():
            raise ConfigError(f"{self.video!r} is a folder (expected a video file name "
                              f"ending in {', '.join(VIDEO_OUT_SUFFIXES)})", key="video")
        if p.suffix.lower() not in VIDEO_OUT_SUFFIXES:
            raise ConfigError(f"expected a video file name ending in "
                              f"{', '.join(VIDEO_OUT_SUFFIXES)}, got {self.video!r}",
                              key="video")


@dataclass(frozen=True)
class RecordSettings:
    enabled: bool = False
    dir: str = "recordings"
    segment_s: float = _field(60.0, lo=1.0, hi=7 * 24 * 3600.0)
    fourcc: str = "mp4v"

    def __post_init__(self) -> None:
        # the form here, when the file is loaded; whether this OpenCV build writes the
        # codec is probed when a recording starts
        if len(self.fourcc) != 4:
            raise ConfigError(f"expected a 4-character FourCC code like 'mp4v' or 'MJPG', "
                              f"got {self.fourcc!r}", key="fourcc")


@dataclass(frozen=True)
class Config:
    """A whole run configuration, as loaded from ``configs/default.yaml``."""

    profile: Profile
    source: str = "demo"  # demo | camera index | URL | video file | image folder
    camera_id: str = "cam0"
    realtime: bool = True
    out_dir: str = "gaitlive-out"
    open_timeout_s: float = _field(10.0, lo=0.1, hi=3600.0)
    read_timeout_s: float = _field(5.0, lo=0.1, hi=3600.0)
    reconnect_max_s: float = _field(30.0, lo=0.1, hi=3600.0)
    queue_size: int = _field(8, lo=1, hi=100000)
    model: ModelSettings = _field(default_factory=ModelSettings)
    presence: PresenceSettings = _field(default_factory=PresenceSettings)
    publish: PublishSettings = _field(default_factory=PublishSettings)
    overlay: OverlaySettings = _field(default_factory=OverlaySettings)
    record: RecordSettings = _field(default_factory=RecordSettings)
    # file the config came from (set by the loader)
    file: str = ""

    def __post_init__(self) -> None:
        # the camera id names topics, the journal's stream and recording folders: checked
        # here, not first by the publisher (a run with --no-publish records too)
        from gaitlive.publish.messages import MessageError, validate_camera_id

        try:
            validate_camera_id(self.camera_id)
        except MessageError as e:
            raise ConfigError(str(e).replace("camera id: ", "", 1), key="camera_id") from None


# --------------------------------------------------------------------------------------
# Generic loader: mapping -> frozen dataclass, with type/range/unknown-key checks
# --------------------------------------------------------------------------------------

_NoneType = type(None)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin in (tuple, list):
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} items"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def _convert(value: Any, tp: Any, key: str, file: str | None) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not _NoneType]
        if value is None and _NoneType in get_args(tp):
            return None
        errors = []
        for a in args:
            try:
                return _convert(value, a, key, file)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a mapping, got {value!r}", file=file, key=key)
        return from_mapping(tp, value, file=file, prefix=key)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"expected true or false, got {value!r}", file=file, key=key)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", file=file, key=key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", file=file, key=key)
        return float(value)
    if tp is str:
        if isinstance(value, bool) or value is None:
            raise ConfigError(f"expected a string, got {value!r}", file=file, key=key)
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", file=file, key=key)
        return value
    if origin in (tuple, list):
        args = get_args(tp)
        if value is None:
            value = []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected {_describe(tp)}, got {value!r}", file=file, key=key)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", file) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"expected {_describe(tp)}, got {list(value)!r}", file=file, key=key)
        return tuple(_convert(v, a, f"{key}[{i}]", file)
                     for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        kt, vt = get_args(tp)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a mapping, got {value!r}", file=file, key=key)
        return {_convert(k, kt, key, file): _convert(v, vt, f"{key}.{k}", file)
                for k, v in value.items()}
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # programming error


def from_mapping(cls: type, data: Mapping[str, Any], *, file: str | Path | None = None,
                 prefix: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from ``data``, validating every key.

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type, an out-of-range value or a failed check in the
        class's ``__post_init__``; the message names ``file`` and the dotted key path.
    """
    file = str(file) if file is not None else None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for k in data:
        if k not in fields or k == "file":
            where = f"{prefix}.{k}" if prefix else str(k)
            known = ", ".join(n for n in fields if n != "file")
            raise ConfigError(f"unknown key; expected one of: {known}", file=file, key=where)
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError("missing required key", file=file, key=key)
            continue
        value = _convert(data[name], hints[name], key, file)
        meta = f.metadata
        lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"expected a number, got {data[name]!r}", file=file, key=key)
        if lo is not None and value < lo or hi is not None and value > hi:
            kind = "an integer" if hints[name] is int else "a number"
            rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(f"expected {kind} {rng}, got {data[name]!r}", file=file, key=key)
        if choices is not None and value not in choices:
            raise ConfigError(f"expected one of {list(choices)}, got {value!r}",
                              file=file, key=key)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        if e.file is None:
            sub = f"{prefix}.{e.key}" if prefix and e.key else (e.key or prefix or None)
            msg = str(e)
            if e.key:
                msg = msg.split(": ", 1)[1]
            raise ConfigError(msg, file=file, key=sub) from None
        raise


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found (expected a YAML file at {path})", file=path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {yaml_error_line(e)}", file=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}",
                          file=path)
    return data


def yaml_error_line(e: Exception) -> str:
    """A YAML parser error in one line: where (line, column) and what."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def profile_names() -> list[str]:
    """The profiles shipped in ``configs/`` (every YAML there but the run configs)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")
                  if p.stem != "default" and "bodyparts:" in p.read_text(encoding="utf-8"))


def _profile_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_absolute() and relative_to is not None and (relative_to / p).exists():
            return relative_to / p
        return p
    path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {name_or_path!r}; expected one of "
                          f"{', '.join(profile_names())} or a profile .yaml file",
                          key="profile")
    return path


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a species/view profile by name (``broiler-side``) or path.

    Examples
    --------
    >>> load_profile("broiler-rear").view
    'rear'
    """
    return _profile_from_file(_profile_path(str(name_or_path)))


def _profile_from_file(path: Path) -> Profile:
    """A profile file, validated; the profile records where it came from (``file``)."""
    return dataclasses.replace(from_mapping(Profile, _read_yaml(path), file=path),
                               file=str(path))


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, file: Path | None = None
                ) -> None:
    parts = dotted.split(".")
    cur = data
    for i, p in enumerate(parts[:-1]):
        nxt = cur.get(p)
        if nxt is None:
            nxt = {}
            cur[p] = nxt
        elif not isinstance(nxt, dict):
            key = ".".join(parts[:i + 1])
            raise ConfigError(f"expected a mapping (to set {dotted} in it), got {nxt!r}",
                              file=file, key=key)
        cur = nxt
    cur[parts[-1]] = value


def _layered(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid over ``base``: mappings merge key by key, anything else (a value, a
    list, a mapping replacing a value) replaces."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        out[k] = _layered(b, v) if isinstance(b, dict) and isinstance(v, dict) else v
    return out


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None,
                labels: Mapping[str, str] | None = None) -> Config:
    """Load and validate a run configuration.

    Parameters
    ----------
    path
        A YAML file; ``None`` means ``configs/default.yaml``. Another file is laid over
        ``configs/default.yaml``: it names only what it changes (mappings merge key by key;
        values and lists replace).
    overrides
        Dotted keys to replace after loading, e.g. ``{"source": "cam.mp4",
        "model.path": "models/x", "publish.endpoint": "tcp://127.0.0.1:6000"}`` (what the
        CLI's ``--source``, ``--model`` and ``--endpoint`` do). ``None`` values are ignored.
    labels
        How an error names an override's key, e.g. ``{"publish.endpoint": "--endpoint"}``
        (default: the key and the value given): a bad value given on the command line is
        not blamed on the file.
    """
    default = CONFIG_DIR / "default.yaml"
    path = Path(path) if path is not None else default
    data = _read_yaml(path)
    if path.resolve() != default.resolve():
        # a run config names what it changes; the rest is configs/default.yaml's (a file
        # with only a publish: block must not drop the tuned presence and model settings
        # back to the code's own defaults)
        data = _layered(_read_yaml(default), data)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for k, v in given.items():
        _set_dotted(data, k, v, path)
    try:
        cfg = _load(path, data)
        if "model.path" in given:  # typed on the command line: from here, not the config's
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(
                cfg.model, path=str(resolve_asset(str(given["model.path"])))))
        return cfg
    except ConfigError as e:
        if e.key in given:  # the value came from the command line, not from the file
            label = (labels or {}).get(e.key) or f"{e.key} (given as {given[e.key]!r})"
            raise ConfigError(e.message, key=label) from None
        raise


def _load(path: Path, data: dict[str, Any]) -> Config:
    prof = data.get("profile", "broiler-side")
    if isinstance(prof, str):
        try:
            ppath = _profile_path(prof, relative_to=path.parent)
        except ConfigError as e:
            raise ConfigError(e.message, file=path, key="profile") from None
        profile = _profile_from_file(ppath)
    elif isinstance(prof, Mapping):
        profile = from_mapping(Profile, prof, file=path, prefix="profile")
    else:
        raise ConfigError(f"expected a profile name or mapping, got {prof!r}", file=path,
                          key="profile")
    rest = {k: v for k, v in data.items() if k != "profile"}
    return _build_config(rest, profile, path)


def _build_config(rest: dict[str, Any], profile: Profile, path: Path) -> Config:
    # Validate everything but the profile through the generic loader, then attach it.
    fields = {f.name for f in dataclasses.fields(Config)}
    for k in rest:
        if k not in fields or k in ("file", "profile"):
            known = ", ".join(n for n in fields if n != "file")
            raise ConfigError(f"unknown key; expected one of: {known}", file=path, key=str(k))
    tmp = from_mapping(_ConfigNoProfile, rest, file=path)
    values = {f.name: getattr(tmp, f.name) for f in dataclasses.fields(_ConfigNoProfile)}
    try:
        cfg = Config(profile=profile, file=str(path), **values)
    except ConfigError as e:  # a check in Config.__post_init__: name the file
        if e.file is not None:
            raise
        raise ConfigError(str(e).split(": ", 1)[1] if e.key else str(e), file=path,
                          key=e.key) from None
    model_path = resolve_asset(cfg.model.path, base=path.parent)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=str(model_path)))


def _without_profile() -> type:
    flds = []
    for f in dataclasses.fields(Config):
        if f.name in ("profile", "file"):
            continue
        kw: dict[str, Any] = {"metadata": f.metadata}
        if f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        else:
            kw["default_factory"] = f.default_factory
        flds.append((f.name, get_type_hints(Config)[f.name], field(**kw)))
    return dataclasses.make_dataclass("_ConfigNoProfile", flds, frozen=True)


_ConfigNoProfile = _without_profile()
