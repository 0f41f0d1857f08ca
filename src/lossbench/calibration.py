r"""Calibration fitted on the validation split, so that calibration compares losses, not stopping points.

Two post-hoc recalibrations, each fitted once per run on the tested checkpoint's validation outputs and
scored on the test split beside the raw numbers (which keep their own names):

* **Temperature scaling** (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017; used to
  compare losses' calibration by Mukhoti et al., "Calibrating Deep Neural Networks using Focal Loss",
  NeurIPS 2020). One scalar :math:`T > 0` minimises the validation NLL of
  :math:`\mathrm{softmax}(\log p / T)`, where :math:`p` are the loss's own class probabilities (for a softmax
  loss that is :math:`\mathrm{softmax}(z / T)` of its logits). Logged as ``test/nll_ts``, ``test/ece_ts`` and
  ``test/temperature``. Where every validation sample's class has the largest probability, the validation
  NLL falls without bound as :math:`T \to 0` and no temperature is fitted: :math:`T = 1` (the loss's own
  probabilities) is kept, with a warning.
* **Split-conformal intervals** (Vovk et al. 2005; Lei et al., JASA 2018), for every regression loss:
  a point loss's interval is :math:`\hat y \pm \hat q` with :math:`\hat q` the
  :math:`\lceil (n+1)\,0.9 \rceil / n` empirical quantile of the validation residuals :math:`|y - \hat y|`;
  a distributional loss's own central 90% interval :math:`[l, u]` is widened (or narrowed) by the same
  quantile of the conformity scores :math:`\max(l - y, y - u)` (conformalized quantile regression, Romano
  et al., NeurIPS 2019). Logged as ``test/conformal_coverage_90`` and ``test/conformal_width_90``; with
  exchangeable validation and test samples the coverage is at least 90% in expectation.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor
from torchmetrics import Metric

#: the central interval level the conformal intervals are built for
CONFORMAL_LEVEL = 0.9
#: the search range of :math:`\log T`: T from 3.4e-4 to 3,000 (a nearly uniform model's best T is near 1e-3)
_LOG_T_RANGE = (-8.0, 8.0)

log = logging.getLogger("lossbench")
#: whether the warning that validation left no temperature to fit was said in this process
SAID_SEPARATED: list[bool] = []


def tempered(probs: Tensor, temperature: float) -> Tensor:
    """``softmax(log p / T)`` of class probabilities ``[N, C]``."""
    return torch.softmax(probs.double().clamp_min(1e-12).log() / temperature, dim=-1).to(probs.dtype)


def fit_temperature(probs: Tensor, targets: Tensor) -> float | None:
    """The temperature minimising the NLL of ``tempered(probs, T)`` on ``targets`` (golden-section search
    over :math:`\\log T`, which the NLL is unimodal in); ``None`` where no finite temperature minimises it.

    Where each target class has the largest probability of its sample, every term
    :math:`\\log(1 + \\sum_{j \\ne y} e^{(\\log p_j - \\log p_y) / T})` falls as :math:`T` does, so the
    NLL has its infimum at :math:`T \\to 0`: a search would end at its lower bound, a temperature that makes
    every later mistake cost :math:`\\approx (\\log p_j - \\log p_y) / T`.
    """
    log_p = probs.double().clamp_min(1e-12).log().cpu()
    y = targets.long().cpu()
    if bool((log_p.gather(-1, y.unsqueeze(-1)) >= log_p.max(-1, keepdim=True).values).all()):
        return None

    def nll(log_t: float) -> float:
        scaled = torch.log_softmax(log_p / math.exp(log_t), dim=-1)
        return float(-scaled.gather(-1, y.unsqueeze(-1)).mean())

    lo, hi = _LOG_T_RANGE
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(64):  # the bracket shrinks to 0.618^64 of 16 (2e-12): far below float precision of T
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2.0)


def conformal_quantile(scores: Tensor, level: float = CONFORMAL_LEVEL) -> Tensor:
    """Per target, the :math:`\\lceil (n+1)\\,\\text{level} \\rceil`-th smallest of ``scores`` ``[n, T]``
    (``inf`` when ``n`` is too small for the level)."""
    n = scores.shape[0]
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return torch.full(scores.shape[1:], math.inf, dtype=scores.dtype, device=scores.device)
    return scores.sort(dim=0).values[rank - 1]


def conformity_scores(target: Tensor, point: Tensor, interval: tuple[Tensor, Tensor] | None) -> Tensor:
    """``|y - ŷ|`` for a point prediction; ``max(l - y, y - u)`` for a loss's own interval."""
    if interval is None:
        return (target - point).abs()
    lower, upper = interval
    return torch.maximum(lower - target, target - upper)


def conformal_interval(
    point: Tensor, interval: tuple[Tensor, Tensor] | None, quantile: Tensor
) -> tuple[Tensor, Tensor]:
    """The conformal interval from the fitted ``quantile`` (see :func:`conformity_scores`)."""
    lower, upper = (point, point) if interval is None else interval
    return lower - quantile, upper + quantile


class IntervalCoverage(Metric):
    """The share of targets inside their intervals, and the intervals' mean width."""

    full_state_update = False
    higher_is_better = None  # the target is the nominal level

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("covered", "width", "count"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, lower: Tensor, upper: Tensor, target: Tensor) -> None:
        self.covered += ((target >= lower) & (target <= upper)).sum()
        self.width += (upper - lower).double().sum()
        self.count += target.numel()

    def compute(self) -> dict[str, Tensor]:
        return {"coverage": (self.covered / self.count).float(), "width": (self.width / self.count).float()}


class Recalibration(torch.nn.Module):
    """The recalibrated test metrics of one run: fitted on validation outputs (:meth:`fit`, or
    :meth:`load` of what :meth:`fitted` gave), updated per test batch, computed at the end of the test.

    Classification: ``nll_ts``, ``ece_ts`` (torchmetrics' calibration error, the same 15 bins as ``ece``)
    and ``temperature``; regression: ``conformal_coverage_90`` and ``conformal_width_90``.
    """

    def __init__(self, task: str, num_classes: int | None) -> None:
        super().__init__()
        from lossbench.metrics import NegativeLogLikelihood
        from lossbench.task import Task

        self.task = Task(task)
        self.state: dict[str, float | list[float]] = {}
        if self.task is Task.CLASSIFICATION:
            from lossbench.metrics import ExpectedCalibrationError

            self.nll, self.ece = NegativeLogLikelihood(), ExpectedCalibrationError(num_classes, n_bins=15)
        elif self.task is Task.REGRESSION:
            self.coverage = IntervalCoverage()

    @property
    def applies(self) -> bool:
        from lossbench.task import Task

        return self.task is not Task.MULTILABEL

    def fit(self, loss: torch.nn.Module, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        """Fit on validation ``outputs`` and ``targets``; returns the fitted scalars by name."""
        from lossbench.task import Task

        if self.task is Task.CLASSIFICATION:
            temperature = fit_temperature(loss.probabilities(outputs), targets)
            if temperature is None:  # a warning once per process (a sweep, tune, advise), then DEBUG lines
                log.log(
                    logging.DEBUG if SAID_SEPARATED else logging.WARNING,
                    "temperature scaling: every validation sample's class has the largest probability, so "
                    "no finite temperature minimises the validation NLL; test/nll_ts and test/ece_ts use "
                    "T = 1 (the loss's own probabilities; test/temperature = 1 in a run's record)",
                )
                SAID_SEPARATED.append(True)
            self.state = {"temperature": 1.0 if temperature is None else temperature}
        else:
            point = loss.point_predictions(outputs)
            target = targets.reshape(point.shape).to(point.dtype)
            scores = conformity_scores(target, point, self._interval(loss, outputs))
            self.state = {"quantile": conformal_quantile(scores).tolist()}
        return self.fitted()

    def fitted(self) -> dict[str, float]:
        """The fitted scalars as flat names (``temperature``; ``quantile_0``, ``quantile_1``, ...)."""
        if "temperature" in self.state:
            return {"temperature": float(self.state["temperature"])}
        return {f"quantile_{i}": float(q) for i, q in enumerate(self.state.get("quantile", []))}

    def clear(self) -> None:
        """Forget what was fitted (nothing applies until :meth:`fit` or :meth:`load`)."""
        self.state = {}

    def load(self, values: dict[str, float]) -> bool:
        """Take fitted scalars as :meth:`fitted` names them; whether any were there."""
        if "temperature" in values:
            self.state = {"temperature": float(values["temperature"])}
        else:
            quantiles = [values[k] for k in sorted(values, key=lambda k: int(k.rsplit("_", 1)[1]))]
            self.state = {"quantile": [float(q) for q in quantiles]} if quantiles else {}
        return bool(self.state)

    def update(self, loss: torch.nn.Module, outputs: Tensor, targets: Tensor) -> None:
        if not self.state:
            return
        if "temperature" in self.state:
            probs = tempered(loss.probabilities(outputs), float(self.state["temperature"]))
            self.nll.update(probs, targets)
            self.ece.update(probs, targets)
            return
        point = loss.point_predictions(outputs)
        target = targets.reshape(point.shape).to(point.dtype)
        quantile = torch.tensor(self.state["quantile"], dtype=point.dtype, device=point.device)
        lower, upper = conformal_interval(point, self._interval(loss, outputs), quantile)
        self.coverage.update(lower, upper, target)

    def compute(self) -> dict[str, Tensor]:
        if not self.state:
            return {}
        level = f"{round(CONFORMAL_LEVEL * 100):d}"
        if "temperature" in self.state:
            out = {"nll_ts": self.nll.compute(), "ece_ts": self.ece.compute()}
            return {**out, "temperature": torch.tensor(float(self.state["temperature"]))}
        scores = self.coverage.compute()
        return {
            f"conformal_coverage_{level}": scores["coverage"],
            f"conformal_width_{level}": scores["width"],
        }

    def reset(self) -> None:
        for metric in self.children():
            metric.reset()

    @staticmethod
    def _interval(loss: torch.nn.Module, outputs: Tensor) -> tuple[Tensor, Tensor] | None:
        predictive = loss.predictive(outputs)
        return None if predictive is None else predictive.interval(CONFORMAL_LEVEL)
