#!/usr/bin/env python
"""Reproduce the bundled pose model ``models/gaitlive-corridor`` (one seeded command).

    .venv/bin/python tools/train_bundled_model.py            # all defaults = the shipped model

Steps (each is skipped when its output exists, so re-running the command resumes):

1. render the training project: ``--frames`` labelled synthetic corridor frames (both views,
   broilers and turkeys, all plumages, a new camera/corridor/bird per clip) at half
   resolution (``--scale 0.5``: the model sees what ``model.resize: 0.5`` gives it live);
2. render a held-out project at full resolution with another seed (new cameras,
   backgrounds, birds);
3. stage 1: train CSPNeXt (``--widen`` x cspnext_s width, stride-8 heatmaps) from random
   weights (there is no ImageNet download offline) with strong augmentation and no
   horizontal flips, ``--epochs`` epochs, seeded; snapshots every epoch (resumable);
4. fine-tuning rounds (``FINE_TUNES``, or ``--fine-tune`` / ``--no-fine-tune``): each renders a
   new project with its own seed and continues from the previous round's export
   (``gaitlive train --init-weights``) - more varied data than one project held in memory,
   and each round restarts the learning-rate schedule;
   The last round renders at full resolution (``scale 1.0``): the thin legs and feet are
   1-2 px wide at half resolution, and a half-resolution model drags a standing foot
   along with the body; the full-resolution model runs live on the presence crop;
5. evaluate on the last project's test split and, through the live code path
   (``gaitlive.pose.load_runner`` at the last round's scale), on the held-out project at
   full resolution: on the bird's crop as live (``presence.crop``; the labelled bird's
   box plus ``presence.margin``, still frames having no motion) and on the whole frame;
   ``--continue-from EXPORT`` takes stage 1 and the rounds a model card lists from an
   export instead of training them again;
6. export fp16 weights and the model card (metrics and every stage's recipe) into ``--out``.

Same as the CLI steps ``gaitlive synth project`` / ``gaitlive train`` / ``gaitlive export`` /
``gaitlive evaluate --model``. On a GPU add ``--device cuda`` (same seed, not bit-identical).
A project folder that exists but was rendered with other settings is an error (it is
never overwritten).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("train_bundled_model")


@dataclass(frozen=True)
class FineTune:
    """One fine-tuning round: a new synthetic project, trained from the previous weights."""

    frames: int
    seed: int
    epochs: int
    lr: float
    frames_per_clip: int = 12
    #: image scale of the round's project (None: ``--scale``); the last round's scale is the
    #: ``model.resize`` the exported model expects
    scale: float | None = None
    #: fraction of the round's clips centred on a bird entering or leaving the image
    #: (``gaitlive synth project --edges``)
    edges: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FineTune:
        """``FRAMES:SEED:EPOCHS:LR[:FRAMES_PER_CLIP[:SCALE[:EDGES]]]``, e.g.
        ``1200:2025:14:5e-4``."""
        parts = text.split(":")
        if len(parts) not in (4, 5, 6, 7):
            raise argparse.ArgumentTypeError(
                f"--fine-tune {text!r}: expected "
                f"FRAMES:SEED:EPOCHS:LR[:FRAMES_PER_CLIP[:SCALE[:EDGES]]]")
        try:
            ft = cls(int(parts[0]), int(parts[1]), int(parts[2]), float(parts[3]),
                     *(int(v) for v in parts[4:5]), *(float(v) for v in parts[5:7]))
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"--fine-tune {text!r}: {e}") from None
        if ft.scale is not None and not 0.1 <= ft.scale <= 1.0:
            raise argparse.ArgumentTypeError(
                f"--fine-tune {text!r}: SCALE {ft.scale:g} must be in [0.1, 1]")
        if not 0.0 <= ft.edges <= 1.0:
            raise argparse.ArgumentTypeError(
                f"--fine-tune {text!r}: EDGES {ft.edges:g} must be in [0, 1]")
        return ft

    def spec(self) -> str:
        tail = "" if self.scale is None else f":{self.scale:g}"
        if self.edges and self.scale is not None:  # (EDGES comes after SCALE)
            tail += f":{self.edges:g}"
        return (f"{self.frames}:{self.seed}:{self.epochs}:{self.lr:g}:{self.frames_per_clip}"
                + tail)


#: The shipped model's fine-tuning rounds after stage 1, in order.
FINE_TUNES: tuple[FineTune, ...] = (
    FineTune(frames=1200, seed=2025, epochs=14, lr=5e-4),
    FineTune(frames=1500, seed=2026, epochs=10, lr=3e-4),
    FineTune(frames=4000, seed=2027, epochs=40, lr=5e-4, frames_per_clip=8),
    FineTune(frames=2000, seed=2028, epochs=16, lr=2e-4, frames_per_clip=8),
    # full resolution: the feet are 2-3 px wide at 640x480 and a blur at half resolution;
    # the model runs at model.resize 1.0 on the presence crop around the bird
    FineTune(frames=3000, seed=2029, epochs=12, lr=5e-4, frames_per_clip=8, scale=1.0),
    # a longer full-resolution round, 15 % of its clips with the bird at the image's edge
    # (2026-12-08: strike F1 from its poses up in both views, pose metrics unchanged)
    FineTune(frames=4000, seed=2033, epochs=20, lr=5e-4, frames_per_clip=8, scale=1.0,
             edges=0.15),
)


def _render(path: Path, *, frames: int, seed: int, scale: float, frames_per_clip: int = 12,
            workers: int = 1, edges: float = 0.0) -> None:
    from gaitlive.synth.export import write_project

    summary = path / "synth_project.json"
    if (path / "config.yaml").is_file():
        want = {"frames": frames, "seed": seed, "scale": scale,
                "frames_per_clip": frames_per_clip, **({"edges": edges} if edges else {})}
        have = json.loads(summary.read_text()) if summary.is_file() else {}
        differ = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        if not differ:
            log.info("%s exists (%d frames, seed %d): not re-rendered", path, frames, seed)
            return
        raise SystemExit(f"{path}: exists but was not rendered with these settings "
                         f"(key: have -> wanted {differ}); move it away or use another --work")
    t = time.time()
    s = write_project(path, frames=frames, seed=seed, scale=scale,
                      frames_per_clip=frames_per_clip, workers=workers, progress=True,
                      edges=edges)
    log.info("rendered %s: %d frames, %d clips, views %s, species %s (%.0f s)", path,
             s.n_frames, s.n_clips, s.views, s.species, time.time() - t)


def _render_note(path: Path) -> dict[str, Any]:
    """A ``note`` recorded in a project's ``synth_project.json`` (e.g. that it was rendered
    by an earlier revision of the synthetic world), for the model card."""
    summary = path / "synth_project.json"
    note = json.loads(summary.read_text()).get("note") if summary.is_file() else None
    return {"note": note} if note else {}


def _continued(a: argparse.Namespace, rounds: tuple[FineTune, ...]) -> dict[str, Any]:
    """The card of ``--continue-from``, checked against this command: same stage 1, and its
    rounds are this command's first rounds."""
    import yaml

    card_path = Path(a.continue_from) / "model.yaml"
    if not card_path.is_file():
        raise SystemExit(f"--continue-from {a.continue_from}: no model.yaml (expected a model "
                         f"exported by this tool)")
    card = yaml.safe_load(card_path.read_text())
    td = card.get("training_data") or {}
    want = {"frames": a.frames, "seed": a.seed, "scale": a.scale}
    differ = {k: (td.get(k), v) for k, v in want.items() if td.get(k) != v}
    if differ:
        raise SystemExit(f"--continue-from {card_path}: stage 1 differs from this command "
                         f"(key: card -> command {differ})")
    stages = list(card.get("fine_tunes") or [])
    if len(stages) > len(rounds):
        raise SystemExit(f"--continue-from {card_path}: it has {len(stages)} fine-tuning "
                         f"rounds, this command only {len(rounds)}")
    for st, ft in zip(stages, rounds, strict=False):
        d = st["data"]
        have = (d["frames"], d["seed"], st["lr"], d["frames_per_clip"], d["scale"],
                d.get("edges", 0.0))
        wanted = (ft.frames, ft.seed, ft.lr, ft.frames_per_clip,
                  ft.scale if ft.scale is not None else a.scale, ft.edges)
        if have != wanted or st["epochs"] != ft.epochs:
            raise SystemExit(f"--continue-from {card_path}: round {st['round']} was "
                             f"{have} x {st['epochs']} epochs, this command's is {wanted} x "
                             f"{ft.epochs} epochs (frames, seed, lr, frames per clip, scale, edges)")
    return card


def _has_snapshot(project: Path) -> bool:
    """Whether a training run of ``project`` saved a snapshot to resume from (a run that
    stopped before its first snapshot starts afresh)."""
    return any((project / "dlc-models-pytorch").glob("iteration-*/*/train/snapshot-*.pt"))


def _train(project: Path, opts: Any, no_train: bool) -> Any:
    """Train (resuming when the project has a training folder), or with ``no_train`` take
    the newest snapshot as it is."""
    from gaitlive.offline.project import open_project
    from gaitlive.offline.train import TrainResult, latest_snapshot, shuffle_paths, train_project

    paths = shuffle_paths(open_project(project), 1)
    last = latest_snapshot(paths[0]) if paths is not None else None
    # a rerun: a stage trained to its epochs is taken as it is (gaitlive train refuses to
    # resume to epochs already trained), one cut short resumes
    if not no_train and not (opts.resume and last is not None and last[1] >= opts.epochs):
        return train_project(project, opts)
    if paths is None:
        raise SystemExit(f"{project}: --no-train but nothing was trained yet")
    return TrainResult(project=project, shuffle=1, train_folder=paths[0],
                       pytorch_config=paths[1], snapshot=last[0] if last else None,
                       epochs_done=last[1] if last else 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(ROOT / "build" / "bundled-model"),
                   help="working folder for the rendered projects and training")
    p.add_argument("--out", default=str(ROOT / "models" / "gaitlive-corridor"))
    p.add_argument("--frames", type=int, default=2604, help="stage-1 training frames")
    p.add_argument("--seed", type=int, default=2024, help="stage-1 seed")
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--heldout-frames", type=int, default=240)
    p.add_argument("--heldout-seed", type=int, default=900001)
    p.add_argument("--epochs", type=int, default=26, help="stage-1 epochs")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--widen", type=float, default=0.25)
    p.add_argument("--lr", type=float, default=1e-3, help="stage-1 learning rate")
    p.add_argument("--crop", default="320x240", help="training crop WxH")
    p.add_argument("--fine-tune", action="append", type=FineTune.parse, default=None,
                   metavar="FRAMES:SEED:EPOCHS:LR[:FPC[:SCALE[:EDGES]]]",
                   help="a fine-tuning round (repeat for several; replaces the default "
                        "rounds: " + " ".join(f.spec() for f in FINE_TUNES) + ")")
    p.add_argument("--no-fine-tune", action="store_true", help="stage 1 only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: fastest on a CPU shared with other jobs)")
    p.add_argument("--loader-workers", type=int, default=0,
                   help="data-loader processes while training (decoding and augmenting "
                        "full-resolution frames costs as much as the network on a CPU)")
    p.add_argument("--render-workers", type=int, default=1,
                   help="processes rendering a project (the same project for any number)")
    p.add_argument("--continue-from", default=None, metavar="EXPORT",
                   help="a model exported by this tool (e.g. models/gaitlive-corridor): take "
                        "stage 1 and the rounds its card lists from it (they must match this "
                        "command's) and run only the rounds after them")
    p.add_argument("--reevaluate", default=None, metavar="EXPORT",
                   help="only measure EXPORT's held-out metrics again as the default config "
                        "runs it and rewrite them in its card (no training)")
    p.add_argument("--no-train", action="store_true",
                   help="skip training: export and evaluate the newest snapshots as they are "
                        "(to finish an interrupted run)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    rounds: tuple[FineTune, ...] = (() if a.no_fine_tune else
                                     tuple(a.fine_tune) if a.fine_tune else FINE_TUNES)

    import torch

    from gaitlive.offline.evaluate import evaluate_project
    from gaitlive.offline.export import export_project, write_model_card
    from gaitlive.offline.train import TrainOptions

    torch.set_num_threads(a.threads)
    if a.reevaluate:
        return reevaluate(a)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    train_dir, held_dir = work / "train-project", work / "heldout-project"
    done = _continued(a, rounds) if a.continue_from else None
    if done is None:
        _render(train_dir, frames=a.frames, seed=a.seed, scale=a.scale,
                workers=a.render_workers)
    _render(held_dir, frames=a.heldout_frames, seed=a.heldout_seed, scale=1.0,
            workers=a.render_workers)

    cw, ch = (int(v) for v in a.crop.split("x"))
    common = dict(net="cspnext_s", batch_size=a.batch_size, device=a.device, pretrained=False,
                  widen_factor=a.widen, heatmap_stride=8, save_epochs=1, max_snapshots=3,
                  crop_size=(cw, ch), threads=a.threads, workers=a.loader_workers)
    stages: list[dict[str, Any]] = []
    project, prev, scale = train_dir, work / "stage1-export", a.scale
    if done is None:
        t = time.time()
        res = _train(train_dir, TrainOptions(
            epochs=a.epochs, lr=a.lr, seed=a.seed, eval_interval=2,
            resume=_has_snapshot(train_dir), **common), a.no_train)
        log.info("stage 1: trained to epoch %d (%.0f min this run)", res.epochs_done,
                 (time.time() - t) / 60)
        export_project(train_dir, prev, half=True, resize=a.scale, name="gaitlive-corridor")
        stage1_note = _render_note(train_dir)
    else:
        stages, prev = done["fine_tunes"], Path(a.continue_from)
        stage1_note = {k: v for k, v in done["training_data"].items() if k == "note"}
        scale = stages[-1]["data"]["scale"] if stages else a.scale
        log.info("continuing from %s: stage 1 and %d round(s) taken from its card", prev,
                 len(stages))
    for k, ft in enumerate(rounds, start=1):
        if k <= len(stages):
            continue
        project = work / f"finetune{k}-project"
        scale = ft.scale if ft.scale is not None else a.scale
        _render(project, frames=ft.frames, seed=ft.seed, scale=scale,
                frames_per_clip=ft.frames_per_clip, workers=a.render_workers,
                edges=ft.edges)
        t = time.time()
        res = _train(project, TrainOptions(
            epochs=ft.epochs, lr=ft.lr, seed=ft.seed, eval_interval=100,
            init_weights=str(prev), resume=_has_snapshot(project),
            **common), a.no_train)
        log.info("fine-tune %d: trained to epoch %d (%.0f min this run)", k, res.epochs_done,
                 (time.time() - t) / 60)
        stages.append({"round": k, "from": "stage 1" if k == 1 else f"fine-tune {k - 1}",
                       "data": {"generator": "gaitlive synth project", "frames": ft.frames,
                                "seed": ft.seed, "scale": scale,
                                "frames_per_clip": ft.frames_per_clip,
                                **({"edges": ft.edges} if ft.edges else {}),
                                **_render_note(project)},
                       "epochs": res.epochs_done, "lr": ft.lr,
                       "exported_from": res.snapshot.name if res.snapshot else None})
        prev = work / f"finetune{k}-export"
        export_project(project, prev, half=True, resize=scale, name="gaitlive-corridor")

    if project == train_dir and done is not None:
        raise SystemExit(f"--continue-from {a.continue_from}: its card already has every "
                         f"round of this command; nothing to train")
    internal = evaluate_project(project, pcutoff=0.6, out_dir=work / "eval-internal",
                                device=a.device)
    print(internal.summary())
    metrics = _heldout_metrics(prev, held_dir, scale, work, a)
    metrics["internal_test_split"] = {**internal.splits["test"].as_dict(),
                                      "note": f"5% test split of the last training project, "
                                              f"at {scale}x resolution"}
    args = list(argv if argv is not None else sys.argv[1:])
    if "--no-train" in args:
        args.remove("--no-train")
    # the recipe only: where the files went (--work, --out), a shortcut through earlier
    # rounds (--continue-from) and speed settings (threads, processes) give the same model
    for opt in ("--work", "--out", "--continue-from", "--threads", "--loader-workers",
                "--render-workers"):
        while opt in args:
            i = args.index(opt)
            del args[i:i + 2]
        args = [x for x in args if not x.startswith(opt + "=")]
    cmd = " ".join(shlex.quote(x) for x in [".venv/bin/python", "tools/train_bundled_model.py",
                                             *args])
    extra = {
        "reproduce": cmd,
        "training_data": {"generator": "gaitlive.synth.export.write_project",
                          "frames": a.frames, "seed": a.seed, "scale": a.scale,
                          "views": ["side", "rear"], "species": ["broiler", "turkey"],
                          "plumages": "all (random per clip)", **stage1_note},
        "training": {"net": "cspnext_s", "widen_factor": a.widen, "deepen_factor": 0.33,
                     "heatmap_stride": 8, "epochs": a.epochs, "batch_size": a.batch_size,
                     "lr": a.lr, "pretrained": False, "crop": [cw, ch], "device": a.device,
                     "lr_schedule": "x0.1 at 70 % and 90 % of each stage's epochs",
                     "augmentation": "affine (p 0.7, rotation 15, scale 0.75-1.25, shift 16 px),"
                                     " motion blur, gaussian noise, brightness/contrast, gamma,"
                                     " hue/saturation, gaussian blur; no horizontal flip"},
        "fine_tunes": stages,
        "notes": "Synthetic-only training: check accuracy on real footage before relying on it.",
    }
    out = export_project(project, a.out, half=True, resize=scale, name="gaitlive-corridor",
                         metrics=metrics, extra_card=extra)
    # the model card's input size: what the model sees live (640x480 frames at its resize)
    import yaml

    card_path = out / "model.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["input_size"] = [int(640 * scale), int(480 * scale)]
    write_model_card(out, card)
    _copy_heldout_files(work, out)
    print(json.dumps(metrics["targets"]))
    print(f"bundled model written to {out}")
    return 0


def _heldout_metrics(model: Path, held_dir: Path, scale: float, work: Path,
                     a: argparse.Namespace) -> dict[str, Any]:
    """The card's held-out metrics: as live (the default config's presence crop, i.e. the
    labelled bird plus the presence margin - still frames have no motion - at least
    min_crop, scaled down when larger than presence.bird_size) and on the whole frame."""
    from gaitlive.config import ModelSettings, load_config
    from gaitlive.offline.evaluate import evaluate_model

    presence = load_config().presence
    margin = presence.margin if presence.enabled and presence.crop else None
    settings = ModelSettings(path=str(model), resize=scale, warmup_frames=0, device=a.device)
    held = evaluate_model(model, held_dir, settings=settings, pcutoff=0.6,
                          out_dir=work / "eval-heldout", crop_margin=margin,
                          min_crop=presence.min_crop, crop_step=presence.crop_step,
                          bird_size=presence.bird_size,
                          max_input_pixels=presence.max_input_pixels)
    print(held.summary())
    whole = evaluate_model(model, held_dir, settings=settings, pcutoff=0.6,
                           out_dir=work / "eval-heldout-whole-frame", gallery=False) \
        if margin is not None else held
    print("whole frame:", whole.summary())
    m = held.splits["heldout"]
    note = (f"{a.heldout_frames} frames rendered at full resolution with seed "
            f"{a.heldout_seed} (new cameras, backgrounds, birds); model run as live: resize "
            f"{scale}")
    live = (f", on the bird's box + {margin} px, at least {list(presence.min_crop)} (the "
            f"presence crop)" + (f", scaled down to {presence.bird_size} px when larger "
                                 f"(presence.bird_size)" if presence.bird_size else "")
            + (f", inputs over {presence.max_input_pixels} pixels scaled down "
               f"(presence.max_input_pixels)" if presence.max_input_pixels else ""))
    return {
        "heldout": {**m.as_dict(), "project": held_dir.name,
                    "note": note + (live if margin is not None else ", whole frame")},
        "heldout_whole_frame": {**whole.splits["heldout"].as_dict(),
                                "note": "the same frames, model on the whole frame"},
        "targets": {"rmse_px<=4": bool(m.rmse <= 4.0),
                    "pck@0.1>=0.95_every_bodypart": bool(all(
                        v["pck"] >= 0.95 for v in m.per_bodypart.values()))},
    }


def _copy_heldout_files(work: Path, out: Path) -> None:
    import cv2

    (out / "heldout-metrics.csv").write_bytes((work / "eval-heldout" / "metrics.csv").read_bytes())
    # the gallery as JPEG: a fifth of the PNG's size
    gallery = cv2.imread(str(work / "eval-heldout" / "gallery.png"))
    cv2.imwrite(str(out / "heldout-gallery.jpg"), gallery, [cv2.IMWRITE_JPEG_QUALITY, 85])


def reevaluate(a: argparse.Namespace) -> int:
    """``--reevaluate EXPORT``: measure an exported model's held-out metrics again as the
    current default config runs it (e.g. after a change of the presence settings) and
    rewrite them in its card, heldout-metrics.csv and heldout-gallery.jpg; the weights and
    the rest of the card stay."""
    import yaml

    from gaitlive.offline.export import write_model_card

    model = Path(a.reevaluate)
    card_path = model / "model.yaml"
    if not card_path.is_file():
        raise SystemExit(f"--reevaluate {model}: no model.yaml (expected a model exported by "
                         f"this tool)")
    card = yaml.safe_load(card_path.read_text())
    work = Path(a.work)
    held_dir = work / "heldout-project"
    _render(held_dir, frames=a.heldout_frames, seed=a.heldout_seed, scale=1.0,
            workers=a.render_workers)
    metrics = _heldout_metrics(model, held_dir, float(card.get("resize") or 1.0), work, a)
    card.setdefault("metrics", {}).update(metrics)
    write_model_card(model, card)
    _copy_heldout_files(work, model)
    print(json.dumps(metrics["targets"]))
    print(f"held-out metrics of {model} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
