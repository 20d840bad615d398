#!/usr/bin/env python
"""Reproduce the bundled pose model ``models/gaitlive-corridor`` (one seeded command).

    .venv/bin/python tools/train_bundled_model.py            # all defaults = the shipped model

Steps (each is skipped when its output exists, so re-running the command resumes):

1. render the training project: ``--frames`` labelled synthetic corridor frames (both views,
   broilers and turkeys, all plumages, a new camera/corridor/bird per clip) at half
   resolution (``--scale 0.5``: the model sees what ``model.resize: 0.5`` gives it live);
2. render a held-out project at full resolution with another seed (new cameras,
   backgrounds, birds);
3. train CSPNeXt (``--widen`` x cspnext_s width, stride-8 heatmaps) from random weights
   (there is no ImageNet download offline) with strong augmentation and no horizontal flips,
   ``--epochs`` epochs, seeded; snapshots every epoch (resumable);
4. evaluate on the training project's test split and, through the live code path
   (``gaitlive.pose.load_runner`` with resize 0.5), on the held-out project at full
   resolution;
5. export fp16 weights and the model card (metrics included) into ``--out``.

Same as the CLI steps ``gaitlive synth project`` / ``gaitlive train`` / ``gaitlive export`` /
``gaitlive evaluate --model``. On a GPU add ``--device cuda`` (same seed, not bit-identical).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("train_bundled_model")


def _render(path: Path, *, frames: int, seed: int, scale: float) -> None:
    from gaitlive.synth.export import write_project

    if (path / "config.yaml").is_file():
        have = len(list(path.glob("labeled-data/*/*.png")))
        if have == frames:
            log.info("%s exists with its %d frames: not re-rendered", path, frames)
            return
        log.info("%s holds %d frames, not %d: rendering again", path, have, frames)
    t = time.time()
    s = write_project(path, frames=frames, seed=seed, scale=scale, progress=True, force=True)
    log.info("rendered %s: %d frames, %d clips, views %s, species %s (%.0f s)", path,
             s.n_frames, s.n_clips, s.views, s.species, time.time() - t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(ROOT / "build" / "bundled-model"),
                   help="working folder for the rendered projects and training")
    p.add_argument("--out", default=str(ROOT / "models" / "gaitlive-corridor"))
    p.add_argument("--frames", type=int, default=2604)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--heldout-frames", type=int, default=240)
    p.add_argument("--heldout-seed", type=int, default=900001)
    p.add_argument("--epochs", type=int, default=26)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--widen", type=float, default=0.25)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop", default="320x240", help="training crop WxH")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: fastest on a CPU shared with other jobs)")
    p.add_argument("--no-train", action="store_true",
                   help="skip training: evaluate and export the newest snapshot as it is "
                        "(to finish an interrupted run)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")

    import torch

    from gaitlive.config import ModelSettings
    from gaitlive.offline.evaluate import evaluate_model, evaluate_project
    from gaitlive.offline.export import export_project
    from gaitlive.offline.train import TrainOptions, train_project

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    train_dir, held_dir = work / "train-project", work / "heldout-project"
    _render(train_dir, frames=a.frames, seed=a.seed, scale=a.scale)
    _render(held_dir, frames=a.heldout_frames, seed=a.heldout_seed, scale=1.0)

    cw, ch = (int(v) for v in a.crop.split("x"))
    opts = TrainOptions(net="cspnext_s", epochs=a.epochs, batch_size=a.batch_size,
                        device=a.device, pretrained=False, widen_factor=a.widen,
                        heatmap_stride=8, lr=a.lr, seed=a.seed, save_epochs=1,
                        eval_interval=2, max_snapshots=3, crop_size=(cw, ch),
                        threads=a.threads, resume=(train_dir / "dlc-models-pytorch").is_dir())
    t = time.time()
    if a.no_train:
        from gaitlive.offline.project import open_project
        from gaitlive.offline.train import TrainResult, latest_snapshot, shuffle_paths

        paths = shuffle_paths(open_project(train_dir), 1)
        if paths is None:
            raise SystemExit(f"{train_dir}: --no-train but nothing was trained yet")
        last = latest_snapshot(paths[0])
        res = TrainResult(project=train_dir, shuffle=1, train_folder=paths[0],
                          pytorch_config=paths[1], snapshot=last[0] if last else None,
                          epochs_done=last[1] if last else 0)
    else:
        res = train_project(train_dir, opts)
    log.info("trained to epoch %d (%.0f min this run)", res.epochs_done, (time.time() - t) / 60)

    staging = work / "export"
    export_project(train_dir, staging, half=True, resize=a.scale, name="gaitlive-corridor")
    internal = evaluate_project(train_dir, pcutoff=0.6, out_dir=work / "eval-internal",
                                device=a.device)
    print(internal.summary())
    held = evaluate_model(staging, held_dir, settings=ModelSettings(
        path=str(staging), resize=a.scale, warmup_frames=0, device=a.device),
        pcutoff=0.6, out_dir=work / "eval-heldout")
    print(held.summary())
    m = held.splits["heldout"]
    metrics = {
        "heldout": {**m.as_dict(), "project": held_dir.name,
                    "note": f"{a.heldout_frames} frames rendered at full resolution with seed "
                            f"{a.heldout_seed} (new cameras, backgrounds, birds); model run as "
                            f"live: resize {a.scale}"},
        "internal_test_split": {**internal.splits["test"].as_dict(),
                                "note": f"5% test split of the training project, "
                                        f"at {a.scale}x resolution"},
        "targets": {"rmse_px<=4": bool(m.rmse <= 4.0),
                    "pck@0.1>=0.95_every_bodypart": bool(all(
                        v["pck"] >= 0.95 for v in m.per_bodypart.values()))},
    }
    args = list(argv if argv is not None else sys.argv[1:])
    if "--no-train" in args:
        args.remove("--no-train")
    if "--work" in args:  # where the scratch files went does not change the model
        i = args.index("--work")
        del args[i:i + 2]
    cmd = " ".join(shlex.quote(x) for x in [".venv/bin/python", "tools/train_bundled_model.py",
                                             *args])
    extra = {
        "reproduce": cmd,
        "training_data": {"generator": "gaitlive.synth.export.write_project",
                          "frames": a.frames, "seed": a.seed, "scale": a.scale,
                          "views": ["side", "rear"], "species": ["broiler", "turkey"],
                          "plumages": "all (random per clip)"},
        "training": {"net": "cspnext_s", "widen_factor": a.widen, "deepen_factor": 0.33,
                     "heatmap_stride": 8, "epochs": res.epochs_done, "batch_size": a.batch_size,
                     "lr": a.lr, "pretrained": False, "crop": [cw, ch], "device": a.device,
                     "augmentation": "affine (p 0.7, rotation 15, scale 0.75-1.25, shift 16 px),"
                                     " motion blur, gaussian noise, brightness/contrast, gamma,"
                                     " hue/saturation, gaussian blur; no horizontal flip"},
        "notes": "Synthetic-only training: check accuracy on real footage before relying on it.",
    }
    out = export_project(train_dir, a.out, half=True, resize=a.scale, name="gaitlive-corridor",
                         metrics=metrics, extra_card=extra)
    # the model card's input size: what the model sees live (640x480 frames at resize 0.5)
    import yaml

    card_path = out / "model.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["input_size"] = [int(640 * a.scale), int(480 * a.scale)]
    from gaitlive.offline.export import write_model_card

    write_model_card(out, card)
    (out / "heldout-metrics.csv").write_bytes((work / "eval-heldout" / "metrics.csv").read_bytes())
    import cv2  # the gallery as JPEG: a fifth of the PNG's size

    gallery = cv2.imread(str(work / "eval-heldout" / "gallery.png"))
    cv2.imwrite(str(out / "heldout-gallery.jpg"), gallery, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(json.dumps(metrics["targets"]))
    print(f"bundled model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
