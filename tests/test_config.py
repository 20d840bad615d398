"""Config loading and validation: every bad config names the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gaitlive.config import ConfigError, load_config, load_profile
from gaitlive.paths import CONFIG_DIR


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _default() -> dict:
    return yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())


def _profile() -> dict:
    return yaml.safe_load((CONFIG_DIR / "broiler-side.yaml").read_text())


@pytest.mark.parametrize("name", ["broiler-side", "broiler-rear", "turkey-side", "cow-side"])
def test_bundled_profiles_load(name):
    prof = load_profile(name)
    assert prof.name == name
    for edge in prof.skeleton:
        assert set(edge) <= set(prof.bodyparts)


def test_poultry_bodyparts_are_the_contract():
    for name in ("broiler-side", "broiler-rear", "turkey-side"):
        assert load_profile(name).bodyparts == (
            "head", "neck", "left_knee", "right_knee", "left_hock", "right_hock",
            "left_foot", "right_foot")


def test_default_config():
    cfg = load_config()
    assert cfg.publish.endpoint == "tcp://127.0.0.1:5556"
    assert cfg.profile.name == "broiler-side"
    assert cfg.source == "demo"
    assert cfg.model.path.endswith("gaitlive-corridor")


def test_overrides_replace_common_keys():
    cfg = load_config(overrides={"source": "0", "publish.endpoint": "tcp://127.0.0.1:7000",
                                 "model.path": "/tmp/m", "profile": "broiler-rear"})
    assert cfg.source == "0"
    assert cfg.publish.endpoint == "tcp://127.0.0.1:7000"
    assert cfg.model.path == "/tmp/m"
    assert cfg.profile.view == "rear"


def test_configs_are_immutable():
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.source = "x"  # type: ignore[misc]


def test_unknown_key(tmp_path):
    d = _default()
    d["publish"]["endpoitn"] = "tcp://127.0.0.1:1"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "publish.endpoitn" in str(e.value) and "unknown key" in str(e.value)
    assert str(p) in str(e.value)


def test_wrong_type(tmp_path):
    d = _default()
    d["queue_size"] = "eight"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"queue_size: expected an integer, got 'eight'"):
        load_config(p)


def test_wrong_type_nested_bool(tmp_path):
    d = _default()
    d["presence"]["enabled"] = "yes please"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"presence\.enabled: expected true or false"):
        load_config(p)


@pytest.mark.parametrize("value", [[320], [320, 0], [320, 240, 1]])
def test_presence_min_crop_must_be_width_and_height(tmp_path, value):
    d = _default()
    d["presence"]["min_crop"] = value
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"presence\.min_crop: expected \[width, height\]") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_out_of_range(tmp_path):
    prof = _profile()
    prof["pcutoff"] = 1.5
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError) as e:
        load_profile(p)
    assert "pcutoff" in str(e.value) and "[0.0, 1.0]" in str(e.value) and str(p) in str(e.value)


def test_out_of_range_nested(tmp_path):
    prof = _profile()
    prof["gait"]["min_steps"] = 0
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError, match=r"gait\.min_steps: expected an integer in \[1, 1000\]"):
        load_profile(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found") as e:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(e.value)


def test_missing_profile_file(tmp_path):
    d = _default()
    d["profile"] = "no-such-profile"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == (f"{p}: profile: unknown profile 'no-such-profile'; expected one of "
                            "broiler-rear, broiler-side, cow-side, turkey-side or a profile "
                            ".yaml file")
    d["profile"] = "nope.yaml"  # a path: named as such
    p = _write(tmp_path, "bad2.yaml", d)
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(p)


def test_unknown_bodypart_in_skeleton(tmp_path):
    prof = _profile()
    prof["skeleton"].append(["neck", "tail"])
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError) as e:
        load_profile(p)
    msg = str(e.value)
    assert "skeleton[7]" in msg and "'tail'" in msg and str(p) in msg


def test_unknown_bodypart_in_angles(tmp_path):
    prof = _profile()
    prof["angles"]["left_hock"] = ["left_knee", "left_heel", "left_foot"]
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError, match=r"angles\.left_hock: unknown bodypart 'left_heel'"):
        load_profile(p)


def test_unknown_bodypart_in_legs(tmp_path):
    prof = _profile()
    prof["gait"]["legs"]["left"]["foot"] = "left_toe"
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError, match=r"gait\.legs\.left: unknown bodypart 'left_toe'"):
        load_profile(p)


def test_bad_choice(tmp_path):
    prof = _profile()
    prof["view"] = "top"
    p = _write(tmp_path, "prof.yaml", prof)
    with pytest.raises(ConfigError, match=r"view: expected one of \['side', 'rear'\], got 'top'"):
        load_profile(p)


def test_bad_endpoint(tmp_path):
    d = _default()
    d["publish"]["endpoint"] = "127.0.0.1:5556"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"endpoint: expected a ZeroMQ endpoint"):
        load_config(p)


def test_not_yaml(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load_config(p)
    assert "\n" not in str(e.value) and "line 2, column 1" in str(e.value)


def test_a_bad_value_given_on_the_command_line_is_not_blamed_on_the_file(tmp_path, capsys):
    from gaitlive.cli import main

    for argv, err in ((["--endpoint", "tcp://127.0.0.1"], "--endpoint: expected a ZeroMQ"),
                      (["--camera-id", "cam/1"], "--camera-id: expected 1-64 characters"),
                      (["--profile", "nosuch"], "--profile: unknown profile 'nosuch'")):
        assert main(["run", *argv, "--max-frames", "1", "--out", str(tmp_path / "o")]) == 2
        text = capsys.readouterr().err
        assert f"gaitlive run: error: {err}" in text and "default.yaml" not in text, text
    with pytest.raises(ConfigError, match="publish.endpoint .given as 'x'.: expected"):
        load_config(None, overrides={"publish.endpoint": "x"})


def test_an_unknown_model_device_is_refused_when_loaded(tmp_path):
    d = _default()
    d["model"]["device"] = "gpu"
    p = _write(tmp_path, "dev.yaml", d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: model.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"


def test_cli_reports_config_error(tmp_path, capsys):
    """A bad config file given to a command: one line naming the file and the key, exit 2,
    before anything runs."""
    from gaitlive.cli import main

    d = _default()
    d["bogus"] = 1
    d["out_dir"] = str(tmp_path / "out")
    p = _write(tmp_path, "bad.yaml", d)
    for argv in (["run", "--config", str(p), "--headless"],
                 ["analyze", str(tmp_path / "x.h5"), "--config", str(p), "--out",
                  str(tmp_path / "a")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"gaitlive {argv[0]}: error: {p}: bogus: unknown key; expected "
                              f"one of: "), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "a").exists()


@pytest.mark.parametrize("key", ["heartbeat_s", "queue_size"])
def test_nan_is_not_a_number_in_range(tmp_path, key):
    d = _default()
    d["publish"][key] = float("nan")
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=rf"publish\.{key}: expected an? (number|integer)") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_a_camera_id_that_cannot_name_a_topic_is_refused_when_loaded(tmp_path):
    d = _default()
    d["camera_id"] = "barn/3"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"camera_id: expected 1-64 characters .* 'barn/3'") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_a_zeromq_port_out_of_range_is_refused_when_loaded(tmp_path):
    # libzmq would bind some other port for 99999 and subscribers would never find it
    with pytest.raises(ConfigError, match=r"publish\.endpoint .*: .*port 1-65535.*99999"):
        load_config(overrides={"publish.endpoint": "tcp://127.0.0.1:99999"})


def test_an_override_into_a_key_that_is_not_a_mapping_names_it(tmp_path):
    d = _default()
    d["model"] = "models/x"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"model: expected a mapping \(to set model\.path"):
        load_config(p, overrides={"model.path": "models/gaitlive-corridor"})


def test_a_missing_path_typed_by_the_user_is_named_from_the_current_folder(tmp_path,
                                                                            monkeypatch, capsys):
    from gaitlive.cli import main
    from gaitlive.paths import PROJECT_ROOT, resolve_asset

    monkeypatch.chdir(tmp_path)
    assert resolve_asset("nosuch.json") == tmp_path / "nosuch.json"
    assert resolve_asset("models/gaitlive-corridor") == PROJECT_ROOT / "models/gaitlive-corridor"
    assert resolve_asset("nosuch.json", base=CONFIG_DIR) == PROJECT_ROOT / "nosuch.json"
    cfg = load_config(None, overrides={"model.path": "nosuch"})
    assert cfg.model.path == str(tmp_path / "nosuch")
    assert load_config(None).model.path == str(PROJECT_ROOT / "models/gaitlive-corridor")
    assert main(["run", "--model", "nosuch", "--max-frames", "1", "--out", "o"]) == 2
    assert f"error: {tmp_path / 'nosuch'}: model path does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["tcp://*:47757", "tcp://0.0.0.0:47757"])
def test_an_advertised_side_channel_on_every_interface_is_refused_when_loaded(tmp_path, value):
    # subscribers connect to it: libzmq refuses '*', and 0.0.0.0 reaches no other machine
    d = _default()
    d["publish"]["advertise"] = value
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: publish.advertise: ")
    assert "'every interface'" in str(e.value) and repr(value) in str(e.value)
    # binding every interface is what side_channel is for
    d["publish"].update(advertise="", side_channel=value)
    assert load_config(_write(tmp_path, "ok.yaml", d)).publish.side_channel == value


def test_a_journal_that_is_no_file_path_is_refused_when_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for value, needle in (("", "expected the path of the pass journal file, e.g. "
                               "gaitlive-journal.sqlite, got ''"),
                          (".", "'.' is a folder; expected the path of the pass journal "
                                "file in it, e.g. gaitlive-journal.sqlite"),
                          ("data", "'data' is a folder; expected the path of the pass journal "
                                   "file in it, e.g. data/gaitlive-journal.sqlite")):
        d = _default()
        d["publish"]["journal"] = value
        p = _write(tmp_path, "bad.yaml", d)
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert str(e.value) == f"{p}: publish.journal: {needle}"
    # a file path, new or not, is fine; so is anything while publishing is off
    for value, enabled in (("data/j.sqlite", True), ("new/j.sqlite", True), ("", False)):
        d = _default()
        d["publish"].update(journal=value, enabled=enabled)
        assert load_config(_write(tmp_path, "ok.yaml", d)).publish.journal == value


@pytest.mark.parametrize("value, expect", [
    ("FOLDER", "is a folder (expected a video file name ending in .mp4, .avi, .mkv, .mov)"),
    ("ov.txt", "expected a video file name ending in .mp4, .avi, .mkv, .mov, got 'ov.txt'"),
])
def test_an_overlay_video_that_is_no_video_file_is_refused_when_loaded(tmp_path, value,
                                                                       expect):
    """It used to load, and the run failed after the model had loaded and 3 frames
    ("overlay stage failed ... cannot open video file")."""
    d = _default()
    d["overlay"]["video"] = str(tmp_path) if value == "FOLDER" else value
    p = _write(tmp_path, "ov.yaml", d)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: overlay.video: ") and expect in str(e.value)


def test_a_recording_fourcc_that_is_no_fourcc_is_refused_when_loaded(tmp_path):
    d = _default()
    d["record"]["fourcc"] = "abcdefg"
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"record\.fourcc: expected a 4-character FourCC "
                                          r"code like 'mp4v' or 'MJPG', got 'abcdefg'") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_a_missing_source_in_a_config_file_names_the_file(tmp_path, capsys):
    """The run opens the source before the model loads; a source: key of the file that is
    no file names the file, a --source the option."""
    from gaitlive.cli import main

    d = _default()
    d["source"] = str(tmp_path / "nope.mp4")
    d["out_dir"] = str(tmp_path / "out")
    p = _write(tmp_path, "run.yaml", d)
    assert main(["run", "--config", str(p), "--headless", "--no-publish"]) == 2
    assert f"{p}: source '{tmp_path / 'nope.mp4'}': no such file or folder" in \
        capsys.readouterr().err
    assert main(["run", "--config", str(p), "--source", str(tmp_path / "other.mp4"),
                 "--headless", "--no-publish"]) == 2
    err = capsys.readouterr().err
    assert f"error: source '{tmp_path / 'other.mp4'}': no such file" in err and str(p) not in err
    assert not (tmp_path / "out").exists()  # a run that cannot start leaves no folder


def test_a_profile_file_s_missing_score_model_names_the_profile_file(tmp_path):
    """A copied profile with a wrong score.model: the error names that file (not only the
    profile's name:, which the copy shares with the bundled one)."""
    from gaitlive.commands import profile_score_model
    from gaitlive.score import ScoreModelError

    text = (Path(__file__).parents[1] / "configs" / "broiler-side.yaml").read_text()
    assert "model: models/score-side.json" in text
    p = tmp_path / "mine.yaml"
    p.write_text(text.replace("model: models/score-side.json", "model: nonexist.json"))
    cfg = load_config(overrides={"profile": str(p)})
    assert cfg.profile.file == str(p)
    with pytest.raises(ScoreModelError, match=rf"^{re.escape(str(p))}: profile 'broiler-side' "
                                              r"score\.model: .*nonexist\.json: score model "
                                              r"file not found"):
        profile_score_model(cfg)
    assert load_profile(p).file == str(p)


def test_a_side_channel_on_the_publisher_s_own_address_is_refused_when_loaded(tmp_path):
    d = _default()
    d["publish"]["side_channel"] = d["publish"]["endpoint"]
    p = _write(tmp_path, "bad.yaml", d)
    with pytest.raises(ConfigError, match=r"publish\.side_channel: 'tcp://[^']+' is "
                                          r"publish\.endpoint too; the side channel needs an "
                                          r"address of its own") as e:
        load_config(p)
    assert str(p) in str(e.value)
    # two wildcard ports (* or 0) are two addresses
    load_config(overrides={"publish.endpoint": "tcp://127.0.0.1:*",
                           "publish.side_channel": "tcp://127.0.0.1:*"})


def test_a_run_config_names_only_what_it_changes(tmp_path):
    """A file with a publish: block alone (as docs/zmq.md shows) keeps every other setting
    of configs/default.yaml, not the code's own defaults; a list replaces, a mapping
    merges."""
    base = load_config()
    p = tmp_path / "barn.yaml"
    p.write_text("publish:\n  endpoint: tcp://127.0.0.1:6600\n  side_channel: "
                 "tcp://127.0.0.1:6601\npresence:\n  min_crop: [256, 192]\n")
    cfg = load_config(p)
    assert cfg.publish.endpoint == "tcp://127.0.0.1:6600"
    assert cfg.publish.journal == base.publish.journal and cfg.publish.jpeg == base.publish.jpeg
    assert cfg.presence.min_crop == (256, 192)
    assert cfg.presence.bird_size == base.presence.bird_size != 0
    assert cfg.presence.max_input_pixels == base.presence.max_input_pixels != 0
    assert cfg.presence.min_area_fraction == base.presence.min_area_fraction
    assert cfg.model == base.model and cfg.profile == base.profile and cfg.file == str(p)
    # a key the default does not know is still refused, naming this file
    p.write_text("presence:\n  bird_sise: 100\n")
    with pytest.raises(ConfigError, match=r"presence\.bird_sise: unknown key") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_side_channel_option_overrides_the_config_and_is_named_in_errors(tmp_path):
    """Two cameras on one machine need two side channels: --side-channel sets it."""
    import argparse

    from gaitlive.commands import config_from_args

    args = argparse.Namespace(config=None, profile=None, source=None, model=None,
                              endpoint=None, side_channel="tcp://127.0.0.1:5558",
                              camera_id="cam1")
    cfg = config_from_args(args)
    assert cfg.publish.side_channel == "tcp://127.0.0.1:5558" and cfg.camera_id == "cam1"
    args.side_channel = cfg.publish.endpoint
    with pytest.raises(ConfigError, match=r"^--side-channel: .* is publish\.endpoint too"):
        config_from_args(args)


def test_the_bundled_model_is_found_from_any_folder(tmp_path, monkeypatch):
    """evaluate --model / --compare and train --init-weights find models/gaitlive-corridor
    as run --model does, from outside the project; a path found nowhere stays as typed."""
    from gaitlive.commands import bundled_or_given
    from gaitlive.paths import PROJECT_ROOT

    monkeypatch.chdir(tmp_path)
    assert Path(bundled_or_given("models/gaitlive-corridor")) == \
        (PROJECT_ROOT / "models" / "gaitlive-corridor").resolve()
    assert bundled_or_given("models/nothing") == "models/nothing"
    (tmp_path / "models" / "gaitlive-corridor").mkdir(parents=True)  # the user's own wins
    assert Path(bundled_or_given("models/gaitlive-corridor")) == \
        (tmp_path / "models" / "gaitlive-corridor").resolve()
    assert bundled_or_given(None) is None


def test_evaluate_finds_the_bundled_model_from_another_folder(tmp_path, monkeypatch, capsys):
    from gaitlive.cli import main
    from gaitlive.testing import make_tiny_dlc_project

    proj = make_tiny_dlc_project(tmp_path / "p", n=2)  # nose, tail: not the model's
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(proj), "--model", "models/gaitlive-corridor"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" not in err and "are not predicted by" in err, err
