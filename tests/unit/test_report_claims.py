"""What the report's numbers mean: no claim from degenerate replicates, intervals and P(improvement) as
labelled, replicates needed per metric and test, budget crossings, the across-settings test, and figures
and HTML that show what they say."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from lossbench.record import RunRecord
from lossbench.report import across, budget, figure_base, markdown, render, seeds
from lossbench.report import verdict as vd
from lossbench.report.collect import ReportRun
from lossbench.report.headline import setting_summary
from lossbench.report.improvement import paired_win_share, prob_improvement
from lossbench.report.intervals import estimates, t_interval, trimmed_mean_interval, walsh_interval
from lossbench.report.stats import Row, setting_label, stands_out, summarize

STEP = 1 / 360  # one test example of 360


def runs_of(scores: dict[str, list[float]], group: str = "toy") -> list[ReportRun]:
    runs = []
    for loss, values in scores.items():
        for seed, value in enumerate(values):
            r = ReportRun(f"{loss}/{seed}", RunRecord("ok", loss=loss, data="toy", seed=seed, data_seed=0))
            r.metrics, r.group, r.variant = {"test/acc": value}, group, loss
            runs.append(r)
    return runs


def row_of(rows: list[Row], variant: str) -> Row:
    return next(r for r in rows if r.variant == variant)


# --- degenerate replicates ------------------------------------------------------------------------------
def test_two_seeds_with_identical_differences_give_no_p_value_and_no_claim(tmp_path):
    runs = runs_of({"ce": [0.90, 0.91], "focal": [0.90 - STEP, 0.91 - STEP], "poly1": [0.90, 0.91]})
    rows = summarize(runs, baseline="ce")
    for variant in ("focal", "poly1"):
        row = row_of(rows, variant)
        assert row.verdict == vd.TOO_FEW and math.isnan(row.p_value) and math.isnan(row.p_holm)
    text = setting_summary("toy", rows, vd.Settings())
    assert "beats" not in text and "worse than" not in text and "equivalent" not in text
    render.write_markdown(rows, runs, {}, tmp_path / "r.md", "src", [text, "method"])
    table = (tmp_path / "r.md").read_text().split("## toy", 1)[1]
    for word in ("| better |", "| worse |", "| equivalent |", "<1e-4"):
        assert word not in table


def test_constant_differences_from_three_replicates_are_named_as_such_and_zero_ones_identical_runs():
    """No test applies to either; a constant non-zero difference is not "identical runs", and the headline
    gives its size."""
    base = [0.90, 0.91, 0.92, 0.93, 0.94]
    rows = summarize(runs_of({"ce": base, "focal": [x + STEP for x in base], "gce": base}), baseline="ce")
    focal, gce = row_of(rows, "focal"), row_of(rows, "gce")
    assert focal.verdict == vd.CONSTANT and math.isnan(focal.p_value)
    assert math.isnan(focal.diff_low) and focal.diff_vs_baseline == pytest.approx(STEP)
    assert gce.verdict == vd.IDENTICAL and math.isnan(gce.p_value)
    text = setting_summary(focal.group, rows, vd.Settings())
    assert f"focal against ce on test/acc: a constant difference (Δ = +{STEP:.4g} at every replicate" in text
    assert "gce against ce on test/acc: identical runs" in text


def test_three_varying_pairs_are_the_floor_for_a_p_value():
    gains = [np.array([0.01, 0.02]), np.array([0.01, 0.02, 0.015])]
    verdict, p, _, _ = vd.family_verdicts(gains)
    assert verdict[0] == vd.TOO_FEW and math.isnan(p[0]) and not math.isnan(p[1])
    assert vd.MIN_REPLICATES == 3


# --- intervals and P(improvement) -----------------------------------------------------------------------
def test_intervals_are_t_and_trimmed_mean_intervals():
    x = np.array([0.91, 0.93, 0.90, 0.95, 0.92])
    lo, hi = t_interval(x[None])
    expected = stats.t.interval(0.95, 4, loc=x.mean(), scale=stats.sem(x))
    assert (lo[0], hi[0]) == pytest.approx(expected)
    iqm, iqm_lo, iqm_hi = trimmed_mean_interval(x)
    assert iqm == pytest.approx(stats.trim_mean(x, 0.25)) and iqm_lo < iqm < iqm_hi
    three = trimmed_mean_interval(x[:3])
    assert three[1:] == pytest.approx(tuple(v[0] for v in t_interval(x[None, :3]))), "n = 3: the t-interval"
    flat = estimates([0.9, 0.9, 0.9])
    assert math.isnan(flat["ci_low"]) and math.isnan(flat["iqm_low"]), "no spread: no interval"
    tied = estimates([0.90, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.97])  # the middle half ties
    assert tied["ci_low"] < tied["ci_high"] and math.isnan(tied["iqm_low"]), "no IQM interval of width 0"


def test_probability_of_improvement_compares_every_run_with_every_run():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.5, 1, 5), rng.normal(0, 1, 5)
    p, lo, hi = prob_improvement(x, y)
    u = stats.mannwhitneyu(x, y, alternative="greater").statistic
    assert p == pytest.approx(u / 25) and 0 < lo < p < hi < 1
    q, q_lo, q_hi = prob_improvement(y, x)
    assert q == pytest.approx(1 - p) and (q_lo, q_hi) == pytest.approx((1 - hi, 1 - lo))
    all_win, lo, hi = prob_improvement(x + 100, y)
    assert all_win == 1.0 and hi == 1.0 and 0.5 < lo < 0.8, "every run winning: not a degenerate [1, 1]"
    assert paired_win_share(np.array([0.1, -0.1, 0.0])) == pytest.approx(0.5)


def test_probability_of_improvement_of_runs_paired_by_seed_leaves_the_same_seed_pairs_out():
    """Each focal run beats its own seed's ce run by 0.5, but a run of another seed half the time: the
    chance that a focal run beats an independent ce run is ½, not the 6/9 that counting same-seed pairs
    gives."""
    rows = summarize(runs_of({"ce": [0.0, 1.0, 2.0], "focal": [0.5, 1.5, 2.5]}), baseline="ce")
    assert row_of(rows, "focal").prob_improvement == pytest.approx(0.5)
    assert prob_improvement([0.5, 1.5, 2.5], [0.0, 1.0, 2.0])[0] == pytest.approx(6 / 9)  # unpaired runs


def test_a_claim_whose_paired_differences_hold_an_outlier_names_the_replicate():
    from lossbench.report.headline import headline

    base = [0.80 + 0.01 * i for i in range(10)]
    gain = [0.05 + 0.002 * (-1) ** i for i in range(10)]
    gain[3] = 0.15  # one seed far above the others
    runs = runs_of({"ce": base, "focal": [b + g for b, g in zip(base, gain, strict=True)]})
    rows = summarize(runs, baseline="ce")
    assert row_of(rows, "focal").verdict == "better"
    (entry, _) = headline(rows, runs, vd.Settings())
    assert (
        "lies more than 5 robust std from the others in: focal against ce on test/acc (replicate 3)" in entry
    )
    gain[3] = 0.05
    runs = runs_of({"ce": base, "focal": [b + g for b, g in zip(base, gain, strict=True)]})
    assert "robust std" not in headline(summarize(runs, baseline="ce"), runs, vd.Settings())[0]


@pytest.mark.parametrize("n", [6, 7, 10, 15, 30, 50, 51, 80])
def test_the_walsh_interval_is_the_set_of_shifts_the_wilcoxon_test_keeps(n):
    """Inverting scipy's test: a shift just inside either bound is kept (p > 0.05), just outside rejected;
    exact up to 50 differences, scipy's normal approximation beyond."""
    rng = np.random.default_rng(n)
    for _ in range(10):
        d = rng.standard_t(3, n) + 0.3
        estimate, lo, hi = walsh_interval(d)
        i, j = np.triu_indices(n)
        assert estimate == np.median((d[i] + d[j]) / 2) and lo < estimate < hi
        for shift, kept in ((lo - 1e-9, False), (lo + 1e-9, True), (hi - 1e-9, True), (hi + 1e-9, False)):
            assert (stats.wilcoxon(d - shift).pvalue > 0.05) == kept, (n, shift, kept)


def test_the_walsh_interval_needs_six_differences_at_95_percent():
    """With 5 differences the smallest-to-largest interval covers 1 - 2/32 < 95%: no interval."""
    assert math.isnan(walsh_interval([0.1, 0.2, 0.3, 0.5, 0.4])[1])
    assert not math.isnan(walsh_interval([0.1, 0.2, 0.3, 0.5, 0.4, 0.6])[1])


def test_under_the_wilcoxon_test_the_claim_gives_the_estimate_the_test_is_about():
    """13 small gains and one large loss: the signed-rank test finds focal better, the mean is negative.
    The claim gives the Hodges-Lehmann estimate and its signed-rank interval, both on the verdict's side,
    and the outlier note does not send the reader to a t-test that was not run."""
    from lossbench.report.headline import headline

    base = [0.70 + 0.01 * i for i in range(14)]
    gains = [0.01 + 0.001 * i for i in range(13)] + [-0.5]
    runs = runs_of({"ce": base, "focal": [b + g for b, g in zip(base, gains, strict=True)]})
    how = vd.Settings(test="wilcoxon")
    focal = row_of(summarize(runs, baseline="ce", how=how), "focal")
    assert focal.verdict == "better"
    assert 0 < focal.diff_low < focal.diff_vs_baseline < focal.diff_high
    assert focal.diff_vs_baseline == pytest.approx(walsh_interval(np.array(gains))[0], abs=1e-12)
    (entry, method) = headline(summarize(runs, baseline="ce", how=how), runs, how)
    assert "focal beats ce on test/acc by +0.0" in entry and "t-test" not in entry
    assert "signed-rank interval" in method
    t_row = row_of(summarize(runs, baseline="ce"), "focal")
    assert t_row.diff_vs_baseline == pytest.approx(np.mean(gains)) and t_row.diff_vs_baseline < 0


def test_with_zero_and_tied_differences_the_wilcoxon_claim_stays_consistent():
    """An accuracy moves in steps of one test sample: zero differences (which the test leaves out) no
    longer pull Δ's interval to 0, and where ties leave the approximate interval at 0 while the exact test
    rejects, the claim says so."""
    from lossbench.report.headline import claim

    how = vd.Settings(test="wilcoxon")
    base = [0.70 + 0.01 * i for i in range(11)]

    def focal(steps: list[int]) -> Row:
        runs = runs_of({"ce": base, "focal": [b + STEP * s for b, s in zip(base, steps, strict=True)]})
        return row_of(summarize(runs, baseline="ce", how=how), "focal")

    zeros = focal([0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    assert zeros.verdict == "better" and zeros.diff_low > 0, (zeros.diff_low, zeros.diff_high)
    assert "reaches 0" not in claim(zeros)
    tied = focal([3, 6, -3, 1, 5, 4, 1, 1, 1, 2, -1])
    assert tied.verdict == "better" and tied.diff_low <= 0 < tied.diff_high
    assert "signed-rank interval, approximate with tied differences, reaches 0" in claim(tied)


def test_a_claim_at_alpha_above_five_percent_says_why_its_95_percent_interval_reaches_0():
    """--alpha=0.1: the t-test rejects (p 0.068) where the 95% t-interval still reaches 0; the claim names
    the level, not the signed-rank interval's ties (there are none, and no signed-rank test ran)."""
    from lossbench.report.headline import claim

    base = [0.90, 0.91, 0.92, 0.89, 0.905]
    gains = [0.02, 0.0, 0.015, 0.01, 0.002]
    runs = runs_of({"ce": base, "a": [b + g for b, g in zip(base, gains, strict=True)]})
    how = vd.Settings(alpha=0.1)
    a = row_of(summarize(runs, baseline="ce", how=how), "a")
    assert a.p_holm == pytest.approx(stats.ttest_1samp(gains, 0).pvalue) and a.verdict == "better"
    assert a.diff_low < 0 < a.diff_high
    said = setting_summary("toy", summarize(runs, baseline="ce", how=how), how)
    assert "though Δ's 95% interval reaches 0 (the test ran at --alpha=0.1)" in said
    assert "signed-rank" not in said and "signed-rank" not in claim(a, 0.1)


def test_undecided_wilcoxon_comparisons_with_too_few_pairs_to_reject_say_so():
    from lossbench.report.headline import needs_text

    runs = runs_of({"ce": [0.80, 0.81, 0.82], "focal": [0.85, 0.87, 0.86], "mse": [0.84, 0.83, 0.86]})
    how = vd.Settings(test="wilcoxon")
    rows = summarize(runs, baseline="ce", how=how)
    (text,) = needs_text([r for r in rows if r.variant != "ce"], how)
    assert "with 3 pairs the Wilcoxon test cannot reject at all" in text and "it needs 7 pairs" in text


def test_a_setting_where_no_run_fitted_a_temperature_leaves_the_ts_metrics_out():
    from lossbench.report.headline import headline

    runs = runs_of({"ce": [0.80, 0.81, 0.82], "focal": [0.85, 0.87, 0.86]})
    for r in runs:
        r.metrics.update({"test/nll": 0.3, "test/nll_ts": 0.3, "test/temperature": 1.0})
    rows = summarize(runs, baseline="ce")
    assert {r.metric for r in rows} == {"test/acc", "test/nll"}
    assert "No run fitted a temperature" in headline(rows, runs, vd.Settings())[0]
    runs[0].metrics["test/temperature"] = 0.7  # one run fitted one: the setting keeps them
    assert "test/nll_ts" in {r.metric for r in summarize(runs, baseline="ce")}


def test_a_variant_with_no_seed_in_common_with_the_baseline_is_too_few_and_keeps_p_improvement():
    runs = runs_of({"ce": [0.80, 0.81, 0.82]}) + [
        r for r in runs_of({"focal": [0.0, 0.0, 0.0, 0.85, 0.86, 0.87]}) if r.seed >= 3
    ]
    focal = row_of(summarize(runs, baseline="ce"), "focal")
    assert focal.n_pairs == 0 and focal.verdict == vd.TOO_FEW
    assert focal.prob_improvement == 1.0 and 0 < focal.prob_improvement_low < 1


def test_a_claim_whose_whole_interval_lies_within_the_rope_says_so():
    base = [0.80 + 0.01 * i for i in range(6)]
    runs = runs_of({"ce": base, "focal": [b + 0.001 + 0.0001 * (-1) ** i for i, b in enumerate(base)]})
    rows = summarize(runs, baseline="ce")
    assert row_of(rows, "focal").verdict == "better"
    from lossbench.report.headline import claim

    assert claim(row_of(rows, "focal")).endswith(
        "a difference within the ROPE (±0.005): too small to matter at that ROPE"
    )


def test_replicates_planned_on_the_upper_bound_of_the_observed_std():
    """With 5 pilot pairs the std is planned at its 80% upper bound, sqrt(4 / chi2_0.2(4)) = 1.42 times
    the observed one, so more replicates than the observed std alone asks."""
    alone = seeds.replicates_needed(0.01, 0.005, 1)
    planned = seeds.replicates_needed(0.01, 0.005, 1, pilot=5)
    assert planned == seeds.replicates_needed(0.01 * math.sqrt(4 / stats.chi2.ppf(0.2, 4)), 0.005, 1)
    assert planned > alone


def test_probability_of_improvement_covers_95_percent_with_three_runs_each():
    """With 3 runs a side the estimate moves in ninths: uncorrected, the interval covered 90% at θ = ½."""
    rng = np.random.default_rng(1)
    for shift in (0.0, 1.0):
        theta = stats.norm.cdf(shift / math.sqrt(2))
        covered = [
            lo <= theta <= hi
            for lo, hi in (
                prob_improvement(rng.normal(shift, 1, 3), rng.normal(0, 1, 3))[1:] for _ in range(2000)
            )
        ]
        assert np.mean(covered) >= 0.94, (shift, np.mean(covered))


# --- replicates needed ----------------------------------------------------------------------------------
def test_replicates_needed_follow_the_test_and_count_the_ones_beyond_the_cap():
    assert seeds.min_pairs("wilcoxon", comparisons=4) == 8 and seeds.min_pairs("t", 4) == 3
    assert seeds.replicates_needed(0.001, 0.005, 4, test="wilcoxon") == 8
    t_needs = seeds.replicates_needed(0.01, 0.005, 1)
    assert seeds.replicates_needed(0.01, 0.005, 1, test="wilcoxon") == math.ceil(t_needs * math.pi / 3)
    assert seeds.replicates_needed(1.0, 0.005) == math.inf and seeds.replicates_needed(0.0, 0.005) is None
    assert seeds.typical([10, math.inf, math.inf]) == "> 1000 replicates (2 of 3 comparisons need > 1000)"
    assert seeds.typical([10, 20, math.inf]) == "about 20 replicates (1 of 3 comparisons need > 1000)"
    assert seeds.typical([None]) is None


def test_undecided_comparisons_are_summarised_per_metric():
    def row(variant: str, metric: str, sd: float) -> Row:
        return Row(
            "g",
            variant,
            metric,
            True,
            5,
            0.9,
            0.01,
            0.8,
            1.0,
            baseline="ce",
            verdict="undecided",
            diff_sd=sd,
            n_pairs=5,
        )

    rows = [row("focal", "test/acc", 0.01), row("focal", "test/nll", 0.5), row("poly1", "test/acc", 0.01)]
    text = setting_summary("g", rows, vd.Settings())
    assert "2 comparisons undecided on test/acc — about" in text
    assert "1 comparison undecided on test/nll — > 1000 replicates" in text
    identical = row("gce", "test/acc", 0.0)
    identical.verdict = vd.IDENTICAL  # not in the family a test corrects for: the projection is unchanged
    import re

    about = re.compile(r"undecided on test/acc — about (\d+) replicates")
    with_identical = setting_summary("g", [*rows, identical], vd.Settings())
    assert about.search(with_identical)[1] == about.search(text)[1]


def test_the_recommendation_makes_no_claim_from_degenerate_comparisons():
    from lossbench.advise import recommend as rc

    base = [0.90, 0.91, 0.92, 0.93, 0.94]
    scores = {"ce": base, "poly1": list(base), "focal": [x + 0.01 for x in base[:2]] + base[2:]}
    rows = summarize(runs_of(scores), baseline="ce")
    rows += summarize(runs_of({"ce": base[:2], "ldam": base[:2]}, group="two"), baseline="ce")
    verdicts = {v.loss: v for v in rc.loss_verdicts(rows, "test/acc", vd.Settings())}
    assert verdicts["poly1"].verdict == vd.IDENTICAL and verdicts["focal"].verdict == "undecided"
    text = rc.sentence(list(verdicts.values()), rc.choose(list(verdicts.values()), True), "test/acc")
    assert "poly1 gave identical runs" in text and "equivalent" not in text and text.startswith("Use ce")
    two = rc.loss_verdicts([r for r in rows if r.group == "two"], "test/acc", vd.Settings())
    assert [v.verdict for v in two] == ["baseline", vd.TOO_FEW]


# --- budget curves and the across-settings test ---------------------------------------------------------
def test_the_budget_tables_half_column_is_the_best_after_half_the_trials():
    from lossbench.report.budget import section

    md, _, _ = section({"ce": np.array([0.9, 0.95, 0.97, 0.99])}, "val/acc", True, None)  # best after 1..4
    text = "\n".join(md)
    assert "| ce | 0.9000 | 0.9500 | 0.9900 | 4 |" in text, text


def test_budget_text_names_every_crossing():
    a = np.array([0.60, 0.62, 0.65, 0.66, 0.67, 0.68, 0.69])
    b = np.array([0.61, 0.63, 0.64, 0.65, 0.66, 0.70, 0.71])
    assert budget.crossings({"a": a, "b": b}, True) == [(3, "a", "b"), (6, "b", "a")]
    text = budget.ranking_text({"a": a, "b": b}, True)
    assert "cross at 3 and 6 trials" in text and "3–5 trials: a > b" in text
    assert budget.ranking_changes({"a": a, "b": b}, True) is None, "1 trial and the full budget agree"
    steady = budget.ranking_text({"a": a, "b": a - 0.1}, True)
    assert "same at every budget from 1 to 7 trials" in steady and "cross" not in steady


def test_across_settings_decision_and_note_use_the_friedman_chi2_test():
    means = [[0.41, 0.73, 0.71, 0.93], [0.11, 0.73, 0.93, 0.97], [0.01, 0.86, 0.98, 0.96]]
    rows = [
        Row(f"s{i}", f"v{j}", "test/acc", True, 5, m, 0.01, m, m)
        for i, line in enumerate(means)
        for j, m in enumerate(line)
    ]
    (m,) = across.metric_ranks(rows)
    assert m.friedman.p_value > 0.05 > m.friedman.iman_davenport_p  # the two tests disagree here
    assert not m.friedman.rejects(0.05)
    assert "does not reject" in across.markdown([m])[4]
    verdicts = [line[-1] for line in across._table(m)[1]]
    assert verdicts == ["best", "indistinguishable", "indistinguishable", "indistinguishable"]


def test_across_settings_limits_shared_by_every_metric_are_said_once_with_no_cd_diagram(tmp_path):
    """2 settings, 2 losses: the Friedman test does not apply (k = 2), for every metric alike."""
    rows = [
        Row(f"s{i}", v, metric, True, 3, 0.8 + 0.01 * i + (0.02 if v == "focal" else 0), 0.01, 0.7, 0.9)
        for i in range(2)
        for v in ("ce", "focal")
        for metric in ("test/acc", "test/f1")
    ]
    results = across.metric_ranks(rows)
    across.make_figures(results, tmp_path)
    text = "\n".join(across.markdown(results))
    assert text.count("Friedman test not applicable") == 1 and "would be" not in text
    assert not list(tmp_path.glob("cd_*.png")) and len(list(tmp_path.glob("profile_*.png"))) == 2


# --- figures and HTML -----------------------------------------------------------------------------------
def test_only_a_best_group_that_leaves_someone_out_is_highlighted():
    def row(variant: str, best: bool) -> Row:
        return Row("g", variant, "test/acc", True, 5, 0.9, 0.01, 0.8, 1.0, best=best)

    assert stands_out([row("a", True), row("b", True)]) == set()
    assert stands_out([row("a", True), row("b", False)]) == {"a"}


def test_legends_sit_outside_the_axes_and_cut_axes_are_marked():
    fig, ax = plt.subplots()
    ax.bar([0, 1, 2], [0.9, 0.95, 0.97], label="x")
    figure_base.legend_outside(ax)
    ax.set_ylim(0.85, 1.0)
    figure_base.mark_cut_axis(ax)
    fig.canvas.draw()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= frame.x1, "the legend covers no data"
    assert any("axis cut: starts at 0.85" in t.get_text() for t in ax.texts)
    ax.set_ylim(0, 1.0)
    texts = len(ax.texts)
    figure_base.mark_cut_axis(ax)
    assert len(ax.texts) == texts, "an axis from 0 is not marked"
    plt.close(fig)


def test_markdown_renders_as_html():
    assert markdown.inline("use `focal` **now**, *maybe* <b>") == (
        "use <code>focal</code> <strong>now</strong>, <em>maybe</em> &lt;b&gt;"
    )
    html = markdown.blocks(["**Recommendation**: use `ce`", "", "- one `a`", "- two"])
    assert html == [
        "<p><strong>Recommendation</strong>: use <code>ce</code></p>",
        "<ul><li>one <code>a</code></li><li>two</li></ul>",
    ]


def test_html_page_renders_the_lead_and_legend_markdown(tmp_path):
    runs = runs_of({"ce": [0.90, 0.91, 0.92], "focal": [0.91, 0.93, 0.92]})
    rows = summarize(runs, baseline="ce")
    lead = ["**Recommendation** (test/acc): use `ce`", "", "- shortlisted `focal`: a reason"]
    page = render.write_html(rows, runs, {}, tmp_path / "r.html", "src", ["entry", "method"], [], lead)
    text = page.read_text()
    assert "<strong>Recommendation</strong>" in text and "<li>shortlisted <code>focal</code>" in text
    assert "`" not in text and "**" not in text and "<p>- " not in text


def test_setting_labels_do_not_repeat_the_data_set():
    assert setting_label("wine data=wine") == "wine"
    assert setting_label("wine data=wine lr=0.1") == "wine lr=0.1"
    assert setting_label("digits data.imbalance_factor=10") == "digits data.imbalance_factor=10"
    rows = summarize(runs_of({"ce": [0.9, 0.91, 0.92]}, group="wine data=wine"), baseline="ce")
    assert {r.group for r in rows} == {"wine"}


def test_the_figure_modules_do_not_import_each_other_back():
    source = Path(figure_base.__file__).with_name("task_plots.py").read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "lossbench.report.plots" not in imported and "lossbench.report.figure_base" in imported


def test_a_setting_with_one_loss_says_there_is_nothing_to_compare_it_with():
    rows = summarize(runs_of({"ce": [0.90, 0.91, 0.92]}), baseline="ce")
    assert setting_summary(rows[0].group, rows, vd.Settings()).endswith(
        ": only ce ran, so there is nothing to compare it with."
    )
