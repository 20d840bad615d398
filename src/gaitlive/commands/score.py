"""``gaitlive score fit|compare``: fit a score model on human scores; measure agreement.

``gaitlive score fit PASSES.csv HUMAN.csv --out models/NAME`` joins the passes (from
``gaitlive analyze``) with human scores on a key column, fits an ordinal
(cumulative-link logistic) model on the pass features, prints its cross-validated
agreement and writes ``models/NAME.json``.

``gaitlive score compare AUTO.csv HUMAN.csv`` prints exact agreement, agreement within one
point, quadratic-weighted kappa, Spearman's rho, Gwet's AC1 and the confusion matrix, and
saves the matrix as a PNG (``--plot``).
"""

from __future__ import annotations

import argparse


def _join_args(p: argparse.ArgumentParser, first: str) -> None:
    p.add_argument("--key", default="video",
                   help=f"join column of {first} (default: video = the input's stem)")
    p.add_argument("--human-key", default=None,
                   help="join column of HUMAN.csv (default: same name as --key, any case)")
    p.add_argument("--label", default=None,
                   help="human score column (default: score, hard_vote or the last column)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="fit a score model / compare scores with human scores",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ss = p.add_subparsers(dest="score_command", metavar="{fit,compare}")
    f = ss.add_parser("fit", help="fit a score model from passes and human scores")
    f.add_argument("passes", metavar="PASSES.csv", nargs="+",
                   help="passes table(s) from gaitlive analyze")
    f.add_argument("human", metavar="HUMAN_SCORES.csv", help="human scores")
    f.add_argument("--out", "-o", required=True, help="model file to write (.json)")
    _join_args(f, "PASSES.csv")
    f.add_argument("--features", default=None,
                   help="comma-separated feature columns (default: every feature column "
                        "with values in most passes)")
    f.add_argument("--l2", type=float, default=1.0, help="ridge penalty (default 1)")
    f.add_argument("--folds", type=int, default=5,
                   help="cross-validation folds (>= number of passes: leave-one-out)")
    f.add_argument("--min-score", type=int, default=None, help="lowest class of the scale")
    f.add_argument("--max-score", type=int, default=None, help="highest class of the scale")
    f.set_defaults(func=run_fit)
    c = ss.add_parser("compare", help="agreement of automatic and human scores")
    c.add_argument("auto", metavar="AUTO.csv", help="passes table(s) with automatic scores")
    c.add_argument("human", metavar="HUMAN.csv", help="human scores")
    _join_args(c, "AUTO.csv")
    c.add_argument("--auto-col", default=None,
                   help="automatic score column (default: score_class, else score rounded)")
    c.add_argument("--plot", default=None,
                   help="confusion-matrix PNG (default: <AUTO stem>_confusion.png beside it)")
    c.add_argument("--json", default=None, help="also write the agreement as JSON here")
    c.set_defaults(func=run_compare)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def run_fit(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from gaitlive.score import (
        compute_agreement,
        cross_validated_predictions,
        feature_columns,
        fit_score_model,
        format_agreement,
        join_scores,
        read_table,
    )

    passes = pd.concat([read_table(p) for p in args.passes], ignore_index=True)
    human = read_table(args.human)
    df, label = join_scores(passes, human, args.key, args.human_key, args.label,
                            args.passes[0], args.human)
    feats = args.features.split(",") if args.features else feature_columns(df, exclude=[label])
    unknown = [f for f in feats if f not in df]
    if unknown:
        raise ValueError(f"--features: {unknown} are not columns of {args.passes[0]}")
    X = df[feats].to_numpy(dtype=float)
    y = df[label].to_numpy(dtype=int)
    classes = None
    if args.min_score is not None and args.max_score is not None:
        classes = list(range(args.min_score, args.max_score + 1))
    pred = cross_validated_predictions(X, y, feats, folds=args.folds, l2=args.l2,
                                       classes=classes)
    ag = compute_agreement(pred, y, labels=classes)
    cv = "leave-one-out" if args.folds >= len(y) else f"{args.folds}-fold"
    print(f"{len(y)} passes joined on {args.key!r}; {len(feats)} features; "
          f"{cv} cross-validated agreement:")
    print(format_agreement(ag))
    model = fit_score_model(X, y, feats, l2=args.l2, classes=classes, meta={
        "fitted_on": [str(p) for p in args.passes], "human": str(args.human),
        "label": label, "n": int(len(y)), "l2": args.l2,
        "cv": {k: v for k, v in ag.items() if k != "confusion"}})
    path = model.save(args.out)
    order = np.argsort(-np.abs(model.weights))[:8]
    print("largest weights: " + ", ".join(f"{feats[i]} {model.weights[i]:+.2f}"
                                          for i in order))
    print(f"model -> {path}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from gaitlive.score import (
        compute_agreement,
        format_agreement,
        join_scores,
        plot_confusion,
        read_table,
    )

    auto = read_table(args.auto)
    human = read_table(args.human)
    df, label = join_scores(auto, human, args.key, args.human_key, args.label, args.auto,
                            args.human, suffix="_human")
    col = args.auto_col
    if col is None:
        col = "score_class" if "score_class" in auto else "score"
    if col not in df:
        raise ValueError(f"{args.auto}: no automatic score column {col!r} "
                         f"(columns: {list(auto.columns)})")
    a = df[col].to_numpy(dtype=float)
    ok = np.isfinite(a)
    if not ok.all():
        print(f"{int((~ok).sum())} unscored passes left out")
    ag = compute_agreement(np.round(a[ok]).astype(int), df[label].to_numpy(dtype=int)[ok])
    print(format_agreement(ag))
    plot = Path(args.plot) if args.plot else Path(args.auto).with_name(
        Path(args.auto).stem + "_confusion.png")
    print(f"confusion matrix -> {plot_confusion(ag, plot)}")
    if args.json:
        Path(args.json).write_text(json.dumps(ag, indent=1))
        print(f"agreement -> {args.json}")
    return 0
