"""The wire format of every gaitlive ZeroMQ message: topics, headers, bodies.

A message is three frames ``[topic, header, body]``:

``topic``
    ASCII ``<kind>/<camera_id>/``, e.g. ``b"pass/cam0/"``. The trailing ``/`` delimits the
    camera id, so a SUB prefix ``pose/cam1/`` never matches ``pose/cam10/``. Kinds are
    :data:`TOPICS`.
``header``
    msgpack map: schema version ``v``, publisher id ``pub``, journal ``epoch``, process
    ``run`` id, per-topic sequence number ``seq``, ``t_mono`` (``time.monotonic()`` of the event) and ``t_wall``
    (``time.time()``); ``pass`` and ``status`` headers also advertise the publisher's side
    channel as ``side``.
``body``
    msgpack map, one layout per kind (see ``docs/messages.md`` and
    ``gaitlive/schemas/messages.schema.json``). numpy arrays travel as
    ``{"dtype": "<f4", "shape": [...], "data": <bin>}`` -- never pickle.

Decoding never unpickles or evaluates anything; a malformed message raises
:class:`MessageError` naming the frame and field.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from gaitlive.gait.events import PassResult, StepEvent

log = logging.getLogger(__name__)

__all__ = [
    "SCHEMA_VERSION",
    "TOPICS",
    "MAX_FRAME_BYTES",
    "MessageError",
    "Message",
    "topic",
    "parse_topic",
    "subscription",
    "validate_camera_id",
    "validate_endpoint",
    "is_any_host",
    "connectable",
    "encode_header",
    "encode_body",
    "encode",
    "decode",
    "decode_header",
    "unpack",
    "pack",
    "encode_array",
    "decode_array",
    "pose_body",
    "step_body",
    "pass_body",
    "frame_body",
    "json_view",
    "load_schema",
]

SCHEMA_VERSION = 1
TOPICS: tuple[str, ...] = ("pose", "step", "pass", "status", "frame")
#: largest frame :func:`decode` accepts (a 4K JPEG is far below this)
MAX_FRAME_BYTES = 32 * 1024 * 1024
#: dtypes an array may have on the wire (little-endian, no objects)
ARRAY_DTYPES = frozenset({"<f4", "<f8", "<i4", "<i8", "|u1", "<u2", "<i2", "|b1"})
_CAMERA_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


class MessageError(ValueError):
    """A message (or part of one) does not follow the gaitlive schema."""


# --------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------


def validate_camera_id(camera_id: str) -> str:
    """Return ``camera_id`` if it can be used in a topic, else raise :class:`MessageError`.

    Camera ids are 1-64 characters of ``A-Z a-z 0-9 _ . : @ -`` (no ``/``: it delimits the
    topic)."""
    if not isinstance(camera_id, str) or not _CAMERA_RE.match(camera_id):
        raise MessageError(f"camera id: expected 1-64 characters of A-Z a-z 0-9 _ . : @ -, "
                           f"got {camera_id!r}")
    return camera_id


_TCP_RE = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\s]+):(?P<port>\*|[0-9]+)$")


#: hosts that mean "every interface": fine to bind, nothing to connect to
ANY_HOSTS = frozenset({"*", "0.0.0.0", "[::]", "[0:0:0:0:0:0:0:0]"})


def is_any_host(endpoint: str) -> bool:
    """Whether ``endpoint`` is ``tcp://`` on a host meaning "every interface" (``*``,
    ``0.0.0.0``, ``[::]``): an address to bind, not one to connect to."""
    text = endpoint[1:] if endpoint[:1] in (">", "@") else endpoint
    m = _TCP_RE.match(text)
    return bool(m) and m.group("host") in ANY_HOSTS


def connectable(endpoint: str, via: str) -> str:
    """``endpoint`` as a subscriber can connect to it: a host meaning "every interface"
    (an older publisher advertising its bound side channel ``tcp://0.0.0.0:P``) becomes
    the host of ``via``, the endpoint the subscriber reached that publisher on."""
    if not is_any_host(endpoint):
        return endpoint
    v = _TCP_RE.match(via[1:] if via[:1] in (">", "@") else via)
    e = _TCP_RE.match(endpoint[1:] if endpoint[:1] in (">", "@") else endpoint)
    if not (v and e) or v.group("host") in ANY_HOSTS:
        return endpoint
    return f"tcp://{v.group('host')}:{e.group('port')}"


def validate_endpoint(endpoint: str, what: str = "endpoint", *, wildcard: bool = True) -> str:
    """Return ``endpoint`` if ZeroMQ can use it, else raise :class:`MessageError` naming
    ``what``.

    Accepted: ``tcp://HOST:PORT`` with PORT 1-65535 (or ``*`` or ``0``, a free port, where
    ``wildcard``), ``ipc://PATH`` and ``inproc://NAME``, optionally prefixed by ``>``
    (connect) or ``@`` (bind). libzmq itself takes port 99999 and binds some other port,
    so a mistyped port is caught here instead. Without ``wildcard`` (an endpoint to connect
    to) a host meaning "every interface" -- ``*``, ``0.0.0.0``, ``[::]`` -- is refused too:
    libzmq refuses to connect to ``*``, and ``0.0.0.0`` is not an address another machine
    can reach."""
    text = endpoint[1:] if endpoint[:1] in (">", "@") else endpoint
    ok = False
    m = _TCP_RE.match(text)
    if m:
        port = m.group("port")
        ok = (port in ("*", "0") and wildcard) or (port.isdigit() and 1 <= int(port) <= 65535)
        if ok and not wildcard and m.group("host") in ANY_HOSTS:
            raise MessageError(f"{what}: {m.group('host')} means 'every interface', an "
                               f"address to bind, not one to connect to; give the host name "
                               f"or address of the machine (e.g. tcp://barn-pc:{port}, or "
                               f"tcp://127.0.0.1:{port} on this machine), got {endpoint!r}")
    elif text.startswith(("ipc://", "inproc://")):
        ok = len(text.split("://", 1)[1]) > 0
    if not ok:
        port_rule = "1-65535, or * for a free port" if wildcard else "1-65535"
        raise MessageError(f"{what}: expected a ZeroMQ endpoint like tcp://127.0.0.1:5556 "
                           f"(port {port_rule}), ipc://PATH or inproc://NAME, got {endpoint!r}")
    return endpoint


def topic(kind: str, camera_id: str) -> bytes:
    """The topic frame of a message, e.g. ``topic("pose", "cam0") == b"pose/cam0/"``."""
    if kind not in TOPICS:
        raise MessageError(f"topic kind: expected one of {list(TOPICS)}, got {kind!r}")
    return f"{kind}/{validate_camera_id(camera_id)}/".encode("ascii")


def subscription(kind: str, camera_id: str | None = None) -> bytes:
    """The SUB prefix for one kind, of one camera or (``camera_id=None``) of all cameras."""
    if kind not in TOPICS:
        raise MessageError(f"topic kind: expected one of {list(TOPICS)}, got {kind!r}")
    if camera_id is None:
        return f"{kind}/".encode("ascii")
    return topic(kind, camera_id)


def parse_topic(frame: bytes) -> tuple[str, str]:
    """``b"pose/cam0/"`` -> ``("pose", "cam0")``; :class:`MessageError` if malformed."""
    try:
        text = bytes(frame).decode("ascii")
    except UnicodeDecodeError:
        raise MessageError(f"topic frame: expected ASCII, got {bytes(frame)[:40]!r}") from None
    parts = text.split("/")
    if len(parts) != 3 or parts[2] != "" or parts[0] not in TOPICS:
        raise MessageError(f"topic frame: expected '<kind>/<camera>/' with kind in "
                           f"{list(TOPICS)}, got {text[:80]!r}")
    validate_camera_id(parts[1])
    return parts[0], parts[1]


# --------------------------------------------------------------------------------------
# msgpack + arrays
# --------------------------------------------------------------------------------------


def pack(obj: Any) -> bytes:
    """msgpack-encode plain data (maps, lists, str, bytes, numbers, bool, None)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, *, what: str = "frame", max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode msgpack safely: no extension types, string map keys, bounded size.

    Raises
    ------
    MessageError
        If ``data`` is larger than ``max_bytes`` or is not a single valid msgpack object.
    """
    if len(data) > max_bytes:
        raise MessageError(f"{what}: {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return msgpack.unpackb(bytes(data), raw=False, strict_map_key=True,
                               ext_hook=_no_ext)
    except MessageError:
        raise
    except Exception as e:  # msgpack raises several unrelated exception types
        raise MessageError(f"{what}: not valid msgpack ({type(e).__name__}: {e})") from None


def _no_ext(code: int, data: bytes) -> Any:
    raise MessageError(f"msgpack extension type {code} is not allowed")


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A numpy array as ``{"dtype", "shape", "data"}`` (little-endian raw bytes)."""
    a = np.asarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    a = np.ascontiguousarray(a, dtype=dt)
    if a.dtype.str not in ARRAY_DTYPES:
        raise MessageError(f"array dtype: expected one of {sorted(ARRAY_DTYPES)}, "
                           f"got {a.dtype.str!r}")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def decode_array(obj: Any, *, what: str = "array") -> np.ndarray:
    """Inverse of :func:`encode_array`; checks dtype, shape and byte count.

    Returns a read-only view of the received bytes."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise MessageError(f"{what}: expected a map with keys dtype, shape, data, got "
                           f"{_brief(obj)}")
    dtype, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if dtype not in ARRAY_DTYPES:
        raise MessageError(f"{what}.dtype: expected one of {sorted(ARRAY_DTYPES)}, "
                           f"got {dtype!r}")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                       for n in shape)):
        raise MessageError(f"{what}.shape: expected a list of at most 8 integers >= 0, "
                           f"got {shape!r}")
    if not isinstance(data, bytes):
        raise MessageError(f"{what}.data: expected bytes, got {type(data).__name__}")
    dt = np.dtype(dtype)
    n = math.prod(shape)
    if n * dt.itemsize != len(data):
        raise MessageError(f"{what}: shape {shape} of {dtype} needs {n * dt.itemsize} bytes, "
                           f"got {len(data)}")
    return np.frombuffer(data, dtype=dt).reshape(shape)


def _brief(obj: Any) -> str:
    r = repr(obj)
    return r if len(r) <= 80 else r[:77] + "..."


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------

_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "v": (int,), "pub": (str,), "epoch": (str,), "seq": (int,),
    "t_mono": (float, int), "t_wall": (float, int),
}


def encode_header(publisher_id: str, epoch: str, seq: int, t_mono: float, t_wall: float,
                  side: str | None = None, run: str | None = None) -> bytes:
    """The header frame (msgpack). ``side`` is the advertised side-channel endpoint; ``run``
    identifies one start of the publisher process (non-pass seqs restart with it)."""
    h: dict[str, Any] = {"v": SCHEMA_VERSION, "pub": publisher_id, "epoch": epoch,
                         "seq": int(seq), "t_mono": float(t_mono), "t_wall": float(t_wall)}
    if run:
        h["run"] = run
    if side:
        h["side"] = side
    return pack(h)


def decode_header(frame: bytes) -> dict[str, Any]:
    """Decode and check a header frame; :class:`MessageError` names the bad field."""
    h = unpack(frame, what="header", max_bytes=64 * 1024)
    if not isinstance(h, dict):
        raise MessageError(f"header: expected a map, got {_brief(h)}")
    for k, types in _HEADER_TYPES.items():
        if k not in h:
            raise MessageError(f"header: missing field {k!r}")
        if isinstance(h[k], bool) or not isinstance(h[k], types):
            raise MessageError(f"header.{k}: expected {types[0].__name__}, got {_brief(h[k])}")
    if h["v"] != SCHEMA_VERSION:
        raise MessageError(f"header.v: this gaitlive reads schema version {SCHEMA_VERSION}, "
                           f"got {h['v']}")
    if h["seq"] < 1:
        raise MessageError(f"header.seq: expected an integer >= 1, got {h['seq']}")
    for k in ("side", "run"):
        if k in h and not isinstance(h[k], str):
            raise MessageError(f"header.{k}: expected str, got {_brief(h[k])}")
    return h


# --------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------


def pose_body(frame_index: int, t_capture: float, t_wall: float, poses: np.ndarray,
              bodyparts: tuple[str, ...] | list[str], t_pose: float | None = None,
              individuals: Sequence[int] | None = None) -> dict[str, Any]:
    """Body of a ``pose`` message: one frame's poses, float32 (n_individuals, n_kp, 3), and
    optionally the track id of each row (-1: not tracked)."""
    arr = np.asarray(poses, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[1] != len(bodyparts):
        raise MessageError(f"poses: expected float32 (n_individuals, {len(bodyparts)}, 3), "
                           f"got shape {arr.shape}")
    body = {"frame": int(frame_index), "t_capture": float(t_capture), "t_wall": float(t_wall),
            "bodyparts": list(bodyparts), "poses": encode_array(arr)}
    if t_pose is not None:
        body["t_pose"] = float(t_pose)
    if individuals is not None:
        ids = [int(i) for i in individuals]
        if len(ids) != arr.shape[0]:
            raise MessageError(f"individuals: expected {arr.shape[0]} ids, got {len(ids)}")
        body["individuals"] = ids
    return body


def step_body(step: StepEvent) -> dict[str, Any]:
    """Body of a ``step`` message: the fields of :class:`~gaitlive.gait.events.StepEvent`."""
    d = step.to_dict()
    d["t"] = float(d["t"])
    return d


def pass_body(result: PassResult, model: str = "") -> dict[str, Any]:
    """Body of a ``pass`` message: :class:`~gaitlive.gait.events.PassResult` plus ``model``."""
    d = result.to_dict()
    d["features"] = {str(k): float(v) for k, v in d["features"].items()}
    for k in ("score", "confidence"):
        if d[k] is not None:
            d[k] = float(d[k])
    d["model"] = model
    return d


def frame_body(frame_index: int, jpeg: bytes) -> dict[str, Any]:
    """Body of a ``frame`` message: the camera image as JPEG bytes (``gaitlive view`` draws
    the overlay on it from the pose, step and pass messages)."""
    return {"frame": int(frame_index), "jpeg": bytes(jpeg)}


def encode_body(body: dict[str, Any]) -> bytes:
    """msgpack-encode a body map."""
    return pack(body)


def encode(kind: str, camera_id: str, header: bytes, body: dict[str, Any] | bytes
           ) -> list[bytes]:
    """The three frames of a message."""
    return [topic(kind, camera_id), header, body if isinstance(body, bytes) else pack(body)]


_STEP_FIELDS = {"individual": int, "pass_id": int, "foot": str, "kind": str,
                "strike_frame": int, "lift_frame": (int, type(None)), "t": (float, int)}
_PASS_FIELDS = {"individual": int, "pass_id": int, "start_frame": int, "end_frame": int,
                "n_steps": int, "features": dict, "score": (float, int, type(None)),
                "score_class": (int, type(None)), "confidence": (float, int, type(None)),
                "scored": bool, "camera_id": str, "reason": str}
_POSE_FIELDS = {"frame": int, "t_capture": (float, int), "t_wall": (float, int),
                "bodyparts": list, "poses": dict}
_FRAME_FIELDS = {"frame": int, "jpeg": bytes}
_STATUS_FIELDS = {"state": str, "model": str, "pass_seq": int, "published": dict}


def _check_fields(kind: str, body: dict[str, Any], spec: dict[str, Any]) -> None:
    for k, tp in spec.items():
        if k not in body:
            raise MessageError(f"{kind} body: missing field {k!r}")
        v = body[k]
        types = tp if isinstance(tp, tuple) else (tp,)
        if isinstance(v, bool) and bool not in types:
            raise MessageError(f"{kind} body.{k}: expected {types[0].__name__}, got {v!r}")
        if not isinstance(v, types):
            raise MessageError(f"{kind} body.{k}: expected {types[0].__name__}, "
                               f"got {_brief(v)}")


def _check_body(kind: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MessageError(f"{kind} body: expected a map, got {_brief(body)}")
    if kind == "pose":
        _check_fields(kind, body, _POSE_FIELDS)
        arr = decode_array(body["poses"], what="pose body.poses")
        nbp = len(body["bodyparts"])
        if arr.dtype != np.float32 or arr.ndim != 3 or arr.shape[1:] != (nbp, 3):
            raise MessageError(f"pose body.poses: expected float32 (n, {nbp}, 3), got "
                               f"{arr.dtype} {arr.shape}")
        ids = body.get("individuals")
        if ids is not None and (not isinstance(ids, list) or len(ids) != arr.shape[0] or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= -1 for i in ids)):
            raise MessageError(f"pose body.individuals: expected {arr.shape[0]} ints >= -1 (one "
                               f"per pose row), got {_brief(ids)}")
        body = dict(body, poses=arr)
    elif kind == "step":
        _check_fields(kind, body, _STEP_FIELDS)
    elif kind == "pass":
        _check_fields(kind, body, _PASS_FIELDS)
        for k, v in body["features"].items():
            if not isinstance(v, (float, int)) or isinstance(v, bool):
                raise MessageError(f"pass body.features.{k}: expected a number, got {v!r}")
    elif kind == "frame":
        _check_fields(kind, body, _FRAME_FIELDS)
    elif kind == "status":
        _check_fields(kind, body, _STATUS_FIELDS)
    return body


@dataclass(frozen=True)
class Message:
    """A decoded message.

    ``body`` is the decoded msgpack map; for ``pose`` its ``poses`` entry is already a
    float32 numpy array (n_individuals, n_keypoints, 3)."""

    kind: str
    camera_id: str
    header: dict[str, Any]
    body: dict[str, Any]
    raw_header: bytes = field(default=b"", repr=False, compare=False)
    raw_body: bytes = field(default=b"", repr=False, compare=False)

    @property
    def publisher_id(self) -> str:
        """Header ``pub``."""
        return self.header["pub"]

    @property
    def epoch(self) -> str:
        """Header ``epoch``."""
        return self.header["epoch"]

    @property
    def seq(self) -> int:
        """Header ``seq``."""
        return self.header["seq"]

    @property
    def run(self) -> str:
        """Header ``run`` (one start of the publisher process), "" from publishers that
        do not send it."""
        return self.header.get("run", "")

    @property
    def side_channel(self) -> str | None:
        """Header ``side`` (pass and status messages), else None."""
        return self.header.get("side")

    @property
    def topic(self) -> bytes:
        """The topic frame, e.g. ``b"pass/cam0/"``."""
        return topic(self.kind, self.camera_id)

    def poses(self) -> np.ndarray:
        """The pose array of a ``pose`` message."""
        self._expect("pose")
        return self.body["poses"]

    def step(self) -> StepEvent:
        """The :class:`StepEvent` of a ``step`` message."""
        self._expect("step")
        names = StepEvent.__dataclass_fields__
        return StepEvent(**{k: v for k, v in self.body.items() if k in names})

    def pass_result(self) -> PassResult:
        """The :class:`PassResult` of a ``pass`` message."""
        self._expect("pass")
        names = PassResult.__dataclass_fields__
        return PassResult(**{k: v for k, v in self.body.items() if k in names})

    def _expect(self, kind: str) -> None:
        if self.kind != kind:
            raise MessageError(f"expected a {kind!r} message, this is {self.kind!r}")


def decode(frames: list[bytes] | tuple[bytes, ...]) -> Message:
    """Decode the frames ``[topic, header, body]`` of one message.

    Raises
    ------
    MessageError
        On a wrong frame count, a bad topic, header or body; the message names the frame
        and the field.
    """
    if len(frames) != 3:
        raise MessageError(f"expected 3 frames [topic, header, body], got {len(frames)}")
    kind, cam = parse_topic(frames[0])
    header = decode_header(frames[1])
    raw_body = bytes(frames[2])
    body = _check_body(kind, unpack(raw_body, what=f"{kind} body"))
    return Message(kind, cam, header, body, bytes(frames[1]), raw_body)


# --------------------------------------------------------------------------------------
# JSON schema
# --------------------------------------------------------------------------------------


def json_view(obj: Any) -> Any:
    """The JSON view of decoded msgpack data used by the JSON schema: ``bytes`` become
    base64 strings (``contentEncoding: base64``), numpy arrays their wire map, NaN/inf stay
    floats."""
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, np.ndarray):
        return json_view(encode_array(obj))
    if isinstance(obj, dict):
        return {k: json_view(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_view(v) for v in obj]
    return obj


def load_schema() -> dict[str, Any]:
    """The machine-readable schema, ``gaitlive/schemas/messages.schema.json``."""
    path = Path(__file__).resolve().parents[1] / "schemas" / "messages.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))
