"""The report's figures per setting: validation curves, test metrics with their intervals (the best group
highlighted), reliability diagrams and per-class recall; :mod:`lossbench.report.task_plots` adds the
multi-label and distributional ones."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from lossbench.report import task_plots
from lossbench.report.collect import ReportRun
from lossbench.report.figure_base import (
    bars_by_item,
    by_variant,
    item_names,
    legend_outside,
    load_arrays,
    mark_cut_axis,
    plt,
    save_figure,
    slug,
    variant_colors,
)
from lossbench.report.stats import Row, setting_label, stands_out

N_BINS = 15


def _panels(n: int):
    """A figure with ``n`` panels, three per row."""
    cols = min(3, n)
    rows = math.ceil(n / cols)
    return plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)


def curves(runs: list[ReportRun], group: str, out_dir: Path) -> Path | None:
    """Validation curves per variant: mean over seeds with a ±1 sample-std band."""
    variants = by_variant(runs, group)
    keys = sorted({k for rs in variants.values() for r in rs for k in r.curves if k != "val/loss"})
    if not keys:
        return None
    fig, axes = _panels(len(keys))
    colors = variant_colors(list(variants))
    for ax, key in zip(axes.flat, keys, strict=False):
        for variant, rs in variants.items():
            series = [dict(r.curves[key]) for r in rs if key in r.curves]
            if not series:
                continue
            epochs = sorted(set().union(*series))
            mat = np.array([[s.get(e, np.nan) for e in epochs] for s in series])
            mean = np.nanmean(mat, axis=0)
            ax.plot(epochs, mean, marker="." if len(epochs) < 30 else None, color=colors[variant])
            if len(series) > 1:
                with warnings.catch_warnings():  # an epoch only one run reached has no std: no band there
                    warnings.simplefilter("ignore", RuntimeWarning)
                    spread = np.nanstd(mat, axis=0, ddof=1)
                ax.fill_between(epochs, mean - spread, mean + spread, color=colors[variant], alpha=0.2)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    handles = [Line2D([], [], color=colors[v], label=f"{v} (n={len(rs)})") for v, rs in variants.items()]
    legend_outside(axes.flat[min(len(keys), axes.shape[1]) - 1], handles=handles)  # every variant
    fig.suptitle(f"validation curves ({group}): mean over seeds, band ±1 std")
    return save_figure(fig, out_dir / f"curves_{slug(group)}.png")


def bars(rows: list[Row], group: str, out_dir: Path) -> Path | None:
    """One panel per metric: mean per variant with its 95% t-interval. Only the best group (the top variant
    and those not shown worse than it) is green, and only when it leaves some variant out; an axis that
    does not start at 0 is marked as cut."""
    rows = [r for r in rows if r.group == group]
    metrics = sorted({r.metric for r in rows})
    if not metrics:
        return None
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        cell = [r for r in rows if r.metric == metric]
        best = stands_out(cell)
        x = np.arange(len(cell))
        err = np.array([[r.mean - r.ci_low, r.ci_high - r.mean] for r in cell]).T
        err = np.nan_to_num(err, nan=0.0)
        colors = ["tab:green" if r.variant in best else "tab:gray" for r in cell]
        ax.bar(x, [r.mean for r in cell], yerr=err, capsize=4, color=colors, alpha=0.8)
        ax.set_xticks(x, [r.variant for r in cell], rotation=30, ha="right", fontsize=8)
        arrow = "↑" if cell[0].higher_is_better else "↓"
        ax.set_title(f"{metric} {arrow}" + ("" if best else "\nno variant stands out"), fontsize=9)
        lo = min(r.ci_low if not math.isnan(r.ci_low) else r.mean for r in cell)
        hi = max(r.ci_high if not math.isnan(r.ci_high) else r.mean for r in cell)
        pad = (hi - lo) * 0.3 or abs(hi) * 0.05 or 0.01
        ax.set_ylim(lo - pad, hi + pad)
        mark_cut_axis(ax)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(
        f"test metrics ({group}): mean and 95% t-interval over seeds; green = the best group "
        "(the top and every variant not significantly worse)"
    )
    return save_figure(fig, out_dir / f"bars_{slug(group)}.png")


def reliability(runs: list[ReportRun], group: str, out_dir: Path) -> Path | None:
    """Reliability diagram per variant (test predictions pooled over seeds, 15 equal-width bins)."""
    pooled = {}
    for variant, rs in by_variant(runs, group).items():
        preds = [load_arrays(r.predictions) for r in rs if r.predictions]
        preds = [p for p in preds if "probs" in p and p["targets"].ndim == 1]
        if preds:
            probs = np.concatenate([p["probs"] for p in preds])
            targets = np.concatenate([p["targets"] for p in preds])
            pooled[variant] = (probs.max(1), probs.argmax(1) == targets, len(preds))
    if not pooled:
        return None
    cols = min(4, len(pooled))
    nrows = math.ceil(len(pooled) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.2 * nrows), squeeze=False)
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    for ax, (variant, (conf, correct, n)) in zip(axes.flat, pooled.items(), strict=False):
        idx = np.clip(np.digitize(conf, edges[1:-1]), 0, N_BINS - 1)
        count = np.bincount(idx, minlength=N_BINS)
        acc = np.bincount(idx, weights=correct.astype(float), minlength=N_BINS) / np.maximum(count, 1)
        mean_conf = np.bincount(idx, weights=conf, minlength=N_BINS) / np.maximum(count, 1)
        ece = float(np.sum(count * np.abs(acc - mean_conf)) / max(count.sum(), 1))
        centers = (edges[:-1] + edges[1:]) / 2
        ax.bar(
            centers, np.where(count > 0, acc, 0), width=1 / N_BINS, edgecolor="k", alpha=0.7, label="accuracy"
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_title(f"{variant}\nECE {ece:.3f}, {n} seeds pooled", fontsize=9)  # fits a 3.2-inch panel
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(pooled) :]:
        ax.axis("off")
    legend_outside(axes.flat[min(len(pooled), cols) - 1])
    return save_figure(fig, out_dir / f"reliability_{slug(group)}.png")


def per_class_recall(runs: list[ReportRun], group: str, out_dir: Path) -> Path | None:
    """Test recall per class and variant (mean over seeds); classes ordered by test support, rarest first."""
    table = {}
    support = None
    for variant, rs in by_variant(runs, group).items():
        recalls = []
        for r in rs:
            if not r.predictions:
                continue
            p = load_arrays(r.predictions)
            if "preds" not in p or p["targets"].ndim != 1:
                continue
            t, y = p["targets"], p["preds"]
            k = int(max(t.max(), p["probs"].shape[1] - 1 if "probs" in p else t.max())) + 1
            support = np.bincount(t, minlength=k)
            hits = np.bincount(t[y == t], minlength=k)
            recalls.append(hits / np.maximum(support, 1))
        if recalls:
            table[variant] = np.mean(recalls, axis=0)
    if not table or support is None:
        return None
    order = np.argsort(support, kind="stable")
    return bars_by_item(
        table,
        support,
        order,
        ("class (test support), rarest first", "recall", f"per-class recall ({group}), mean over seeds"),
        out_dir / f"per_class_recall_{slug(group)}.png",
        item_names(runs, group, len(support)),
    )


def make_all(runs: list[ReportRun], rows: list[Row], out_dir: Path) -> dict[str, list[Path]]:
    """Every plot for every setting (by :func:`setting_label`): ``{group: [png, ...]}``."""
    out: dict[str, list[Path]] = {}
    for group in sorted({setting_label(r.group) for r in runs if r.ok}):
        paths = [
            curves(runs, group, out_dir),
            bars(rows, group, out_dir),
            reliability(runs, group, out_dir),
            per_class_recall(runs, group, out_dir),
            task_plots.per_label_ap(runs, group, out_dir),
            task_plots.calibration(runs, group, out_dir),
        ]
        out[group] = [p for p in paths if p is not None]
    return out
