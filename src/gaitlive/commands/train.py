"""``gaitlive train``: train a pose model on a DeepLabCut 3 project (PyTorch engine).

Creates the training dataset, then trains with DeepLabCut's PyTorch engine from ImageNet
weights when the model hub is reachable, else (or with --no-pretrained) from a saved
random initialisation. Horizontal flips are never used (they swap left and right legs).
Resumable with --resume; training again without --resume moves the shuffle's earlier
snapshots aside (train/previous-<date>-<time>/). --init-weights fine-tunes a model; its net,
width and heatmap stride are taken from it unless given. Prints an sbatch command line that
runs the same training on a SLURM cluster.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gaitlive.offline.train import TrainOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a pose model on a DeepLabCut project",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="DeepLabCut project folder (with config.yaml)")
    p.add_argument("--net", default=None,
                   help="DeepLabCut 3 net type (cspnext_s, cspnext_m, resnet_50, hrnet_w18, "
                        "hrnet_w32 ...; default: the --init-weights model's, else cspnext_s)")
    p.add_argument("--epochs", type=int, default=200, help="total epochs (default 200)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | cuda:N | mps (default auto: cuda when torch "
                        "finds a GPU, else cpu)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                   help="start from ImageNet weights (needs the DeepLabCut model hub)")
    g.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="start from random weights (automatic when the hub is unreachable)")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--resume", action="store_true",
                   help="continue the shuffle from its newest snapshot up to --epochs")
    p.add_argument("--widen-factor", type=float, default=None,
                   help="CSPNeXt width multiplier (cspnext_s: 0.5; 0.25 = 4x fewer weights)")
    p.add_argument("--deepen-factor", type=float, default=None,
                   help="CSPNeXt depth multiplier (cspnext_s: 0.33)")
    p.add_argument("--heatmap-stride", type=int, choices=(8, 16), default=None,
                   help="heatmap output stride (DeepLabCut default 16; with --init-weights "
                        "the model's)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--save-epochs", type=int, default=10, help="snapshot every N epochs")
    p.add_argument("--eval-interval", type=int, default=10,
                   help="evaluate on the test split every N epochs")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--crop-size", default=None, metavar="WxH",
                   help="train on keypoint-aware crops of this size (default: none when all "
                        "images have one size, else the most common size)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (1 is fastest on a CPU shared with other jobs)")
    p.add_argument("--no-color-aug", action="store_true",
                   help="no brightness/contrast/gamma/hue/blur augmentation")
    p.add_argument("--init-weights", default=None, metavar="MODEL",
                   help="fine-tune: start from this model's weights (a DeepLabCut snapshot "
                        ".pt, a DLC-Live export .pt, or an export folder such as "
                        "models/gaitlive-corridor) instead of ImageNet or random weights; "
                        "same bodyparts and net")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The :class:`TrainOptions` of parsed ``gaitlive train`` arguments."""
    from gaitlive.commands import bundled_or_given
    from gaitlive.offline.train import TrainOptions
    from gaitlive.pose import check_device

    if args.epochs < 1:
        raise ValueError(f"--epochs: expected an integer >= 1, got {args.epochs}")
    # the name only: a --device the cluster has is checked there (train_project checks it)
    check_device(args.device, available=False)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    # checked before anything is moved aside or written: a bad value costs nothing
    for flag, value in (("--widen-factor", args.widen_factor),
                        ("--deepen-factor", args.deepen_factor), ("--lr", args.lr)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag}: expected a finite number > 0, got {value}")
    for flag, value, lo in (("--save-epochs", args.save_epochs, 1),
                            ("--eval-interval", args.eval_interval, 1),
                            ("--threads", args.threads, 1), ("--workers", args.workers, 0)):
        if value is not None and value < lo:
            raise ValueError(f"{flag}: expected an integer >= {lo}, got {value}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed: expected a random seed from 0 to {2**32 - 1}, got "
                         f"{args.seed}")
    crop = None
    if args.crop_size:
        try:
            w, h = (int(v) for v in args.crop_size.lower().split("x"))
            if w < 32 or h < 32:
                raise ValueError
        except ValueError:
            raise ValueError(f"--crop-size: expected WIDTHxHEIGHT like 320x240, at least "
                             f"32x32, got {args.crop_size!r}") from None
        crop = (w, h)
    return TrainOptions(net=args.net, epochs=args.epochs, batch_size=args.batch_size,
                        crop_size=crop, threads=args.threads, device=args.device,
                        pretrained=args.pretrained, shuffle=args.shuffle,
                        resume=args.resume, widen_factor=args.widen_factor,
                        deepen_factor=args.deepen_factor,
                        heatmap_stride=args.heatmap_stride, lr=args.lr, seed=args.seed,
                        save_epochs=args.save_epochs, eval_interval=args.eval_interval,
                        workers=args.workers, color=not args.no_color_aug,
                        init_weights=bundled_or_given(args.init_weights))


def run(args: argparse.Namespace) -> int:
    from gaitlive.offline.train import train_project

    res = train_project(args.project, options_from_args(args))
    if res.previous_run is not None:
        print(f"the shuffle's earlier run (snapshots, log) is in {res.previous_run}")
    print(f"trained {res.epochs_done} epochs; newest snapshot: {res.snapshot}")
    print(f"next: gaitlive evaluate {res.project} --shuffle {res.shuffle}")
    return 0
