"""``gaitlive score fit|compare``: fit a score model on human scores; measure agreement.

``gaitlive score fit PASSES.csv HUMAN.csv --out models/NAME`` joins the passes (from
``gaitlive analyze``) with human scores on a key column, fits an ordinal
(cumulative-link logistic) model on the pass features, prints its cross-validated
agreement and writes ``models/NAME.json``.

``gaitlive score compare AUTO.csv HUMAN.csv`` prints exact agreement, agreement within one
point, quadratic-weighted kappa, Spearman's rho, Gwet's AC1 and the confusion matrix, and
saves the matrix as a PNG (``--plot``).

Human scores must be integers on the scale (default: the profile's score.min_score ..
max_score, Kestin 0-5 for broilers); an empty cell leaves that pass out, anything else
(text, 2.6, 9 on a 0-5 scale) is an error naming the file, column and line. Automatic
scores are continuous and are rounded (halves up, never truncated) for agreement.
Output paths (--out, --plot, --json) are file names, checked before any work: a folder,
an input of the command or a folder that cannot be written is refused, and an existing
model or JSON file is kept unless --force is given.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _scale_args(p: argparse.ArgumentParser, min_note: str) -> None:
    p.add_argument("--profile", default=None,
                   help="species/view profile whose score scale (score.min_score.."
                        "max_score) the human scores are on (default: the default "
                        "config's, broiler-side: Kestin 0-5)")
    p.add_argument("--min-score", type=int, default=None,
                   help="lowest class of the scale (given alone, the profile's max_score is "
                        "the highest)" + min_note)
    p.add_argument("--max-score", type=int, default=None,
                   help="highest class of the scale (given alone, the profile's min_score "
                        "is the lowest)")


def _join_args(p: argparse.ArgumentParser, first: str) -> None:
    p.add_argument("--key", default="video",
                   help=f"join column of {first} (default: video = the input's stem), or "
                        "several separated by commas, e.g. video,pass_id for human scores "
                        "per pass")
    p.add_argument("--human-key", default=None,
                   help="join column(s) of HUMAN.csv (default: the same names as --key, "
                        "any case)")
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
    f.add_argument("--out", "-o", required=True,
                   help="model file to write (.json is appended when missing; an existing "
                        "folder is refused: give a file name, e.g. models/NAME)")
    f.add_argument("--force", action="store_true",
                   help="replace an existing model file (refused without it)")
    _join_args(f, "PASSES.csv")
    f.add_argument("--features", default=None,
                   help="comma-separated feature columns (default: every feature column "
                        "with values in most passes)")
    f.add_argument("--l2", type=float, default=1.0,
                   help="ridge penalty, a finite number >= 0 (default 1)")
    f.add_argument("--folds", type=int, default=5,
                   help="cross-validation folds, >= 2 (>= number of passes: leave-one-out)")
    _scale_args(f, " (with either, the model has every class of the scale, else only "
                   "the classes the human scores use)")
    f.set_defaults(func=run_fit)
    c = ss.add_parser("compare", help="agreement of automatic and human scores")
    c.add_argument("auto", metavar="AUTO.csv", help="passes table(s) with automatic scores")
    c.add_argument("human", metavar="HUMAN.csv", help="human scores")
    _join_args(c, "AUTO.csv")
    c.add_argument("--auto-col", default=None,
                   help="automatic score column (default: score_class, else score rounded)")
    _scale_args(c, "")
    c.add_argument("--plot", default=None,
                   help="confusion-matrix image file (default: <AUTO stem>_confusion.png "
                        "beside it; .png is appended to a name without a suffix; an "
                        "existing folder is refused)")
    c.add_argument("--json", default=None,
                   help="also write the agreement to this JSON file (an existing file is "
                        "refused without --force, an input or a folder always)")
    c.add_argument("--force", action="store_true",
                   help="replace an existing --json file")
    c.set_defaults(func=run_compare)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _profile(args: argparse.Namespace) -> Any:  # -> gaitlive.config.Profile
    from gaitlive.config import load_config

    return load_config(None, overrides={"profile": args.profile}).profile


def _scale(args: argparse.Namespace) -> tuple[tuple[int, int], str, bool]:
    """The score scale ``(lo, hi)``, a note saying where it comes from, and whether the
    user set it (``--min-score``/``--max-score``)."""
    prof = _profile(args)
    lo_opt, hi_opt = args.min_score, args.max_score
    lo = lo_opt if lo_opt is not None else prof.score.min_score
    hi = hi_opt if hi_opt is not None else prof.score.max_score
    if lo_opt is None and hi_opt is None:
        return (lo, hi), f" (the {prof.score.scale} scale of profile {prof.name})", False
    if lo >= hi:
        src_lo = f"--min-score {lo}" if lo_opt is not None else \
            f"the lowest score {lo} (min_score of profile {prof.name})"
        src_hi = f"--max-score {hi}" if hi_opt is not None else \
            f"the highest score {hi} (max_score of profile {prof.name})"
        raise ValueError(f"{src_lo} must be below {src_hi}")
    if lo_opt is None:
        return (lo, hi), f" (min_score of profile {prof.name}, --max-score)", True
    if hi_opt is None:
        return (lo, hi), f" (--min-score, max_score of profile {prof.name})", True
    return (lo, hi), " (--min-score/--max-score)", True


def _output_file(option: str, value: str | Path, inputs: Sequence[str] = (),
                 overwrite: bool = True) -> Path:
    """An output path given as a file name, checked before any work: not a folder, not
    one of the command's ``inputs``, in a folder that can be written
    (:func:`gaitlive.fileio.check_output_file`)."""
    from gaitlive.fileio import check_output_file

    return check_output_file(value, f"{option} {value}", inputs=inputs, overwrite=overwrite)


def run_fit(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from gaitlive.fileio import jsonable
    from gaitlive.score import (
        compute_agreement,
        cross_validated_predictions,
        feature_columns,
        fit_score_model,
        format_agreement,
        join_scores,
        read_table,
    )

    # options first: nothing is read or written with a bad one
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise ValueError(f"--l2: expected a finite number >= 0, got {args.l2}")
    if args.folds < 2:
        raise ValueError(f"--folds: expected at least 2, got {args.folds}")
    inputs = [*args.passes, args.human]
    out = _output_file("--out", args.out, inputs)
    if out.suffix.lower() != ".json" and out.with_name(out.name + ".json").is_dir():
        raise ValueError(f"--out {args.out}: {out.name}.json is a folder; expected a file name")
    target = out if out.suffix.lower() == ".json" else out.with_name(out.name + ".json")
    if target.is_file() and not args.force:
        raise ValueError(f"--out {args.out}: {target} already exists (a fitted score model); "
                         f"give another name, or --force to replace it")
    _output_file("--out", target, inputs)
    scale, note, fixed = _scale(args)
    passes = pd.concat([read_table(p, [args.key]) for p in args.passes], ignore_index=True)
    human = read_table(args.human, [args.human_key or args.key])
    src = ", ".join(str(p) for p in args.passes)
    df, label = join_scores(passes, human, args.key, args.human_key, args.label,
                            src, args.human, scale=scale, scale_note=note)
    if "reason" in df:
        # passes the gait stage does not score (too few steps, implausible cadence) have
        # unreliable features, and the model would never be applied to them
        guard = df["reason"].astype(str).str.contains(r"< min_steps|> max_cadence_hz",
                                                      regex=True, na=False).to_numpy()
        if guard.all():
            raise ValueError(f"{src}: every pass with a "
                             "human score was too short to score (fewer than min_steps "
                             "steps, or an implausible cadence): nothing to fit on")
        if guard.any():
            print(f"{int(guard.sum())} passes left out: not scored by the gait stage (fewer "
                  "than min_steps steps or an implausible cadence; column 'reason')")
            df = df[~guard].reset_index(drop=True)
    feats = args.features.split(",") if args.features else feature_columns(df, exclude=[label])
    unknown = [f for f in feats if f not in df]
    if unknown:
        raise ValueError(f"--features: {unknown} are not columns of {src}")
    text = [f for f in feats if not pd.api.types.is_numeric_dtype(df[f])]
    if text:
        raise ValueError(f"--features: columns {text} of {src} are not numeric")
    if not feats:
        raise ValueError(f"{src}: no numeric feature column with values in most "
                         "passes; name them with --features")
    X = df[feats].to_numpy(dtype=float)
    y = df[label].to_numpy(dtype=int)
    classes = list(range(scale[0], scale[1] + 1)) if fixed else None
    # the passes of one key (a video, a bird) share its human score, and with a key of
    # several columns (video,pass_id) the passes of one video: one fold each
    keys = df["_group"].to_numpy()
    n_keys = len(set(keys.tolist()))
    grouped = n_keys < len(keys)
    one_video = None
    if grouped and n_keys == 1 and len(args.key.split(",")) > 1:
        # every pass is from one video (key video,pass_id): there is no second video to
        # hold out, so the folds hold out passes, and the agreement says less about
        # other videos (cameras, light) than a grouped one would
        grouped, one_video = False, str(keys[0])
    pred = cross_validated_predictions(X, y, feats, folds=args.folds, l2=args.l2,
                                       classes=classes, groups=keys if grouped else None)
    ag = compute_agreement(pred, y, labels=range(scale[0], scale[1] + 1))
    n_units = n_keys if grouped else len(y)
    cv = "leave-one-out" if args.folds >= n_units else f"{args.folds}-fold"
    if grouped:
        by = args.key.split(",")[0].strip()
        cv += f", grouped by {by!r} ({n_keys} groups: a group's passes share a fold)"
    elif one_video is not None:
        by = args.key.split(",")[0].strip()
        cv += (f", not grouped: every pass has {by} {one_video!r}, so there is no other "
               f"{by} to hold out (expect less agreement on other {by}s)")
    print(f"{len(y)} passes joined on {args.key!r}; {len(feats)} features; "
          f"{cv} cross-validated agreement:")
    print(format_agreement(ag))
    model = fit_score_model(X, y, feats, l2=args.l2, classes=classes, meta={
        "fitted_on": [str(p) for p in args.passes], "human": str(args.human),
        "label": label, "n": int(len(y)), "l2": args.l2,
        "cv": jsonable({k: v for k, v in ag.items() if k != "confusion"})})
    path = model.save(out)
    order = np.argsort(-np.abs(model.weights))[:8]
    print("largest weights: " + ", ".join(f"{feats[i]} {model.weights[i]:+.2f}"
                                          for i in order))
    print(f"model -> {path}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import pandas as pd

    from gaitlive.score import (
        compute_agreement,
        format_agreement,
        join_scores,
        plot_confusion,
        read_table,
        round_scores,
    )

    # output paths first: nothing is computed or written with a bad one, and no input is
    # overwritten
    inputs = [args.auto, args.human]
    if args.plot:
        from matplotlib.backend_bases import FigureCanvasBase

        plot = _output_file("--plot", args.plot, inputs)
        if not plot.suffix:
            plot = plot.with_name(plot.name + ".png")
        fmts = FigureCanvasBase.get_supported_filetypes()
        if plot.suffix[1:].lower() not in fmts:
            raise ValueError(f"--plot {args.plot}: unknown image format {plot.suffix!r}; "
                             f"expected one of {', '.join('.' + f for f in sorted(fmts))}")
    else:
        plot = _output_file("the confusion plot", Path(args.auto).with_name(
            Path(args.auto).stem + "_confusion.png"), inputs)
    json_out = (_output_file("--json", args.json, inputs, overwrite=args.force)
                if args.json else None)
    scale, note, _ = _scale(args)
    auto = read_table(args.auto, [args.key])
    human = read_table(args.human, [args.human_key or args.key])
    df, label = join_scores(auto, human, args.key, args.human_key, args.label, args.auto,
                            args.human, suffix="_human", scale=scale, scale_note=note)
    col = args.auto_col
    if col is None:
        col = "score_class" if "score_class" in auto else "score"
    if col not in auto:
        raise ValueError(f"{args.auto}: no automatic score column {col!r} "
                         f"(columns: {list(auto.columns)})")
    a_all = pd.to_numeric(auto[col], errors="coerce")
    text = np.flatnonzero(a_all.isna().to_numpy() & auto[col].notna().to_numpy()
                          & auto[col].astype(str).str.strip().ne("").to_numpy())
    if len(text):
        i = int(text[0])
        raise ValueError(f"{args.auto}: column {col!r}, line {i + 2}: {auto[col].iloc[i]!r} "
                         "is not a number; expected automatic scores (choose the column "
                         "with --auto-col)")
    if a_all.isna().all():
        raise ValueError(f"all {len(auto)} passes in {args.auto} are unscored ({col} empty): "
                         "analyse with a score model (gaitlive analyze --score-model "
                         "MODEL.json, or a profile with score.model)")
    a = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(a)
    if not ok.any():
        raise ValueError(f"{args.auto}: all {len(df)} passes with a human score in "
                         f"{args.human} are unscored ({col} empty): no automatic scores to "
                         "compare")
    if not ok.all():
        print(f"{int((~ok).sum())} unscored passes left out")
    # automatic scores are continuous: rounded to the nearest class (halves up), and on
    # the human scores' scale
    a_cls = round_scores(a[ok]).astype(int)
    off = np.flatnonzero((a_cls < scale[0]) | (a_cls > scale[1]))
    if len(off):
        i = int(off[0])
        raise ValueError(f"{args.auto}: column {col!r}: {a[ok][i]:g} ({args.key} "
                         f"{df['_key'].to_numpy()[ok][i]}) rounds to a class outside the "
                         f"scale {scale[0]}..{scale[1]}{note} ({len(off)} of {int(ok.sum())} "
                         "scores); compare scores of the same scale (--profile, "
                         "--min-score/--max-score)")
    print(f"automatic scores: column {col!r}"
          + (" (the model's most probable class)" if col == "score_class"
             else " (rounded to the nearest class)"))
    ag = compute_agreement(a_cls, df[label].to_numpy()[ok],
                           labels=range(scale[0], scale[1] + 1))
    print(format_agreement(ag))
    print(f"confusion matrix -> {plot_confusion(ag, plot)}")
    if json_out is not None:
        from gaitlive.fileio import atomic_write_text, jsonable

        atomic_write_text(json_out, json.dumps(jsonable(ag), indent=1, allow_nan=False))
        print(f"agreement -> {json_out}")
    return 0
