"""Export a trained DeepLabCut 3 shuffle for DLC-Live, with a gaitlive model card.

``deeplabcut.export_model`` writes the DLC-Live ``.pt`` (``{"config", "pose"}``) into the
project's ``exported-models-pytorch/``; :func:`export_project` copies it into a model folder
(``models/NAME``), optionally with float16 weights, and writes ``model.yaml``: bodyparts,
skeleton, net, input size, resize, training data, metrics, date.

A folder that already holds a model (a ``model.yaml`` or a ``.pt``) is refused unless
``replace=True`` (the CLI's ``--force``); replacing removes the old model's own files (its
card, the weights its card names, the held-out/evaluation files written for it) and leaves
everything else in the folder alone.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from gaitlive.fileio import file_digest
from gaitlive.offline.project import (
    ProjectError,
    atomic_write_text,
    open_project,
    resolve_snapshot,
    save_export,
)

log = logging.getLogger(__name__)

__all__ = ["export_project", "write_model_card", "check_export_folder",
           "ExportError", "MODEL_OWN_FILES"]


class ExportError(ValueError):
    """An export target or setting is unusable (the message names it and what was
    expected)."""


#: Files a model folder holds for its model besides the weights and ``model.yaml``
#: (relative paths, globs): removed when the model is replaced, as they describe the old one.
MODEL_OWN_FILES = ("heldout-metrics.csv", "heldout-gallery.jpg", "evaluation/metrics.csv",
                   "evaluation/gallery.png", "evaluation/compare.csv",
                   "evaluation/compare-*/metrics.csv", "evaluation/compare-*/gallery.png")


def check_export_folder(to: str | Path, *, replace: bool = False) -> list[Path]:
    """Check that ``to`` can receive an exported model; creates and changes nothing.

    Parameters
    ----------
    to : str or Path
        The model folder to write.
    replace : bool
        Whether a model already in ``to`` may be replaced.

    Returns
    -------
    list of Path
        The files of the model already in ``to`` (to remove when it is replaced): its
        ``model.yaml``, the ``.pt`` its card names (or the folder's only ``.pt`` when there is
        no card) and :data:`MODEL_OWN_FILES`. Empty when ``to`` holds no model.

    Raises
    ------
    ExportError
        ``to`` is a file, or holds a model and ``replace`` is False.
    """
    out = Path(to)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--to {out}: is a file; expected a model folder (new, empty, or "
                          f"holding a model to replace with --force)")
    if not out.is_dir():
        return []
    card = out / "model.yaml"
    pts = sorted(out.glob("*.pt"))
    if not card.is_file() and not pts:
        return []
    if not replace:
        held = (["model.yaml"] if card.is_file() else []) + [p.name for p in pts]
        raise ExportError(f"--to {out}: already holds a model ({', '.join(held)}); expected a "
                          f"new or empty folder, or --force to replace that model")
    own: list[Path] = []
    weights: str | None = None
    if card.is_file():
        own.append(card)
        try:
            data = yaml.safe_load(card.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            data = None
        name = data.get("file") if isinstance(data, dict) else None
        if isinstance(name, str) and Path(name).name == name and name.endswith(".pt"):
            weights = name
    elif len(pts) == 1:
        weights = pts[0].name
    if weights and (out / weights).is_file():
        own.append(out / weights)
    for pattern in MODEL_OWN_FILES:
        own.extend(p for p in sorted(out.glob(pattern)) if p.is_file())
    return own


def write_model_card(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``model.yaml`` atomically (keys in a readable order)."""
    order = ["name", "engine", "file", "net", "bodyparts", "skeleton", "input_size", "resize",
             "individuals", "precision_stored", "size_mb", "training_data", "training",
             "metrics", "date", "reproduce", "notes"]
    ordered = {k: card[k] for k in order if k in card}
    ordered.update({k: v for k, v in card.items() if k not in ordered})
    path = Path(folder) / "model.yaml"
    atomic_write_text(path, "# gaitlive model card (read by gaitlive.pose.read_model_card)\n"
                      + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True))
    return path


def _image_size(info: Any) -> tuple[int, int] | None:
    import cv2

    for folder in sorted((info.path / "labeled-data").glob("*")):
        for img in sorted(folder.glob("*.png"))[:1] + sorted(folder.glob("*.jpg"))[:1]:
            im = cv2.imread(str(img))
            if im is not None:
                return (int(im.shape[1]), int(im.shape[0]))
    return None


def export_project(project: str | Path, to: str | Path, *, shuffle: int = 1,
                   trainset_index: int = 0, snapshot_index: int = -1, half: bool = False,
                   name: str | None = None, resize: float | None = None,
                   skeleton: list[list[str]] | None = None,
                   metrics: dict[str, Any] | None = None,
                   metrics_source: dict[str, str] | None = None,
                   metrics_path: str | Path | None = None,
                   extra_card: dict[str, Any] | None = None, replace: bool = True) -> Path:
    """Export a trained shuffle into a DLC-Live model folder.

    Parameters
    ----------
    project : str or Path
        DeepLabCut project folder (or its ``config.yaml``).
    to : str or Path
        Model folder to (re)write, e.g. ``models/gaitlive-corridor``.
    shuffle, trainset_index, snapshot_index :
        Which model (``snapshot_index=-1``: the best snapshot if DeepLabCut kept one, else
        the last).
    half : bool
        Store float16 weights (half the size; dlclive loads them into a float32 model).
    name : str, optional
        Model name and ``.pt`` stem (default: the folder name).
    resize : float, optional
        The ``model.resize`` a live run should use (images seen in training / live frames).
    skeleton : list of [a, b], optional
        Default: the project's ``skeleton``.
    metrics : dict, optional
        Evaluation results to record.
    metrics_source : dict, optional
        The ``shuffle`` and ``snapshot`` (file name) those results were computed on, as
        ``gaitlive evaluate`` records them in ``metrics.csv`` (and ``snapshot_sha256``, the
        file's digest): an export of another snapshot is refused, so a card never carries
        another model's metrics.
    metrics_path : str or Path, optional
        The ``metrics.csv`` they were read from (``gaitlive export --metrics``), for the
        message when its rows name bodyparts the project does not have.
    extra_card : dict, optional
        More card keys (training settings, reproduce command ...).
    replace : bool
        When ``to`` already holds a model: True replaces it (its own files only, see
        :func:`check_export_folder`), False refuses (``gaitlive export`` without
        ``--force``).

    Returns
    -------
    Path
        The model folder.
    """
    import torch
    from deeplabcut.pose_estimation_pytorch.apis.export import export_model

    out = Path(to)
    name = name or out.name
    if not name or Path(name).name != name or name in (".", ".."):
        raise ExportError(f"--name {name!r}: expected a file name for the model (no folders)")
    if resize is not None:
        from gaitlive.pose import check_resize

        check_resize(resize, f"--resize {resize}")
    check_export_folder(out, replace=replace)
    info = open_project(project)
    _, snapshot = resolve_snapshot(info, shuffle=shuffle, trainset_index=trainset_index,
                                   snapshot_index=snapshot_index)
    _check_metrics_source(metrics_source, shuffle, Path(snapshot.path))
    _check_metrics_bodyparts(metrics, metrics_path, info)
    try:
        export_model(str(info.config_path), shuffle=shuffle,
                                trainingsetindex=trainset_index, snapshotindex=snapshot_index,
                                overwrite=True, wipe_paths=True)
    except (FileNotFoundError, ValueError, IndexError) as e:
        raise ProjectError(f"{info.path}: shuffle {shuffle} cannot be exported ({e}); train "
                           f"it first with 'gaitlive train {info.path}'") from e
    exported = sorted((info.path / "exported-models-pytorch").rglob("*.pt"),
                      key=lambda p: p.stat().st_mtime)
    exported = [p for p in exported if f"shuffle-{shuffle}" in str(p)]
    if not exported:
        raise ProjectError(f"{info.path}/exported-models-pytorch: deeplabcut.export_model wrote "
                           f"no .pt for shuffle {shuffle}")
    src = exported[-1]
    raw = torch.load(src, map_location="cpu", weights_only=True)
    cfg = raw["config"]
    out.mkdir(parents=True, exist_ok=True)
    old_files = check_export_folder(out, replace=replace)  # again: the folder may have changed
    target = out / f"{name}.pt"
    # the new weights first, beside the old model; the old one goes only once they are saved
    tmp = target.with_name(f".{target.name}.new")
    try:
        if half:
            save_export(tmp, cfg, raw["pose"], half=True)
        else:
            shutil.copyfile(src, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for f in old_files:
        if f != target:
            f.unlink(missing_ok=True)
            log.info("removed %s (the replaced model's)", f)
    for d in sorted({f.parent for f in old_files if f.parent != out}, reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    if (out / "evaluation").is_dir() and not any((out / "evaluation").iterdir()):
        (out / "evaluation").rmdir()
    tmp.replace(target)
    meta = cfg.get("metadata", {}) or {}
    bb = cfg.get("model", {}).get("backbone", {})
    size = _image_size(info)
    proj_skel = info.cfg.get("skeleton") or []
    card: dict[str, Any] = {
        "name": name,
        "engine": "pytorch",
        "file": target.name,
        "net": cfg.get("net_type", ""),
        "bodyparts": list(meta.get("bodyparts", info.bodyparts)),
        "skeleton": [list(e) for e in (skeleton if skeleton is not None else proj_skel)],
        "input_size": list(size) if size else None,
        "resize": resize,
        "individuals": max(1, len(meta.get("individuals") or [1])),
        "precision_stored": "FP16" if half else "FP32",
        "size_mb": round(target.stat().st_size / 1e6, 2),
        "training_data": {"project": info.path.name, "task": info.task,
                          "labelled_frames": _count_labels(info),
                          "shuffle": shuffle,
                          "training_fraction": info.cfg.get("TrainingFraction", [None])[
                              trainset_index]},
        "training": {"backbone": {k: bb.get(k) for k in ("type", "model_name", "widen_factor",
                                                        "deepen_factor") if k in bb},
                     "exported_from": src.name, "snapshot": snapshot.path.name,
                     **_init_weights(Path(snapshot.path).parent)},
        "metrics": metrics or {},
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if extra_card:
        card.update(extra_card)
    write_model_card(out, card)
    log.info("exported %s -> %s (%.2f MB)", src.name, target, card["size_mb"])
    return out


def _check_metrics_source(source: dict[str, str] | None, shuffle: int,
                          snapshot: Path) -> None:
    """Refuse metrics computed on another shuffle or snapshot than the one exported: by
    name, and by content where the metrics record the snapshot's digest (a later training
    run of the shuffle writes snapshots of the same names)."""
    src = {k: v for k, v in (source or {}).items() if v}
    theirs = (src.get("shuffle", str(shuffle)), src.get("snapshot", snapshot.name))
    if theirs != (str(shuffle), snapshot.name):
        raise ExportError(
            f"--metrics were computed on shuffle {theirs[0]}, snapshot {theirs[1]}, but this "
            f"export is shuffle {shuffle}, snapshot {snapshot.name}: evaluate the exported "
            f"snapshot ('gaitlive evaluate PROJECT --shuffle {shuffle} --snapshot N') or "
            f"export the evaluated one (--snapshot)")
    digest = src.get("snapshot_sha256")
    ours = file_digest(snapshot) if digest and snapshot.is_file() else digest
    if ours != digest:
        raise ExportError(
            f"--metrics were computed on another {snapshot.name} (SHA-256 {digest}...; "
            f"{snapshot} is {ours}..., from a later training run of the "
            f"shuffle): evaluate it again ('gaitlive evaluate PROJECT --shuffle {shuffle}') "
            f"and export with that metrics.csv")


def _check_metrics_bodyparts(metrics: dict[str, Any] | None, path: str | Path | None,
                             info: Any) -> None:
    """Refuse a metrics.csv (``path``, read into ``metrics`` as split -> bodypart -> values)
    with rows for bodyparts the project does not have (another project's model)."""
    if not metrics or path is None:
        return
    theirs = sorted({b for rows in metrics.values() for b in rows if b != "all"})
    other = [b for b in theirs if b not in info.bodyparts]
    if other:
        raise ExportError(f"--metrics {path}: rows for bodyparts {other} that "
                          f"{info.config_path} does not list ({info.bodyparts}): they are "
                          f"another model's metrics")


def _init_weights(train_folder: Path) -> dict[str, str]:
    """``{"init_weights": source}`` when the run was fine-tuned (``gaitlive train
    --init-weights``), else empty."""
    import json

    from gaitlive.offline.train import INIT_WEIGHTS_RECORD

    try:
        rec = json.loads((train_folder / INIT_WEIGHTS_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    src = rec.get("init_weights") if isinstance(rec, dict) else None
    return {"init_weights": src} if isinstance(src, str) else {}


def _count_labels(info: Any) -> int:
    try:
        from gaitlive.offline.project import validate_labels

        return validate_labels(info, check_images=False).n_labelled
    except ProjectError:
        return 0
