"""What every report figure shares: file names, saving, the runs of a setting, predictions, legends placed
outside the data, marks on a cut axis, and grouped bars per class or label (Agg backend: no display)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lossbench.report.collect import ReportRun  # noqa: E402
from lossbench.report.stats import setting_label  # noqa: E402


def slug(text: str) -> str:
    """A file-name-safe form of ``text``, cut to 80 characters plus a digest when longer."""
    slug = "".join(c if c.isalnum() else "_" for c in text).strip("_") or "all"
    return slug if len(slug) <= 80 else f"{slug[:80]}_{hashlib.sha1(slug.encode()).hexdigest()[:8]}"


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save ``fig`` as a PNG; the bounding box grows to take in legends placed outside the axes."""
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def by_variant(runs: list[ReportRun], group: str) -> dict[str, list[ReportRun]]:
    """The ok runs of the setting labelled ``group`` (:func:`setting_label`), per variant."""
    out: dict[str, list[ReportRun]] = defaultdict(list)
    for r in runs:
        if r.ok and setting_label(r.group) == group:
            out[r.variant].append(r)
    return dict(sorted(out.items()))


def variant_colors(variants: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per variant, the same in every panel of a figure (matplotlib's per-axes colour cycle
    shifts every later colour when a variant is missing from a panel): ``tab10`` for up to 10, else
    ``tab20``, else evenly spaced hues."""
    n = len(variants)
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "hsv")
    return {v: cmap(i if n <= 20 else i / n) for i, v in enumerate(variants)}


def load_arrays(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def legend_outside(ax: plt.Axes, fontsize: int = 7, **kwargs) -> None:
    """The legend to the right of ``ax``, where it cannot cover a bar, line or point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=fontsize, frameon=False, **kwargs)


def mark_cut_axis(ax: plt.Axes) -> None:
    """When the y axis of a bar chart starts above 0 (or ends below 0 for negative bars), draw break marks
    on it and say where it starts, so shortened bars are not read as ratios."""
    bottom, top = ax.get_ylim()
    if bottom > 0:
        y, text = 0.0, f"axis cut: starts at {bottom:.3g}"
    elif top < 0:
        y, text = 1.0, f"axis cut: ends at {top:.3g}"
    else:
        return
    style = {"transform": ax.transAxes, "color": "black", "clip_on": False, "linewidth": 1.0}
    for dy in (-0.015, 0.015):
        ax.plot([-0.03, 0.03], [y + dy - 0.015, y + dy + 0.015], **style)
    ax.text(
        0.01,
        y + (0.03 if y == 0 else -0.03),
        text,
        transform=ax.transAxes,
        fontsize=7,
        va="bottom" if y == 0 else "top",
        color="0.3",
    )


def bars_by_item(
    table: dict[str, np.ndarray],
    support: np.ndarray,
    order: Sequence[int],
    labels: tuple[str, str, str],
    path: Path,
    names: Sequence[str] | None = None,
) -> Path:
    """One group of bars per item (class or label) in ``order``, a bar per variant of ``table``
    (``{variant: value per item}``), each item's tick showing its name (``names``, else its index) and its
    ``support``; ``labels`` are the x label, the y label (values in [0, 1]) and the title. The legend sits
    outside the axes."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(order) + 2) + 1.6, 3.6))
    width = 0.8 / len(table)
    for i, (variant, values) in enumerate(table.items()):
        ax.bar(np.arange(len(order)) + i * width - 0.4 + width / 2, values[order], width, label=variant)
    ticks = [f"{names[c] if names is not None else c}\n(n={support[c]:g})" for c in order]
    ax.set_xticks(np.arange(len(order)), ticks, fontsize=7)
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    legend_outside(ax)
    ax.set_title(title)
    return save_figure(fig, path)


def item_names(runs: list[ReportRun], group: str, count: int) -> list[str] | None:
    """The names of a setting's ``count`` classes or labels as its runs recorded them (``data_info.labels``:
    a table's class labels or label columns, an image folder's class folders); ``None`` where none did."""
    for rs in by_variant(runs, group).values():
        for r in rs:
            names = (r.record.data_info or {}).get("labels")
            if names is not None and len(names) == count:
                return [str(n) for n in names]
    return None
