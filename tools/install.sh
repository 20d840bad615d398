#!/usr/bin/env bash
# Set up gaitlive in ./.venv: Python packages from pyproject.toml (with the train, tf and dev
# extras), the GUI build of OpenCV last, and the system tools the tests use (Xvfb, ffmpeg).
# Idempotent: `make demo` and `make test` call it; it does nothing when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.gaitlive-installed
HASH=$(cat pyproject.toml tools/install.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  exit 0
fi

# System tools: Xvfb and xdotool (annotation GUI and overlay window tests), ffmpeg (stream tests).
need=()
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb xauth)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[install] apt-get install ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null \
      || echo "[install] warning: could not install ${need[*]}; tests that need them will skip"
  else
    echo "[install] note: ${need[*]} missing (install them for the GUI and stream tests)"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
echo "[install] pip install -e .[train,tf,dev] (torch 2.14.1 + torchvision 0.29.1, dlclive 1.1, DeepLabCut 3.0)"
"$VENV/bin/python" -m pip install -q -e ".[train,tf,dev]"
# dlclive and DeepLabCut depend on opencv-python-headless, which installs the same cv2 module
# without HighGUI. Reinstall the GUI build last so the overlay window and annotation GUI work,
# whatever order pip used.
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "opencv-python==4.11.0.86"
"$VENV/bin/python" -c "from gaitlive.env import cv2_has_gui; import sys; sys.exit(0 if cv2_has_gui() else 'cv2 lacks HighGUI after install')"
echo "$HASH" > "$STAMP"
echo "[install] done: $("$VENV/bin/gaitlive" --version)"
