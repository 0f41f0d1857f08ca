"""Properties every loss must have: correct gradients, finite values and gradients for extreme logits
(also under bf16 autocast), and clear errors for invalid hyper-parameters. Each loss is checked on every
task it serves (class indices, regression values, multi-hot labels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from omegaconf import OmegaConf

from lossbench.config import CONFIG_DIR, loss_options
from lossbench.errors import ConfigError
from lossbench.losses import BenchLoss, Task

COUNTS = [50, 20, 8, 3, 1, 1, 30]  # up to 7 classes (or labels)


def build(name: str, classes: int = 7, **overrides) -> BenchLoss:
    """Instantiate ``conf/loss/<name>.yaml`` with overrides (and class counts when the loss wants them)."""
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), overrides)
    extra = {"class_counts": COUNTS[:classes]} if get_class(cfg._target_).needs_class_counts else {}
    return instantiate(cfg, **extra)


# every config, plus variants that take other code paths
VARIANTS: list[tuple[str, dict]] = [(name, {}) for name in loss_options()] + [
    ("focal", {"gamma": 0.5, "alpha": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}),
    ("focal", {"gamma": 0.0}),
    ("sigmoid_focal", {"gamma": 0.5, "alpha": None}),
    ("sigmoid_focal", {"gamma": 0.0}),
    ("class_balanced", {"base": "focal", "gamma": 0.5}),
    ("class_balanced", {"base": "sigmoid"}),
    ("class_balanced", {"base": "sigmoid_focal"}),
    ("class_balanced_bce", {"base": "sigmoid_focal", "gamma": 0.5}),
    ("ldam", {"drw_epoch": 0}),
    ("asl", {"clip": 0.0, "gamma_pos": 0.5, "gamma_neg": 0.5}),
    ("asl", {"gamma_pos": 1.0, "gamma_neg": 0.5}),
    ("asl", {"gamma_neg": 0.0, "clip": 0.2}),
    ("ce", {"label_smoothing": 0.1}),
    ("mse", {"rescale_k": 2.0, "rescale_m": 3.0}),
    ("barron", {"alpha": 0.0}),
    ("barron", {"alpha": 2.0}),
    ("barron", {"alpha": -2.0}),
    ("barron", {"alpha": "-inf"}),
    ("barron", {"alpha": 0.5, "scale": 0.1}),
    ("quantile", {"q": 0.1}),
]
TASKS = (Task.CLASSIFICATION, Task.REGRESSION, Task.MULTILABEL)


def make(name: str, overrides: dict, reduction: str = "mean", classes: int = 7, task: Task | None = None):
    """The loss with ``classes`` class counts (binary classification with one logit: two classes)."""
    overrides = {k: (-math.inf if v == "-inf" else v) for k, v in overrides.items()}
    if task is Task.CLASSIFICATION:
        classes = max(classes, 2)
    loss = build(name, classes, **overrides, reduction=reduction)
    loss.on_train_epoch_start(1, 2)  # LDAM with drw_epoch=0: re-weighting on
    return loss


def variant_id(name: str, overrides: dict) -> str:
    return name + "".join(
        f"-{k}={v}" for k, v in overrides.items() if k != "alpha" or not isinstance(v, list)
    )


# every variant on every task it serves
CASES = [
    (name, overrides, task)
    for name, overrides in VARIANTS
    for task in TASKS
    if task in make(name, overrides).tasks
]
IDS = [f"{variant_id(name, overrides)}-{task.value}" for name, overrides, task in CASES]


def regression_width(loss: BenchLoss) -> int:
    """Outputs per regression target (2 for a Gaussian's mean and scale, 1 for a point loss)."""
    return loss.num_outputs(Task.REGRESSION, None, 1)


def example(loss: BenchLoss, outputs: torch.Tensor, seed: int, task: Task) -> torch.Tensor:
    """Targets for ``outputs`` ``[N, W]``: class indices ``[N]``, multi-hot labels ``[N, W]`` (with a row of
    no positive and one of all positives) or regression values ``[N, W // k]``, ``k`` outputs a target."""
    g = torch.Generator().manual_seed(seed)
    n, width = outputs.shape
    if task is Task.CLASSIFICATION:
        return torch.randint(0, max(width, 2), (n,), generator=g)
    if task is Task.MULTILABEL:
        t = torch.randint(0, 2, (n, width), generator=g).float()
        if n >= 3:
            t[0], t[-1] = 0.0, 1.0
        return t
    k = regression_width(loss)
    assert width % k == 0, f"{type(loss).__name__}: {width} outputs for {k} per target"
    scale = outputs.abs().max().clamp_min(1)
    return torch.randn(n, width // k, generator=g, dtype=outputs.dtype) * scale


def widths(loss: BenchLoss, task: Task) -> list[int]:
    """Output widths to check: binary (one logit) and 7 classes, 1 and 7 labels, 7 regression targets."""
    if task is Task.CLASSIFICATION:
        return sorted({loss.num_outputs(Task.CLASSIFICATION, 2), 7})
    if task is Task.MULTILABEL:
        return [1, 7]
    return [7 * regression_width(loss)]


#: losses whose gradient is by design not the derivative of their value (a stop-gradient), gradchecked
#: with it switched off; their own gradient is tested beside the loss's reference checks
STOPPED_GRADIENT = {"beta_nll": {"beta": 0.0}}


@pytest.mark.parametrize(("name", "overrides", "task"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64(name, overrides, task, reduction):
    overrides = {**overrides, **STOPPED_GRADIENT.get(name, {})}
    g = torch.Generator().manual_seed(0)
    for c in widths(make(name, overrides, reduction), task):
        loss = make(name, overrides, reduction, classes=c, task=task)
        z = (torch.randn(6, c, generator=g, dtype=torch.float64) * 2).requires_grad_()
        y = example(loss, z.detach(), 0, task)
        check = torch.autograd.gradcheck(lambda z, y=y, loss=loss: loss(z, y), (z,))
        assert check, f"{name} {overrides} {task} C={c}"


@pytest.mark.parametrize(("name", "overrides", "task"), CASES, ids=IDS)
def test_bf16_autocast_leaves_a_loss_of_float32_outputs_in_float32(name, overrides, task):
    """Models run in bfloat16 under ``bf16-mixed``; the loss of their (upcast) outputs must not: an op on
    CPU autocast's lower-precision list (``linalg.vecdot`` in the Brier score) put errors of 5e-3 in it."""
    g = torch.Generator().manual_seed(1)
    for c in widths(make(name, overrides), task):
        loss = make(name, overrides, reduction="none", classes=c, task=task)
        z = torch.randn(64, c, generator=g) * 3
        y = example(loss, z, 1, task)
        plain = loss(z, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = loss(z, y)
        torch.testing.assert_close(mixed.float(), plain, rtol=1e-4, atol=1e-5, msg=f"{name} C={c}")


LOGIT = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def batches(draw):
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, 7))
    z = draw(arrays(np.float32, (n, c), elements=LOGIT))
    return torch.from_numpy(z), draw(st.integers(0, 2**16))


@pytest.mark.parametrize(("name", "overrides", "task"), CASES, ids=IDS)
@given(batch=batches())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: conftest's profile
def test_finite_loss_and_gradients_for_extreme_logits(name, overrides, task, batch):
    z, seed = batch
    loss = make(name, overrides, classes=z.shape[-1], task=task)
    if task is Task.CLASSIFICATION and z.shape[-1] == 1 and loss.num_outputs(Task.CLASSIFICATION, 2) != 1:
        z = torch.cat([z, -z], dim=-1)  # softmax losses need two logits for binary data
    if task is Task.REGRESSION:
        z = z.repeat(1, regression_width(loss))  # k outputs per target
    y = example(loss, z, seed, task)
    for dtype in (torch.float32, torch.bfloat16):
        x = z.detach().to(dtype).clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is torch.bfloat16):
            value = loss(x, y)
        value.backward()
        assert torch.isfinite(value).all(), f"{name}: loss {value} for logits {z.tolist()} ({dtype})"
        assert torch.isfinite(x.grad).all(), f"{name}: gradient {x.grad} for logits {z.tolist()} ({dtype})"
        assert value.dtype == torch.float32


INVALID = [
    ("ce", "label_smoothing", 1.0),
    ("bce", "pos_weight", -1.0),
    ("focal", "gamma", -0.5),
    ("focal", "alpha", -0.1),
    ("focal_g3", "gamma", -3.0),
    ("sigmoid_focal", "alpha", 1.5),
    ("sigmoid_focal", "gamma", -1.0),
    ("class_balanced", "beta", 1.0),
    ("class_balanced", "base", "hinge"),
    ("ldam", "max_m", -0.1),
    ("ldam", "s", 0.0),
    ("ldam", "drw_epoch", -1),
    ("ldam", "drw_beta", 1.0),
    ("logit_adjusted", "tau", -1.0),
    ("poly1", "epsilon", -2.0),
    ("gce", "q", 0.0),
    ("gce", "q", 1.5),
    ("sce", "alpha", -1.0),
    ("sce", "log_zero", 0.0),
    ("asl", "gamma_neg", -1.0),
    ("asl", "clip", 1.0),
    ("mse", "rescale_k", 0.0),
    ("huber", "delta", 0.0),
    ("smooth_l1", "beta", -1.0),
    ("quantile", "q", 1.0),
    ("cauchy", "scale", 0.0),
    ("barron", "scale", -1.0),
    ("barron", "alpha", math.inf),
    ("class_balanced_bce", "beta", 1.0),
    ("zlpr", "reduction", "avg"),
    ("brier", "reduction", "avg"),
    ("balanced_softmax", "reduction", "avg"),
    ("l1", "reduction", "avg"),
    ("log_cosh", "reduction", "avg"),
    ("gaussian_nll", "min_variance", 0.0),
    ("beta_nll", "beta", 1.5),
    ("beta_nll", "beta", -0.5),
    ("beta_nll", "min_variance", -1.0),
    ("laplace_nll", "min_scale", 0.0),
    ("crps_gaussian", "min_variance", -1.0),
    ("pinball", "quantiles", [0.5, 0.25]),
    ("pinball", "quantiles", [0.0, 0.5]),
    ("pinball", "quantiles", [1.5]),
    ("pinball", "quantiles", [0.5, 0.5]),
    ("pinball", "quantiles", []),
    ("pinball", "quantiles", "0.5"),
    ("pinball", "reduction", "avg"),
]


@pytest.mark.parametrize(("name", "param", "value"), INVALID, ids=[f"{n}.{p}={v}" for n, p, v in INVALID])
def test_invalid_hyper_parameter_is_a_config_error_naming_it(name, param, value):
    cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg).items() if k != "_target_"}
    with pytest.raises(ConfigError) as info:
        get_class(cfg._target_)(**{**kwargs, param: value})
    assert param in str(info.value) and str(value).split(".")[0] in str(info.value)


def test_every_loss_option_is_covered():
    assert {n for n, _ in VARIANTS} == set(loss_options())
    assert {n for n, _, _ in INVALID} == set(loss_options())


@pytest.mark.parametrize("name", ["log_cosh", "quantile", "cauchy", "barron"])
def test_hand_written_backward_reaches_the_target(name):
    """ρ(o - y): the gradient to a target that requires grad is -dℓ/do, checked by gradcheck in float64."""
    loss = instantiate(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"))
    outputs = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    target = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda o, y: loss(o, y), (outputs, target))
    w = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    loss(torch.zeros(6, 2, dtype=torch.float64), w * 2.0).backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
