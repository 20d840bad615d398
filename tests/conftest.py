"""Shared fixtures: the ../shared data folder (skip when absent) and a virtual X display."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GAITLIVE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real footage, labels and tracks from other projects).

    Skips the test when the folder is absent, as on a user's fresh clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared real-data folder {SHARED_DATA} (absent on a fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def xvfb_display():
    """Start Xvfb on a free display and set DISPLAY for the test session's GUI tests."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("needs Xvfb (apt-get install xvfb; tools/install.sh does it as root)")
    for num in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{num}").exists() and not Path(f"/tmp/.X{num}-lock").exists():
            break
    proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{num}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{num}"
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    yield f":{num}"
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(timeout=10)
