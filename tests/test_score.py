"""Score models (ordinal logistic, JSON), agreement metrics and `gaitlive score`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gaitlive.cli import main
from gaitlive.paths import MODELS_DIR
from gaitlive.score import (
    Z_MAX,
    ScoreModelError,
    compute_agreement,
    fit_score_model,
    gwet_ac1,
    load_score_model,
)


def _ordinal_data(n: int, seed: int):
    """Scores from a known latent: y = k where the latent falls between cut points."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    latent = 2.0 * X[:, 0] - 1.0 * X[:, 1] + rng.logistic(0, 0.3, n)
    y = np.digitize(latent, [-2.0, -0.7, 0.7, 2.0])  # classes 0..4
    return X, y


def test_fit_recovers_the_latent_direction_and_round_trips(tmp_path):
    X, y = _ordinal_data(300, 0)
    m = fit_score_model(X, y, ["a", "b", "c"], l2=0.1)
    w = m.weights / np.linalg.norm(m.weights)
    assert w[0] > 0.8 and w[1] < -0.3 and abs(w[2]) < 0.15
    assert np.all(np.diff(m.thresholds) > 0)
    score, cls, conf = m.predict(X)
    assert np.mean(cls == y) > 0.7  # chance is ~0.25
    assert np.all((conf > 0) & (conf <= 1)) and np.all((score >= 0) & (score <= 4))
    np.testing.assert_allclose(m.predict_proba(X).sum(axis=1), 1.0, atol=1e-12)
    path = m.save(tmp_path / "model")
    assert path.suffix == ".json"
    m2 = load_score_model(path)
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))
    # a missing feature is imputed with the training mean, not an error
    s, c, p = m.predict_one({"a": 1.0})
    assert np.isfinite(s) and 0 <= c <= 4


def test_bad_model_files_are_clear_errors(tmp_path):
    with pytest.raises(ScoreModelError, match="not found"):
        load_score_model(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScoreModelError, match="bad.json: not valid JSON"):
        load_score_model(bad)
    bad.write_text(json.dumps({"format": "gaitlive-score-model/1", "features": ["a"],
                               "mean": [0], "std": [1], "weights": [1, 2],
                               "thresholds": [0], "classes": [0, 1]}))
    with pytest.raises(ScoreModelError, match="same length"):
        load_score_model(bad)


def test_agreement_metrics_against_hand_computed_values():
    human = [0, 1, 2, 2, 3, 1]
    auto = [0, 1, 2, 3, 1, 1]
    ag = compute_agreement(auto, human)
    assert ag["n"] == 6
    assert ag["exact"] == pytest.approx(4 / 6)
    assert ag["within_one"] == pytest.approx(5 / 6)
    # quadratic kappa by hand: 1 - sum(w O) / sum(w E), w = (i-j)^2 / (K-1)^2
    labels = [0, 1, 2, 3]
    obs = np.zeros((4, 4))
    for h, a in zip(human, auto, strict=True):
        obs[h, a] += 1
    E = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()
    W = np.array([[(i - j) ** 2 for j in labels] for i in labels]) / 9
    assert ag["kappa_quadratic"] == pytest.approx(1 - (W * obs).sum() / (W * E).sum())
    assert ag["confusion"] == obs.astype(int).tolist()
    # Gwet's AC1 by hand for a two-class example: po = 0.8, pi = (0.8, 0.2)
    a = [1, 1, 1, 1, 1, 1, 1, 0, 0, 1]
    b = [1, 1, 1, 1, 1, 1, 1, 0, 1, 0]
    pi1 = (0.8 + 0.8) / 2
    pe = 2 * pi1 * (1 - pi1) / 1
    assert gwet_ac1(a, b) == pytest.approx((0.8 - pe) / (1 - pe))
    # on a 0-5 scale K is 6, not the 3 scores seen: po 2/3, pi (1/3, 1/2, 1/6),
    # pe = (2/9 + 1/4 + 5/36) / 5 = 11/90, AC1 = (60/90 - 11/90) / (79/90) = 49/79
    a, b = [1, 2, 2, 2, 1, 3], [1, 1, 2, 2, 2, 3]
    assert compute_agreement(a, b, labels=range(6))["gwet_ac1"] == pytest.approx(49 / 79)
    assert gwet_ac1(a, b, range(6)) == pytest.approx(49 / 79)


def test_shipped_models_load():
    for view in ("side", "rear"):
        m = load_score_model(MODELS_DIR / f"score-{view}.json")
        assert m.classes == [0, 1, 2, 3, 4, 5]
        assert "cadence_hz" in m.features and m.meta["cv"]["spearman"] > 0.85


def _tables(tmp_path, n=40, seed=1):
    X, y = _ordinal_data(n, seed)
    passes = pd.DataFrame({"video": [f"{i:03d}" for i in range(n)], "individual": 0,
                           "pass_id": 0, "f_a": X[:, 0], "f_b": X[:, 1], "f_c": X[:, 2]})
    human = pd.DataFrame({"Video": [f"{i:03d}" for i in range(n)], "hard_vote": y + 1})
    passes.to_csv(tmp_path / "passes.csv", index=False)
    human.to_csv(tmp_path / "human.csv", index=False)
    return passes, human


def test_cli_score_fit_and_compare(tmp_path, capsys):
    _tables(tmp_path)
    rc = main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--out", str(tmp_path / "m"), "--human-key", "Video"])
    out = capsys.readouterr().out
    assert rc == 0 and "cross-validated agreement" in out and "weighted kappa" in out
    m = load_score_model(tmp_path / "m.json")
    assert m.features == ["f_a", "f_b", "f_c"] and m.classes == [1, 2, 3, 4, 5]
    # score the passes with the model, then compare
    df = pd.read_csv(tmp_path / "passes.csv", dtype={"video": str})
    df["score_class"] = m.predict(df[m.features].to_numpy())[1]
    df.to_csv(tmp_path / "auto.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv"),
               "--json", str(tmp_path / "ag.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "Gwet's AC1" in out
    assert (tmp_path / "auto_confusion.png").stat().st_size > 1000
    ag = json.loads((tmp_path / "ag.json").read_text())
    assert ag["n"] == 40 and ag["exact"] > 0.6


def test_cli_score_join_errors(tmp_path, capsys):
    _tables(tmp_path)
    rc = main(["score", "compare", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--key", "nokey"])
    assert rc == 2 and "no column 'nokey'" in capsys.readouterr().err
    pd.DataFrame({"video": ["x", "y"], "score": [1, 2]}).to_csv(tmp_path / "h2.csv",
                                                                 index=False)
    rc = main(["score", "compare", str(tmp_path / "passes.csv"), str(tmp_path / "h2.csv")])
    assert rc == 2 and "matched" in capsys.readouterr().err


def _fit(tmp_path, *extra: str) -> int:
    return main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
                 "--out", str(tmp_path / "m"), "--human-key", "Video", "--folds", "3",
                 *extra])


@pytest.mark.parametrize("opts, named", [
    (["--l2", "nan"], "--l2"),
    (["--l2", "-1"], "--l2"),
    (["--l2", "inf"], "--l2"),
    (["--folds", "1"], "--folds"),
    (["--min-score", "3", "--max-score", "3"], "--min-score 3 must be below --max-score 3"),
    (["--min-score", "6"], "max_score of profile broiler-side"),
])
def test_cli_score_fit_rejects_bad_numeric_options(tmp_path, capsys, opts, named):
    _tables(tmp_path, n=12)
    assert _fit(tmp_path, *opts) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_cli_score_fit_one_bound_takes_the_profiles_other(tmp_path, capsys):
    _tables(tmp_path, n=20)  # human scores 1..5
    assert _fit(tmp_path, "--max-score", "5") == 0
    assert load_score_model(tmp_path / "m.json").classes == [0, 1, 2, 3, 4, 5]
    (tmp_path / "m.json").unlink()
    assert _fit(tmp_path, "--max-score", "4") == 2  # scores of 5 are off the 0-4 scale
    err = capsys.readouterr().err
    assert "human.csv: column 'hard_vote'" in err and "outside the scale" in err
    assert "0-4" in err and not (tmp_path / "m.json").exists()


def test_cli_score_fit_out_folder_is_refused(tmp_path, capsys):
    _tables(tmp_path, n=12)
    (tmp_path / "models").mkdir()
    rc = main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--out", str(tmp_path / "models"), "--human-key", "Video"])
    assert rc == 2 and "--out" in capsys.readouterr().err
    assert not (tmp_path / "models.json").exists() and not any((tmp_path / "models").iterdir())
    # a dot in the name is kept: models/v1.2 -> models/v1.2.json
    rc = main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--out", str(tmp_path / "models" / "v1.2"), "--human-key", "Video"])
    assert rc == 0 and (tmp_path / "models" / "v1.2.json").is_file()


def test_cli_score_non_integer_human_scores_are_errors(tmp_path, capsys):
    passes, human = _tables(tmp_path, n=12)
    human["hard_vote"] = human["hard_vote"].astype(float)
    human.loc[3, "hard_vote"] = 2.6
    human.to_csv(tmp_path / "human.csv", index=False)
    assert _fit(tmp_path) == 2
    err = capsys.readouterr().err
    assert "human.csv: column 'hard_vote', line 5 (Video '003'): 2.6 is not an integer" in err
    assert not (tmp_path / "m.json").exists()
    # automatic scores (continuous) given as the human file: named, not truncated
    passes["score"] = np.linspace(0.2, 4.8, len(passes))
    passes["score_class"] = np.round(passes["score"]).astype(int)
    passes.to_csv(tmp_path / "auto.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "auto.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "auto.csv: column 'score', line 2" in err and "not an integer" in err


def test_agreement_rounds_automatic_scores_never_truncates():
    ag = compute_agreement([1.84, 2.5, 0.3, 4.49], [2, 3, 0, 4])
    assert ag["exact"] == 1.0
    with pytest.raises(ValueError, match="integer"):
        compute_agreement([2, 3], [2.6, 3])
    with pytest.raises(ValueError, match="integer"):
        fit_score_model(np.arange(8.0)[:, None], [0, 0, 1, 1, 2, 2, 2.6, 3], ["a"])


def test_cli_score_human_scores_outside_the_scale(tmp_path, capsys):
    _, human = _tables(tmp_path, n=12)
    human.loc[2, "hard_vote"] = 9
    human.to_csv(tmp_path / "human.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--auto-col", "f_a"])
    err = capsys.readouterr().err
    assert rc == 2 and "human.csv: column 'hard_vote', line 4" in err
    assert "score 9 is outside the scale" in err and "0-5" in err and "broiler-side" in err
    assert not (tmp_path / "passes_confusion.png").exists()
    human.loc[2, "hard_vote"] = 0  # on Kestin 0-5, not on the cow 1-5 scale
    human.to_csv(tmp_path / "human.csv", index=False)
    assert _fit(tmp_path, "--profile", "cow-side") == 2
    assert "score 0 is outside the scale" in capsys.readouterr().err


def test_cli_score_unusable_scores_name_the_file_and_column(tmp_path, capsys):
    passes, human = _tables(tmp_path, n=12)
    human["hard_vote"] = human["hard_vote"].astype(object)
    human.loc[1, "hard_vote"] = "lame"
    human.to_csv(tmp_path / "human.csv", index=False)
    assert _fit(tmp_path) == 2
    err = capsys.readouterr().err
    assert "human.csv: column 'hard_vote', line 3 (Video '001'): 'lame' is not a number" in err
    # empty human cells leave their passes out; the others are scored
    human.loc[1, "hard_vote"] = None
    human.to_csv(tmp_path / "human.csv", index=False)
    passes["score_class"] = np.nan
    passes.to_csv(tmp_path / "auto.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "all 12 passes in" in err and "auto.csv are unscored" in err
    assert "score_class empty" in err and "score model" in err
    passes.loc[:5, "score_class"] = 2
    passes.to_csv(tmp_path / "auto.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv"),
               "--json", str(tmp_path / "ag.json")])
    assert rc == 0 and json.loads((tmp_path / "ag.json").read_text())["n"] == 5


def test_cli_score_compare_output_folders_are_refused(tmp_path, capsys):
    passes, _ = _tables(tmp_path, n=12)
    passes["score_class"] = 2
    passes.to_csv(tmp_path / "auto.csv", index=False)
    (tmp_path / "out").mkdir()
    args = ["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv")]
    for opt in ("--json", "--plot"):
        assert main([*args, opt, str(tmp_path / "out")]) == 2
        assert f"{opt} {tmp_path / 'out'}: is a folder" in capsys.readouterr().err
    assert not (tmp_path / "auto_confusion.png").exists()
    assert not any((tmp_path / "out").iterdir()) and not (tmp_path / "out.png").exists()
    # a name without a suffix gets .png, and the path printed is the one written
    assert main([*args, "--plot", str(tmp_path / "out" / "cm")]) == 0
    assert f"confusion matrix -> {tmp_path / 'out' / 'cm.png'}" in capsys.readouterr().out
    assert (tmp_path / "out" / "cm.png").stat().st_size > 1000


def test_cli_score_outputs_never_replace_an_input_and_bad_folders_fail_first(tmp_path,
                                                                               capsys):
    """--json naming the human-scores file had overwritten it with JSON (the scores were
    lost); an existing --json needs --force; an output under a file, or in a folder that
    cannot be written, fails before any work with one line naming the option, where it
    used to fail after the fit with a raw OS error (walkthrough, 2026-12-07)."""
    passes, _ = _tables(tmp_path, n=12)
    passes["score_class"] = 2
    passes.to_csv(tmp_path / "auto.csv", index=False)
    human = (tmp_path / "human.csv").read_bytes()
    args = ["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv")]
    for victim in ("human.csv", "auto.csv"):
        assert main([*args, "--json", str(tmp_path / victim), "--force"]) == 2
        assert "is an input of this command" in capsys.readouterr().err
        assert main([*args, "--plot", str(tmp_path / victim)]) == 2
        assert "is an input of this command" in capsys.readouterr().err
    assert (tmp_path / "human.csv").read_bytes() == human
    assert main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
                 "--out", str(tmp_path / "human.csv"), "--force"]) == 2
    assert "is an input of this command" in capsys.readouterr().err
    assert (tmp_path / "human.csv").read_bytes() == human
    (tmp_path / "a.json").write_text("{}")
    assert main([*args, "--json", str(tmp_path / "a.json")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / "auto_confusion.png").exists()  # nothing computed or written
    assert main([*args, "--json", str(tmp_path / "a.json"), "--force"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "a.json").read_text())["n"] == 12
    for cmd in ([*args, "--json", str(tmp_path / "auto.csv" / "x.json")],
                ["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
                 "--out", str(tmp_path / "auto.csv" / "m")]):
        assert main(cmd) == 2
        err = capsys.readouterr()
        assert "auto.csv is a file, not a folder" in err.err and "passes joined" not in err.out


def test_cli_score_compare_joins_human_scores_per_pass_on_several_columns(tmp_path,
                                                                         capsys):
    """Human scores per pass (video, pass_id, score) join with --key video,pass_id; a
    pass_id written 1.0 matches pass 1; a one-column key says how to join per pass."""
    rng = np.random.default_rng(3)
    vids = [f"barn{i // 3}" for i in range(12)]
    pids = [i % 3 for i in range(12)]
    cls = rng.integers(0, 4, 12)
    pd.DataFrame({"video": vids, "individual": 0, "pass_id": pids,
                  "score_class": cls}).to_csv(tmp_path / "auto.csv", index=False)
    human = pd.DataFrame({"Video": vids, "pass_id": [f"{p}.0" for p in pids],
                          "score": cls})
    human = human.iloc[::-1]  # another order
    human.to_csv(tmp_path / "human.csv", index=False)
    args = ["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "duplicate keys in column 'Video'" in err and "--key video,pass_id" in err
    assert main([*args, "--key", "video,pass_id", "--json", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    ag = json.loads((tmp_path / "a.json").read_text())
    assert ag["n"] == 12 and ag["exact"] == 1.0
    assert main([*args, "--key", "video,pass_id", "--human-key", "video"]) == 2
    assert "different numbers of columns" in capsys.readouterr().err
    # keys of several columns are compared column by column: a/b + 1 is not a + b/1
    pd.DataFrame({"video": ["a/b", "a"], "pass_id": ["1", "b/1"], "score_class": [2, 3]}
                 ).to_csv(tmp_path / "auto2.csv", index=False)
    pd.DataFrame({"video": ["a/b"], "pass_id": ["1"], "score": [2]}).to_csv(
        tmp_path / "human2.csv", index=False)
    assert main(["score", "compare", str(tmp_path / "auto2.csv"), str(tmp_path / "human2.csv"),
                 "--key", "video,pass_id", "--json", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "b.json").read_text())["n"] == 1
    # score fit on per-pass human scores: the folds are grouped by video (the first key
    # column), so a video's passes are never both fitted on and tested on
    X, y = _ordinal_data(24, 5)
    pd.DataFrame({"video": vids * 2, "pass_id": list(range(24)), "f_a": X[:, 0],
                  "f_b": X[:, 1]}).to_csv(tmp_path / "p3.csv", index=False)
    pd.DataFrame({"video": vids * 2, "pass_id": list(range(24)), "score": y}).to_csv(
        tmp_path / "h3.csv", index=False)
    assert main(["score", "fit", str(tmp_path / "p3.csv"), str(tmp_path / "h3.csv"),
                 "--key", "video,pass_id", "--out", str(tmp_path / "m3")]) == 0
    out = capsys.readouterr().out
    assert "24 passes joined on 'video,pass_id'" in out
    assert "grouped by 'video' (4 groups" in out


def test_cli_score_fit_with_few_or_uninformative_passes(tmp_path, capsys):
    """Keys keep their leading zeros under any --key name; a model is saved even when a
    cross-validated figure is undefined (one predicted class); too few passes for the
    folds is an error saying so."""
    rng = np.random.default_rng(0)
    n = 12
    ids = [f"{i:03d}" for i in range(95, 95 + n)]  # 095 ... 106
    pd.DataFrame({"video": ids, "cadence_hz": rng.normal(2, 0.1, n),
                  "stance_fraction_left": rng.normal(0.6, 0.01, n)}
                 ).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"clip": ids, "score": [0] * 9 + [1] * 3}).to_csv(tmp_path / "h.csv",
                                                                   index=False)
    assert main(["score", "fit", str(tmp_path / "p.csv"), str(tmp_path / "h.csv"),
                 "--human-key", "clip", "--out", str(tmp_path / "m"), "--l2", "100"]) == 0
    out = capsys.readouterr()
    assert "12 passes joined" in out.out and "without a human score" not in out.err
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["meta"]["cv"]["spearman"] is None  # one predicted class: no correlation
    # an existing model is not replaced without --force
    saved = (tmp_path / "m.json").read_bytes()
    for out in ("m", "m.json"):
        assert main(["score", "fit", str(tmp_path / "p.csv"), str(tmp_path / "h.csv"),
                     "--human-key", "clip", "--out", str(tmp_path / out)]) == 2
        assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "m.json").read_bytes() == saved
    assert main(["score", "fit", str(tmp_path / "p.csv"), str(tmp_path / "h.csv"),
                 "--human-key", "clip", "--out", str(tmp_path / "m"), "--force"]) == 0
    capsys.readouterr()
    assert main(["score", "fit", str(tmp_path / "p.csv"), str(tmp_path / "h.csv"),
                 "--human-key", "clip", "--out", str(tmp_path / "m2"), "--folds", "12"]) == 0
    capsys.readouterr()
    pd.read_csv(tmp_path / "p.csv", dtype=str).head(4).to_csv(tmp_path / "p4.csv", index=False)
    assert main(["score", "fit", str(tmp_path / "p4.csv"), str(tmp_path / "h.csv"),
                 "--human-key", "clip", "--out", str(tmp_path / "m4"), "--folds", "2"]) == 2
    err = capsys.readouterr().err
    assert "4 passes in 2 folds leave 2 passes to fit on" in err and "--folds 4" in err
    assert not (tmp_path / "m4.json").exists()


def test_agreement_weighs_by_score_difference_when_a_class_is_unused():
    """No pass scored 2: quadratic kappa must still weigh 1 vs 3 as two points apart and
    Gwet's AC1 count every category of the range (with labels 0..5 given, of the scale)."""
    from sklearn.metrics import cohen_kappa_score

    a = [0, 1, 1, 3, 3, 1, 4, 3, 0, 4]
    h = [0, 0, 1, 1, 3, 3, 4, 4, 1, 3]
    ag = compute_agreement(a, h)
    assert ag["labels"] == [0, 1, 2, 3, 4]
    assert ag["kappa_quadratic"] == pytest.approx(
        cohen_kappa_score(h, a, weights="quadratic", labels=[0, 1, 2, 3, 4]), abs=1e-12)
    assert ag["kappa_quadratic"] == pytest.approx(0.72727, abs=1e-5)  # 0.714 by position
    ag6 = compute_agreement(a, h, labels=range(6))
    # Gwet (2008): pe = sum_k pi_k (1 - pi_k) / (q - 1), q = 6 categories of the scale
    pi = np.array([(a.count(k) + h.count(k)) / 20 for k in range(6)])
    pe = float(np.sum(pi * (1 - pi)) / 5)
    assert ag6["gwet_ac1"] == pytest.approx((0.4 - pe) / (1 - pe), abs=1e-12)
    assert len(ag6["confusion"]) == 6


def test_cross_validation_keeps_a_group_s_passes_in_one_fold():
    """20 birds x 4 passes, features tied to the bird, human scores unrelated to them:
    ungrouped folds learn each bird from its other passes and look good; grouped folds
    find no agreement beyond chance."""
    from gaitlive.score import cross_validated_predictions

    rng = np.random.default_rng(3)
    bird_x = rng.normal(size=(20, 3))
    bird_y = rng.integers(0, 5, 20)
    X = np.repeat(bird_x, 4, axis=0) + rng.normal(0, 0.01, (80, 3))
    y = np.repeat(bird_y, 4)
    groups = np.repeat([f"b{i}" for i in range(20)], 4)
    loose = cross_validated_predictions(X, y, ["a", "b", "c"], folds=5, l2=0.01)
    grouped = cross_validated_predictions(X, y, ["a", "b", "c"], folds=5, l2=0.01,
                                          groups=groups)
    assert np.mean(loose == y) > 0.3 > np.mean(grouped == y)
    with pytest.raises(ValueError, match="groups: expected one per score"):
        cross_validated_predictions(X, y, ["a", "b", "c"], groups=groups[:10])


def test_cli_score_fit_groups_repeated_keys(tmp_path, capsys):
    passes, human = _tables(tmp_path, n=12)
    pd.concat([passes, passes], ignore_index=True).to_csv(tmp_path / "passes.csv",
                                                          index=False)
    assert _fit(tmp_path) == 0
    assert "grouped by 'video' (12 groups" in capsys.readouterr().out


def test_cli_score_fit_one_video_scored_per_pass(tmp_path, capsys):
    """Every pass from one recording, scored per pass (--key video,pass_id): no second video
    to hold out, so the folds hold out passes, and the output says so."""
    X, y = _ordinal_data(16, 3)
    pd.DataFrame({"video": "barn1", "individual": 0, "pass_id": range(16), "f_a": X[:, 0],
                  "f_b": X[:, 1], "f_c": X[:, 2]}).to_csv(tmp_path / "passes.csv", index=False)
    pd.DataFrame({"video": "barn1", "pass_id": range(16), "score": y}).to_csv(
        tmp_path / "human.csv", index=False)
    rc = main(["score", "fit", str(tmp_path / "passes.csv"), str(tmp_path / "human.csv"),
               "--key", "video,pass_id", "--folds", "4", "--out", str(tmp_path / "m")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "16 passes joined on 'video,pass_id'; 3 features; 4-fold, not grouped: every " \
        "pass has video 'barn1'" in out.out
    assert load_score_model(tmp_path / "m.json").features == ["f_a", "f_b", "f_c"]


def test_infinite_features_count_as_missing():
    X, y = _ordinal_data(60, 2)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    Xn = X.copy()
    Xn[0, 0] = np.nan
    mi = fit_score_model(Xi, y, ["a", "b", "c"])
    mn = fit_score_model(Xn, y, ["a", "b", "c"])
    assert np.allclose(mi.mean, mn.mean) and np.allclose(mi.weights, mn.weights)


def test_cli_score_compare_automatic_scores_off_the_scale(tmp_path, capsys):
    passes, human = _tables(tmp_path, n=12)
    auto = passes.assign(score=[2.0] * 11 + [7.2])
    auto.to_csv(tmp_path / "auto.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "human.csv"),
               "--human-key", "Video"])
    err = capsys.readouterr().err
    assert rc == 2 and "auto.csv: column 'score': 7.2 (video 011) rounds to a class outside " \
        "the scale 0..5" in err and "(1 of 12 scores)" in err


def test_cli_score_a_ragged_csv_names_the_file(tmp_path, capsys):
    _tables(tmp_path, n=12)
    (tmp_path / "ragged.csv").write_text("video,score\n001,1\n002,1,3,4\n")
    rc = main(["score", "compare", str(tmp_path / "passes.csv"), str(tmp_path / "ragged.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "ragged.csv: cannot read as CSV" in err


@pytest.mark.parametrize("change, named", [
    ({"mean": 1.0}, "'mean' must be a list of finite numbers"),
    ({"std": [float("nan")]}, "'std' must be a list of finite numbers"),
    ({"std": [0.0]}, "'std' must be > 0"),
    ({"classes": [1, 0], "thresholds": [0.0]}, "'classes' must be at least two increasing"),
])
def test_score_model_files_with_bad_arrays_are_clear_errors(tmp_path, change, named):
    d = {"format": "gaitlive-score-model/1", "features": ["a"], "mean": [0.0],
         "std": [1.0], "weights": [1.0], "thresholds": [0.0], "classes": [0, 1]}
    d.update(change)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(ScoreModelError, match=named):
        load_score_model(bad)


def test_cli_score_fit_leaves_out_passes_the_stage_does_not_score(tmp_path, capsys):
    passes, human = _tables(tmp_path, n=16)
    passes["reason"] = [""] * 13 + ["2 steps < min_steps 4", "no score model",
                                    "cadence 9.1/s > max_cadence_hz 4"]
    passes.to_csv(tmp_path / "passes.csv", index=False)
    assert _fit(tmp_path) == 0
    out = capsys.readouterr().out
    assert "2 passes left out: not scored by the gait stage" in out
    assert "14 passes joined" in out  # 'no score model' is kept: fitting the first model
    passes["reason"] = "3 steps < min_steps 4"
    passes.to_csv(tmp_path / "passes.csv", index=False)
    assert _fit(tmp_path, "--force") == 2
    assert "every pass with a human score was too short to score" in capsys.readouterr().err


def test_cli_score_compare_on_a_custom_scale(tmp_path, capsys):
    """Scores 1-3 on a 1-3 scale: AC1 counts 3 categories (Gwet's q), not the profile's 6."""
    passes, _human = _tables(tmp_path, n=12)
    auto = passes.assign(score=[1, 2, 3] * 4)
    auto.to_csv(tmp_path / "auto.csv", index=False)
    pd.DataFrame({"video": passes.video, "score": [1, 2, 3, 3] * 3}).to_csv(
        tmp_path / "h.csv", index=False)
    rc = main(["score", "compare", str(tmp_path / "auto.csv"), str(tmp_path / "h.csv"),
               "--min-score", "1", "--max-score", "3", "--json", str(tmp_path / "ag.json")])
    assert rc == 0, capsys.readouterr().err
    ag = json.loads((tmp_path / "ag.json").read_text())
    assert ag["labels"] == [1, 2, 3]
    assert ag["gwet_ac1"] == pytest.approx(gwet_ac1([1, 2, 3] * 4, [1, 2, 3, 3] * 3, [1, 2, 3]))


def test_agreement_without_a_scale_refuses_an_absurd_span():
    with pytest.raises(ValueError, match="scores span 0..1000000, more than 100 classes"):
        compute_agreement([0, 1000000], [0, 1])


def test_a_feature_far_outside_the_fitted_range_is_not_extrapolated():
    """A feature 16 stds from what the model was fitted on (a pose model's gross misses
    made a head bob 0.66 leg lengths where the synthetic passes have 0.1) moves the latent
    score no further than one at Z_MAX stds: it used to add 16 to the logit and put a
    sound bird in class 5."""
    X, y = _ordinal_data(300, 1)
    m = fit_score_model(X, y, [f"f{i}" for i in range(3)])
    far = m.mean + 16.0 * m.std * np.array([1.0, 0.0, 0.0])
    edge = m.mean + Z_MAX * m.std * np.array([1.0, 0.0, 0.0])
    assert np.allclose(m.predict_proba(far[None]), m.predict_proba(edge[None]))
    near = m.mean + 0.5 * m.std * np.array([1.0, 0.0, 0.0])
    assert not np.allclose(m.predict_proba(near[None]), m.predict_proba(edge[None]))


def test_fit_score_models_tool_fits_on_truth_poses(tmp_path):
    """tools/fit_score_models.py --poses truth (the seconds-long half of the default; the
    rendered half runs gaitlive analyze, tested in test_analyze): both views' models are
    written, load, and carry their cross-validated agreement and what they were fitted on."""
    import subprocess
    import sys

    tool = Path(__file__).resolve().parents[1] / "tools" / "fit_score_models.py"
    r = subprocess.run([sys.executable, str(tool), "--poses", "truth", "--n", "24",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for view in ("side", "rear"):
        m = load_score_model(tmp_path / f"score-{view}.json")
        assert m.classes == [0, 1, 2, 3, 4, 5]
        assert "truth-pose passes with 1 px keypoint noise" in m.meta["fitted_on"]
        assert "rendered" not in m.meta["fitted_on"]
        assert 0.0 <= m.meta["cv"]["within_one"] <= 1.0 and m.meta["n"] >= 12


def test_fit_score_models_tool_refuses_a_bad_pose_model_before_rendering(tmp_path):
    import subprocess
    import sys

    tool = Path(__file__).resolve().parents[1] / "tools" / "fit_score_models.py"
    r = subprocess.run([sys.executable, str(tool), "--model", str(tmp_path / "nope"),
                        "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert f"--model: {tmp_path / 'nope'}: model path does not exist" in r.stderr
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_cli_score_a_folder_where_a_file_is_expected(tmp_path, capsys):
    _tables(tmp_path, n=12)
    out = tmp_path / "analysed"
    out.mkdir()
    (out / "passes.csv").write_text((tmp_path / "passes.csv").read_text())
    assert main(["score", "compare", str(out), str(tmp_path / "human.csv")]) == 2
    assert f"{out}: is a folder; expected a CSV file; its table of all passes is passes.csv" \
        in capsys.readouterr().err
    assert main(["score", "compare", str(tmp_path / "passes.csv"), str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder; expected a CSV file" in capsys.readouterr().err
    with pytest.raises(ScoreModelError, match="is a folder; expected a score model file"):
        load_score_model(tmp_path)
