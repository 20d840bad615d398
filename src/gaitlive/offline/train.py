"""Train a pose model on a DeepLabCut 3 project with DeepLabCut's PyTorch engine.

:func:`train_project` is what ``gaitlive train`` runs:

1. open the project (fill ``project_path``/``video_sets`` placeholders) and validate its
   labels and images (:mod:`gaitlive.offline.project`);
2. ``deeplabcut.create_training_dataset`` for the shuffle (kept when resuming);
3. edit the shuffle's ``pytorch_config.yaml``: net size, heatmap stride, augmentation
   (never horizontal flips: they swap left and right legs), batch size, epochs, seed,
   snapshots (with optimizer state, so training resumes exactly);
4. weights: DeepLabCut 3.0.2's ``train()`` downloads ImageNet weights unless
   ``train_settings.weight_init`` is set, even when the config says ``pretrained: false``.
   With ``pretrained=False`` -- and automatically when the model hub cannot be reached --
   a randomly initialised snapshot is saved and named in ``weight_init``;
5. DeepLabCut's ``train()`` with our training transform (DeepLabCut's from the config, plus
   brightness/contrast, gamma, hue and blur) and a tqdm progress bar fed by a DeepLabCut
   logger.
"""

from __future__ import annotations

import logging
import math
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gaitlive.offline.project import (
    ProjectError,
    ProjectInfo,
    atomic_write_text,
    open_project,
    set_backbone_size,
    validate_labels,
)

log = logging.getLogger(__name__)

__all__ = ["TrainOptions", "TrainResult", "train_project", "shuffle_paths", "hub_reachable",
           "sbatch_command", "latest_snapshot", "RANDOM_INIT"]

#: File name of the randomly initialised snapshot used instead of ImageNet weights.
RANDOM_INIT = "random-init.pt"
INIT_WEIGHTS = "init-weights.pt"


@dataclass
class TrainOptions:
    """How to train (``gaitlive train`` options)."""

    net: str = "cspnext_s"
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


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """True when the DeepLabCut model hub (Hugging Face) answers a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def shuffle_paths(info: ProjectInfo, shuffle: int, trainset_index: int = 0
                  ) -> tuple[Path, Path] | None:
    """``(train_folder, pytorch_config.yaml)`` of a shuffle, or None when it does not
    exist yet."""
    from deeplabcut.utils import auxiliaryfunctions as af

    cfg = af.read_config(str(info.config_path))
    frac = cfg["TrainingFraction"][trainset_index]
    rel = af.get_model_folder(frac, shuffle, cfg, engine=_engine(), modelprefix="")
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
    """A command line that trains the same model on a SLURM cluster with one GPU (the
    project folder must be reachable at the same path there, gaitlive installed)."""
    args = ["gaitlive", "train", str(project), "--net", opts.net,
            "--epochs", str(opts.epochs), "--batch-size", str(opts.batch_size),
            "--shuffle", str(opts.shuffle), "--seed", str(opts.seed), "--device", "cuda",
            "--workers", "6", "--resume"]
    if opts.pretrained is False:
        args.append("--no-pretrained")
    if opts.widen_factor is not None:
        args += ["--widen-factor", str(opts.widen_factor)]
    if opts.heatmap_stride is not None:
        args += ["--heatmap-stride", str(opts.heatmap_stride)]
    if opts.lr is not None:
        args += ["--lr", str(opts.lr)]
    if opts.crop_size is not None:
        args += ["--crop-size", f"{opts.crop_size[0]}x{opts.crop_size[1]}"]
    wrapped = " ".join(shlex.quote(a) for a in args)
    return (f"sbatch --job-name=gaitlive-train --gres=gpu:1 --cpus-per-task=8 --mem=32G "
            f"--time={hours}:00:00 --output=gaitlive-train-%j.log --wrap={shlex.quote(wrapped)}")


def _set_nested(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def configure_shuffle(pc_path: Path, opts: TrainOptions, *, random_init: Path | None,
                      image_sizes: dict[tuple[int, int], int] | None = None) -> dict:
    """Apply ``opts`` to a shuffle's ``pytorch_config.yaml`` (atomically) and return it."""
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


def _prepare_init_weights(source: str | Path, target: Path) -> Path:
    """Write the weights of ``source`` as a DeepLabCut snapshot (``{"model": state_dict}``,
    float32) at ``target``, for ``train_settings.weight_init``.

    ``source`` is a DeepLabCut snapshot, a DLC-Live export ``.pt`` (``{"config", "pose"}``,
    fp16 allowed) or a folder holding one export ``.pt``.
    """
    import torch

    src = Path(source)
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
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, target)
    log.info("fine-tuning from %s", src)
    return target


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
        Where the snapshots are.

    Raises
    ------
    ProjectError
        The project has no labels, labels unknown bodyparts, has corrupt images, or
        ``--resume`` was asked for a shuffle that has no snapshot.
    """
    import torch

    opts = opts or TrainOptions()
    if opts.threads:
        import cv2

        torch.set_num_threads(int(opts.threads))
        cv2.setNumThreads(int(opts.threads))
    info = validate_labels(open_project(project))
    log.info("%s: %d labelled frames, bodyparts %s", info.path, info.n_labelled,
             info.bodyparts)
    paths = shuffle_paths(info, opts.shuffle, opts.trainset_index)
    resume_from: tuple[Path, int] | None = None
    if opts.resume:
        if paths is None:
            raise ProjectError(f"{info.path}: --resume: shuffle {opts.shuffle} has no training "
                               f"folder yet; train it without --resume first")
        resume_from = latest_snapshot(paths[0])
        if resume_from is None:
            log.warning("%s: no snapshot to resume from; training from the start", paths[0])
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

    pretrained = opts.pretrained
    if pretrained is None:
        pretrained = hub_reachable()
        if not pretrained:
            log.warning("the DeepLabCut model hub cannot be reached: training from randomly "
                        "initialised weights (no ImageNet pre-training)")
    random_init = None
    init_snapshot = None
    if opts.init_weights and not resume_from:
        # Fine-tuning: the whole model (backbone and heads) is loaded from this snapshot when
        # training starts, as a resume would, but from epoch 0. (DeepLabCut's weight_init
        # with_decoder route breaks on heads with several deconvolution layers.)
        init_snapshot = _prepare_init_weights(opts.init_weights, train_folder / INIT_WEIGHTS)
        pretrained = False
    if not pretrained:
        random_init = train_folder / RANDOM_INIT
    cfg = configure_shuffle(pc_path, opts, random_init=random_init,
                            image_sizes=info.image_sizes)
    if random_init is not None and not random_init.is_file():
        from deeplabcut.pose_estimation_pytorch.models import PoseModel

        torch.manual_seed(opts.seed)
        model = PoseModel.build(cfg["model"], pretrained_backbone=False)
        torch.save({"model": model.state_dict()}, random_init)

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
    fix_seeds(opts.seed + start)
    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"To train this on a SLURM cluster:\n  {sbatch_command(info.path, opts)}",
          file=sys.stderr)
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
                       epochs_done=last[1] if last else 0)
