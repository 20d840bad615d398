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

from gaitlive.config import yaml_error_line
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
    "dlc_config_additions",
    "ensure_dlc_config",
    "edit_dlc_config",
    "write_dlc_config",
    "resolve_snapshot",
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
    """Open a DeepLabCut project folder (or its ``config.yaml``); reads only.

    ``config.yaml`` is never written here: :func:`ensure_dlc_config` adds what DeepLabCut
    needs, once a command has validated its inputs.

    Parameters
    ----------
    path : str or Path
        Project folder or its ``config.yaml``.
    fix_paths : bool
        Set ``project_path`` in the returned ``cfg`` (in memory) to the folder's real path,
        for a project that was moved or shipped with placeholders.

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
        raise ProjectError(f"{config_path}: not valid YAML: {yaml_error_line(e)}") from None
    except UnicodeDecodeError:
        cfg = None  # a binary file
    if not isinstance(cfg, dict):
        raise ProjectError(f"{config_path}: not a DeepLabCut project; expected a project "
                           f"folder with config.yaml, or its config.yaml")
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
        cfg["project_path"] = str(root)
    label_files = sorted((root / "labeled-data").glob(f"*/CollectedData_{scorer}.h5"))
    return ProjectInfo(path=root, config_path=config_path, cfg=cfg, bodyparts=bodyparts,
                       scorer=scorer, label_files=label_files)


#: DeepLabCut's placeholder for paths filled in on a user's machine.
PLACEHOLDER = "WILL BE AUTOMATICALLY UPDATED"


def _frame_size(video: Path, folder: Path) -> tuple[int, int] | None:
    """``(width, height)`` of a video, else of the first readable image in ``folder``."""
    import cv2

    if video.is_file():
        cap = cv2.VideoCapture(str(video))
        try:
            w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if w > 0 and h > 0:
            return w, h
    for img in sorted(folder.iterdir()):
        if img.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
            continue
        data = np.fromfile(str(img), dtype=np.uint8)
        im = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if im is not None:
            return int(im.shape[1]), int(im.shape[0])
    return None


def dlc_config_additions(info: ProjectInfo) -> dict[str, Any]:
    """What DeepLabCut needs in ``config.yaml`` that the file lacks.

    Returns
    -------
    dict
        ``project_path`` (when the file's is not the project folder), ``video_sets`` (new
        entries ``{video: {"crop": "0, W, 0, H"}}`` for labelled ``labeled-data`` folders
        that no entry names; W, H from the video, else from the labelled images) and
        ``drop`` (``video_sets`` keys that are DeepLabCut's placeholder). Empty when
        nothing is missing. Existing entries are never replaced: DeepLabCut finds a
        folder's labels by the entry's file name alone, so a path that is not mounted
        here (``/mnt/nas/barn/cam9.mp4``) still works.
    """
    raw = yaml.safe_load(info.config_path.read_text(encoding="utf-8")) or {}
    out: dict[str, Any] = {}
    if str(raw.get("project_path")) != str(info.path):
        out["project_path"] = str(info.path)
    vs = raw.get("video_sets")
    vs = vs if isinstance(vs, dict) else {}
    drop = [k for k in vs if PLACEHOLDER in str(k)]
    stems = {Path(str(k)).stem for k in vs if k not in drop}
    new: dict[str, Any] = {}
    for labels in info.label_files:
        folder = labels.parent
        if folder.name in stems or folder.name.endswith("_labeled"):
            continue
        cands = sorted((info.path / "videos").glob(folder.name + ".*"))
        video = cands[0] if cands else info.path / "videos" / f"{folder.name}.mp4"
        size = _frame_size(video, folder)
        entry: dict[str, Any] = {}
        if size is not None:
            entry["crop"] = f"0, {size[0]}, 0, {size[1]}"
        new[str(video)] = entry
        stems.add(folder.name)
    if new:
        out["video_sets"] = new
    if drop:
        out["drop"] = drop
    return out


def _null_representer() -> type:
    """ruamel's round-trip representer writing ``None`` as ``null`` (its default writes
    ``key:``), without changing ruamel's own class (DeepLabCut uses it)."""
    from ruamel.yaml.representer import RoundTripRepresenter

    class Representer(RoundTripRepresenter):
        pass

    Representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return Representer


def _round_trip_yaml() -> Any:
    """ruamel's round-trip YAML as gaitlive writes ``config.yaml``: comments and quotes
    kept, long paths on one line, ``None`` as ``null``."""
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 1_000_000  # long paths stay on one line
    rt.Representer = _null_representer()
    return rt


def write_dlc_config(config_path: str | Path, data: dict[str, Any]) -> None:
    """Write a new DeepLabCut ``config.yaml`` atomically."""
    import io

    buf = io.StringIO()
    _round_trip_yaml().dump(data, buf)
    atomic_write_text(Path(config_path), buf.getvalue())


def edit_dlc_config(config_path: str | Path, edit: Any) -> bool:
    """Change a DeepLabCut ``config.yaml`` in place, keeping everything else (comments,
    key order, quotes).

    Parameters
    ----------
    config_path : str or Path
        The file.
    edit : callable
        ``edit(data) -> bool`` changes the loaded mapping (a ruamel ``CommentedMap``) and
        returns whether it changed anything.

    Returns
    -------
    bool
        Whether the file was written (atomically; not when ``edit`` changed nothing).

    Raises
    ------
    ProjectError
        The file is not valid YAML or not a mapping.
    """
    import io

    from ruamel.yaml.error import YAMLError

    path = Path(config_path)
    rt = _round_trip_yaml()
    try:
        data = rt.load(path.read_text(encoding="utf-8"))
    except YAMLError as e:
        raise ProjectError(f"{path}: not valid YAML: {yaml_error_line(e)}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{path}: expected a DeepLabCut config mapping, got "
                           f"{type(data).__name__}")
    if not edit(data):
        return False
    buf = io.StringIO()
    rt.dump(data, buf)
    atomic_write_text(path, buf.getvalue())
    return True


def ensure_dlc_config(info: ProjectInfo) -> dict[str, Any]:
    """Add to ``config.yaml`` only what DeepLabCut needs and the file lacks
    (:func:`dlc_config_additions`), keeping everything else, comments included.

    Nothing is written when nothing is missing. Call it after a command has validated
    its inputs.

    Returns
    -------
    dict
        The additions (empty: the file was not touched).
    """
    from ruamel.yaml.comments import CommentedMap

    add = dlc_config_additions(info)
    if not add:
        return add

    def edit(data: Any) -> bool:
        if "project_path" in add:
            data["project_path"] = add["project_path"]
        vs = data.get("video_sets")
        if not isinstance(vs, dict):
            vs = CommentedMap()
            data["video_sets"] = vs
        for k in add.get("drop", []):
            del vs[k]
        for k, v in add.get("video_sets", {}).items():
            vs[k] = CommentedMap(v)
        if hasattr(vs, "fa"):
            vs.fa.set_block_style()
        return True

    edit_dlc_config(info.config_path, edit)
    info.cfg["project_path"] = str(info.path)
    info.cfg["video_sets"] = (yaml.safe_load(info.config_path.read_text(encoding="utf-8"))
                              or {}).get("video_sets")
    what = [f"video_sets entry {k}" for k in add.get("video_sets", {})]
    if "project_path" in add:
        what.append(f"project_path {add['project_path']}")
    if add.get("drop"):
        what.append(f"(placeholder video_sets {add['drop']} removed)")
    log.info("%s: set what DeepLabCut needs: %s", info.config_path, "; ".join(what))
    return add


def resolve_snapshot(info: ProjectInfo, *, shuffle: int = 1, trainset_index: int = 0,
                     snapshot_index: int | str = -1) -> tuple[Any, Any]:
    """DeepLabCut's data loader of a trained shuffle and the snapshot an index names.

    Parameters
    ----------
    info : ProjectInfo
        The project (:func:`open_project`).
    shuffle, trainset_index : int
        Which training run.
    snapshot_index : int or str
        As DeepLabCut takes it: -1 is the best snapshot if one was kept, else the last;
        ``"all"`` is not accepted here.

    Returns
    -------
    tuple
        ``(DLCLoader, Snapshot)``; ``Snapshot.path`` is the ``.pt`` file.

    ``config.yaml`` gets what DeepLabCut needs (:func:`ensure_dlc_config`: the path of a
    moved project, comments kept) only once the shuffle is known to be trained, so a failed
    call writes nothing.

    Raises
    ------
    ProjectError
        The shuffle is not trained, or has no such snapshot.
    """
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_model_snapshots
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader

    iteration = info.cfg.get("iteration", 0)
    runs = (info.path / "dlc-models-pytorch" / f"iteration-{iteration}").glob(
        f"*shuffle{shuffle}/train/pytorch_config.yaml")
    if not any(runs):
        raise ProjectError(f"{info.path}: shuffle {shuffle} is not trained (no "
                           f"dlc-models-pytorch/iteration-{iteration}/*shuffle{shuffle}/train); "
                           f"run 'gaitlive train {info.path}' first")
    ensure_dlc_config(info)  # else DeepLabCut rewrites a moved project's path, comments lost
    try:
        loader = DLCLoader(config=str(info.config_path), shuffle=shuffle,
                           trainset_index=trainset_index, modelprefix="")
    except (FileNotFoundError, ValueError) as e:
        raise ProjectError(f"{info.path}: shuffle {shuffle} is not trained ({e}); run "
                           f"'gaitlive train {info.path}' first") from e
    folder = Path(loader.model_folder)
    if not any(folder.glob("snapshot*.pt")):
        earlier = sorted((d for d in folder.glob("previous-*") if d.is_dir()),
                         key=lambda d: d.stat().st_mtime)
        raise ProjectError(
            f"{folder}: no snapshots; train it ('gaitlive train {info.path}')"
            + (f"; an earlier run is in {earlier[-1]} (move all its files, "
               f"pytorch_config.yaml included, back into {folder.name}/ to use it)"
               if earlier else ""))
    try:
        snapshots = get_model_snapshots(snapshot_index, loader.model_folder, loader.pose_task)
    except (ValueError, IndexError) as e:
        raise ProjectError(f"{loader.model_folder}: no snapshot {snapshot_index!r} ({e})") from e
    if not snapshots:
        raise ProjectError(f"{loader.model_folder}: no snapshots; train first")
    return loader, snapshots[0]


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
        No labels, unknown bodyparts, a bodypart of ``config.yaml`` in no label file,
        labels without any coordinates, missing or corrupt images.
    """
    import cv2
    import pandas as pd

    if not info.label_files:
        raise ProjectError(
            f"{info.path}: no labels; expected labeled-data/<video>/CollectedData_{info.scorer}"
            f".h5 (label frames with 'gaitlive annotate' or DeepLabCut's labelling GUI)")
    total = 0
    known = set(info.bodyparts)
    seen: set[str] = set()
    for f in info.label_files:
        try:
            df = pd.read_hdf(f)
        except Exception as e:
            from gaitlive.dlcio import reader_error_text

            raise ProjectError(f"{f}: cannot read DeepLabCut labels "
                               f"({reader_error_text(e)})") from e
        if "bodyparts" not in (df.columns.names or []):
            raise ProjectError(f"{f}: expected DeepLabCut label columns (scorer, bodyparts, "
                               f"coords), got levels {df.columns.names}")
        names = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
        unknown = [b for b in names if b not in known]
        if unknown:
            raise ProjectError(f"{f}: labels name bodyparts {unknown} that are not in "
                               f"{info.config_path} bodyparts {info.bodyparts}")
        seen.update(names)
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
    absent = [b for b in info.bodyparts if b not in seen]
    if absent:  # (a file may lack a column another one has: DeepLabCut merges them)
        raise ProjectError(f"{info.path}: no label file has columns for bodyparts {absent} "
                           f"that {info.config_path} lists; DeepLabCut cannot train them "
                           f"(label them, e.g. with 'gaitlive annotate', or remove them "
                           f"from config.yaml)")
    if total == 0:
        raise ProjectError(f"{info.path}: the label files {[str(x) for x in info.label_files]} "
                           f"hold no labelled keypoints")
    info.n_labelled = total
    return info
