"""``lossbench compare``: statistics, the files it writes, failed runs listed, W&B paths, HTML in Chromium."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from lossbench.cli import main as cli_main
from lossbench.report.collect import collect_local, collect_wandb
from lossbench.report.stats import mean_ci, summarize


def test_mean_ci():
    mean, std, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = sps.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert mean == 2.5 and math.isclose(hi - mean, half) and math.isclose(mean - lo, half)
    assert math.isnan(mean_ci([1.0])[1])


def test_summary_ranks_respect_direction(sweep_dir):
    runs = collect_local(sweep_dir.parent.parent)
    assert {r.status for r in runs} == {"ok", "failed", "missing"} and len(runs) == 11
    rows = {(r.variant, r.metric): r for r in summarize(runs, baseline="ce")}
    assert rows[("mse", "test/acc")].best and rows[("mse", "test/acc")].rank == 1  # higher is better
    assert rows[("ce", "test/ece")].best and not rows[("ce", "test/ece")].higher_is_better  # lower is better
    assert ("ce", "test/loss") not in rows  # not comparable across losses
    assert rows[("mse", "val/acc (best)")].n == 3
    mse = rows[("mse", "test/acc")]
    assert mse.baseline == "ce" and mse.n_pairs == 3 and mse.p_value < 0.05
    assert math.isclose(mse.p_value, sps.ttest_rel([0.95, 0.96, 0.94], [0.90, 0.92, 0.91]).pvalue)
    assert math.isclose(mse.p_holm, min(1.0, 2 * mse.p_value))  # Holm over mse and focal: mse is the smaller
    assert mse.verdict == "better" and mse.diff_low > 0 and mse.prob_improvement == 1.0
    assert rows[("focal", "test/acc")].p_value > 0.5 and rows[("focal", "test/acc")].verdict == "undecided"
    # p = 0.02 against mse, 0.06 Holm-adjusted over the 3 pairs of variants, but 0.04 over the 2 verdicts
    # against the baseline, which read mse better than ce: ce is not in the best group
    assert not rows[("ce", "test/acc")].best and rows[("focal", "test/acc")].best


def test_the_best_group_leaves_out_a_variant_shown_worse_over_every_pair():
    """Holm over all 3 pairs: a loss 2 points below the others on each of 8 seeds is left out; the other
    two, within noise of each other, stay."""
    from lossbench.report.stats import best_group
    from lossbench.report.verdict import Settings

    seeds = 0.9 + 0.01 * np.random.default_rng(0).standard_normal(8)
    wobble = 0.002 * np.array([1, -1, 1, -1, -1, 1, -1, 1])  # no net difference between ce and focal
    cells = {
        "ce": dict(enumerate(seeds)),
        "focal": dict(enumerate(seeds + wobble)),
        "mse": dict(enumerate(seeds - 0.02 + wobble[::-1] / 2)),
    }
    means = {v: np.mean(list(c.values())) for v, c in cells.items()}
    rank = {v: 1 + sorted(means.values(), reverse=True).index(m) for v, m in means.items()}
    assert best_group(cells, rank, 1.0, "test/acc", Settings()) == {"ce", "focal"}


def test_compare_writes_every_output_and_lists_failed_runs(sweep_dir, capsys):
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb"]) == 0
    out = sweep_dir / "report"
    for name in ("report.md", "report.csv", "report.html"):
        assert (out / name).stat().st_size > 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "bars_digits.png",
        "curves_digits.png",
        "per_class_recall_digits.png",
        "reliability_digits.png",
    ]
    md = (out / "report.md").read_text()
    assert "| **mse** | test/acc ↑ | **0.9500 ± 0.0100" in md  # ce, read worse than mse, is left out
    assert "| **focal** | test/acc ↑" in md and "| ce | test/acc ↑" in md
    assert "failed | ? | bce | 0 | ConfigError: bad thing" in md and "missing | ? | huber" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "ConfigError: bad thing" in html
    csv_lines = (out / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("group,variant,metric,higher_is_better,n,mean,std,ci_low,ci_high,iqm")
    header = csv_lines[0].split(",")
    for column in ("verdict", "p_holm", "prob_improvement", "prob_improvement_low", "prob_improvement_high"):
        assert column in header
    assert len(csv_lines) == 1 + 3 * 3  # 3 losses x (test/acc, test/ece, val/acc (best))
    assert "2 failed or missing" in capsys.readouterr().out


class FakeRun:
    def __init__(self, rid, loss, seed, acc, state="finished"):
        self.id, self.job_type, self.state, self.tags = rid, loss, state, [loss, "digits", "mlp"]
        self.config = {"seed": seed, "monitor": {"metric": "val/acc", "mode": "max"}}
        self.summary = (
            {"final/test/acc": acc, "best/monitor": acc, "val/acc": acc} if state == "finished" else {}
        )

    def history(self, keys, pandas):
        assert pandas is False
        return [{"epoch": e, "val/acc": 0.5 + e * 0.1} for e in range(3)]


def test_collect_wandb_with_a_fake_api():
    """The wandb.Api path without the network: runs of a group, their summary and history."""
    runs = [FakeRun("a", "ce", 0, 0.9), FakeRun("b", "ce", 1, 0.92), FakeRun("c", "mse", 0, 0.95)]
    runs += [FakeRun("d", "mse", 1, 0.96), FakeRun("e", "focal", 0, 0.0, state="crashed")]
    calls = []

    class Api:
        def runs(self, path, filters):
            calls.append((path, filters))
            return runs

    report = FakeRun("r", "report", None, 0.0, state="finished")  # compare's own table run, in the group
    runs.append(report)
    records = collect_wandb("me/lossbench", "train_2026-01-01_00-00-00", api=Api())
    assert calls == [("me/lossbench", {"group": "train_2026-01-01_00-00-00"})]
    assert [r.status for r in records] == ["ok"] * 4 + ["failed"], "the report run is not a run of the group"
    assert records[0].metrics == {"test/acc": 0.9, "val/acc (best)": 0.9}
    assert records[0].curves["val/acc"][-1] == (2, 0.7)
    rows = {(r.variant, r.metric): r for r in summarize(records)}
    assert rows[("mse", "test/acc")].best and rows[("mse", "test/acc")].n_pairs == 2


def test_wandb_runs_of_one_loss_with_different_settings_are_separate_variants():
    """A run's W&B config holds its overrides, so focal with loss.gamma=1 and with loss.gamma=5 are two
    variants; runs logged without them that share a loss and seed are listed as duplicates, not merged."""
    runs = []
    for loss, gamma, acc in (("ce", None, 0.90), ("focal", 1, 0.95), ("focal", 5, 0.80)):
        for seed in range(3):
            run = FakeRun(f"{loss}{gamma}{seed}", loss, seed, acc + 0.001 * seed)
            extra = [] if gamma is None else [f"loss.gamma={gamma}"]
            run.config["overrides"] = [f"loss={loss}", f"seed={seed}", *extra]
            runs.append(run)

    class Api:
        def runs(self, path, filters):
            return runs

    records = collect_wandb("me/lossbench", "g", api=Api())
    assert sorted({r.variant for r in records}) == ["ce", "focal loss.gamma=1", "focal loss.gamma=5"]
    assert all(r.ok for r in records)
    for run in runs:
        del run.config["overrides"]
    records = collect_wandb("me/lossbench", "g", api=Api())
    assert [r.status for r in records] == ["ok"] * 6 + ["duplicate"] * 3
    from lossbench.report.render import counts

    assert counts(records) == "9 runs, 6 ok, 0 failed or missing, 3 duplicates"


def test_runs_differing_in_data_seed_are_separate_replicates(tmp_path):
    from lossbench.record import RunRecord
    from lossbench.report.collect import ReportRun
    from lossbench.report.stats import summarize

    runs = []
    for loss in ("ce", "focal"):
        for seed in (0, 1):
            for data_seed in (0, 1):
                record = RunRecord("ok", loss=loss, data="digits", seed=seed, data_seed=data_seed)
                r = ReportRun(f"{loss}-{seed}-{data_seed}", record)
                bonus = 0.02 if loss == "focal" else 0.0
                r.metrics = {"test/acc": 0.9 + 0.01 * seed + 0.001 * data_seed + bonus}
                r.group, r.variant = "digits", loss
                runs.append(r)
    rows = {(r.variant, r.metric): r for r in summarize(runs, baseline="ce")}
    assert rows[("ce", "test/acc")].n == 4 and rows[("focal", "test/acc")].n_pairs == 4


def test_one_test_sample_gained_on_every_seed_is_a_constant_difference_also_in_float32():
    """Accuracies are float32 numbers: their rounding (~1e-8) made a t-test on a constant +1/360 say
    "better" at p ~ 1e-21, where the same gain in float64 is a "constant difference" (no test applies)."""
    from lossbench.record import RunRecord
    from lossbench.report.collect import ReportRun
    from lossbench.report.stats import summarize

    for dtype in (np.float32, np.float64):
        runs = []
        for loss, gained in (("ce", 0), ("focal", 1)):
            for seed, correct in enumerate((331, 338, 329, 335, 333)):
                r = ReportRun(f"{loss}-{seed}", RunRecord("ok", loss=loss, data="digits", seed=seed))
                r.metrics = {"test/acc": float(dtype((correct + gained) / 360))}
                r.group, r.variant = "digits", loss
                runs.append(r)
        (focal,) = (r for r in summarize(runs, baseline="ce") if r.variant == "focal")
        assert focal.verdict == "constant difference" and math.isnan(focal.p_value), dtype
        assert focal.diff_vs_baseline == pytest.approx(1 / 360, rel=1e-4)


def test_compare_survives_bad_runs_and_refuses_bad_arguments(sweep_dir, tmp_path, capsys, monkeypatch):
    (sweep_dir / "0" / "metrics.json").write_text('{"status": "ok", "test": {"test/ac')  # truncated
    (sweep_dir / "1" / "metrics.json").write_text("[1, 2, 3]")  # JSON of another shape
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--no-plots"]) == 0
    md = (sweep_dir / "report" / "report.md").read_text()
    assert md.count("| unreadable |") == 2 and "unreadable metrics.json" in md
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["compare", str(empty), "--no-log-wandb"]) == 2
    assert "no runs under" in capsys.readouterr().err
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--baseline", "nope"]) == 2
    assert "--baseline nope is not among the variants: ce, focal, mse" in capsys.readouterr().err
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--rope", "test/acx=0.05"]) == 2
    assert "--rope test/acx=...: no run reports test/acx; the metrics are test/acc" in capsys.readouterr().err
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--group", "g"]) == 2
    assert "--group g names a W&B group: add --wandb" in capsys.readouterr().err
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--rope", "nan"]) == 2
    assert "a finite number >= 0" in capsys.readouterr().err
    import wandb

    def no_key(path, group):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr("lossbench.report.collect.collect_wandb", no_key)
    assert cli_main(["compare", "--wandb", "me/lossbench", "--group", "g", "--no-log-wandb"]) == 2
    said = capsys.readouterr().err
    assert "--wandb me/lossbench could not be read from W&B (UsageError: No API key" in said, said
    assert "compare the local run dirs" in said and len(said.splitlines()) == 1
    failed = tmp_path / "failed"  # no run finished: nothing to compare, and no report saying otherwise
    for job in ("0", "1"):
        (failed / job).mkdir(parents=True)
        error = '{"type": "ValueError", "message": "boom"}'
        (failed / job / "metrics.json").write_text(f'{{"status": "failed", "loss": "ce", "error": {error}}}')
    assert cli_main(["compare", str(failed), "--no-log-wandb"]) == 1
    err = capsys.readouterr().err
    assert f"no run of {failed} finished (2 runs, 0 ok, 2 failed or missing): nothing to compare" in err
    assert f"failed: {failed / '0'}" in err and not (failed / "report").exists()


def test_jobs_of_a_sweep_stopped_before_their_run_dirs_were_written_are_counted_missing(sweep_dir):
    """A packed sweep killed in training leaves its jobs' ``checkpoints/`` only (no ``.hydra/``, no record),
    and a sweep stopped early never starts its last jobs: compare counted only the dirs it found, and
    said every run had finished. The sweep's ``multirun.yaml`` says how many jobs it has."""
    import yaml

    saved = {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}}}
    saved["hydra"]["overrides"] = {"task": ["loss=ce,focal,mse,bce,huber", "seed=0,1,2"], "hydra": []}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(saved))
    (sweep_dir / "11" / "checkpoints").mkdir(parents=True)  # trained packed, killed before its run dir
    runs = collect_local(sweep_dir)
    assert len(runs) == 15, "every job of the sweep: 0-10 found, 11 with checkpoints only, 12-14 never"
    unfinished = [r.run_dir for r in runs if r.status == "missing"]
    assert unfinished == [str(sweep_dir / str(n)) for n in (10, 11, 12, 13, 14)]
    never = {int(Path(r.run_dir).name): r for r in runs if int(Path(r.run_dir).name) >= 11}
    assert [(r.loss, r.seed) for r in never.values()] == [
        ("bce", 2),
        ("huber", 0),
        ("huber", 1),
        ("huber", 2),
    ]


def test_a_metric_that_is_not_finite_is_left_out_of_its_statistics_and_named(sweep_dir, capsys):
    """An infinite NLL broke the plots and Friedman's test, and with one setting ranked as "identical runs";
    a NaN one was dropped without a word."""
    import json

    for job, metric, value in ((8, "test/ece", float("inf")), (5, "test/acc", float("nan"))):
        record = json.loads((sweep_dir / str(job) / "metrics.json").read_text())
        record["test"][metric] = value
        (sweep_dir / str(job) / "metrics.json").write_text(json.dumps(record))
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb"]) == 0
    md = (sweep_dir / "report" / "report.md").read_text()
    assert "| partly counted | digits | mse | 2 | test/ece=inf: not finite, so not in the statistics" in md
    assert "| partly counted | digits | focal | 2 | test/acc=nan: not finite" in md
    table = (sweep_dir / "report" / "report.csv").read_text().splitlines()
    rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(table)}
    assert rows[("mse", "test/ece")]["n"] == "2" and rows[("mse", "test/acc")]["n"] == "3"
    assert rows[("focal", "test/acc")]["n"] == "2" and rows[("focal", "test/ece")]["n"] == "3"
    out = capsys.readouterr().out
    assert "9 ok, 2 failed or missing" in out and "partly counted:" in out


def test_plot_file_names_stay_short_for_long_settings():
    from lossbench.report.plots import slug as _slug

    long = "digits " + " ".join(f"data.option_{i}=value_{i}" for i in range(40))
    assert len(_slug(long)) <= 89 and _slug(long) != _slug(long + "x") and _slug("digits") == "digits"


def test_validation_curves_keep_one_colour_per_loss_and_a_legend_of_every_loss(monkeypatch, tmp_path):
    """A loss missing from a panel shifted matplotlib's colour cycle for the later ones, and the legend
    came from one panel: point and distributional losses mixed, the colours named the wrong losses."""
    from lossbench.record import RunRecord
    from lossbench.report import plots
    from lossbench.report.collect import ReportRun

    runs = []
    for variant, keys in (
        ("a_point", ["val/mae"]),
        ("b_both", ["val/mae", "val/nll"]),
        ("c_dist", ["val/nll"]),
    ):
        r = ReportRun(variant, RunRecord("ok", loss=variant, seed=0), group="g", variant=variant)
        r.curves = {k: [(0, 1.0), (1, 0.5)] for k in keys}
        runs.append(r)
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    plots.curves(runs, "g", tmp_path)
    (fig,) = figures
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
    pairs = zip(legend.get_texts(), legend.legend_handles, strict=True)
    named = {text.get_text().split(" ")[0]: handle.get_color() for text, handle in pairs}
    assert set(named) == {"a_point", "b_both", "c_dist"}
    mae, nll = (ax for ax in fig.axes if ax.get_title() in ("val/mae", "val/nll"))
    assert [line.get_color() for line in mae.get_lines()] == [named["a_point"], named["b_both"]]
    assert [line.get_color() for line in nll.get_lines()] == [named["b_both"], named["c_dist"]]


def test_paths_and_loggers_are_not_conditions_of_a_setting():
    """``lossbench-eval`` records ``paths.root_dir=...``: an evaluated run is still of its setting."""
    from lossbench.report.collect import is_condition

    assert not is_condition("paths.root_dir") and not is_condition("logger")
    assert is_condition("data.label_noise") and is_condition("optim.optimizer.lr")
    assert is_condition("paths.data_dir"), "another data folder is another setting"
    assert not is_condition("sweep"), "a preset's own settings (epochs) split settings through the configs"


def test_runs_of_another_sweep_preset_are_another_setting():
    """``+sweep=smoke`` trains 3 epochs: its runs are not replicates of a 20-epoch sweep's."""
    from lossbench.record import RunRecord
    from lossbench.report.collect import ReportRun
    from lossbench.report.variants import assign_variants

    def run(name: str, overrides: list[str], epochs: int, seed: int = 0) -> ReportRun:
        config = {"trainer": {"max_epochs": epochs}}
        record = RunRecord("ok", loss="ce", data="digits", seed=seed, data_seed=0, overrides=overrides)
        record.config = config
        return ReportRun(name, record, metrics={"test/acc": 0.9})

    smoke = run("a", ["+sweep=smoke", "loss=ce", "seed=0"], 3)
    runs = assign_variants([smoke, run("b", ["loss=ce", "seed=0"], 20)])
    assert [r.status for r in runs] == ["ok", "ok"], [r.error for r in runs]
    assert runs[0].group == "digits trainer.max_epochs=3" and runs[1].group == "digits trainer.max_epochs=20"
    # a preset that changes nothing measured (losses_x_seeds): its runs pair with later seeds of a plain sweep
    same = assign_variants(
        [run("c", ["+sweep=losses_x_seeds", "loss=ce", "seed=0"], 20), run("d", ["loss=ce", "seed=3"], 20)]
    )
    assert same[0].group == same[1].group == "digits"


def test_a_failed_start_that_another_run_finished_is_superseded_not_a_failure():
    """W&B keeps a job's interrupted first start beside the run that finished it (a sweep continued with
    resume=true starts a job with no checkpoint again, under a new id)."""
    from lossbench.record import RunRecord
    from lossbench.report.collect import ReportRun
    from lossbench.report.render import counts
    from lossbench.report.variants import assign_variants

    def run(name: str, status: str, seed: int) -> ReportRun:
        r = ReportRun(name, RunRecord(status, loss="ce", data="digits", seed=seed, data_seed=0))
        r.metrics = {"test/acc": 0.9} if status == "ok" else {}
        return r

    runs = assign_variants([run("a", "interrupted", 0), run("b", "ok", 0), run("c", "failed", 1)])
    assert [r.status for r in runs] == ["superseded", "ok", "failed"]
    assert runs[0].error.endswith("; b finished it")
    assert counts(runs) == "3 runs, 1 ok, 1 failed or missing, 1 superseded"
    again = assign_variants(runs)  # compare labels each folder's runs, then all folders' runs together
    assert again[0].error.count("b finished it") == 1, again[0].error


def test_tuning_trials_are_counted_apart_and_not_compared(sweep_dir, capsys):
    """``lossbench compare <tune --out>``: each trial (its own lr, test=false) became a setting of one run."""
    import json

    for job in (0, 1):
        record = json.loads((sweep_dir / str(job) / "metrics.json").read_text())
        record["config"] = {**(record.get("config") or {}), "tags": ["ce", "digits", "mlp", "trial"]}
        (sweep_dir / str(job) / "metrics.json").write_text(json.dumps(record))
        with (sweep_dir / str(job) / ".hydra" / "overrides.yaml").open("a") as saved:
            saved.write(f"- optim.optimizer.lr=0.00{job + 1}\n")
    runs = collect_local(sweep_dir)
    assert [r.status for r in runs].count("trial") == 2
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "2 tuning trials (not compared" in out and "trial:" not in out
    md = (sweep_dir / "report" / "report.md").read_text()
    assert "optim.optimizer.lr" not in md.split("## Runs")[0], "no setting of a trial's own"


def with_wandb_logger(sweep_dir: Path, folder: str | None) -> None:
    """Give the sweep's runs a ``logger.wandb`` in their record and, unless ``folder`` is None (W&B
    disabled writes nothing), the W&B run folder ``<run dir>/wandb/<folder>`` a run leaves."""
    for record in sweep_dir.glob("*/metrics.json"):
        metrics = json.loads(record.read_text())
        if metrics.get("status") != "ok":
            continue
        metrics["config"]["logger"]["wandb"] = {"project": "lossbench", "group": "g", "mode": "auto"}
        record.write_text(json.dumps(metrics))
        if folder is not None:
            (record.parent / "wandb" / folder).mkdir(parents=True)


def test_compare_logs_no_table_to_wandb_when_the_runs_did_not_log_to_it(sweep_dir, capsys):
    with_wandb_logger(sweep_dir, None)  # e.g. run with WANDB_MODE=disabled
    assert cli_main(["compare", str(sweep_dir), "--no-plots"]) == 0
    assert "W&B:" not in capsys.readouterr().out
    assert not (sweep_dir / "report" / "wandb").exists()


@pytest.mark.parametrize(
    ("folder", "mode"), [("offline-run-20260101_000000-abc", "offline"), ("run-20260101_000000-abc", "auto")]
)
def test_the_report_run_logs_in_the_runs_own_w_and_b_mode(sweep_dir, folder, mode):
    from lossbench.report.command import _wandb_target

    with_wandb_logger(sweep_dir, folder)
    assert _wandb_target(collect_local(sweep_dir)) == ("lossbench", None, "g", mode)


def test_runs_whose_w_and_b_logger_saved_elsewhere_are_found_there_by_their_own_ids(sweep_dir, tmp_path):
    """``logger.wandb.save_dir=/shared``: the runs' W&B folders are under it, each named by its run's id."""
    from lossbench.report.command import _wandb_target

    shared = tmp_path / "shared"
    with_wandb_logger(sweep_dir, None)
    for n, record in enumerate(sorted(sweep_dir.glob("*/metrics.json"))):
        metrics = json.loads(record.read_text())
        if metrics.get("status") != "ok":
            continue
        metrics["config"]["logger"]["wandb"]["save_dir"] = str(shared)
        record.write_text(json.dumps(metrics))
        (record.parent / "wandb_run_id").write_text(f"id{n:06d}\n")
    assert _wandb_target(collect_local(sweep_dir))[0] is None, "no W&B folder of theirs under it yet"
    (shared / "wandb" / "offline-run-20260101_000000-other").mkdir(parents=True)
    assert _wandb_target(collect_local(sweep_dir))[0] is None, "another run's folder is not theirs"
    (shared / "wandb" / "offline-run-20260101_000000-id000000").mkdir()
    assert _wandb_target(collect_local(sweep_dir)) == ("lossbench", None, "g", "offline")
