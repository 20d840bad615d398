"""Wire format: every topic round-trips through real PUB/SUB sockets and validates against
the JSON schema; malformed frames are rejected with a message naming the field."""

from __future__ import annotations

import math
import pickle
import time

import jsonschema
import msgpack
import numpy as np
import pytest

from gaitlive.config import PublishSettings
from gaitlive.gait.events import PassResult, StepEvent
from gaitlive.publish import Publisher, Subscriber
from gaitlive.publish import messages as M

BODYPARTS = ("head", "neck", "left_knee", "right_knee", "left_hock", "right_hock",
             "left_foot", "right_foot")


def _settings(tmp_path, **kw) -> PublishSettings:
    base = dict(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                journal=str(tmp_path / "journal.sqlite"), heartbeat_s=0.1)
    base.update(kw)
    return PublishSettings(**base)


def _wait_kind(sub: Subscriber, kind: str, timeout_s: float = 5.0) -> M.Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = sub.recv(0.1)
        if msg is not None and msg.kind == kind:
            return msg
    raise AssertionError(f"no {kind} message within {timeout_s} s")


@pytest.fixture(scope="module")
def schema():
    s = M.load_schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def _validate(schema, msg: M.Message) -> None:
    doc = {"topic": msg.topic.decode(), "header": M.json_view(msg.header),
           "body": M.json_view(M.unpack(msg.raw_body))}
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_every_topic_round_trips_over_real_sockets_and_matches_the_schema(tmp_path, schema):
    rng = np.random.default_rng(0)
    poses = rng.uniform(0, 640, (2, 8, 3)).astype(np.float32)
    poses[1, 3, :2] = np.nan
    poses[1, 3, 2] = 0.0
    step = StepEvent(individual=1, pass_id=7, foot="left", kind="lift", strike_frame=10,
                     lift_frame=14, t=0.56)
    result = PassResult(individual=1, pass_id=7, start_frame=3, end_frame=90, n_steps=6,
                        features={"cadence_hz": 2.5, "stance_fraction_left": 0.61,
                                  "asym": float("nan")},
                        score=2.0, score_class=2, confidence=0.83, scored=True,
                        camera_id="cam7", reason="")
    jpeg = bytes(range(256)) * 40
    settings = _settings(tmp_path, jpeg=True)
    with Publisher(settings, "cam7", model="corridor-v1") as pub, \
            Subscriber(pub.endpoint, M.TOPICS, "cam7") as sub:
        _wait_kind(sub, "status")  # subscribed: heartbeats arrive
        t0 = time.monotonic()
        pub.publish_pose(41, 12.5, 1.7e9, poses, BODYPARTS, t_pose=12.52,
                         individuals=[3, -1])
        pub.publish_step(step)
        pub.publish_pass(result)
        pub.publish_frame(41, jpeg)
        pub.publish_status({"fps": np.float32(29.5), "drops": np.int64(3),
                            "latency_ms": 41.0, "camera": "open", "state": "running"})
        got = {}
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            m = sub.recv(0.2)
            if m is not None and (m.kind != "status" or "fps" in m.body):
                got.setdefault(m.kind, m)
        assert set(got) == set(M.TOPICS)
        for m in got.values():
            _validate(schema, m)
            assert m.camera_id == "cam7"
            assert m.publisher_id == pub.publisher_id and m.epoch == pub.epoch
            assert m.header["t_mono"] >= t0
        p = got["pose"]
        assert p.seq == 1 and p.body["frame"] == 41 and p.body["t_capture"] == 12.5
        assert p.body["bodyparts"] == list(BODYPARTS) and p.body["t_pose"] == 12.52
        assert p.body["individuals"] == [3, -1]
        np.testing.assert_array_equal(p.poses(), poses)  # NaNs in the same places
        assert got["step"].step() == step
        back = got["pass"].pass_result()
        assert math.isnan(back.features.pop("asym"))  # NaN survives
        assert back == PassResult(**{**result.to_dict(),
                                     "features": {"cadence_hz": 2.5,
                                                  "stance_fraction_left": 0.61}})
        assert got["pass"].seq == 1 and got["pass"].body["model"] == "corridor-v1"
        assert got["pass"].side_channel == pub.side_endpoint
        assert got["frame"].body == {"frame": 41, "jpeg": jpeg}
        st = got["status"].body
        assert (st["fps"], st["drops"], st["camera"]) == (29.5, 3, "open")
        assert st["pass_seq"] == 1 and st["model"] == "corridor-v1"


def test_camera_topics_do_not_collide_by_prefix(tmp_path):
    with Publisher(_settings(tmp_path / "a"), "cam1") as p1, \
            Publisher(_settings(tmp_path / "b"), "cam10") as p10, \
            Subscriber(p1.endpoint, ["pass", "status"], "cam1") as sub:
        sub.socket.connect(p10.endpoint)
        _wait_kind(sub, "status")
        for i in range(3):
            p10.publish_pass(PassResult(0, i, 0, 1, 4, camera_id="cam10"))
        p1.publish_pass(PassResult(0, 99, 0, 1, 4, camera_id="cam1"))
        m = _wait_kind(sub, "pass")
        assert (m.camera_id, m.body["pass_id"]) == ("cam1", 99)
        end = time.monotonic() + 0.5  # cam10's heartbeats keep coming; none may arrive here
        while time.monotonic() < end:
            m = sub.recv(0.05)
            assert m is None or m.camera_id == "cam1"
    assert M.subscription("pose", "cam1") == b"pose/cam1/"
    assert not b"pose/cam10/".startswith(M.subscription("pose", "cam1"))


def _frames(kind="pass", **header_changes):
    header = {"v": 1, "pub": "cam0@h", "epoch": "ab", "seq": 3, "t_mono": 1.0, "t_wall": 2.0,
              "side": "tcp://127.0.0.1:1"}
    header.update(header_changes)
    body = M.pass_body(PassResult(0, 1, 0, 5, 4, {"x": 1.0}, score=1.0, scored=True))
    return [M.topic(kind, "cam0"), M.pack({k: v for k, v in header.items() if v is not None}),
            M.pack(body)]


@pytest.mark.parametrize(("frames", "needle"), [
    (_frames()[:2], "expected 3 frames"),
    ([b"pass/cam0"] + _frames()[1:], "topic frame"),
    ([b"score/cam0/"] + _frames()[1:], "topic frame"),
    ([b"pass/cam/0/"] + _frames()[1:], "topic frame"),
    (_frames(seq=None), "missing field 'seq'"),
    (_frames(seq="3"), "header.seq"),
    (_frames(seq=0), "header.seq"),
    (_frames(v=2), "schema version"),
    (_frames()[:1] + [pickle.dumps({"v": 1})] + _frames()[2:], "header"),
    (_frames()[:2] + [b"\xc1"], "not valid msgpack"),
    (_frames()[:2] + [msgpack.packb(msgpack.ExtType(1, b"x"))], "extension type"),
    (_frames()[:2] + [M.pack({"individual": 0})], "missing field"),
    (_frames()[:2] + [M.pack([1, 2])], "expected a map"),
])
def test_decode_rejects_malformed_messages(frames, needle):
    with pytest.raises(M.MessageError, match=needle):
        M.decode(frames)


def test_decode_checks_field_types_and_array_sizes():
    body = M.unpack(_frames()[2])
    body["score"] = "2"
    with pytest.raises(M.MessageError, match=r"pass body.score"):
        M.decode(_frames()[:2] + [M.pack(body)])
    pose = M.pose_body(1, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS)
    pose["poses"]["data"] = pose["poses"]["data"][:-4]
    with pytest.raises(M.MessageError, match="needs 96 bytes, got 92"):
        M.decode([M.topic("pose", "cam0"), _frames()[1], M.pack(pose)])
    pose = M.pose_body(1, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS)
    pose["poses"]["dtype"] = "|O"
    with pytest.raises(M.MessageError, match="dtype"):
        M.decode([M.topic("pose", "cam0"), _frames()[1], M.pack(pose)])
    for bad in ([0, 1], [-2], ["a"], [True], 3):  # one int >= -1 per pose row
        pose = M.pose_body(1, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS)
        pose["individuals"] = bad
        with pytest.raises(M.MessageError, match="pose body.individuals: expected 1 ints"):
            M.decode([M.topic("pose", "cam0"), _frames()[1], M.pack(pose)])
    with pytest.raises(M.MessageError, match="exceeds the limit"):
        M.unpack(b"\x00" * 100, max_bytes=99)


def test_array_round_trip_is_exact_for_every_wire_dtype():
    for dt in ("<f4", "<f8", "<i4", "<i8", "|u1", "<u2", "<i2", "|b1"):
        a = (np.arange(24).reshape(2, 3, 4) % 2 == 0) if dt == "|b1" else \
            np.arange(24, dtype=dt).reshape(2, 3, 4)
        back = M.decode_array(M.unpack(M.pack(M.encode_array(a))))
        assert back.dtype == a.dtype and back.shape == a.shape
        np.testing.assert_array_equal(back, a)
    big_endian = np.arange(6, dtype=">f4")
    np.testing.assert_array_equal(M.decode_array(M.encode_array(big_endian)), big_endian)


def test_schema_rejects_what_the_format_forbids(schema):
    good = {"topic": "pass/cam0/", "header": M.json_view(M.unpack(_frames()[1])),
            "body": M.json_view(M.unpack(_frames()[2]))}
    jsonschema.validate(good, schema)
    bad_cases = [
        {**good, "topic": "pass/cam0"},
        {**good, "header": {**good["header"], "seq": 0}},
        {**good, "header": {k: v for k, v in good["header"].items() if k != "side"}},
        {**good, "body": {**good["body"], "score": "2"}},
        {**good, "body": {**good["body"], "extra": 1}},
        {**good, "topic": "step/cam0/"},  # a pass body is not a step body
    ]
    for doc in bad_cases:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema)


def test_camera_ids_that_would_break_topics_are_refused(tmp_path):
    for bad in ("", "cam/1", "cam 1", "x" * 65, "kamera-ü"):
        with pytest.raises(M.MessageError, match="camera id"):
            M.topic("pose", bad)
    with pytest.raises(ValueError, match="camera id"):
        Publisher(_settings(tmp_path), "cam/1")


def _sub_schema(schema, name: str) -> dict:
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}


def test_side_channel_requests_and_replies_match_the_schema(tmp_path, schema):

    from gaitlive.publish.sidechannel import SideChannelClient

    reply_schema = _sub_schema(schema, "side_reply")
    request_schema = _sub_schema(schema, "side_request")
    with Publisher(_settings(tmp_path), "cam0") as pub:
        pub.publish_pass(PassResult(0, 1, 0, 5, 4, score=1.0, scored=True))
        deadline = time.monotonic() + 5
        while pub.stats()["pass_seq"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        requests = [{"op": "hello", "id": 1},
                    {"op": "since", "pub": pub.publisher_id, "epoch": pub.epoch, "after": 0,
                     "limit": 10, "camera": "cam0", "id": 2},
                    {"op": "since", "pub": "nobody", "after": 0, "id": 3}]
        with SideChannelClient(pub.side_endpoint) as c:
            sock = c._socket()
            for req in requests:
                jsonschema.validate(req, request_schema)
                sock.send(M.pack(req))
                assert sock.poll(5000)
                frames = sock.recv_multipart()
                status = M.unpack(frames[0])
                jsonschema.validate(M.json_view(status), reply_schema)
                assert status["id"] == req["id"]
                for i in range(1, len(frames), 3):
                    _validate(schema, M.decode(frames[i:i + 3]))
                if req["id"] == 3:
                    assert status["ok"] is False and "nobody" in status["error"]
                else:
                    assert status["ok"] is True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"op": "since", "pub": "x"}, request_schema)  # no 'after'
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ok": False}, reply_schema)  # an error needs its text


@pytest.mark.parametrize("ep", ["tcp://127.0.0.1:5556", "tcp://*:5556", "tcp://127.0.0.1:*",
                                ">tcp://relay-host:5560", "@tcp://0.0.0.0:1", "tcp://[::1]:65535",
                                "ipc:///tmp/gaitlive.sock", "inproc://x"])
def test_usable_endpoints_pass(ep):
    assert M.validate_endpoint(ep) == ep


@pytest.mark.parametrize("ep", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:-1", "foo",
                                "tcp://127.0.0.1", "tcp://:5556", "udp://1.2.3.4:5", "ipc://"])
def test_endpoints_zeromq_would_misread_are_refused(ep):
    with pytest.raises(M.MessageError, match=rf"--backend: expected a ZeroMQ endpoint .*{ep!r}"):
        M.validate_endpoint(ep, "--backend")
    for free in ("tcp://127.0.0.1:*", "tcp://127.0.0.1:0"):  # bind-only
        assert M.validate_endpoint(free) == free
        with pytest.raises(M.MessageError, match=r"port 1-65535\)"):
            M.validate_endpoint(free, "advertise", wildcard=False)


@pytest.mark.parametrize("ep", ["tcp://*:5557", "tcp://0.0.0.0:5557", "tcp://[::]:5557",
                                ">tcp://*:5557"])
def test_every_interface_hosts_can_be_bound_but_not_connected_to(ep):
    assert M.validate_endpoint(ep) == ep  # binding every interface is fine
    host = ep.split("//")[1].rsplit(":", 1)[0]
    with pytest.raises(M.MessageError) as e:
        M.validate_endpoint(ep, "side channel", wildcard=False)
    assert str(e.value).startswith(f"side channel: {host} means 'every interface'")
    assert "tcp://127.0.0.1:5557 on this machine" in str(e.value) and repr(ep) in str(e.value)
    assert not M.is_any_host("tcp://127.0.0.1:5557") and M.is_any_host(ep)


def test_a_side_channel_advertised_on_every_interface_is_reached_on_the_publishers_host():
    """An older publisher advertises its bound side channel, tcp://0.0.0.0:P; a subscriber
    (which refuses to connect to 'every interface') asks the host it reached the publisher
    on instead."""
    from gaitlive.publish.messages import connectable

    assert connectable("tcp://0.0.0.0:5557", "tcp://barn-pc:5556") == "tcp://barn-pc:5557"
    assert connectable("tcp://*:5557", ">tcp://10.0.0.7:5556") == "tcp://10.0.0.7:5557"
    assert connectable("tcp://barn-pc:5557", "tcp://10.0.0.7:5556") == "tcp://barn-pc:5557"
    assert connectable("tcp://0.0.0.0:5557", "ipc:///tmp/x") == "tcp://0.0.0.0:5557"
