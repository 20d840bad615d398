"""``gaitlive export``: export a trained shuffle for DLC-Live into a model folder with a
model card (model.yaml: bodyparts, skeleton, net, input size, training data, metrics, date).

The folder loads with ``gaitlive run --model DIR`` and with dlclive directly
(``DLCLive(DIR/NAME.pt, model_type="pytorch")``).

A folder that already holds a model (model.yaml or a .pt) is refused; --force replaces that
model: its card, its weights and the files written for it (heldout-metrics.csv,
heldout-gallery.jpg, evaluation/metrics.csv ...). Other files in the folder stay.
"""

from __future__ import annotations

import argparse
from typing import Any


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
    p.add_argument("--force", action="store_true",
                   help="replace a model already in the --to folder (its own files only)")
    p.set_defaults(func=run)


#: columns of the metrics.csv 'gaitlive evaluate' writes that --metrics needs
_METRICS_KEYS = ("split", "bodypart")
_METRICS_VALUES = ("n", "rmse_px", "rmse_pcutoff_px", "pck", "detected")
#: columns naming what was evaluated (the same on every row; absent in older files)
_METRICS_SOURCE = ("shuffle", "snapshot", "snapshot_sha256")


def _read_metrics(path: str) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str]]:
    """The metrics per split and bodypart, and the shuffle and snapshot they were computed
    on (empty when the file does not say)."""
    import csv
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--metrics {p}: is a folder; expected its metrics.csv (written by "
                         f"'gaitlive evaluate')")
    if not p.is_file():
        raise FileNotFoundError(f"--metrics: {p} does not exist")
    expected = (f"expected a metrics.csv written by 'gaitlive evaluate' (columns "
                f"{', '.join(_METRICS_KEYS + _METRICS_VALUES)}, one row per split and "
                f"bodypart)")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    source: dict[str, str] = {}
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = list(reader.fieldnames or [])
            missing = [c for c in _METRICS_KEYS if c not in cols]
            if missing or not any(c in cols for c in _METRICS_VALUES):
                raise ValueError(f"--metrics {p}: columns {cols} lack "
                                 f"{missing or list(_METRICS_VALUES)}; {expected}")
            for line, row in enumerate(reader, start=2):
                if not row.get("split") or not row.get("bodypart"):
                    raise ValueError(f"--metrics {p}: line {line}: empty split or bodypart; "
                                     f"{expected}")
                values: dict[str, Any] = {}
                for k in _METRICS_SOURCE:
                    v = (row.get(k) or "").strip()
                    if v and source.setdefault(k, v) != v:
                        raise ValueError(f"--metrics {p}: line {line}: {k} {v!r}, but earlier "
                                         f"rows say {source[k]!r}; {expected}")
                for k, v in row.items():
                    if k in _METRICS_KEYS or k in _METRICS_SOURCE or k is None:
                        continue  # None: cells beyond the header
                    if k == "body_length":
                        values[k] = v
                    elif v in ("", None):
                        values[k] = None
                    else:
                        try:
                            values[k] = float(v)
                        except ValueError:
                            raise ValueError(f"--metrics {p}: line {line}: {k}: expected a "
                                             f"number, got {v!r}") from None
                out.setdefault(row["split"], {})[row["bodypart"]] = values
    except UnicodeDecodeError:
        raise ValueError(f"--metrics {p}: not a text file; {expected}") from None
    if not out:
        raise ValueError(f"--metrics {p}: no rows; {expected}")
    if not source.get("snapshot"):
        # 'gaitlive evaluate --model' (an exported model) and older files leave the snapshot
        # columns empty: nothing would tie those figures to the snapshot exported
        raise ValueError(f"--metrics {p}: does not say which snapshot it measured (its "
                         f"shuffle and snapshot columns are empty, as 'gaitlive evaluate "
                         f"--model' writes them for an exported model); evaluate the "
                         f"project's snapshot with 'gaitlive evaluate PROJECT' and export "
                         f"with that metrics.csv")
    return out, source


def run(args: argparse.Namespace) -> int:
    from gaitlive.offline.export import check_export_folder, export_project

    if args.resize is not None:
        from gaitlive.pose import check_resize

        check_resize(args.resize, f"--resize {args.resize:g}")
    check_export_folder(args.to, replace=args.force)
    metrics, source = _read_metrics(args.metrics) if args.metrics else (None, None)
    out = export_project(args.project, args.to, shuffle=args.shuffle,
                         snapshot_index=args.snapshot, half=args.half, name=args.name,
                         resize=args.resize, metrics=metrics, metrics_source=source,
                         metrics_path=args.metrics, replace=args.force)
    print(f"exported to {out} (card: {out / 'model.yaml'})")
    return 0
