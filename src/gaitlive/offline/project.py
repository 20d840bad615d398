"""DeepLabCut project helpers: open and validate a project, its labels and images, and
build DeepLabCut 3 model configurations.

DeepLabCut is imported inside the functions that need it (it is the optional ``train``
dependency and slow to import).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gaitlive.fileio import atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "ProjectError",
    "ProjectInfo",
    "open_project",
    "validate_labels",
    "build_pose_model_config",
    "set_backbone_size",
    "save_export",
    "atomic_write_text",
]


class ProjectError(ValueError):
    """A DeepLabCut project is unusable (the message names the file and what was expected)."""


# --------------------------------------------------------------------------------------
# Model configurations
# --------------------------------------------------------------------------------------


def set_backbone_size(model_cfg: dict[str, Any], *, widen_factor: float | None = None,
                      deepen_factor: float | None = None,
                      heatmap_stride: int | None = None) -> dict[str, Any]:
    """Resize a CSPNeXt backbone + heatmap head in a DeepLabCut 3 model config, in place.

    Parameters
    ----------
    model_cfg : dict
        A whole pose configuration (``pytorch_config.yaml`` content) with ``model``.
    widen_factor, deepen_factor : float, optional
        CSPNeXt channel and depth multipliers (``cspnext_s``: 0.5 and 0.33). The backbone's
        output channels (1024 x widen) and the head's input channels follow.
    heatmap_stride : int, optional
        8 or 16: the head gets log2(32 / stride) transposed convolutions (DeepLabCut's
        default for backbones is one, stride 16).

    Returns
    -------
    dict
        ``model_cfg``.
    """
    model = model_cfg["model"]
    bb = model["backbone"]
    if widen_factor is not None or deepen_factor is not None:
        if bb.get("type") != "CSPNeXt":
            raise ProjectError(f"widen/deepen factors need a CSPNeXt backbone, got "
                               f"{bb.get('type')!r}")
        if widen_factor is not None:
            bb["widen_factor"] = float(widen_factor)
        if deepen_factor is not None:
            bb["deepen_factor"] = float(deepen_factor)
        model["backbone_output_channels"] = int(1024 * bb["widen_factor"])
    out_ch = int(model["backbone_output_channels"])
    for head in model.get("heads", {}).values():
        for key in ("heatmap_config", "locref_config", "paf_config"):
            hc = head.get(key)
            if not hc:
                continue
            final = hc["channels"][-1]
            if heatmap_stride is None:
                n_up = len(hc["strides"])
            else:
                if heatmap_stride not in (8, 16):
                    raise ProjectError(f"heatmap_stride: expected 8 or 16, got "
                                       f"{heatmap_stride}")
                n_up = {16: 1, 8: 2}[heatmap_stride]
            mid = [max(32, out_ch // (2 ** (i + 1))) for i in range(n_up - 1)]
            hc["channels"] = [out_ch, *mid, final]
            hc["kernel_size"] = [3] * n_up
            hc["strides"] = [2] * n_up
    return model_cfg


def build_pose_model_config(bodyparts: list[str], *, net: str = "cspnext_s",
                            project_path: str | Path = ".", individuals: int = 1,
                            widen_factor: float | None = None,
                            deepen_factor: float | None = None,
                            heatmap_stride: int | None = None) -> dict[str, Any]:
    """A DeepLabCut 3 single-animal pose configuration (as ``pytorch_config.yaml``).

    Parameters
    ----------
    bodyparts : list of str
        Keypoints.
    net : str
        DeepLabCut net type (``cspnext_s``, ``resnet_50``, ``hrnet_w32`` ...).
    project_path : str or Path
        Written into the metadata.
    individuals : int
        More than 1: a multi-animal bottom-up model (DeepLabCut's heatmap + part-affinity
        field head, ``DLCRNetHead``), outputting ``(n_detections, n_kp, 3)``.
    widen_factor, deepen_factor, heatmap_stride :
        See :func:`set_backbone_size`.

    Returns
    -------
    dict
        The normalised configuration dict.
    """
    from deeplabcut.pose_estimation_pytorch.config import PoseConfig

    multi = individuals > 1
    proj = dict(Task="gaitlive", scorer="gaitlive", date="", project_path=str(project_path),
                multianimalproject=multi,
                bodyparts="MULTI!" if multi else list(bodyparts),
                multianimalbodyparts=list(bodyparts) if multi else [],
                individuals=[f"individual{i + 1}" for i in range(individuals)] if multi
                else None,
                uniquebodyparts=[], identity=False if multi else None,
                TrainingFraction=[0.95], iteration=0,
                default_net_type=net, snapshotindex=-1, detector_snapshotindex=-1,
                batch_size=1, video_sets={}, skeleton=[], engine="pytorch")
    cfg = PoseConfig.build(proj, Path(project_path) / "pytorch_config.yaml", net_type=net,
                           top_down=False)
    d = cfg.to_dict(normalize=True) if hasattr(cfg, "to_dict") else dict(cfg)
    set_backbone_size(d, widen_factor=widen_factor, deepen_factor=deepen_factor,
                      heatmap_stride=heatmap_stride)
    return d


def save_export(path: str | Path, config: dict[str, Any], state_dict: dict[str, Any],
                *, half: bool = False) -> Path:
    """Save a DeepLabCut-Live PyTorch export (``{"config", "pose"}``) atomically.

    Parameters
    ----------
    path : str or Path
        ``.pt`` file to write.
    config : dict
        The model configuration (``pytorch_config.yaml`` content).
    state_dict : dict
        Pose model weights.
    half : bool
        Store floating-point tensors as float16 (half the size; dlclive casts them back to
        the model's dtype when loading).

    Returns
    -------
    Path
        ``path``.
    """
    import torch

    path = Path(path)
    weights = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        weights[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"config": config, "pose": weights}, tmp)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------
# Projects and labels
# --------------------------------------------------------------------------------------


@dataclass
class ProjectInfo:
    """A DeepLabCut project on disk."""

    path: Path
    config_path: Path
    cfg: dict[str, Any]
    bodyparts: list[str]
    scorer: str
    label_files: list[Path] = field(default_factory=list)
    n_labelled: int = 0
    # (width, height) -> number of labelled images of that size (set by validate_labels)
    image_sizes: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.cfg.get("Task", ""))


def open_project(path: str | Path, *, fix_paths: bool = True) -> ProjectInfo:
    """Open a DeepLabCut project folder (or its ``config.yaml``).

    Fills ``project_path`` and, when it holds placeholders, ``video_sets`` (from the
    videos in ``videos/`` and the folders in ``labeled-data/``), so a project that was
    moved or shipped with placeholders trains as it is.

    Raises
    ------
    ProjectError
        No ``config.yaml``, no bodyparts, or a malformed config.
    """
    p = Path(path).expanduser().resolve()
    config_path = p if p.is_file() else p / "config.yaml"
    if not config_path.is_file():
        raise ProjectError(f"{p}: not a DeepLabCut project; expected a folder with config.yaml "
                           f"(made by deeplabcut.create_new_project or 'gaitlive synth project')")
    root = config_path.parent
    try:
        cfg = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ProjectError(f"{config_path}: not valid YAML ({e})") from e
    if not isinstance(cfg, dict):
        raise ProjectError(f"{config_path}: expected a mapping")
    if cfg.get("multianimalproject"):
        bodyparts = list(cfg.get("multianimalbodyparts") or [])
    else:
        bodyparts = list(cfg.get("bodyparts") or [])
    if not bodyparts or not all(isinstance(b, str) for b in bodyparts):
        raise ProjectError(f"{config_path}: bodyparts: expected a non-empty list of names, got "
                           f"{cfg.get('bodyparts')!r}")
    scorer = str(cfg.get("scorer", ""))
    if not scorer:
        raise ProjectError(f"{config_path}: scorer: expected the labeller's name")
    if fix_paths:
        changed = False
        if cfg.get("project_path") != str(root):
            cfg["project_path"] = str(root)
            changed = True
        vs = cfg.get("video_sets") or {}
        real = {k: v for k, v in vs.items() if Path(str(k)).exists()}
        if len(real) != len(vs) or not vs:
            new: dict[str, Any] = dict(real)
            for folder in sorted((root / "labeled-data").glob("*")):
                if not folder.is_dir() or folder.name.endswith("_labeled"):
                    continue
                if any(Path(k).stem == folder.name for k in new):
                    continue
                cands = sorted((root / "videos").glob(folder.name + ".*"))
                video = cands[0] if cands else root / "videos" / f"{folder.name}.mp4"
                crop = "0, 640, 0, 480"
                for v in vs.values():
                    if isinstance(v, dict) and "crop" in v:
                        crop = v["crop"]
                        break
                new[str(video)] = {"crop": crop}
            cfg["video_sets"] = new
            changed = True
        if changed:
            atomic_write_text(config_path, yaml.safe_dump(cfg, sort_keys=False))
            log.info("updated project_path/video_sets in %s", config_path)
    label_files = sorted((root / "labeled-data").glob(f"*/CollectedData_{scorer}.h5"))
    return ProjectInfo(path=root, config_path=config_path, cfg=cfg, bodyparts=bodyparts,
                       scorer=scorer, label_files=label_files)


def validate_labels(info: ProjectInfo, *, check_images: bool = True) -> ProjectInfo:
    """Check a project's labels before training.

    Every ``labeled-data/*/CollectedData_<scorer>.h5`` must name only bodyparts listed in
    ``config.yaml``, and every labelled image must exist and decode.

    Returns
    -------
    ProjectInfo
        ``info`` with ``n_labelled`` set.

    Raises
    ------
    ProjectError
        No labels, unknown bodyparts, labels without any coordinates, missing or corrupt
        images.
    """
    import cv2
    import pandas as pd

    if not info.label_files:
        raise ProjectError(
            f"{info.path}: no labels; expected labeled-data/<video>/CollectedData_{info.scorer}"
            f".h5 (label frames with 'gaitlive annotate' or DeepLabCut's labelling GUI)")
    total = 0
    known = set(info.bodyparts)
    for f in info.label_files:
        try:
            df = pd.read_hdf(f)
        except Exception as e:
            raise ProjectError(f"{f}: cannot read DeepLabCut labels ({e})") from e
        if "bodyparts" not in (df.columns.names or []):
            raise ProjectError(f"{f}: expected DeepLabCut label columns (scorer, bodyparts, "
                               f"coords), got levels {df.columns.names}")
        names = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
        unknown = [b for b in names if b not in known]
        if unknown:
            raise ProjectError(f"{f}: labels name bodyparts {unknown} that are not in "
                               f"{info.config_path} bodyparts {info.bodyparts}")
        values = df.to_numpy(dtype=float)
        has = np.isfinite(values).reshape(len(df), -1).any(axis=1)
        total += int(has.sum())
        if check_images:
            for idx in df.index:
                parts = idx if isinstance(idx, tuple) else tuple(Path(str(idx)).parts)
                img = info.path.joinpath(*[str(x) for x in parts])
                if not img.is_file():
                    raise ProjectError(f"{f}: labelled image {img} does not exist")
                data = np.fromfile(str(img), dtype=np.uint8)
                im = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
                if im is None:
                    raise ProjectError(f"{img}: corrupt or unreadable image (labelled in {f})")
                size = (int(im.shape[1]), int(im.shape[0]))
                info.image_sizes[size] = info.image_sizes.get(size, 0) + 1
    if total == 0:
        raise ProjectError(f"{info.path}: the label files {[str(x) for x in info.label_files]} "
                           f"hold no labelled keypoints")
    info.n_labelled = total
    return info
