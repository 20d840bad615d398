"""Where gaitlive finds its bundled assets (configs, models, demo video).

In a source checkout (the supported install, ``pip install -e .``) the assets live at the
repository root beside ``src/``. ``GAITLIVE_HOME`` overrides that root.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROJECT_ROOT", "CONFIG_DIR", "MODELS_DIR", "DEMO_DIR", "DEMO_VIDEO", "DEFAULT_MODEL", "resolve_asset"]


def _project_root() -> Path:
    env = os.environ.get("GAITLIVE_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


PROJECT_ROOT = _project_root()
CONFIG_DIR = PROJECT_ROOT / "configs"
MODELS_DIR = PROJECT_ROOT / "models"
DEMO_DIR = PROJECT_ROOT / "models" / "demo"
DEMO_VIDEO = DEMO_DIR / "corridor-demo.mp4"
DEFAULT_MODEL = MODELS_DIR / "gaitlive-corridor"


def resolve_asset(path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """Resolve a possibly relative asset path.

    Absolute paths are returned as they are. A relative path is tried against the current
    directory, then ``base`` (e.g. the folder of the config that named it), then the project
    root; the first that exists wins. When none exists, the path is returned as the user
    typed it, from the current directory (so an error names what was typed), or, for a path
    a config file named (``base`` given), under the project root.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    candidates = [Path.cwd() / p]
    if base is not None:
        candidates.append(base / p)
    candidates.append(PROJECT_ROOT / p)
    for c in candidates:
        if c.exists():
            return c.resolve()
    return (PROJECT_ROOT / p if base is not None else Path.cwd() / p).resolve()
