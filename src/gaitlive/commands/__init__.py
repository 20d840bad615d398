"""Subcommands of the ``gaitlive`` CLI: one module each, with ``register(subparsers)``.

Modules here only parse arguments; they import the modules that do the work inside
``run`` so that ``gaitlive --help`` never imports torch or TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

__all__ = ["add_config_args", "config_from_args", "exit_now"]


def add_config_args(p: argparse.ArgumentParser, *, source: bool = True) -> None:
    """The common options every run-like command takes: a config file and the overrides
    of its common keys (source, model, endpoint, profile)."""
    p.add_argument("--config", "-c", default=None,
                   help="YAML run config (default: configs/default.yaml)")
    p.add_argument("--profile", default=None,
                   help="species/view profile name or YAML path (overrides the config's)")
    if source:
        p.add_argument("--source", "-s", default=None,
                       help="camera index, stream URL, video file or image folder")
    p.add_argument("--model", "-m", default=None, help="exported DLC-Live model folder")
    p.add_argument("--endpoint", default=None,
                   help="ZeroMQ PUB endpoint (default from config: tcp://127.0.0.1:5556)")
    p.add_argument("--side-channel", default=None,
                   help="ZeroMQ side-channel (catch-up) endpoint (default from config: "
                        "tcp://127.0.0.1:5557); each camera process needs its own")
    p.add_argument("--camera-id", default=None, help="camera id carried by every message")


def config_from_args(args: argparse.Namespace):  # -> gaitlive.config.Config
    from gaitlive.config import load_config

    overrides = {
        "profile": getattr(args, "profile", None),
        "source": getattr(args, "source", None),
        "model.path": getattr(args, "model", None),
        "publish.endpoint": getattr(args, "endpoint", None),
        "publish.side_channel": getattr(args, "side_channel", None),
        "camera_id": getattr(args, "camera_id", None),
    }
    return load_config(args.config, overrides=overrides, labels=OVERRIDE_OPTIONS)


#: the config key each common option overrides, and the option's name in errors
OVERRIDE_OPTIONS = {"profile": "--profile", "source": "--source", "model.path": "--model",
                    "publish.endpoint": "--endpoint", "publish.side_channel": "--side-channel",
                    "camera_id": "--camera-id"}


def bundled_or_given(path: str | None) -> str | None:
    """A path option as typed, or where it is found the way config assets are (the current
    folder, then the project: ``models/gaitlive-corridor`` from any folder); as typed when it
    is found nowhere, so that the error names what the user wrote."""
    if path is None:
        return None
    from gaitlive.paths import resolve_asset

    found = resolve_asset(path)
    return str(found) if found.exists() else path


def exit_now(code: int) -> None:
    """Exit the process at once (no interpreter shutdown, no exit hooks) with ``code``,
    after flushing what was printed: for a signal once every output is closed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, RuntimeError, ValueError):  # closed pipe; in a print
            stream.flush()
    os._exit(code)


def profile_score_model(cfg: Any) -> Any:
    """The profile's score model (``score.model``), or None when the profile names none.

    A named file that is missing or invalid is an error (as in ``gaitlive analyze``), not a
    run whose passes silently go unscored."""
    path = cfg.profile.score.model
    if not path or str(path).strip().lower() == "none":  # none: passes go unscored
        return None
    from pathlib import Path

    from gaitlive.paths import resolve_asset
    from gaitlive.score import ScoreModelError, load_score_model

    named_in = cfg.profile.file or cfg.file  # the profile file, or the run config it is in
    p = resolve_asset(path, base=Path(named_in).parent if named_in else None)
    try:
        return load_score_model(p)
    except ScoreModelError as e:
        where = f"{named_in}: " if named_in else ""
        raise ScoreModelError(f"{where}profile {cfg.profile.name!r} score.model: {e}") \
            from None


def count_noun(n: int, word: str) -> str:
    """``1 step``, ``2 steps``, ``3 passes``."""
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")
