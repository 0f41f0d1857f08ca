"""What the report pools and pairs: tuned and untuned runs of one loss stay apart, P(improvement) counts
runs of one data split where the variants' splits differ, and the labels say what the numbers are (the
TOST interval at --alpha, the curves' band, the settings named as the tables name them)."""

from __future__ import annotations

import json
import math

import numpy as np

from lossbench.record import RunRecord
from lossbench.report.collect import ReportRun
from lossbench.report.variants import assign_variants


def run(run_dir: str, loss: str, seed: int, acc: float, tuned: dict | None = None, data_seed: int = 0):
    record = RunRecord("ok", loss=loss, data="digits", seed=seed, data_seed=data_seed)
    record.overrides = [f"loss={loss}", f"seed={seed}", *([f"data_seed={data_seed}"] if data_seed else [])]
    tuned_json = json.dumps(tuned, sort_keys=True) if tuned is not None else None
    return ReportRun(run_dir, record, metrics={"test/acc": acc}, tuned=tuned_json)


def test_tuned_final_runs_are_not_pooled_with_the_same_losss_untuned_runs():
    """A tune's final runs name the tune's overrides (loss, seed), not the tuned values: beside an untuned
    sweep of the same loss they read as the same runs. Each configuration is a variant of its own."""
    lr = {"optim.optimizer.lr": 0.002}
    runs = assign_variants(
        [
            run("tuneA/final/ce/0", "ce", 0, 0.93, lr),
            run("tuneA/final/ce/1", "ce", 1, 0.94, lr),
            run("sweep/0", "ce", 0, 0.90),
            run("sweep/1", "ce", 1, 0.91),
            run("sweep/2", "mse", 0, 0.92),
        ]
    )
    assert [r.variant for r in runs] == ["ce tuned=tuneA", "ce tuned=tuneA", "ce", "ce", "mse"]
    assert all(r.ok for r in runs), [r.error for r in runs]


def test_tunes_of_other_parameters_are_apart_and_of_the_same_parameters_duplicates():
    one, two = {"optim.optimizer.lr": 0.002}, {"optim.optimizer.lr": 0.01}
    runs = assign_variants(
        [
            run("a/tuned/final/ce/0", "ce", 0, 0.93, one),
            run("b/tuned/final/ce/0", "ce", 0, 0.95, two),  # another folder of the same name
            run("c/other/final/ce/0", "ce", 0, 0.93, one),  # the same parameters: the same runs
        ]
    )
    assert [r.variant for r in runs] == ["ce tuned=tuned", "ce tuned=tuned#2", "ce tuned=tuned"]
    assert [r.status for r in runs] == ["ok", "ok", "duplicate"]
    alike = assign_variants(
        [run("a/x/final/ce/0", "ce", 0, 0.93, one), run("b/y/final/ce/0", "ce", 0, 0.9, one)]
    )
    assert [r.variant for r in alike] == ["ce", "ce"] and alike[1].status == "duplicate"


def test_a_tune_alone_keeps_its_losses_names():
    """Its trials (no tuned.json, listed apart) are not another configuration of their loss."""
    from lossbench.report.collect import TRIAL

    lr = {"optim.optimizer.lr": 0.002}
    trial = run("t/trials/ce/0", "ce", 0, 0.8)
    trial.status = TRIAL
    finals = [run("t/final/ce/0", "ce", 0, 0.9, lr), run("t/final/focal/0", "focal", 0, 0.9, lr)]
    assert [r.variant for r in assign_variants([*finals, trial])] == ["ce", "focal", "ce"]


def test_a_tuned_configuration_is_named_apart_only_in_the_setting_where_its_loss_has_another():
    lr = {"optim.optimizer.lr": 0.002}
    wine = run("w/0", "ce", 0, 0.9)
    wine.record.data = "wine"
    runs = assign_variants([run("t/final/ce/0", "ce", 0, 0.9, lr), wine])
    assert [(r.group, r.variant) for r in runs] == [("digits", "ce"), ("wine", "ce")]


def test_a_tune_given_by_a_relative_path_is_named_by_its_folder(tmp_path, monkeypatch):
    lr = {"optim.optimizer.lr": 0.002}
    monkeypatch.chdir(tmp_path)
    runs = assign_variants([run("final/ce/0", "ce", 0, 0.9, lr), run("s/0", "ce", 0, 0.9)])
    assert runs[0].variant == f"ce tuned={tmp_path.name}"


def test_p_improvement_counts_runs_of_one_data_split_only():
    """ce ran on splits 0 and 1 (1 is easier), mse on split 0 only, beating ce on every split-0 run: mse's
    runs against ce's split-1 runs compare scores on another test set and are not counted."""
    from lossbench.report.notes import splits
    from lossbench.report.stats import summarize

    runs = [run(f"ce{s}", "ce", s, 0.90 + 0.01 * s) for s in range(3)]
    runs += [run(f"ce{s}b", "ce", s, 0.95 + 0.01 * s, data_seed=1) for s in range(3)]
    runs += [run(f"mse{s}", "mse", s, 0.93 + 0.01 * s) for s in range(3)]
    runs = assign_variants(runs)
    rows = {(r.variant, r.metric): r for r in summarize(runs, baseline="ce")}
    mse = rows[("mse", "test/acc")]
    assert mse.prob_improvement == 1.0 and mse.n_pairs == 3  # 6 pairs of other seeds on split 0: 6 wins
    note = splits(runs, "digits")
    assert "data_seed: ce: 0, 1; mse: 0" in note and "different test sets" in note
    assert splits(runs[:3] + runs[6:], "digits") == "", "the same splits: nothing to say"


def test_p_improvement_counts_runs_of_other_splits_where_each_replicate_draws_its_own():
    """``+sweep=replicates`` (data_seed=${seed}): the variants ran on the same splits, one per seed, and a
    replicate's split is part of its draw; pairs of the same split are pairs of the same seed."""
    from lossbench.report.stats import summarize

    runs = [run(f"ce{s}", "ce", s, 0.90 + 0.01 * s, data_seed=s) for s in range(4)]
    runs += [run(f"focal{s}", "focal", s, 0.905 + 0.01 * s, data_seed=s) for s in range(4)]
    rows = {(r.variant, r.metric): r for r in summarize(assign_variants(runs), baseline="ce")}
    focal = rows[("focal", "test/acc")]
    wins = sum(0.905 + 0.01 * a > 0.90 + 0.01 * b for a in range(4) for b in range(4) if a != b)
    assert focal.prob_improvement == wins / 12 and focal.n_pairs == 4


def test_the_tost_interval_in_the_legend_follows_alpha():
    from lossbench.report.render import legend

    assert "the 90% interval" in legend(0.05) and "the 80% interval" in legend(0.1)
    assert "the 98% interval" in legend(0.01) and "{" not in legend(0.05)


def test_a_baseline_missing_from_a_setting_is_named_as_the_tables_name_it():
    from lossbench.report.command import settings_without

    a, b = run("a", "ce", 0, 0.9), run("b", "mse", 0, 0.9)
    a.group, b.group = "diabetes data=diabetes", "wine data=wine"
    a.variant, b.variant = "ce", "mse"
    assert settings_without([a, b], "ce") == ["wine"]


def test_compare_on_a_tune_folder_leaves_the_tunes_own_report(tmp_path):
    from lossbench.report.command import default_out

    (tmp_path / "final").mkdir()
    assert default_out(tmp_path) == tmp_path / "compare"
    assert default_out(tmp_path / "final") == tmp_path / "final" / "report"


def test_the_curves_band_is_one_sample_std_also_for_two_runs(monkeypatch, tmp_path):
    from lossbench.report import plots

    runs = []
    for seed, value in ((0, 1.0), (1, 2.0)):
        r = ReportRun(f"r{seed}", RunRecord("ok", loss="ce", seed=seed), group="g", variant="ce")
        r.curves = {"val/acc": [(0, value), (1, value)]}
        runs.append(r)
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    plots.curves(runs, "g", tmp_path)
    (band,) = figures[0].axes[0].collections
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    std = float(np.std([1.0, 2.0], ddof=1))
    assert math.isclose(low, 1.5 - std) and math.isclose(high, 1.5 + std)


def test_a_claim_without_a_p_improvement_leaves_it_out():
    """Every pair of runs skipped (each seed's only run on its own split, the splits apart): no "nan"."""
    from lossbench.report.headline import claim
    from lossbench.report.stats import Row

    row = Row("digits", "focal", "test/acc", True, 3, 0.9, 0.01, 0.88, 0.92, baseline="ce", n_pairs=3)
    row.diff_vs_baseline, row.diff_low, row.diff_high, row.p_holm, row.verdict = (
        0.01,
        0.005,
        0.015,
        0.01,
        "better",
    )
    text = claim(row)
    assert "nan" not in text and "P(improvement)" not in text and "Holm p = 0.0100, 3 replicates" in text
    row.prob_improvement = 0.8
    assert "(P(improvement) 0.80, Holm p" in claim(row)


def test_advises_pilot_is_listed_not_compared(tmp_path):
    """An ``advise --out`` holds ``pilot/``, an ok run of the baseline with ``test=false``: not a setting."""
    from lossbench.record import RunRecord, write_record
    from lossbench.report.collect import TRIAL, read_run
    from lossbench.report.render import counts

    (tmp_path / "advise.json").write_text("{}")
    write_record(
        RunRecord("ok", loss="ce", data="digits", seed=0, overrides=["loss=ce", "test=false"]),
        tmp_path / "pilot",
    )
    pilot = read_run(tmp_path / "pilot")
    assert pilot.status == TRIAL and "pilot" in pilot.error
    said = counts([pilot])
    assert said.startswith("1 runs, 0 ok, 0 failed or missing, 0 tuning trials and advise's pilot (not")
