"""The notes under a setting's table: what its numbers are in (standardised units) and where its variants'
means stand on different ground (data splits that not every variant ran on)."""

from __future__ import annotations

from collections import defaultdict

from lossbench.report.collect import ReportRun
from lossbench.report.stats import setting_label


def setting_notes(runs: list[ReportRun], group: str) -> list[str]:
    """The notes of the setting ``group`` (a table's name, :func:`setting_label`), in the order shown."""
    return [note for note in (units(runs, group), splits(runs, group)) if note]


def units(runs: list[ReportRun], group: str) -> str:
    """For a setting whose targets were standardised (regression): the line saying its errors are in units of
    the training targets' standard deviation, with that std; ``""`` otherwise."""
    stds = {
        tuple(round(s, 6) for s in r.record.data_info["target_std"])
        for r in runs
        if setting_label(r.group) == group and r.record.data_info and r.record.data_info.get("target_std")
    }
    if not stds:
        return ""
    shown = " or ".join(", ".join(f"{s:.4g}" for s in std) for std in sorted(stds))
    return (
        "Errors (MAE, RMSE, CRPS, interval widths), and a ROPE on them, are in standardised units: one unit "
        f"is the training targets' standard deviation ({shown}; `data_info.target_mean`/`target_std` in each "
        "run's metrics.json give y = mean + std · z). The NLL is that of the standardised targets (in the "
        "targets' own units it is larger by the log of that std)."
    )


def splits(runs: list[ReportRun], group: str) -> str:
    """For a setting whose variants ran on different data splits (``data_seed``): the line saying that their
    means, ranks and the bold best group stand on different test sets, while Δ, the verdicts and
    P(improvement) compare runs of one split only; ``""`` when every variant ran on the same splits."""
    ran: dict[str, set[int]] = defaultdict(set)
    for r in runs:
        if r.ok and setting_label(r.group) == group:
            ran[r.variant].add(r.data_seed or 0)
    if len({frozenset(s) for s in ran.values()}) < 2:
        return ""
    listed = "; ".join(f"{v}: {', '.join(map(str, sorted(s)))}" for v, s in sorted(ran.items()))
    return (
        f"The variants ran on different data splits (data_seed: {listed}). Their means, ranks and the best "
        "group are over different test sets; Δ and the verdicts pair runs of the same seed and split, and "
        "P(improvement) counts runs of the same split where a variant's splits are not the baseline's. Run "
        "every variant on the same splits for means that compare."
    )
