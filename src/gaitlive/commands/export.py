"""``gaitlive export``: export a trained shuffle for DLC-Live into a model folder with a
model card (model.yaml: bodyparts, skeleton, net, input size, training data, metrics, date).

The folder loads with ``gaitlive run --model DIR`` and with dlclive directly
(``DLCLive(DIR/NAME.pt, model_type="pytorch")``).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model for DLC-Live (+ model card)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="DeepLabCut project folder")
    p.add_argument("--to", required=True, help="model folder to write, e.g. models/my-model")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--snapshot", type=int, default=-1,
                   help="snapshot index (-1: best if kept, else last)")
    p.add_argument("--half", action="store_true", help="store float16 weights (half size)")
    p.add_argument("--name", default=None, help="model name (default: folder name)")
    p.add_argument("--resize", type=float, default=None,
                   help="model.resize live runs should use (recorded in the card)")
    p.add_argument("--metrics", default=None,
                   help="metrics.csv from 'gaitlive evaluate' to record in the card")
    p.set_defaults(func=run)


def _read_metrics(path: str) -> dict:
    import csv
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--metrics: {p} does not exist")
    out: dict = {}
    with open(p, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if "split" not in row or "bodypart" not in row:
                raise ValueError(f"{p}: expected a metrics.csv written by 'gaitlive evaluate'")
            out.setdefault(row["split"], {})[row["bodypart"]] = {
                k: (v if k == "body_length" else None if v in ("", None) else float(v))
                for k, v in row.items() if k not in ("split", "bodypart")}
    return out


def run(args: argparse.Namespace) -> int:
    from gaitlive.offline.export import export_project

    metrics = _read_metrics(args.metrics) if args.metrics else None
    out = export_project(args.project, args.to, shuffle=args.shuffle,
                         snapshot_index=args.snapshot, half=args.half, name=args.name,
                         resize=args.resize, metrics=metrics)
    print(f"exported to {out} (card: {out / 'model.yaml'})")
    return 0
