"""Train a pose model on a DeepLabCut 3 project with DeepLabCut's PyTorch engine.

:func:`train_project` is what ``gaitlive train`` runs:

1. open the project and validate its labels and images, and the ``--init-weights`` model
   (bodyparts; the architecture is taken from it unless given); only then add to
   ``config.yaml`` what DeepLabCut needs and it lacks (:func:`ensure_dlc_config`);
2. ``deeplabcut.create_training_dataset`` for the shuffle (kept when resuming); a fresh run
   on a shuffle that has snapshots first moves them (and the training log) aside to
   ``train/previous-<date>-<time>/``;
3. edit the shuffle's ``pytorch_config.yaml``: net size, heatmap stride, augmentation
   (never horizontal flips: they swap left and right legs), batch size, epochs, seed,
   snapshots (with optimizer state, so training resumes exactly);
4. weights: DeepLabCut 3.0.2's ``train()`` downloads ImageNet weights unless
   ``train_settings.weight_init`` is set, even when the config says ``pretrained: false``.
   With ``pretrained=False`` -- and automatically when the model hub cannot be reached --
   a randomly initialised snapshot is saved and named in ``weight_init`` (remade when the
   architecture or seed it was made for, recorded in ``random-init.json``, differ);
5. DeepLabCut's ``train()`` with our training transform (DeepLabCut's from the config, plus
   brightness/contrast, gamma, hue and blur) and a tqdm progress bar fed by a DeepLabCut
   logger.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from gaitlive.fileio import atomic_write, move_aside
from gaitlive.offline.project import (
    ProjectError,
    ProjectInfo,
    atomic_write_text,
    build_pose_model_config,
    ensure_dlc_config,
    open_project,
    set_backbone_size,
    validate_labels,
)
from gaitlive.pose import check_device

log = logging.getLogger(__name__)

__all__ = ["TrainOptions", "TrainResult", "train_project", "shuffle_paths", "hub_reachable",
           "sbatch_command", "sbatch_unreproduced", "latest_snapshot", "move_previous_run",
           "check_device", "check_net", "net_types", "RANDOM_INIT"]

#: File name of the randomly initialised snapshot used instead of ImageNet weights.
RANDOM_INIT = "random-init.pt"
#: What :data:`RANDOM_INIT` was made for (model configuration and seed).
RANDOM_INIT_RECORD = "random-init.json"
INIT_WEIGHTS = "init-weights.pt"
#: Where the fine-tuning weights came from (read by ``gaitlive export`` for the card).
INIT_WEIGHTS_RECORD = "init-weights.json"
#: Files of a training run in a train folder (moved aside by a fresh run).
RUN_FILES = ("snapshot*.pt", "learning_stats.csv", "*.log", "train.txt", "log.txt",
             INIT_WEIGHTS, INIT_WEIGHTS_RECORD)


@dataclass
class TrainOptions:
    """How to train (``gaitlive train`` options)."""

    net: str | None = None  # None: the --init-weights model's, else cspnext_s
    epochs: int = 200
    batch_size: int = 8
    device: str = "auto"
    pretrained: bool | None = None  # None: ImageNet weights when the model hub is reachable
    shuffle: int = 1
    trainset_index: int = 0
    resume: bool = False
    widen_factor: float | None = None  # CSPNeXt width (cspnext_s: 0.5)
    deepen_factor: float | None = None
    heatmap_stride: int | None = None  # 8 or 16 (DeepLabCut default 16)
    lr: float | None = None
    seed: int = 42
    save_epochs: int = 10
    eval_interval: int = 10
    max_snapshots: int = 5
    workers: int = 0
    # (width, height) of the training crops; None: none when all images have one size,
    # else the most common size (batches need one size)
    crop_size: tuple[int, int] | None = None
    rotation: float = 15.0
    scaling: tuple[float, float] = (0.75, 1.25)
    translation: int = 16
    color: bool = True  # brightness/contrast/gamma/hue jitter and blur
    noise: float = 12.75
    motion_blur: bool = True
    progress: bool = True
    threads: int | None = None  # torch CPU threads (1 is fastest on a busy CPU)
    # fine-tune from these weights (DLC snapshot, DLC-Live export .pt or export folder)
    init_weights: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # dotted pytorch_config overrides


@dataclass
class TrainResult:
    project: Path
    shuffle: int
    train_folder: Path
    pytorch_config: Path
    snapshot: Path | None
    epochs_done: int
    options: TrainOptions | None = None  # as trained (architecture, pretrained resolved)
    previous_run: Path | None = None  # where an earlier run's snapshots were moved


def net_types() -> list[str]:
    """DeepLabCut's net types for its PyTorch engine
    (``deeplabcut.pose_estimation_pytorch.available_models()``)."""
    from deeplabcut.pose_estimation_pytorch import available_models

    return list(available_models())


def check_net(net: str, what: str = "--net") -> str:
    """``net`` when it is one of DeepLabCut's PyTorch net types (:func:`net_types`), else
    a one-line :class:`ProjectError` naming ``what`` and the known ones."""
    known = net_types()
    if net in known:
        return net
    import difflib

    close = difflib.get_close_matches(str(net), known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ProjectError(f"{what} {net}: not a DeepLabCut net type for the PyTorch engine"
                       f"{hint}; expected one of {', '.join(known)}")


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """True when the DeepLabCut model hub (Hugging Face) answers a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_h5_labels(info: ProjectInfo) -> None:
    """Refuse label folders with ``CollectedData_<scorer>.csv`` but no ``.h5``: DeepLabCut
    trains from the ``.h5`` and would leave them out without a word."""
    csv_only = sorted(c.parent.name for c in
                      (info.path / "labeled-data").glob(f"*/CollectedData_{info.scorer}.csv")
                      if not c.with_suffix(".h5").is_file())
    if csv_only:
        raise ProjectError(
            f"{info.path / 'labeled-data'}: {csv_only} hold CollectedData_{info.scorer}.csv "
            f"but no .h5, which DeepLabCut trains from; write the .h5 files with python -c "
            f"\"import deeplabcut; deeplabcut.convertcsv2h5('{info.config_path}', "
            f"userfeedback=False)\" (or move those folders out of labeled-data)")


def _hub_routed() -> bool:
    """Whether Hugging Face downloads go through a proxy or a mirror (``HF_ENDPOINT``),
    which a direct connection test cannot judge."""
    return any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HF_ENDPOINT"))


def _hub_configured() -> bool:
    """:func:`_hub_routed`, or the offline cache asked for (``HF_HUB_OFFLINE`` true)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes",
                                                                       "on")
    return offline or _hub_routed()


def shuffle_paths(info: ProjectInfo, shuffle: int, trainset_index: int = 0
                  ) -> tuple[Path, Path] | None:
    """``(train_folder, pytorch_config.yaml)`` of a shuffle, or None when it does not
    exist yet."""
    from deeplabcut.utils import auxiliaryfunctions as af

    cfg = info.cfg
    try:
        frac = float(cfg["TrainingFraction"][trainset_index])
        rel = af.get_model_folder(frac, shuffle, cfg, engine=_engine(), modelprefix="")
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ProjectError(f"{info.config_path}: expected Task, date, iteration and "
                           f"TrainingFraction (with an entry {trainset_index}) to find shuffle "
                           f"{shuffle} ({type(e).__name__}: {e})") from e
    train = info.path / rel / "train"
    pc = train / "pytorch_config.yaml"
    return (train, pc) if pc.is_file() else None


def _engine() -> Any:
    from deeplabcut.core.engine import Engine

    return Engine.PYTORCH


def latest_snapshot(train_folder: Path) -> tuple[Path, int] | None:
    """The newest ``snapshot-*.pt`` (by epoch) in a train folder and its epoch."""
    best: tuple[Path, int] | None = None
    for p in train_folder.glob("snapshot-*.pt"):
        if "detector" in p.name:
            continue
        digits = "".join(c for c in p.stem.split("-")[-1] if c.isdigit())
        if not digits:
            continue
        ep = int(digits)
        if best is None or ep > best[1]:
            best = (p, ep)
    return best


def sbatch_command(project: Path, opts: TrainOptions, *, hours: int = 12) -> str:
    """A command line that runs the same training on a SLURM cluster with one GPU (the
    project folder, and an ``--init-weights`` model, must be reachable at the same paths
    there, gaitlive installed).

    Every option that has a ``gaitlive train`` flag is passed as ``opts`` has it (give the
    options as trained: :attr:`TrainResult.options`, ``pretrained`` resolved), so the job
    trains the same model; ``--resume`` only when ``opts.resume``. Only where it runs
    differs: ``--device cuda --workers 6`` (data loading in 6 processes).
    :func:`sbatch_unreproduced` names the options that have no flag.
    """
    args = ["gaitlive", "train", str(project), "--net", opts.net or "cspnext_s",
            "--epochs", str(opts.epochs), "--batch-size", str(opts.batch_size),
            "--shuffle", str(opts.shuffle), "--seed", str(opts.seed), "--device", "cuda",
            "--workers", "6", "--save-epochs", str(opts.save_epochs),
            "--eval-interval", str(opts.eval_interval)]
    if opts.resume:
        args.append("--resume")
    if opts.pretrained is not None:
        args.append("--pretrained" if opts.pretrained else "--no-pretrained")
    for flag, value in (("--widen-factor", opts.widen_factor),
                        ("--deepen-factor", opts.deepen_factor),
                        ("--heatmap-stride", opts.heatmap_stride), ("--lr", opts.lr),
                        ("--threads", opts.threads)):
        if value is not None:
            args += [flag, str(value)]
    if opts.crop_size is not None:
        args += ["--crop-size", f"{opts.crop_size[0]}x{opts.crop_size[1]}"]
    if not opts.color:
        args.append("--no-color-aug")
    if opts.init_weights:
        args += ["--init-weights", str(Path(opts.init_weights).expanduser().resolve())]
    wrapped = " ".join(shlex.quote(a) for a in args)
    return (f"sbatch --job-name=gaitlive-train --gres=gpu:1 --cpus-per-task=8 --mem=32G "
            f"--time={hours}:00:00 --output=gaitlive-train-%j.log --wrap={shlex.quote(wrapped)}")


#: TrainOptions fields that ``gaitlive train`` has no flag for (``progress`` only draws).
_NO_FLAG = ("trainset_index", "max_snapshots", "rotation", "scaling", "translation", "noise",
            "motion_blur", "extra")


def sbatch_unreproduced(opts: TrainOptions) -> list[str]:
    """Options that differ from their defaults but have no ``gaitlive train`` flag, so
    the :func:`sbatch_command` job would train them with the defaults."""
    default = TrainOptions()
    return [f.name for f in fields(TrainOptions)
            if f.name in _NO_FLAG and getattr(opts, f.name) != getattr(default, f.name)]


def _run_files(train_folder: Path) -> list[Path]:
    """The files of the training run in ``train_folder`` (:data:`RUN_FILES`)."""
    return [f for pattern in RUN_FILES for f in sorted(train_folder.glob(pattern))
            if f.is_file()]


def move_previous_run(train_folder: Path) -> Path | None:
    """Move an earlier training run's snapshots and logs out of ``train_folder`` (into
    ``train_folder/previous-<YYYYmmdd-HHMMSS>/``, with a copy of its
    ``pytorch_config.yaml``), so a fresh run neither mixes with nor overwrites them.

    Returns
    -------
    Path or None
        The folder they were moved to; None when there were no snapshots.
    """
    if not any(train_folder.glob("snapshot*.pt")):
        return None
    dest = move_aside(_run_files(train_folder), train_folder, prefix="previous-")
    pc = train_folder / "pytorch_config.yaml"
    if pc.is_file():  # the config it was trained with (the new run rewrites it)
        shutil.copy2(pc, dest / pc.name)
    return dest


def _set_nested(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def configure_shuffle(pc_path: Path, opts: TrainOptions, *, random_init: Path | None,
                      image_sizes: dict[tuple[int, int], int] | None = None,
                      write: bool = True) -> dict:
    """Apply ``opts`` to a shuffle's ``pytorch_config.yaml`` and return it (written
    atomically unless ``write`` is false)."""
    cfg = yaml.safe_load(pc_path.read_text(encoding="utf-8"))
    set_backbone_size(cfg, widen_factor=opts.widen_factor, deepen_factor=opts.deepen_factor,
                      heatmap_stride=opts.heatmap_stride)
    bb = cfg["model"]["backbone"]
    if "freeze_bn_stats" in bb:
        # HRNet configs freeze BN statistics (for fine-tuning ImageNet weights): training
        # from scratch needs them to move.
        bb["freeze_bn_stats"] = False
        bb["freeze_bn_weights"] = False
    train = cfg["data"]["train"]
    train["hflip"] = None  # swaps left and right legs
    crop = opts.crop_size
    if crop is None and image_sizes and len(image_sizes) > 1:
        crop = max(image_sizes.items(), key=lambda kv: kv[1])[0]
        log.info("labelled images have %d sizes; training on %dx%d crops (keypoint-aware)",
                 len(image_sizes), *crop)
    train["crop_sampling"] = ({"width": int(crop[0]), "height": int(crop[1]),
                               "max_shift": 0.1, "method": "hybrid"} if crop else None)
    train["affine"] = {"p": 0.7, "rotation": float(opts.rotation),
                       "scaling": [float(opts.scaling[0]), float(opts.scaling[1])],
                       "translation": int(opts.translation)}
    train["gaussian_noise"] = float(opts.noise) if opts.noise > 0 else False
    train["motion_blur"] = bool(opts.motion_blur)
    ts = cfg["train_settings"]
    ts["batch_size"] = int(opts.batch_size)
    ts["epochs"] = int(opts.epochs)
    ts["seed"] = int(opts.seed)
    ts["dataloader_workers"] = int(opts.workers)
    ts["display_iters"] = 10**9  # the progress bar shows the loss
    ts["weight_init"] = ({"snapshot_path": str(random_init), "with_decoder": False}
                         if random_init is not None else None)
    runner = cfg["runner"]
    runner["eval_interval"] = int(opts.eval_interval)
    runner["snapshots"] = {"max_snapshots": int(opts.max_snapshots),
                           "save_epochs": int(opts.save_epochs), "save_optimizer_state": True}
    if opts.lr is not None:
        runner["optimizer"]["params"]["lr"] = float(opts.lr)
    # learning-rate drops at 70% and 90% of the epochs, whatever their number
    lr0 = float(runner["optimizer"]["params"]["lr"])
    runner["scheduler"] = {"type": "LRListScheduler", "params": {
        "lr_list": [[lr0 / 10], [lr0 / 100]],
        "milestones": [max(1, int(0.7 * opts.epochs)), max(2, int(0.9 * opts.epochs))]}}
    cfg["device"] = opts.device
    for k, v in opts.extra.items():
        _set_nested(cfg, k, v)
    if write:
        atomic_write_text(pc_path, yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def build_train_transform(data_train: dict[str, Any], color: bool) -> Any:
    """DeepLabCut's training transform for ``data_train`` plus photometric jitter.

    Brightness/contrast, gamma, hue/saturation and Gaussian blur are inserted before the
    normalisation (DeepLabCut's config has no keys for them)."""
    import albumentations as A
    from deeplabcut.pose_estimation_pytorch.data.transforms import build_transforms

    base = build_transforms(data_train)
    if not color:
        return base
    extra = [
        A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
        A.RandomGamma(gamma_limit=(70, 140), p=0.3),
        A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=25, val_shift_limit=15, p=0.5),
        A.GaussianBlur(blur_limit=(3, 5), p=0.2),
    ]
    ts = list(base.transforms)
    idx = next((i for i, t in enumerate(ts) if isinstance(t, A.Normalize)), len(ts))
    ts[idx:idx] = extra
    return A.Compose(ts, keypoint_params=base.processors["keypoints"].params,
                     bbox_params=base.processors["bboxes"].params)


def _register_progress_logger(total_epochs: int, start_epoch: int, enabled: bool) -> dict:
    """Register a DeepLabCut training logger that drives a tqdm bar; returns its config."""
    from deeplabcut.pose_estimation_pytorch.runners.logger import LOGGER, BaseLogger
    from tqdm.auto import tqdm

    if "GaitliveProgressLogger" not in LOGGER.module_dict:

        class GaitliveProgressLogger(BaseLogger):
            """Epoch progress bar with the train loss and test RMSE/mAP."""

            def __init__(self, total: int, start: int, enabled: bool = True,
                         **_: Any) -> None:
                self.bar = tqdm(total=total, initial=start, unit="epoch", desc="train",
                                disable=not enabled, dynamic_ncols=True)
                self.post: dict[str, str] = {}

            def log_config(self, config: dict | None = None) -> None:
                pass

            def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
                loss = metrics.get("losses/train.total_loss")
                if loss is not None:
                    self.post["loss"] = f"{loss:.5f}"
                    self.bar.update(1)
                for key, short in (("test.rmse", "rmse"), ("test.mAP", "mAP")):
                    if key in metrics:
                        self.post[short] = f"{metrics[key]:.2f}"
                self.bar.set_postfix(self.post, refresh=True)
                if self.bar.n >= self.bar.total:
                    self.bar.close()

            def save(self) -> None:
                self.bar.close()

        LOGGER.register_module(GaitliveProgressLogger)
    return {"type": "GaitliveProgressLogger", "total": total_epochs, "start": start_epoch,
            "enabled": enabled}


@dataclass
class InitModel:
    """An ``--init-weights`` model: its weights and what it was built as."""

    path: Path  # the .pt file
    state: dict[str, Any]  # float32 weights
    bodyparts: list[str] | None
    # net, widen_factor, deepen_factor, heatmap_stride: those its configuration states
    arch: dict[str, Any]


def _arch_of(config: dict[str, Any]) -> dict[str, Any]:
    """``net``, ``widen_factor``, ``deepen_factor``, ``heatmap_stride`` of a DeepLabCut 3
    pose configuration (those it states)."""
    arch: dict[str, Any] = {}
    if config.get("net_type"):
        arch["net"] = str(config["net_type"])
    model = config.get("model") or {}
    bb = model.get("backbone") or {}
    if bb.get("type") == "CSPNeXt":
        for k in ("widen_factor", "deepen_factor"):
            if bb.get(k) is not None:
                arch[k] = float(bb[k])
    for head in (model.get("heads") or {}).values():
        strides = (head.get("heatmap_config") or {}).get("strides")
        if isinstance(strides, list) and len(strides) in (1, 2):
            arch["heatmap_stride"] = {1: 16, 2: 8}[len(strides)]
        break
    return arch


def _read_init_model(source: str | Path) -> InitModel:
    """Load ``--init-weights``: a DeepLabCut snapshot (its ``pytorch_config.yaml`` beside
    it tells the architecture), a DLC-Live export ``.pt`` (``{"config", "pose"}``, fp16
    allowed) or a folder holding one export ``.pt`` (and its ``model.yaml`` card)."""
    import torch

    src = Path(source).expanduser()
    folder = src if src.is_dir() else src.parent
    if src.is_dir():
        pts = sorted(src.glob("*.pt"))
        if len(pts) != 1:
            raise ProjectError(f"{src}: --init-weights: expected a folder with one .pt model, "
                               f"found {[p.name for p in pts]}")
        src = pts[0]
    if not src.is_file():
        raise ProjectError(f"{src}: --init-weights: model file not found")
    try:
        raw = torch.load(src, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ProjectError(f"{src}: --init-weights: not a PyTorch model file ({e})") from e
    state = raw.get("model", raw.get("pose")) if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise ProjectError(f"{src}: --init-weights: expected a DeepLabCut snapshot "
                           f"('model') or DLC-Live export ('pose'), found keys "
                           f"{list(raw) if isinstance(raw, dict) else type(raw).__name__}")
    state = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v)
             for k, v in state.items()}
    config = raw.get("config")
    if not isinstance(config, dict) and (folder / "pytorch_config.yaml").is_file():
        try:
            config = yaml.safe_load((folder / "pytorch_config.yaml").read_text(encoding="utf-8"))
        except yaml.YAMLError:
            config = None
    config = config if isinstance(config, dict) else {}
    arch = _arch_of(config)
    bodyparts = (config.get("metadata") or {}).get("bodyparts")
    card_path = folder / "model.yaml"
    if card_path.is_file():
        from gaitlive.pose import ModelError, read_model_card

        try:
            card = read_model_card(folder).raw
        except ModelError:  # a card that does not read adds nothing; the weights decide
            card = {}
        if isinstance(card, dict):
            bodyparts = bodyparts or card.get("bodyparts")
            tr = card.get("training") if isinstance(card.get("training"), dict) else {}
            for k in ("net", "widen_factor", "deepen_factor", "heatmap_stride"):
                if k not in arch and (card.get(k) if k == "net" else tr.get(k)) is not None:
                    arch[k] = card.get(k) if k == "net" else tr[k]
    bps = [str(b) for b in bodyparts] if isinstance(bodyparts, list) else None
    return InitModel(path=src, state=state, bodyparts=bps, arch=arch)


_ARCH_FLAGS = (("net", "--net"), ("widen_factor", "--widen-factor"),
               ("deepen_factor", "--deepen-factor"), ("heatmap_stride", "--heatmap-stride"))


def _arch_text(arch: dict[str, Any]) -> str:
    return " ".join(f"{flag} {arch[k]}" for k, flag in _ARCH_FLAGS if arch.get(k) is not None)


def resolve_architecture(opts: TrainOptions, init: InitModel | None) -> TrainOptions:
    """``opts`` with the net, width, depth and heatmap stride of the ``--init-weights``
    model where ``opts`` leaves them unset (and ``net`` cspnext_s without one).

    Raises
    ------
    ProjectError
        ``opts`` sets one to another value than the model's.
    """
    if init is None:
        return replace(opts, net=opts.net or "cspnext_s")
    set_: dict[str, Any] = {}
    conflicts = []
    for key, flag in _ARCH_FLAGS:
        need, have = init.arch.get(key), getattr(opts, key)
        if need is None:
            continue
        if have is None:
            set_[key] = need
        elif (str(have) != str(need) if key == "net"
              else not math.isclose(float(have), float(need))):
            conflicts.append(f"{flag} {have}")
    if conflicts:
        raise ProjectError(f"{init.path}: --init-weights: the model is {_arch_text(init.arch)}, "
                           f"but this run asks for {', '.join(conflicts)}; leave them out to "
                           f"take the model's")
    out = replace(opts, **set_)
    return replace(out, net=out.net or "cspnext_s")


def _build_state(model_cfg: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    import torch
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    if seed is not None:
        torch.manual_seed(seed)
    return PoseModel.build(model_cfg, pretrained_backbone=False).state_dict()


def _mismatch(model: dict[str, Any], weights: dict[str, Any]) -> str | None:
    """None when ``weights`` load into ``model`` (same names and shapes), else a short
    description of the difference."""
    shape = {k: tuple(getattr(v, "shape", ())) for k, v in model.items()}
    wshape = {k: tuple(getattr(v, "shape", ())) for k, v in weights.items()}
    differ = [k for k in shape if k in wshape and shape[k] != wshape[k]]
    missing = [k for k in shape if k not in wshape]
    extra = [k for k in wshape if k not in shape]
    if not (differ or missing or extra):
        return None
    parts = []
    if differ:
        k = differ[0]
        parts.append(f"{len(differ)} tensors differ in shape, e.g. {k}: {wshape[k]} in the "
                     f"file, {shape[k]} in the model")
    if missing:
        parts.append(f"{len(missing)} tensors missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} unknown tensors, e.g. {extra[0]}")
    return "; ".join(parts)


def _ensure_random_init(path: Path, model_cfg: dict[str, Any], seed: int) -> Path:
    """Save a seeded random initialisation of ``model_cfg`` at ``path`` unless the one
    there was made for the same model configuration and seed (``random-init.json``)."""
    import torch

    record_path = path.with_name(RANDOM_INIT_RECORD)
    made_for = json.loads(json.dumps({"model": model_cfg, "seed": int(seed)}, default=str))
    if path.is_file() and record_path.is_file():
        try:
            if json.loads(record_path.read_text(encoding="utf-8")) == made_for:
                return path
        except (OSError, ValueError):
            pass
    if path.is_file():
        log.info("%s was made for another architecture or seed: making it again", path)
    state = _build_state(model_cfg, seed)
    atomic_write(path, lambda tmp: torch.save({"model": state}, tmp))
    atomic_write_text(record_path, json.dumps(made_for, indent=1) + "\n")
    return path


def _check_init_fits(init: InitModel, model_cfg: dict[str, Any], opts: TrainOptions,
                     info: ProjectInfo) -> None:
    why = _mismatch(_build_state(model_cfg), init.state)
    if why:
        raise ProjectError(f"{init.path}: --init-weights: its weights do not fit a "
                           f"{_arch_text(vars(opts))} model of the {len(info.bodyparts)} "
                           f"bodyparts of {info.config_path} ({why}); give the model's "
                           f"architecture")


def train_project(project: str | Path, opts: TrainOptions | None = None) -> TrainResult:
    """Create the training dataset of a DeepLabCut project and train it.

    Parameters
    ----------
    project : str or Path
        Project folder or its ``config.yaml``.
    opts : TrainOptions, optional
        Net, epochs, device, augmentation ...

    Returns
    -------
    TrainResult
        Where the snapshots are, the options as trained, where an earlier run's
        snapshots were moved.

    Raises
    ------
    ValueError
        ``opts.device`` is not a torch device or not on this machine (checked first).
    ProjectError
        ``opts.net`` is not a DeepLabCut PyTorch net type (checked first); ``project`` is
        not a DeepLabCut project; the project has no labels, labels unknown
        bodyparts, has corrupt images; ``--resume`` was asked for a shuffle that has no
        training folder or no snapshot, or with another architecture than its snapshot's; the ``--init-weights`` model has other bodyparts
        or another architecture than asked for. Nothing is written before these checks.
    """
    import torch

    opts = opts or TrainOptions()
    # options first (before the project is read, let alone an earlier run moved aside)
    device = check_device(opts.device)
    if opts.net is not None:
        check_net(opts.net)
    if opts.threads:
        import cv2

        torch.set_num_threads(int(opts.threads))
        cv2.setNumThreads(int(opts.threads))
    info = validate_labels(open_project(project))
    check_h5_labels(info)
    log.info("%s: %d labelled frames, bodyparts %s", info.path, info.n_labelled,
             info.bodyparts)
    init = _read_init_model(opts.init_weights) if opts.init_weights else None
    if init is not None and init.bodyparts is not None and init.bodyparts != info.bodyparts:
        raise ProjectError(f"{init.path}: --init-weights: the model's bodyparts "
                           f"{init.bodyparts} differ from {info.config_path} bodyparts "
                           f"{info.bodyparts}; fine-tuning needs the same bodyparts in the "
                           f"same order")
    if opts.crop_size is not None and info.image_sizes:
        big_w = max(w for w, _ in info.image_sizes)
        big_h = max(h for _, h in info.image_sizes)
        if opts.crop_size[0] > big_w or opts.crop_size[1] > big_h:
            raise ProjectError(f"--crop-size {opts.crop_size[0]}x{opts.crop_size[1]}: larger "
                               f"than the labelled images of {info.path} (the largest are "
                               f"{big_w}x{big_h}); expected a crop within them")
    paths = shuffle_paths(info, opts.shuffle, opts.trainset_index)
    # --resume where a start was killed (SIGKILL, power cut) after it had moved the earlier
    # run aside and before its first snapshot: that earlier run is the one to resume. It is
    # checked where it lies and moved back only once every check has passed.
    aside = interrupted_start(paths[0]) if opts.resume and paths is not None else None
    pc_check = paths[1] if paths is not None else None
    if aside is not None and (aside / "pytorch_config.yaml").is_file():
        pc_check = aside / "pytorch_config.yaml"
    if opts.resume and paths is not None and init is None and pc_check is not None:
        shuffle_net = (yaml.safe_load(pc_check.read_text(encoding="utf-8")) or {}).get("net_type")
        shuffle_net = shuffle_net if isinstance(shuffle_net, str) else None
        if opts.net is None:
            opts = replace(opts, net=shuffle_net)
        elif shuffle_net is not None and opts.net != shuffle_net:
            raise ProjectError(f"{pc_check}: --resume --net {opts.net}: shuffle "
                               f"{opts.shuffle} trains {shuffle_net}; resume without --net, "
                               f"or train without --resume to start a {opts.net} run")
    asked_net = opts.net
    opts = resolve_architecture(opts, init)
    if init is not None and opts.net != asked_net:  # the --init-weights model's net
        check_net(str(opts.net), f"{init.path}: --init-weights: net")
    resume_from: tuple[Path, int] | None = None
    if opts.resume:
        if paths is None:
            raise ProjectError(f"{info.path}: --resume: shuffle {opts.shuffle} has no training "
                               f"folder yet; train it without --resume first")
        resume_from = latest_snapshot(paths[0])
        if resume_from is None and aside is not None:
            resume_from = latest_snapshot(aside)
        if resume_from is None:
            raise ProjectError(f"--resume: no snapshot in {paths[0]} to resume from; run "
                               f"without --resume to start training")
        if opts.epochs <= resume_from[1]:
            raise ProjectError(f"--resume --epochs {opts.epochs}: {resume_from[0]} has "
                               f"already trained {resume_from[1]} epochs; --epochs is the "
                               f"total, expected more than {resume_from[1]}")
    pretrained = opts.pretrained
    if pretrained is None:
        pretrained = _hub_routed() or hub_reachable()
        if not pretrained:
            log.warning("the DeepLabCut model hub cannot be reached: training from randomly "
                        "initialised weights (no ImageNet pre-training)")
    elif (pretrained and init is None and not resume_from and not _hub_configured()
          and not hub_reachable()):
        raise ProjectError("--pretrained: the DeepLabCut model hub (huggingface.co) cannot "
                           "be reached for the ImageNet weights; use --no-pretrained (random "
                           "initial weights) or --init-weights MODEL (set HF_HUB_OFFLINE=1 "
                           "when the weights are in the local Hugging Face cache)")
    if init is not None and not resume_from:
        # Fine-tuning: the whole model (backbone and heads) is loaded from this snapshot when
        # training starts, as a resume would, but from epoch 0. (DeepLabCut's weight_init
        # with_decoder route breaks on heads with several deconvolution layers.)
        pretrained = False
        if not info.cfg.get("multianimalproject"):
            # checked before anything is written (and again on the shuffle's own config)
            probe = build_pose_model_config(
                info.bodyparts, net=opts.net or "cspnext_s", project_path=info.path,
                widen_factor=opts.widen_factor, deepen_factor=opts.deepen_factor,
                heatmap_stride=opts.heatmap_stride)
            _check_init_fits(init, probe["model"], opts, info)
    if resume_from is not None and paths is not None and pc_check is not None:
        cfg_now = configure_shuffle(pc_check, opts, random_init=None,
                                    image_sizes=info.image_sizes, write=False)
        snap = torch.load(resume_from[0], map_location="cpu", weights_only=False)
        weights = snap.get("model") if isinstance(snap, dict) else None
        why = _mismatch(_build_state(cfg_now["model"]),
                        weights if isinstance(weights, dict) else {})
        if why:
            raise ProjectError(f"{resume_from[0]}: --resume: the snapshot does not fit the "
                               f"model asked for ({_arch_text(vars(opts))}: {why}); resume "
                               f"without --net/--widen-factor/--heatmap-stride to keep the "
                               f"shuffle's, or train without --resume to start over")
    opts = replace(opts, pretrained=bool(pretrained))
    # validated: from here on files are written
    ensure_dlc_config(info)
    if aside is not None and resume_from is not None and paths is not None:
        log.warning("--resume: %s has no snapshot: a start that moved the earlier run aside "
                    "to %s stopped before its first snapshot (killed?); resuming that run",
                    paths[0], aside)
        restore_previous_run(paths[0], aside)
        resume_from = (paths[0] / resume_from[0].name, resume_from[1])
    previous = None
    if paths is not None and not opts.resume:
        previous = move_previous_run(paths[0])
        if previous is not None:
            log.warning("shuffle %d already had a training run: moved its snapshots and log "
                        "to %s (use --resume to continue a run instead)", opts.shuffle,
                        previous)
    try:
        return _train_shuffle(info, opts, paths, init, resume_from, bool(pretrained),
                              device, previous)
    except BaseException:
        if previous is not None and paths is not None:
            try:
                restore_previous_run(paths[0], previous)
            except OSError as e:  # the training error is the one to report
                log.warning("could not move the earlier run back from %s (%s)", previous, e)
        raise


def interrupted_start(train_folder: Path) -> Path | None:
    """The earlier run a killed start left aside: when ``train_folder`` has no snapshot,
    the newest ``previous-*`` folder if it holds snapshots (a start moves the earlier run
    there first, :func:`move_previous_run`, and a SIGKILL before its first snapshot leaves
    it there). None otherwise."""
    if any(train_folder.glob("snapshot*.pt")):
        return None
    aside = sorted(p for p in train_folder.glob("previous-*") if p.is_dir())
    if aside and any(aside[-1].glob("snapshot*.pt")):
        return aside[-1]
    return None


def restore_previous_run(train_folder: Path, previous: Path) -> bool:
    """Move an earlier run that :func:`move_previous_run` put aside back into
    ``train_folder`` when the new run failed before writing its first snapshot (a bad
    option DeepLabCut refused, Ctrl-C during start-up): the shuffle keeps a model to
    evaluate and export. The failed run's own files (its log, its fine-tuning record) go to
    ``failed-<date>/`` first, so none of them is taken for the earlier run's. Returns
    whether it was moved back; a run that wrote snapshots keeps them and the earlier one
    stays in ``previous``."""
    if any(train_folder.glob("snapshot*.pt")):
        return False
    failed = _run_files(train_folder)
    if failed:
        move_aside(failed, train_folder, prefix="failed-")
    for f in sorted(previous.iterdir()):
        if f.name == "pytorch_config.yaml":
            shutil.copy2(f, train_folder / f.name)  # the config that run was trained with
            f.unlink()
        else:
            os.replace(f, train_folder / f.name)
    if not any(previous.iterdir()):
        previous.rmdir()
    log.warning("the new run stopped before its first snapshot: the earlier run is back in "
                "%s (DeepLabCut drew a new train/test split for the new run, so the earlier "
                "run's test figures from 'gaitlive evaluate' may now include frames it "
                "trained on)", train_folder)
    return True


def _train_shuffle(info: ProjectInfo, opts: TrainOptions, paths: tuple[Path, Path] | None,
                   init: InitModel | None, resume_from: tuple[Path, int] | None,
                   pretrained: bool, device: str, previous: Path | None) -> TrainResult:
    """:func:`train_project` once every check has passed: the training dataset, the
    shuffle's configuration and DeepLabCut's ``train()``."""
    import torch

    if paths is None or not opts.resume:
        import deeplabcut

        deeplabcut.create_training_dataset(
            str(info.config_path), Shuffles=[opts.shuffle], net_type=opts.net,
            engine=_engine(), userfeedback=False)
        paths = shuffle_paths(info, opts.shuffle, opts.trainset_index)
        if paths is None:  # pragma: no cover - DLC always writes it
            raise ProjectError(f"{info.path}: create_training_dataset wrote no "
                               f"pytorch_config.yaml for shuffle {opts.shuffle}")
    train_folder, pc_path = paths

    random_init = None if pretrained else train_folder / RANDOM_INIT
    init_snapshot = None
    if init is not None and not resume_from:
        train_folder.mkdir(parents=True, exist_ok=True)
        init_snapshot = train_folder / INIT_WEIGHTS
        torch.save({"model": init.state}, init_snapshot)
        atomic_write_text(train_folder / INIT_WEIGHTS_RECORD,
                          json.dumps({"init_weights": str(Path(init.path).resolve())}))
        log.info("fine-tuning from %s", init.path)
    cfg = configure_shuffle(pc_path, opts, random_init=random_init,
                            image_sizes=info.image_sizes)
    if init_snapshot is not None and init is not None:
        _check_init_fits(init, cfg["model"], opts, info)
    if random_init is not None:
        _ensure_random_init(random_init, cfg["model"], opts.seed)

    from deeplabcut.pose_estimation_pytorch.apis.training import train
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader
    from deeplabcut.pose_estimation_pytorch.task import Task
    from deeplabcut.pose_estimation_pytorch.utils import fix_seeds

    loader = DLCLoader(config=str(info.config_path), shuffle=opts.shuffle,
                       trainset_index=opts.trainset_index, modelprefix="")
    start = resume_from[1] if resume_from else 0
    remaining = max(0, opts.epochs - start)
    run_cfg = loader.model_cfg
    run_cfg["train_settings"]["epochs"] = remaining
    fix_seeds((opts.seed + start) % 2**32)
    note = sbatch_unreproduced(opts)
    print(f"To train this on a SLURM cluster:\n  {sbatch_command(info.path, opts)}"
          + (f"\n  (no command-line flag for {', '.join(note)}: the job would use the "
             f"defaults)" if note else ""), file=sys.stderr)
    if remaining > 0:
        transform = build_train_transform(cfg["data"]["train"], opts.color)
        logger_cfg = _register_progress_logger(opts.epochs, start, opts.progress)
        n_train = len(loader.split["train"]) if hasattr(loader, "split") else 0
        log.info("training %s for %d epochs (%s iterations of batch %d) on %s",
                 opts.net, remaining,
                 math.ceil(n_train / opts.batch_size) * remaining if n_train else "?",
                 opts.batch_size, device)
        train(loader=loader, run_config=run_cfg, task=Task(cfg.get("method", "bu")),
              device=device, logger_config=logger_cfg,
              snapshot_path=(str(resume_from[0]) if resume_from else
                             str(init_snapshot) if init_snapshot else None),
              transform=transform, max_snapshots_to_keep=opts.max_snapshots)
    last = latest_snapshot(train_folder)
    return TrainResult(project=info.path, shuffle=opts.shuffle, train_folder=train_folder,
                       pytorch_config=pc_path, snapshot=last[0] if last else None,
                       epochs_done=last[1] if last else 0, options=opts,
                       previous_run=previous)
