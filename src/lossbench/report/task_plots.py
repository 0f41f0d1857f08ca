"""Report figures of multi-label and distributional-regression runs: per-label AP and coverage calibration."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from lossbench.report.collect import ReportRun
from lossbench.report.figure_base import (
    bars_by_item,
    by_variant,
    item_names,
    legend_outside,
    load_arrays,
    plt,
    save_figure,
    slug,
    variant_colors,
)

#: the test metrics ``coverage_<p>`` a distributional loss logs, as nominal levels
COVERAGE_PREFIX = "test/coverage_"
#: the split-conformal interval's coverage (:mod:`lossbench.calibration`), e.g. ``test/conformal_coverage_90``
CONFORMAL_PREFIX = "test/conformal_coverage_"


def _multilabel(p: dict[str, np.ndarray]) -> bool:
    return "probs" in p and p["targets"].ndim == 2


def per_label_ap(runs: list[ReportRun], group: str, out_dir: Path) -> Path | None:
    """Test average precision per label and variant (mean over the runs whose test split has a positive of
    it); labels by test positives (the mean over runs: a split per data_seed holds its own), rarest first.
    A label without a test positive in any run has no AP and is left out."""
    table: dict[str, np.ndarray] = {}
    positives: list[np.ndarray] = []
    for variant, rs in by_variant(runs, group).items():
        per_run = []
        for r in rs:
            p = load_arrays(r.predictions) if r.predictions else {}
            if not _multilabel(p):
                continue
            y, probs = p["targets"] > 0, p["probs"]
            if positives and y.shape[1] != len(positives[0]):  # another label set: not this figure's
                continue
            positives.append(y.sum(axis=0))
            per_run.append(
                [
                    average_precision_score(y[:, j], probs[:, j]) if positives[-1][j] else np.nan
                    for j in range(y.shape[1])
                ]
            )
        if per_run:
            with warnings.catch_warnings():  # a label no run's test split has a positive of: NaN, left out
                warnings.simplefilter("ignore", RuntimeWarning)
                table[variant] = np.nanmean(np.asarray(per_run, dtype=float), axis=0)
    if not table:
        return None
    mean_positives = np.mean(positives, axis=0)
    support = np.round(mean_positives, 1)  # a rare label's 0.3 is not 0
    scored = np.isfinite(np.vstack(list(table.values()))).any(axis=0)
    order = [j for j in np.argsort(mean_positives, kind="stable") if scored[j]]
    return bars_by_item(
        table,
        support,
        order,
        (
            "label (test positives, mean per run), rarest first",
            "average precision",
            f"per-label AP ({group}), mean over seeds",
        ),
        out_dir / f"per_label_ap_{slug(group)}.png",
        item_names(runs, group, len(support)),
    )


def coverage_curve(metrics: dict[str, float], prefix: str = COVERAGE_PREFIX) -> list[tuple[float, float]]:
    """``[(nominal, observed), ...]`` from a run's ``test/coverage_<p>`` metrics (``prefix``:
    :data:`CONFORMAL_PREFIX` for its split-conformal intervals), by nominal level."""
    points = []
    for key, value in metrics.items():
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            points.append((int(key[len(prefix) :]) / 100, float(value)))
    return sorted(points)


def calibration(runs: list[ReportRun], group: str, out_dir: Path) -> Path | None:
    """Observed against nominal coverage of the central intervals, per distributional variant (mean over
    seeds), and of every regression variant's split-conformal interval (a cross); a calibrated predictive
    distribution lies on the diagonal."""
    curves: dict[str, tuple[np.ndarray, np.ndarray, int, str, str]] = {}
    variants = by_variant(runs, group)
    colors = variant_colors(list(variants))  # a variant's curve and its conformal cross share one
    for variant, rs in variants.items():
        for prefix, label, style in (
            (COVERAGE_PREFIX, variant, "o-"),
            (CONFORMAL_PREFIX, f"{variant}, conformal", "x"),
        ):
            per_level: dict[float, list[float]] = {}
            for r in rs:
                for nominal, observed in coverage_curve(r.metrics, prefix):
                    per_level.setdefault(nominal, []).append(observed)
            if per_level:
                levels = np.array(sorted(per_level))
                mean = np.array([np.mean(per_level[q]) for q in levels])
                curves[label] = (levels, mean, len(rs), style, variant)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    for label, (levels, observed, n, style, variant) in curves.items():
        ax.plot(levels, observed, style, color=colors[variant], label=f"{label} ({n} seeds)")
    lo = min(min(levels.min(), observed.min()) for levels, observed, *_ in curves.values())
    ax.set_xlim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed test coverage")
    legend_outside(ax)
    ax.set_title(f"calibration ({group})", fontsize=9)
    return save_figure(fig, out_dir / f"calibration_{slug(group)}.png")
