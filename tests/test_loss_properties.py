"""Properties every loss must have: correct gradients, finite values and gradients for extreme logits
(also under bf16 autocast), and clear errors for invalid hyper-parameters."""

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

from lossbench.config import CONFIG_DIR, group_options
from lossbench.errors import ConfigError
from lossbench.losses import BenchLoss, Task

COUNTS = [50, 20, 8, 3, 1, 1, 30]  # up to 7 classes


def build(name: str, classes: int = 7, **overrides) -> BenchLoss:
    """Instantiate ``conf/loss/<name>.yaml`` with overrides (and class counts when the loss wants them)."""
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), overrides)
    extra = {"class_counts": COUNTS[: max(classes, 2)]} if get_class(cfg._target_).needs_class_counts else {}
    return instantiate(cfg, **extra)


# every config, plus variants that take other code paths
VARIANTS: list[tuple[str, dict]] = [(name, {}) for name in group_options("loss")] + [
    ("focal", {"gamma": 0.5, "alpha": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}),
    ("focal", {"gamma": 0.0}),
    ("sigmoid_focal", {"gamma": 0.5, "alpha": None}),
    ("sigmoid_focal", {"gamma": 0.0}),
    ("class_balanced", {"base": "focal", "gamma": 0.5}),
    ("class_balanced", {"base": "sigmoid"}),
    ("class_balanced", {"base": "sigmoid_focal"}),
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
IDS = [
    name + "".join(f"-{k}={v}" for k, v in o.items() if k != "alpha" or not isinstance(v, list))
    for name, o in VARIANTS
]


def make(name: str, overrides: dict, reduction: str = "mean", classes: int = 7) -> BenchLoss:
    overrides = {k: (-math.inf if v == "-inf" else v) for k, v in overrides.items()}
    loss = build(name, classes, **overrides, reduction=reduction)
    loss.on_train_epoch_start(1, 2)  # LDAM with drw_epoch=0: re-weighting on
    return loss


def is_classification(loss: BenchLoss) -> bool:
    return Task.CLASSIFICATION in loss.tasks


def example(loss: BenchLoss, outputs: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets for ``outputs``: class indices, or values of the same shape as the outputs."""
    g = torch.Generator().manual_seed(seed)
    n, c = outputs.shape
    if is_classification(loss):
        return outputs, torch.randint(0, max(c, 2), (n,), generator=g)
    return outputs, torch.randn(n, c, generator=g, dtype=outputs.dtype) * outputs.abs().max().clamp_min(1)


@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64(name, overrides, reduction):
    loss = make(name, overrides, reduction)
    g = torch.Generator().manual_seed(0)
    classes = 1 if loss.num_outputs(Task.CLASSIFICATION, 2) == 1 and is_classification(loss) else 7
    for c in sorted({classes, 7}):
        z = (torch.randn(6, c, generator=g, dtype=torch.float64) * 2).requires_grad_()
        _, y = example(loss, z.detach(), 0)
        assert torch.autograd.gradcheck(lambda z, y=y: loss(z, y), (z,)), f"{name} {overrides} C={c}"


LOGIT = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def batches(draw):
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, 7))
    z = draw(arrays(np.float32, (n, c), elements=LOGIT))
    return torch.from_numpy(z), draw(st.integers(0, 2**16))


@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
@given(batch=batches())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_finite_loss_and_gradients_for_extreme_logits(name, overrides, batch):
    z, seed = batch
    loss = make(name, overrides, classes=z.shape[-1])
    if is_classification(loss) and z.shape[-1] == 1 and loss.num_outputs(Task.CLASSIFICATION, 2) != 1:
        z = torch.cat([z, -z], dim=-1)  # softmax losses need two logits for binary data
    z, y = example(loss, z, seed)
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
    ("brier", "reduction", "avg"),
    ("balanced_softmax", "reduction", "avg"),
    ("l1", "reduction", "avg"),
    ("log_cosh", "reduction", "avg"),
]


@pytest.mark.parametrize(("name", "param", "value"), INVALID, ids=[f"{n}.{p}={v}" for n, p, v in INVALID])
def test_invalid_hyper_parameter_is_a_config_error_naming_it(name, param, value):
    cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg).items() if k != "_target_"}
    with pytest.raises(ConfigError) as info:
        get_class(cfg._target_)(**{**kwargs, param: value})
    assert param in str(info.value) and str(value).split(".")[0] in str(info.value)


def test_every_loss_option_is_covered():
    assert {n for n, _ in VARIANTS} == set(group_options("loss"))
    assert {n for n, _, _ in INVALID} == set(group_options("loss"))


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
