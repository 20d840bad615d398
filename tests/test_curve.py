"""CURVE: only subscribers whose public key is in the allow-list receive anything."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gaitlive.config import CurveSettings, PublishSettings
from gaitlive.publish import Publisher, PublishError, Subscriber
from gaitlive.publish.demo import synthetic_pass
from gaitlive.publish.keys import ClientSecurity, KeyFileError, create_keypair
from gaitlive.publish.sidechannel import SideChannelClient, SideChannelTimeout

GAITLIVE = [sys.executable, "-m", "gaitlive.cli"]


def _keys(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GAITLIVE, "keys", *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


@pytest.fixture()
def keys(tmp_path):
    """Server pair, an allowed client (farm1) and a client not in the allow-list, made with
    the CLI as a user would."""
    for args in (["--out", "keys"],
                 ["--out", "clients", "--name", "farm1", "--allow", "keys/allowed"],
                 ["--out", "clients", "--name", "intruder"]):
        r = _keys(tmp_path, *args)
        assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "keys" / "allowed").iterdir()) == ["farm1.key"]
    assert (tmp_path / "keys" / "server.key_secret").stat().st_mode & 0o077 == 0
    return tmp_path


def _settings(tmp_path) -> PublishSettings:
    return PublishSettings(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                           journal=str(tmp_path / "journal.sqlite"), heartbeat_s=0.05,
                           curve=CurveSettings(enabled=True, keys_dir=str(tmp_path / "keys"),
                                               allow_dir=str(tmp_path / "keys" / "allowed")))


def _client(tmp_path, name: str) -> ClientSecurity:
    return ClientSecurity.from_files(tmp_path / "keys" / "server.key",
                                     tmp_path / "clients" / f"{name}.key_secret")


def test_unauthorised_clients_receive_nothing_authorised_ones_do(keys):
    tmp_path = keys
    with Publisher(_settings(tmp_path), "cam0") as pub, \
            Subscriber(pub.endpoint, ["pass", "status"],
                       security=_client(tmp_path, "farm1")) as good, \
            Subscriber(pub.endpoint, ["pass", "status"],
                       security=_client(tmp_path, "intruder")) as intruder, \
            Subscriber(pub.endpoint, ["pass", "status"]) as plaintext:
        deadline = time.monotonic() + 10
        while good.received < 3:
            assert time.monotonic() < deadline, "the allowed subscriber heard nothing"
            good.recv(0.1)
        pub.publish_pass(synthetic_pass(0, "cam0"))
        deadline = time.monotonic() + 10
        while True:
            m = good.recv(0.1)
            if m is not None and m.kind == "pass":
                break
            assert time.monotonic() < deadline, "no pass for the allowed subscriber"
        assert m.body["pass_id"] == 0
        # by now the others had as long as the allowed one: ~20 heartbeats and a pass
        assert intruder.recv(0.3) is None and plaintext.recv(0.01) is None
        assert intruder.received == plaintext.received == 0
        with SideChannelClient(pub.side_endpoint, security=_client(tmp_path, "farm1")) as c:
            assert [m.seq for _, ms in c.since(pub.publisher_id, 0) for m in ms] == [1]
        with SideChannelClient(pub.side_endpoint, security=_client(tmp_path, "intruder"),
                               timeout_s=0.5) as c, pytest.raises(SideChannelTimeout):
            c.hello()


def test_listen_cli_with_curve(keys):
    tmp_path = keys
    with Publisher(_settings(tmp_path), "cam0") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        base = [*GAITLIVE, "listen", pub.endpoint, "--print", "--duration", "1.5",
                "--timeout", "0.5", "--curve-server-key", "keys/server.key"]
        ok = subprocess.run([*base, "--curve-client-cert", "clients/farm1.key_secret"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
        bad = subprocess.run([*base, "--curve-client-cert", "clients/intruder.key_secret"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
        missing = subprocess.run([*base, "--curve-client-cert", "clients/nobody.key_secret"],
                                 capture_output=True, text=True, timeout=60, cwd=tmp_path)
        public_only = subprocess.run([*base, "--curve-client-cert", "clients/farm1.key"],
                                     capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(line)["pass_id"] for line in ok.stdout.splitlines()] == [0, 1, 2]
    assert bad.returncode == 0 and bad.stdout == ""
    assert missing.returncode == 2 and "nobody.key_secret: key file not found" in missing.stderr
    assert public_only.returncode == 2 and "expected a secret certificate" in public_only.stderr


def test_keys_cli_refuses_to_overwrite_and_publisher_names_missing_keys(tmp_path):
    assert _keys(tmp_path, "--out", "k").returncode == 0
    r = _keys(tmp_path, "--out", "k")
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    old = (tmp_path / "k" / "server.key").read_bytes()
    assert _keys(tmp_path, "--out", "k", "--force").returncode == 0
    assert (tmp_path / "k" / "server.key").read_bytes() != old
    with pytest.raises(KeyFileError, match="plain file name"):
        create_keypair(tmp_path, "../x")
    # a second subscriber of the same name, or a subscriber named like the publisher, must
    # not replace a public key in the allow-list folder (it would lock that one out)
    assert _keys(tmp_path, "--out", "farm", "--name", "farm1", "--allow", "allowed").returncode == 0
    first = (tmp_path / "allowed" / "farm1.key").read_bytes()
    server = (tmp_path / "k" / "server.key").read_bytes()
    for out, name, allow in (("farmB", "farm1", "allowed"), ("farm3", "server", "k")):
        r = _keys(tmp_path, "--out", out, "--name", name, "--allow", allow)
        assert r.returncode == 2 and f"{name}.key" in r.stderr and "--force" in r.stderr, r.stderr
        assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())
    assert (tmp_path / "allowed" / "farm1.key").read_bytes() == first
    assert (tmp_path / "k" / "server.key").read_bytes() == server
    s = PublishSettings(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                        journal=str(tmp_path / "j.sqlite"),
                        curve=CurveSettings(enabled=True, keys_dir=str(tmp_path / "nokeys"),
                                            allow_dir=str(tmp_path / "k")))
    with pytest.raises(PublishError, match=r"publish.curve: .*nokeys/server.key_secret: key "
                                           r"file not found"):
        Publisher(s, "cam0").start()
    s = PublishSettings(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                        journal=str(tmp_path / "j.sqlite"),
                        curve=CurveSettings(enabled=True, keys_dir=str(tmp_path / "k"),
                                            allow_dir=str(tmp_path / "no-allow")))
    with pytest.raises(PublishError, match="allow-list folder not found"):
        Publisher(s, "cam0").start()


def test_a_failed_curve_handshake_says_why(keys):
    """A subscriber with the wrong server key, or one not on the allow list, receives
    nothing; it can now say why (the socket monitor's handshake events) instead of only
    "nothing received"."""
    tmp_path = keys
    other = create_keypair(tmp_path / "other", "server")
    good = _client(tmp_path, "farm1")
    wrong_key = ClientSecurity.from_files(other.public, tmp_path / "clients" / "farm1.key_secret")
    with Publisher(_settings(tmp_path), "cam0") as pub, \
            Subscriber(pub.endpoint, ["status"], security=good) as ok, \
            Subscriber(pub.endpoint, ["status"], security=wrong_key) as wrong, \
            Subscriber(pub.endpoint, ["status"],
                       security=_client(tmp_path, "intruder")) as refused:
        deadline = time.monotonic() + 10
        while not (wrong.handshake_problem() and refused.handshake_problem()
                   and ok.received > 0):
            assert time.monotonic() < deadline, (wrong.handshake_error,
                                                 refused.handshake_error)
            ok.recv(0.1)
        assert ok.received > 0 and ok.handshake_problem() == ""
        assert "handshake failed" in wrong.handshake_error and wrong.received == 0
        assert "allow list" in refused.handshake_error and refused.received == 0
