"""``lossbench advise``: the profile's estimates, the shortlist's rules, the verdicts and recommendation,
and the command's refusals (its budget: test_advise_budget.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from lossbench.advise import recommend as rc
from lossbench.advise.command import load_data
from lossbench.advise.profile import Profile, outlier_share, profile
from lossbench.advise.shortlist import deciding_metric, shortlist
from lossbench.cli import main as cli_main
from lossbench.data.stressors import noisy_labels
from lossbench.errors import ConfigError
from lossbench.report.stats import Row


# --- profile ------------------------------------------------------------------------------------------
def test_profile_of_a_long_tailed_training_split(make_cfg, tmp_path):
    dm = load_data(["data=digits", "data.imbalance_factor=20"], tmp_path)
    p = profile(dm)
    assert p.task == "classification" and p.num_classes == 10 and p.n_train == sum(p.class_counts)
    assert p.imbalance_ratio == pytest.approx(20, rel=0.1)
    assert p.head_share > 0.5 > p.tail_share
    assert p.noise_rate is not None and p.noise_rate < 0.1, "clean labels"
    assert "imbalance ratio" in "\n".join(p.lines()) and "confident learning" in p.how["noise_rate"]


@pytest.mark.slow  # cross-validated predictions of 1,797 samples: ~10 s
def test_profile_estimates_thirty_percent_label_noise_within_ten_points(tmp_path):
    x, y = datasets.load_digits(return_X_y=True)
    noisy = noisy_labels(y, 10, 0.3, "symmetric", np.random.default_rng(0))
    frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(64)]).assign(label=noisy)
    frame.to_csv(tmp_path / "digits_noisy.csv", index=False)
    dm = load_data(
        ["data=table", f"data.path={tmp_path / 'digits_noisy.csv'}", "data.target=label"], tmp_path
    )
    p = profile(dm)
    assert abs(p.noise_rate - 0.3) <= 0.1, p.noise_rate


def test_profile_counts_outlying_regression_targets(tmp_path):
    p = profile(load_data(["data=diabetes", "data.outlier_fraction=0.15"], tmp_path))
    assert p.task == "regression" and p.noise_rate is None
    assert 0.12 <= p.outlier_share <= 0.2, p.outlier_share
    assert profile(load_data(["data=diabetes"], tmp_path)).outlier_share < 0.02
    assert outlier_share(np.zeros(10)) == 0.0


# --- shortlist and metric -----------------------------------------------------------------------------
def prof(**kw) -> Profile:
    return Profile(**{"task": "classification", "n_train": 100, **kw})


def test_the_shortlist_follows_the_profile_with_reasons():
    names = [c.loss for c in shortlist(prof(imbalance_ratio=20.0, noise_rate=0.02))]
    assert names == ["ce", "logit_adjusted", "balanced_softmax", "class_balanced", "ldam"]
    noisy = shortlist(prof(imbalance_ratio=1.1, noise_rate=0.3))
    assert [c.loss for c in noisy] == ["ce", "gce", "sce"] and "0.30" in noisy[1].reason
    assert [c.loss for c in shortlist(prof(imbalance_ratio=1.2, noise_rate=0.01))] == ["ce", "focal", "poly1"]
    robust = shortlist(Profile(task="regression", n_train=100, outlier_share=0.15))
    assert [c.loss for c in robust] == ["mse", "huber", "l1", "cauchy"]
    assert [c.loss for c in shortlist(prof(), ["focal", "ce"])] == ["ce", "focal"], "the baseline stays"


def test_the_deciding_metric_follows_the_profile_and_can_be_set():
    assert deciding_metric(prof(imbalance_ratio=20.0)) == "test/bal_acc"
    assert deciding_metric(prof(imbalance_ratio=1.0)) == "test/acc"
    assert deciding_metric(Profile(task="regression", n_train=9, outlier_share=0.1)) == "test/mae"
    assert deciding_metric(Profile(task="regression", n_train=9, outlier_share=0.0)) == "test/rmse"
    assert deciding_metric(prof(), "val/f1") == "test/f1"


# --- recommendation -----------------------------------------------------------------------------------
def row(variant, verdict="", diff=math.nan, n=5, sd=0.01) -> Row:
    return Row(
        "g",
        variant,
        "test/bal_acc",
        True,
        n,
        0.8,
        0.01,
        0.79,
        0.81,
        baseline="ce",
        n_pairs=n,
        diff_vs_baseline=diff,
        diff_low=diff - 0.01,
        diff_high=diff + 0.01,
        diff_sd=sd,
        prob_improvement=0.97,
        p_holm=0.01,
        verdict=verdict,
    )


def test_the_recommendation_is_the_best_loss_called_better():
    rows = [
        row("ce"),
        row("focal", "undecided", 0.002),
        row("logit_adjusted", "better", 0.03),
        row("ldam", "better", 0.02),
        row("balanced_softmax", "equivalent", 0.001),
    ]
    verdicts = rc.loss_verdicts(rows, "test/bal_acc", rc.vd.Settings())
    chosen = rc.choose(verdicts, True)
    assert chosen.loss == "logit_adjusted"
    text = rc.sentence(verdicts, chosen, "test/bal_acc")
    assert text.startswith("Use logit_adjusted: better than ce on test/bal_acc by +0.030 [+0.020, +0.040]")
    assert "balanced_softmax is equivalent" in text and "ldam is better too" in text
    assert "focal is undecided — about" in text and "more replicates would settle it" in text


def test_the_recommendation_states_what_the_gain_costs_on_the_other_headline_metric():
    def mean_row(variant, metric, mean):
        return Row("g", variant, metric, True, 5, mean, 0.01, mean, mean, baseline="ce")

    rows = [
        mean_row("ce", "test/bal_acc", 0.683),
        mean_row("la", "test/bal_acc", 0.886),
        mean_row("ce", "test/acc", 0.973),
        mean_row("la", "test/acc", 0.869),
    ]
    trade = rc.trade_off(rows, "la", "ce", "test/bal_acc")
    assert trade == "balanced accuracy 0.683 -> 0.886, accuracy 0.973 -> 0.869"
    assert rc.trade_off(rows, "ce", "ce", "test/bal_acc") == "", "the baseline costs nothing"
    verdicts = rc.loss_verdicts([row("ce"), row("la", "better", 0.203)], "test/bal_acc", rc.vd.Settings())
    text = rc.sentence(verdicts, verdicts[1], "test/bal_acc", trade)
    assert text.startswith("Use la: better than ce on test/bal_acc by +0.203") and f"({trade})" in text


def test_without_a_better_loss_the_baseline_is_recommended():
    rows = [row("ce"), row("focal", "undecided", 0.01), row("poly1", "worse", -0.02)]
    verdicts = rc.loss_verdicts(rows, "test/bal_acc", rc.vd.Settings())
    chosen = rc.choose(verdicts, True)
    assert chosen.loss == "ce"
    assert rc.sentence(verdicts, chosen, "test/bal_acc").startswith("Use ce (the baseline): no shortlisted")
    assert all(v["diff"] is None for v in rc.as_json(verdicts) if v["verdict"] == "baseline")


# --- the command --------------------------------------------------------------------------------------


def test_advise_refuses_a_loss_the_data_cannot_take(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["advise", "data=diabetes", "--loss", "focal", "--out", "a"]) == 2
    assert "--loss focal cannot train on this regression data set" in capsys.readouterr().err
    assert not (tmp_path / "a").exists(), "a refused command leaves no --out behind"


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["advise", "--loss", "ce,nosuch"], "--loss nosuch: no such loss"),
        (["advise", "data=table"], "data.path, data.target must be set for this config"),
        (["tune", "--loss", "ce", "data=table"], "data.path, data.target must be set for this config"),
    ],
)
def test_tune_and_advise_name_a_config_problem_in_one_line_and_leave_no_out(tmp_path, capsys, command, named):
    assert cli_main([*command, "--out", str(tmp_path / "out")]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there stays
    assert cli_main([*command, "--out", str(tmp_path / "kept")]) == 2 and (tmp_path / "kept").is_dir()


@pytest.mark.parametrize("metric", ["loss", "test/coverage_90", "width_90"])
def test_a_metric_that_cannot_decide_is_refused_before_any_run(metric):
    from lossbench.advise.command import check_metric

    with pytest.raises(ConfigError, match=f"--metric {metric} cannot decide between losses"):
        check_metric(metric)


def test_a_rerun_asking_for_another_study_names_what_differs(tmp_path):
    from lossbench.advise.command import check_resume

    saved = {"overrides": ["data=wine"], "losses": ["ce", "focal"], "metric": "test/acc"}
    check_resume(saved, dict(saved), tmp_path / "advise.json")
    with pytest.raises(ConfigError, match="--loss: \\['ce', 'focal'\\].*another --out"):
        check_resume(saved, {**saved, "losses": ["ce", "gce"]}, tmp_path / "advise.json")
    check_resume(saved, {**saved, "data": "abc"}, tmp_path / "advise.json")  # recorded before the digest
    two = {**saved, "overrides": ["data=wine", "trainer.max_epochs=3"]}
    check_resume(two, {**two, "overrides": ["trainer.max_epochs=3", "data=wine"]}, tmp_path / "advise.json")
    with pytest.raises(ConfigError, match="records a study on other data"):
        check_resume({**saved, "data": "abc"}, {**saved, "data": "def"}, tmp_path / "advise.json")


def test_profile_of_a_users_data_module_reads_its_training_loader():
    """A DataModule without in-memory splits: the profile reads (x, y) batches from train_dataloader()."""
    import torch

    from lossbench.task import Task

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()

    class UserData:
        task = Task.CLASSIFICATION
        num_classes = 3
        num_targets = 1
        input_shape = (5,)
        class_counts = torch.bincount(y, minlength=3)

        def train_dataloader(self):
            return [(x[i : i + 64], y[i : i + 64]) for i in range(0, 300, 64)]

    p = profile(UserData())
    assert p.n_train == 300 and p.n_val is None and p.class_counts == UserData.class_counts.tolist()
    assert p.noise_rate is not None and p.noise_rate < 0.15


def test_replicates_to_settle_count_the_holm_family_as_the_report_does():
    """Identical runs are no hypothesis in the Holm family: with one, the plan is that of one comparison,
    as the report's "about N replicates would resolve" (it asked for 42 more where the report said 43)."""
    from lossbench.report import seeds

    rows = [row("ce"), row("focal", "undecided", 0.002, n=10, sd=0.0088), row("poly1", rc.vd.IDENTICAL, 0.0)]
    (focal,) = [v for v in rc.loss_verdicts(rows, "test/bal_acc", rc.vd.Settings()) if v.loss == "focal"]
    alone = seeds.replicates_needed(0.0088, 0.005, 1, pilot=10)
    assert focal.more_replicates == alone - 10


def test_replicates_to_settle_are_sized_on_the_difference_observed_when_it_exceeds_the_rope():
    """An undecided +0.09 is not sized as if the difference were one ROPE (0.005: "> 1000 replicates")."""
    from lossbench.report import seeds

    rows = [
        row("ce"),
        row("focal", "undecided", 0.002, n=10, sd=0.0088),
        row("asl", "undecided", 0.09, n=10, sd=0.1),
        row("poly1", "undecided", -0.09, n=10, sd=0.1),
    ]
    verdicts = rc.loss_verdicts(rows, "test/bal_acc", rc.vd.Settings())
    by_loss = {v.loss: v for v in verdicts}
    assert by_loss["asl"].more_replicates == seeds.replicates_needed(0.1, 0.09, 3, pilot=10) - 10
    assert by_loss["focal"].settle_on_rope and not by_loss["asl"].settle_on_rope
    text = rc.sentence(verdicts, by_loss["ce"], "test/bal_acc")
    assert "asl is undecided — about" in text and "if the true difference is +0.09 as observed" in text
    assert "if the true difference is -0.09 as observed" in text, "a loss below the baseline reads so"
    assert "would settle it, if the true difference is one ROPE (0.005)" in text


def test_a_metric_the_task_does_not_log_is_refused_naming_the_ones_it_does():
    from lossbench.advise.command import check_metric_logged
    from lossbench.errors import ConfigError
    from lossbench.task import Task

    with pytest.raises(ConfigError, match=r"--metric mae: classification data logs no mae: choose one of"):
        check_metric_logged("mae", "mae", Task.CLASSIFICATION, 3)
    check_metric_logged("test/bal_acc", "bal_acc", Task.CLASSIFICATION, 3)
    check_metric_logged("crps", "crps", Task.REGRESSION, None)  # a distributional loss's
    with pytest.raises(ConfigError, match=r"regression data logs no map: choose one of mae, r2, rmse \(and"):
        check_metric_logged("map", "map", Task.REGRESSION, None)
    with pytest.raises(ConfigError, match=r"--metric loss: each loss's value is on its own scale"):
        check_metric_logged("loss", "loss", Task.REGRESSION, None)


def test_console_lines_keep_a_choice_of_0_9999_and_a_short_runs_tenths():
    from lossbench.advise.pilot import Pilot
    from lossbench.tune.study import short

    assert short({"loss.beta": 0.9999, "optim.optimizer.lr": 0.00212345, "k": 3}) == {
        "loss.beta": 0.9999,
        "optim.optimizer.lr": 0.002123,
        "k": 3,
    }
    fields = {f: 1.0 for f in Pilot.__dataclass_fields__}
    line = Pilot(**{**fields, "run_s": 0.4, "max_epochs": 2}).line()
    assert line.endswith("a run of 2 epochs takes about 0.4 s")
