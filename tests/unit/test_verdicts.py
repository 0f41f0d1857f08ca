"""The report's verdict statistics against reference implementations, their simulated error rates, and
``lossbench compare`` over several settings (verdict paragraph, report.csv columns, across-settings ranks)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lossbench.cli import main as cli_main
from lossbench.report import verdict as vd
from tests.conftest import script


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    for m in (1, 3, 19):
        p = rng.uniform(0, 0.2, m)
        expected = multitest.multipletests(p, method="holm")[1]
        assert np.allclose(vd.holm(p), expected, atol=1e-12)
    with_nan = vd.holm(np.array([0.01, np.nan, 0.04]))
    assert math.isnan(with_nan[1]) and np.allclose(with_nan[[0, 2]], [0.02, 0.04])


def test_paired_p_values_match_scipy():
    rng = np.random.default_rng(1)
    gains = rng.normal(0.01, 0.02, (5, 10))
    expected_t = [stats.ttest_1samp(g, 0.0).pvalue for g in gains]
    expected_w = [stats.wilcoxon(g).pvalue for g in gains]
    assert np.allclose(vd.paired_p_values(gains, "t"), expected_t, atol=1e-12)
    assert np.allclose(vd.paired_p_values(gains, "wilcoxon"), expected_w, atol=1e-12)
    constant = vd.paired_p_values(np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1]]))
    assert np.isnan(constant).all(), "no variation: no p-value"
    assert math.isnan(vd.paired_p_values(np.array([[0.1]]))[0])
    assert np.isnan(vd.paired_p_values(np.array([[0.1, 0.3]]))).all(), "two pairs: below the floor of 3"


def test_tost_matches_statsmodels():
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = rng.normal(0.9, 0.01, 8), rng.normal(0.9, 0.01, 8)
        expected = weightstats.ttost_paired(a, b, -0.005, 0.005)[0]
        assert vd.tost_p_values((a - b)[None], 0.005)[0] == pytest.approx(expected, abs=1e-6)


def test_replicates_needed_matches_statsmodels_power():
    power = pytest.importorskip("statsmodels.stats.power")
    for sd, delta, m in ((0.01, 0.005, 1), (0.004, 0.005, 19), (0.02, 0.01, 5)):
        n = vd.replicates_needed(sd, delta, m)
        expected = power.TTestPower().solve_power(delta / sd, alpha=0.05 / m, power=0.8)
        assert n == math.ceil(expected)
    assert vd.replicates_needed(0.0, 0.005) is None


def test_estimates_and_probability_of_improvement():
    x = np.array([0.90, 0.91, 0.93, 0.95, 0.99, 0.80, 0.92, 0.94])
    est = vd.estimates(x)
    assert est["mean"] == pytest.approx(x.mean()) and est["iqm"] == pytest.approx(stats.trim_mean(x, 0.25))
    assert est["ci_low"] < est["mean"] < est["ci_high"] and est["iqm_low"] < est["iqm"] < est["iqm_high"]
    half = stats.t.ppf(0.975, 7) * x.std(ddof=1) / math.sqrt(8)
    assert est["ci_high"] - est["mean"] == pytest.approx(half), "the mean's interval is the t-interval"
    p, lo, hi = vd.prob_improvement(np.array([0.3, 0.2, 0.1]), np.array([0.1, 0.0]))
    assert p == pytest.approx((2 + 2 + 1.5) / 6) and 0 < lo < p < hi <= 1  # every pair, the tie ½


def test_verdict_rules():
    rng = np.random.default_rng(3)
    gains = np.vstack([0.02 + 0.002 * rng.standard_normal(10), 0.0001 * rng.standard_normal(10)])
    gains = np.vstack([gains, -gains[0], 0.01 * rng.standard_normal(10)])
    verdict, p_holm, _ = vd.verdicts(gains, rope=0.005)
    assert list(verdict) == ["better", "equivalent", "worse", "undecided"]
    assert np.all((p_holm >= vd.paired_p_values(gains)) | np.isclose(p_holm, 1.0))


@pytest.mark.slow  # 200 simulations of every scenario: ~6 s
def test_simulated_error_rates_meet_their_targets():
    """``scripts/validate_stats.py`` at a small size (the full 1,000 simulations run in the script)."""
    validate_stats = script("validate_stats")
    results = validate_stats.simulate(sims=200, seed=1)
    assert validate_stats.failures(results) == [], results
    for case in ("degenerate_two_seeds", "degenerate_constant_difference", "crossing_curves"):
        assert results[case]["rate"] == 1.0
    for n in (3, 5, 10):
        assert (
            results[f"cover_iqm_t3_n{n}"]["rate"] >= 0.9 and results[f"cover_diff_normal_n{n}"]["rate"] >= 0.9
        )
    assert results["cover_p_improvement_normal_shift3"]["rate"] >= 0.87
    assert results["power"]["rate"] >= 0.8 and results["null"]["rate"] <= 0.05 + 0.031


# --- the report over several settings -------------------------------------------------------------------
LOSSES = {"ce": 0.0, "focal": 0.0, "logit_adjusted": 0.02, "mse": -0.03}


def write_sweep(root: Path, settings=("1", "10", "100"), seeds=range(6)) -> None:
    """Fake runs: per setting (``data.imbalance_factor``) × loss × seed, with known true gaps."""
    rng = np.random.default_rng(0)
    job = 0
    for imb in settings:
        for loss, gap in LOSSES.items():
            for seed in seeds:
                d = root / str(job)
                (d / ".hydra").mkdir(parents=True)
                overrides = [f"loss={loss}", f"seed={seed}", f"data.imbalance_factor={imb}", "logger=csv"]
                if job % 2:
                    overrides.append("hydra.job.chdir=false")  # not a condition: must not split a setting
                (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
                acc = 0.9 - 0.01 * int(imb) ** 0.5 + gap + 0.002 * rng.standard_normal() + 0.001 * seed
                metrics = {
                    "status": "ok",
                    "loss": loss,
                    "data": "digits",
                    "seed": seed,
                    "data_seed": 0,
                    "monitor": {"metric": "val/acc", "mode": "max", "best": acc},
                    "test": {"test/acc": acc, "test/nll": 0.3 - gap},
                }
                (d / "metrics.json").write_text(json.dumps(metrics))
                job += 1


@pytest.mark.slow
def test_compare_states_verdicts_and_ranks_across_settings(tmp_path, capsys):
    root = tmp_path / "multirun"
    write_sweep(root)
    assert cli_main(["compare", str(root), "--no-log-wandb"]) == 0
    out = root / "report"
    md = (out / "report.md").read_text()
    verdict = md.split("## Verdict", 1)[1].split("Per variant", 1)[0]
    assert "logit_adjusted beats ce on test/acc by +0.02" in verdict
    assert "mse is worse than ce on test/acc" in verdict and "Holm p" in verdict
    # focal's true gap is 0: equivalent where the runs say so, never better or worse
    assert verdict.count("focal is equivalent to ce on test/acc (within ±0.005)") == 2
    assert "focal beats" not in verdict and "focal is worse" not in verdict
    assert "split is fixed" in verdict
    assert md.count("## digits data.imbalance_factor=") == 3, "logger/hydra overrides do not split settings"
    with (out / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    la = next(
        r
        for r in rows
        if r["variant"] == "logit_adjusted" and r["metric"] == "test/acc" and "=10" in r["group"]
    )
    assert la["verdict"] == "better" and float(la["p_holm"]) < 0.05 and float(la["prob_improvement"]) == 1.0
    assert float(la["ci_low"]) <= float(la["mean"]) <= float(la["ci_high"]) and la["iqm"]
    across = md.split("## Across settings", 1)[1]
    assert "Friedman χ²" in across and "Nemenyi CD" in across and "mean rank" in across
    assert (out / "cd_test_acc.png").stat().st_size > 0 and (out / "profile_test_acc.png").is_file()
    html = (out / "report.html").read_text()
    assert "<h2>Verdict</h2>" in html and "Across settings" in html


def test_compare_without_plots_and_with_options(tmp_path):
    root = tmp_path / "multirun"
    write_sweep(root, settings=("1",), seeds=range(3))
    args = ["compare", str(root), "--no-log-wandb", "--no-plots", "--rope", "0.05", "--test", "wilcoxon"]
    assert cli_main(args) == 0
    out = root / "report"
    assert not list(out.glob("*.png"))
    md = (out / "report.md").read_text()
    assert "Wilcoxon signed-rank" in md and "±0.05" in md
    assert "A verdict needs at least 3 paired replicates" in md and "Bootstrap" not in md
    assert cli_main(["compare", str(root), "--no-log-wandb", "--rope", "x=abc"]) == 2


def test_a_baseline_missing_from_a_setting_is_said_where_another_takes_its_place(tmp_path, capsys):
    import shutil

    root = tmp_path / "multirun"
    write_sweep(root, settings=("1", "10"), seeds=range(3))
    loss = sorted(LOSSES)[-1]
    for job in list(root.iterdir()):  # that loss has no runs in the second setting
        record, overrides = json.loads((job / "metrics.json").read_text()), job / ".hydra/overrides.yaml"
        if record["loss"] == loss and "data.imbalance_factor=10" in overrides.read_text():
            shutil.rmtree(job)
    args = ["compare", str(root), "--no-log-wandb", "--no-plots", "--baseline", loss]
    assert cli_main(args) == 0
    said = f"--baseline {loss} has no finished run in digits data.imbalance_factor=10"
    assert said in capsys.readouterr().err
    assert said in (root / "report" / "report.md").read_text().replace("`", "")


def test_replicates_preset_randomises_the_split_with_the_seed(make_cfg):
    cfg = make_cfg("+sweep=replicates", "seed=3")
    assert cfg.data_seed == 3 and cfg.data.data_seed == 3


def test_report_names_the_randomised_sources(tmp_path):
    from lossbench.record import RunRecord
    from lossbench.report.collect import ReportRun
    from lossbench.report.headline import variance_sources

    runs = []
    for seed in range(3):
        r = ReportRun(str(seed), RunRecord("ok", loss="ce", seed=seed, data_seed=seed))
        r.group, r.variant = "digits", "ce"
        runs.append(r)
    assert "split (data_seed)" in variance_sources(runs) and "fixed" not in variance_sources(runs)
