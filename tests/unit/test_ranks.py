"""``lossbench.report.ranks``: Friedman / Iman–Davenport, Nemenyi CD and groups, CD diagram, profiles."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from lossbench.report.rank_plots import cd_diagram, performance_profile, plot_performance_profiles
from lossbench.report.ranks import (
    FriedmanResult,
    friedman,
    mean_ranks,
    nemenyi_cd,
    nemenyi_groups,
    nemenyi_q,
    nemenyi_significant,
    undecidable_note,
)

#: Demšar (2006), Table 5(a): q_0.05 of the Nemenyi test for k = 2..10
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


def _matrices(seed: int = 0):
    """Random score matrices (N = 10..30, k = 3..8), half of them rounded so that settings have ties."""
    rng = np.random.default_rng(seed)
    for case in range(8):
        n, k = int(rng.integers(10, 31)), int(rng.integers(3, 9))
        scores = rng.normal(0, 1, (n, k)) + np.linspace(0.0, 1.5, k)  # later columns tend to be better
        yield (np.round(scores, 1) if case % 2 else scores), bool(case % 3)


def test_friedman_matches_scipy_and_iman_davenport_formula() -> None:
    for scores, higher in _matrices():
        n, k = scores.shape
        result = friedman(scores, higher_is_better=higher)
        expected = stats.friedmanchisquare(*scores.T)
        assert result.reason is None
        assert (result.n_settings, result.k) == (n, k)
        assert result.statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
        assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-12)
        f_f = (n - 1) * expected.statistic / (n * (k - 1) - expected.statistic)
        assert result.iman_davenport == pytest.approx(f_f, rel=1e-12)
        assert result.iman_davenport_p == pytest.approx(stats.f.sf(f_f, k - 1, (k - 1) * (n - 1)), rel=1e-10)
        np.testing.assert_allclose(result.mean_ranks, mean_ranks(scores, higher), rtol=0, atol=1e-12)


def test_friedman_undefined_cases_give_nan_and_a_reason() -> None:
    for scores in (np.random.default_rng(1).random((10, 2)), np.random.default_rng(2).random((1, 5))):
        result = friedman(scores, higher_is_better=True)
        assert isinstance(result, FriedmanResult)
        assert math.isnan(result.statistic) and math.isnan(result.p_value)
        assert math.isnan(result.iman_davenport) and math.isnan(result.iman_davenport_p)
        assert result.reason
    assert friedman(np.ones((4, 3)), higher_is_better=True).reason == "every setting ties all variants"
    # every setting ranking identically: chi2 = N (k - 1) and F_F is infinite
    perfect = friedman(np.tile([0.9, 0.8, 0.7, 0.6], (6, 1)), higher_is_better=True)
    assert perfect.statistic == pytest.approx(6 * 3)
    assert perfect.iman_davenport == math.inf and perfect.iman_davenport_p == 0.0


def test_nemenyi_q_matches_demsar_table_5() -> None:
    for k, q in zip(range(2, 11), DEMSAR_Q05, strict=True):
        assert nemenyi_q(k, 0.05) == pytest.approx(q, abs=1e-3)
    assert nemenyi_q(2, 0.05) == pytest.approx(stats.norm.ppf(0.975), abs=1e-9)  # k = 2: the z test
    assert nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 14)), abs=1e-3)


def test_nemenyi_cd_agrees_with_scikit_posthocs() -> None:
    sp = pytest.importorskip("scikit_posthocs")
    for scores, higher in _matrices(seed=3):
        n, k = scores.shape
        ranks = mean_ranks(scores, higher)
        cd = nemenyi_cd(k, n)
        # rows are blocks (settings), columns are groups; it ranks ascending, so negate "higher is better"
        p_values = sp.posthoc_nemenyi_friedman(-scores if higher else scores).to_numpy()
        significant = nemenyi_significant(ranks, cd)
        for i, j in itertools.combinations(range(k), 2):
            if abs(abs(ranks[i] - ranks[j]) - cd) < 1e-9:
                continue  # exactly on the boundary: floating point decides
            assert significant[i, j] == (p_values[i, j] < 0.05), (n, k, i, j)
            assert significant[i, j] == (abs(ranks[i] - ranks[j]) > cd)


def test_nemenyi_groups_are_the_maximal_non_significant_ranges() -> None:
    assert nemenyi_groups([1.0, 2.0, 3.0, 4.0], cd=1.5) == [(0, 1), (1, 2), (2, 3)]
    assert nemenyi_groups([4.0, 1.0, 1.2, 3.9], cd=0.5) == [(0, 1), (2, 3)]
    assert nemenyi_groups([1.0, 2.0, 3.0], cd=5.0) == [(0, 2)]
    assert nemenyi_groups([1.0, 2.0, 3.0], cd=0.5) == []
    for scores, higher in _matrices(seed=4):
        n, k = scores.shape
        ranks = np.sort(mean_ranks(scores, higher))
        cd = nemenyi_cd(k, n)
        groups = nemenyi_groups(ranks, cd)
        for first, last in groups:
            assert 0 <= first < last < k and ranks[last] - ranks[first] <= cd
            assert first == 0 or ranks[last] - ranks[first - 1] > cd  # maximal on both sides
            assert last == k - 1 or ranks[last + 1] - ranks[first] > cd
        for i, j in itertools.combinations(range(k), 2):  # every non-significant pair shares a bar
            covered = any(first <= i and j <= last for first, last in groups)
            assert covered == (ranks[j] - ranks[i] <= cd)


def test_mean_ranks_direction_and_ties() -> None:
    scores = np.array([[0.9, 0.8, 0.7], [0.6, 0.9, 0.6], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(mean_ranks(scores, higher_is_better=True), [(1 + 2.5 + 2) / 3, 5 / 3, 2.5])
    np.testing.assert_allclose(mean_ranks(scores, higher_is_better=False), [(3 + 1.5 + 2) / 3, 7 / 3, 1.5])
    np.testing.assert_array_equal(mean_ranks(np.ones((4, 5)), higher_is_better=True), np.full(5, 3.0))
    ranks = mean_ranks(np.random.default_rng(5).random((7, 6)), higher_is_better=False)
    assert ranks.sum() == pytest.approx(6 * 7 / 2)  # the ranks of each setting sum to k (k + 1) / 2
    with pytest.raises(ValueError, match="finite"):
        mean_ranks([[0.1, math.nan, 0.3]], higher_is_better=True)


def test_performance_profile_is_monotone_and_reaches_one() -> None:
    rng = np.random.default_rng(6)
    scores = rng.random((12, 5))
    scores[:, 2] = scores.max(axis=1) + 0.05  # variant 2 is best on every setting
    for higher, data in ((True, scores), (False, -scores)):
        taus, fractions = performance_profile(data, higher_is_better=higher)
        assert fractions.shape == (5, len(taus)) and taus[0] == 0.0
        assert np.all(np.diff(taus) > 0)
        assert np.all((fractions >= 0) & (fractions <= 1))
        assert np.all(np.diff(fractions, axis=1) >= 0)
        np.testing.assert_array_equal(fractions[:, -1], 1.0)
        np.testing.assert_array_equal(fractions[2], 1.0)  # best everywhere: 1 already at tau = 0
        assert np.all(fractions[[0, 1, 3, 4], 0] == 0.0)
    # lower is better: the gap is score - best; fractions on a given grid
    taus, fractions = performance_profile([[1.0, 1.5], [2.0, 2.0]], higher_is_better=False, taus=[0.5, 0.0])
    np.testing.assert_array_equal(taus, [0.0, 0.5])
    np.testing.assert_array_equal(fractions, [[1.0, 1.0], [0.5, 1.0]])


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


def test_plots_write_pngs_without_warnings(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k, n in ((4, 12), (25, 30)):
            scores = rng.normal(0.8, 0.05, (n, k)) + np.linspace(0.0, 0.1, k)
            names = [f"loss_{i}" + "_long_name" * (i % 3) for i in range(k)]
            ranks = mean_ranks(scores, higher_is_better=True)
            cd = nemenyi_cd(k, n)
            out = cd_diagram(names, ranks, cd, tmp_path / f"cd_{k}.png", title=f"k = {k}")
            assert out == tmp_path / f"cd_{k}.png"
            _assert_png(out)
            taus, fractions = performance_profile(scores, higher_is_better=True)
            out = plot_performance_profiles(
                names, taus, fractions, tmp_path / "sub" / f"pp_{k}.png", "gap to the best accuracy"
            )
            _assert_png(out)


def test_undecidable_note() -> None:
    few = friedman(np.random.default_rng(8).random((2, 20)), higher_is_better=True)
    cd = nemenyi_cd(20, 2)
    assert cd > 19
    note = undecidable_note(few, cd, 20)
    assert note is not None and "CD" in note and f"{cd:.2f}" in note
    # k = 3, N = 2: even perfect agreement gives chi2 = 4, p = 0.135: the Friedman test cannot reject
    note = undecidable_note(friedman(np.random.default_rng(9).random((2, 3)), True), nemenyi_cd(3, 2), 3)
    assert note is not None and "Friedman" in note
    many = friedman(np.random.default_rng(10).random((30, 3)), higher_is_better=True)
    assert undecidable_note(many, nemenyi_cd(3, 30), 3) is None
