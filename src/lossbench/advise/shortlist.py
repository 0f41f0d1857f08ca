"""Which losses to compare on a profiled data set, each with its reason, and which metric decides."""

from __future__ import annotations

from dataclasses import dataclass

from lossbench.advise.profile import Profile
from lossbench.errors import ConfigError
from lossbench.task import IMBALANCE_RATIO, Task, spec

#: an estimated label-noise rate from which noise-robust losses are shortlisted
NOISE_RATE = 0.1
#: a share of outlying regression targets from which robust losses are shortlisted
OUTLIER_SHARE = 0.02


@dataclass(frozen=True)
class Candidate:
    loss: str
    reason: str


def shortlist(p: Profile, losses: list[str] | None = None) -> list[Candidate]:
    """The baseline first, then the losses the profile calls for (or ``losses``, the user's choice)."""
    task = Task(p.task)
    base = spec(task).baseline
    out = [Candidate(base, "the baseline every verdict is against")]
    if losses:
        return out + [Candidate(name, "asked for with --loss") for name in losses if name != base]
    imbalanced = p.imbalance_ratio is not None and p.imbalance_ratio >= IMBALANCE_RATIO
    if task is Task.CLASSIFICATION:
        if imbalanced:
            why = f"training imbalance ratio {p.imbalance_ratio:.3g} >= {IMBALANCE_RATIO:g}"
            out += [
                Candidate(name, f"{why}: re-balances the classes")
                for name in ("logit_adjusted", "balanced_softmax", "class_balanced", "ldam")
            ]
        if p.noise_rate is not None and p.noise_rate >= NOISE_RATE:
            why = f"estimated label noise {p.noise_rate:.2f} >= {NOISE_RATE:g}"
            out += [Candidate(name, f"{why}: bounded under wrong labels") for name in ("gce", "sce")]
        if len(out) == 1:
            why = "no imbalance or label noise indicated"
            out += [
                Candidate("focal", f"{why}: a general alternative that focuses on hard samples"),
                Candidate("poly1", f"{why}: cross-entropy with a tuned polynomial term"),
            ]
    elif task is Task.MULTILABEL:
        out += [
            Candidate("asl", "made for multi-label data (many negatives per sample)"),
            Candidate("sigmoid_focal", "down-weights the easy negatives of multi-label data"),
        ]
        if imbalanced:
            why = f"label imbalance ratio {p.imbalance_ratio:.3g} >= {IMBALANCE_RATIO:g}"
            out.append(Candidate("class_balanced_bce", f"{why}: re-weights the rare labels"))
    else:
        if p.outlier_share is not None and p.outlier_share >= OUTLIER_SHARE:
            why = f"{p.outlier_share:.1%} outlying training targets >= {OUTLIER_SHARE:.0%}"
            out += [
                Candidate(name, f"{why}: bounded influence of gross errors")
                for name in ("huber", "l1", "cauchy")
            ]
        else:
            why = "no outlying targets indicated"
            out += [
                Candidate("huber", f"{why}: squared near zero, linear in the tails"),
                Candidate("log_cosh", f"{why}: a smooth robust alternative"),
            ]
    return out


def deciding_metric(p: Profile, metric: str | None = None) -> str:
    """The test metric the recommendation follows (``test/<name>``): balanced accuracy under imbalance,
    accuracy otherwise; mAP for multi-label; MAE with outlying targets, RMSE otherwise; or ``metric``."""
    if metric:
        name = metric.split("/", 1)[-1]
        if not name:
            raise ConfigError(f"--metric {metric}: name a test metric, e.g. --metric bal_acc")
        return f"test/{name}"
    task = Task(p.task)
    if task is Task.CLASSIFICATION:
        imbalanced = p.imbalance_ratio is not None and p.imbalance_ratio >= IMBALANCE_RATIO
        return "test/bal_acc" if imbalanced else "test/acc"
    if task is Task.MULTILABEL:
        return "test/map"
    outliers = p.outlier_share is not None and p.outlier_share >= OUTLIER_SHARE
    return "test/mae" if outliers else "test/rmse"
