"""Multi-label losses against independent references (torch, torchvision, the papers' formulas), and the
multi-label task contract: which losses serve it, label probabilities and predictions, target checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from torchvision.ops import sigmoid_focal_loss

from lossbench.config import CONFIG_DIR, loss_options, losses_for_task
from lossbench.errors import ConfigError, LossTaskMismatchError
from lossbench.losses import (
    AsymmetricLoss,
    BCEWithLogitsLoss,
    BenchLoss,
    ClassBalancedLoss,
    SigmoidFocalLoss,
    Task,
    ZLPRLoss,
)
from lossbench.losses.long_tail import effective_number_weights

ATOL = 1e-10
N, L = 10, 5
COUNTS = [400, 120, 40, 9, 0]  # training positives per label
MULTILABEL = {"bce", "sigmoid_focal", "asl", "class_balanced_bce", "zlpr"}


def close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> None:
    torch.testing.assert_close(a, b, atol=atol, rtol=0.0)


def multi_hot(n: int = N, labels: int = L, seed: int = 0) -> torch.Tensor:
    """Random 0/1 labels ``[n, labels]`` (float32, as the data module gives them) with a row without any
    positive and a row of positives only."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 2, (n, labels), generator=g).float()
    t[0], t[1] = 0.0, 1.0
    return t


@pytest.fixture
def logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, L, generator=g, dtype=torch.float64) * 3


@pytest.fixture
def target() -> torch.Tensor:
    return multi_hot()


def load(name: str, **overrides) -> BenchLoss:
    """``conf/loss/<name>.yaml`` with overrides, given label counts when it wants class counts."""
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), overrides)
    extra = {"class_counts": COUNTS} if get_class(cfg._target_).needs_class_counts else {}
    return instantiate(cfg, **extra)


# every multi-label config, plus variants that take other code paths
VARIANTS = [(name, {}) for name in sorted(MULTILABEL)] + [
    ("bce", {"pos_weight": [0.5, 1.0, 2.0, 3.0, 1.5]}),
    ("sigmoid_focal", {"gamma": 0.5, "alpha": None}),
    ("sigmoid_focal", {"gamma": 0.0}),
    ("asl", {"gamma_pos": 1.0, "gamma_neg": 0.5}),
    ("asl", {"clip": 0.0, "gamma_pos": 0.5, "gamma_neg": 2.0}),
    ("class_balanced_bce", {"base": "sigmoid_focal", "gamma": 0.5}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in o.items() if not isinstance(v, list)) for name, o in VARIANTS]


# --- which losses serve multi-label ---------------------------------------------------------------------
def test_losses_for_task_lists_exactly_the_multi_label_losses():
    assert set(losses_for_task(Task.MULTILABEL)) == MULTILABEL
    assert "zlpr" not in losses_for_task(Task.CLASSIFICATION)
    assert {"class_balanced", "class_balanced_bce"} <= set(losses_for_task(Task.CLASSIFICATION))


@pytest.mark.parametrize("name", sorted(set(loss_options()) - MULTILABEL))
def test_other_losses_refuse_multi_label(name):
    with pytest.raises(LossTaskMismatchError, match="multilabel"):
        load(name).check_task(Task.MULTILABEL, 5)


def test_the_class_balanced_loss_serves_multi_label_with_a_sigmoid_base_only():
    for base in ("sigmoid", "sigmoid_focal"):
        loss = ClassBalancedLoss(base=base, class_counts=COUNTS)
        assert Task.MULTILABEL in loss.tasks
        loss.check_task(Task.MULTILABEL, L)
    for base in ("ce", "focal"):
        loss = ClassBalancedLoss(base=base, class_counts=COUNTS)
        assert loss.tasks == {Task.CLASSIFICATION}
        with pytest.raises(LossTaskMismatchError):
            loss.check_task(Task.MULTILABEL, L)
    assert ClassBalancedLoss.tasks == {Task.CLASSIFICATION}  # the class attribute stays as it was


def test_zlpr_serves_multi_label_only():
    loss = ZLPRLoss()
    loss.check_task(Task.MULTILABEL, L)
    for task in (Task.CLASSIFICATION, Task.REGRESSION):
        with pytest.raises(LossTaskMismatchError):
            loss.check_task(task, L)


@pytest.mark.parametrize("name", sorted(MULTILABEL))
@pytest.mark.parametrize("labels", [1, 2, 5])
def test_one_logit_per_label(name, labels):
    loss = load(name) if name != "class_balanced_bce" else ClassBalancedLoss(base="sigmoid")
    assert loss.num_outputs(Task.MULTILABEL, labels) == labels  # two labels are not a binary task
    loss.check_task(Task.MULTILABEL, labels)


# --- the multi-label contract --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MULTILABEL))
def test_label_probabilities_and_predictions(name):
    loss = load(name)
    z = torch.tensor([[3.0, -2.0, 0.0, 1e-3], [-1e4, 1e4, -1e-3, 0.5]]).bfloat16()
    p = loss.label_probabilities(z)
    assert p.shape == (2, 4) and p.dtype == torch.float32
    close(p, z.float().sigmoid(), atol=0.0)  # per label, not normalised across labels
    pred = loss.label_predictions(z)
    assert pred.dtype == torch.long and pred.shape == (2, 4)
    assert pred.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1]]
    assert pred.equal((loss.label_probabilities(z) > 0.5).long())


@pytest.mark.parametrize("name", sorted(MULTILABEL))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.long, torch.int32, torch.bool])
def test_any_dtype_holding_0_and_1_is_a_multi_hot_target(name, dtype, logits, target):
    loss = load(name, reduction="none")
    close(loss(logits, target.to(dtype)), loss(logits, target))


@pytest.mark.parametrize("name", sorted(MULTILABEL))
def test_multi_hot_targets_must_be_0_or_1_and_match_the_outputs(name, logits, target):
    loss = load(name)
    for bad in (target * 0.5, target + 1, torch.full_like(target, math.nan)):
        with pytest.raises(ValueError, match="other than 0 and 1.*multi-hot"):
            loss(logits, bad)
    with pytest.raises(ValueError, match="one output per label"):
        loss(logits, target[:, :3])


@pytest.mark.parametrize("name", sorted(MULTILABEL - {"zlpr"}))
def test_float_class_targets_are_still_refused(name, logits):
    with pytest.raises(TypeError, match="integer class indices.*target.long()"):
        load(name)(logits, torch.arange(N).float() % L + 0.5)


def test_a_multi_label_only_loss_refuses_class_indices(logits):
    with pytest.raises(TypeError, match="multi-hot"):
        ZLPRLoss()(logits, torch.arange(N) % L)


@pytest.mark.parametrize("name", ["ce", "focal", "ldam", "class_balanced", "poly1", "brier"])
def test_single_label_losses_refuse_multi_hot_targets(name, logits, target):
    with pytest.raises(TypeError, match="multi-hot.*losses_for_task"):
        load(name)(logits, target.long())


def test_pos_weight_needs_one_value_or_one_per_label():
    BCEWithLogitsLoss(pos_weight=[1.0] * L).check_task(Task.MULTILABEL, L)
    with pytest.raises(ConfigError, match="3 values.*5 output.*5 labels"):
        BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 3.0]).check_task(Task.MULTILABEL, L)


# --- agreement with references -------------------------------------------------------------------------
@pytest.mark.parametrize("pos_weight", [None, 2.5, [0.5, 1.0, 2.0, 3.0, 1.5]])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch_on_multi_hot_targets(logits, target, pos_weight, reduction):
    loss = BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float64)
    ref = F.binary_cross_entropy_with_logits(logits, target.double(), pos_weight=pw, reduction="none").sum(-1)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    close(loss(logits, target), ref)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_matches_torchvision_on_multi_hot_targets(logits, target, gamma, alpha):
    t = target.double()
    kw = {"alpha": -1 if alpha is None else alpha, "gamma": gamma}
    ref = sigmoid_focal_loss(logits, t, reduction="none", **kw).sum(-1)
    close(SigmoidFocalLoss(gamma=gamma, alpha=alpha, reduction="none")(logits, target), ref)
    z = logits.clone().requires_grad_()
    z2 = logits.clone().requires_grad_()
    SigmoidFocalLoss(gamma=gamma, alpha=alpha)(z, target).backward()
    (sigmoid_focal_loss(z2, t, reduction="sum", **kw) / N).backward()
    close(z.grad, z2.grad)


def asl_reference(z: torch.Tensor, t: torch.Tensor, gamma_pos: float, gamma_neg: float, clip: float):
    """Ridnik et al.'s ``AsymmetricLossOptimized`` per sample, written out in float64."""
    p = torch.sigmoid(z)
    xs_neg = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p  # 1 - p_m
    loss = t * torch.log(p) + (1 - t) * torch.log(xs_neg)
    pt = p * t + xs_neg * (1 - t)
    w = torch.pow(1 - pt, gamma_pos * t + gamma_neg * (1 - t))
    return -(loss * w).sum(-1)


@pytest.mark.parametrize(
    ("gamma_pos", "gamma_neg", "clip"), [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.5, 2.0, 0.0), (0.0, 0.5, 0.2)]
)
def test_asl_matches_the_authors_formula_on_multi_hot_targets(logits, target, gamma_pos, gamma_neg, clip):
    t = target.double()
    ref = asl_reference(logits, t, gamma_pos, gamma_neg, clip)
    loss = AsymmetricLoss(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="none")
    close(loss(logits, target), ref)
    z = logits.clone().requires_grad_()
    z2 = logits.clone().requires_grad_()
    loss(z, target).sum().backward()
    asl_reference(z2, t, gamma_pos, gamma_neg, clip).sum().backward()
    # the reference's gradient is 0 · ∞ where a negative's p_m = 0 with γ- < 1: the loss is flat there
    flat = (t == 0) & (torch.sigmoid(logits) <= clip)
    close(z.grad[~flat], z2.grad[~flat])
    assert (z.grad[flat] == 0).all()


def test_asl_without_focusing_or_margin_is_bce(logits, target):
    close(AsymmetricLoss(0.0, 0.0, 0.0)(logits, target), BCEWithLogitsLoss()(logits, target))


@pytest.mark.parametrize("beta", [0.0, 0.99, 0.9999])
def test_class_balanced_bce_weights_each_label(logits, target, beta):
    loss = ClassBalancedLoss(base="sigmoid", beta=beta, class_counts=COUNTS, reduction="none")
    n = torch.tensor(COUNTS, dtype=torch.float64).clamp_min(1.0)  # labels without positives count one
    w = (1 - beta) / (1 - beta**n) if beta > 0 else torch.ones(L, dtype=torch.float64)
    w = w / w.sum() * L
    t = target.double()
    bce = -(t * F.logsigmoid(logits) + (1 - t) * F.logsigmoid(-logits))
    close(loss(logits, target), (w * bce).sum(-1))
    close(w, effective_number_weights(torch.tensor(COUNTS), beta))
    focal = ClassBalancedLoss(
        base="sigmoid_focal", beta=beta, gamma=1.5, class_counts=COUNTS, reduction="none"
    )
    ref = sigmoid_focal_loss(logits, t, alpha=-1, gamma=1.5, reduction="none")
    close(focal(logits, target), (w * ref).sum(-1))


def test_class_balanced_bce_without_counts_is_bce(logits, target):
    loss = instantiate(OmegaConf.load(CONFIG_DIR / "loss" / "class_balanced_bce.yaml"))  # no counts
    close(loss(logits, target), BCEWithLogitsLoss()(logits, target))


def zlpr_reference(z: torch.Tensor, t: torch.Tensor) -> list[float]:
    """``log(1 + Σ_neg e^{s_i}) + log(1 + Σ_pos e^{-s_j})`` row by row, with ``math``."""
    out = []
    for scores, labels in zip(z.tolist(), t.tolist(), strict=True):
        neg = sum(math.exp(s) for s, y in zip(scores, labels, strict=True) if y == 0)
        pos = sum(math.exp(-s) for s, y in zip(scores, labels, strict=True) if y == 1)
        out.append(math.log(1 + neg) + math.log(1 + pos))
    return out


def test_zlpr_matches_the_formula(logits, target):
    ref = torch.tensor(zlpr_reference(logits, target), dtype=torch.float64)
    close(ZLPRLoss(reduction="none")(logits, target), ref)
    close(ZLPRLoss()(logits, target), ref.mean())
    close(ZLPRLoss(reduction="sum")(logits, target), ref.sum())


def test_zlpr_with_one_label_is_bce():
    z = torch.randn(8, 1, dtype=torch.float64)
    t = multi_hot(8, 1)
    close(ZLPRLoss()(z, t), BCEWithLogitsLoss()(z, t))  # log(1 + e^{∓s}) = softplus


# --- single-label behaviour is the multi-hot path on one-hot targets -----------------------------------
@pytest.mark.parametrize("name", ["bce", "sigmoid_focal", "asl"])
def test_class_indices_equal_their_one_hot_multi_hot_target(name, logits):
    loss = load(name, reduction="none")
    y = torch.arange(N) % L
    close(loss(logits, y), loss(logits, F.one_hot(y, L).float()))
    binary = logits[:, :1]
    close(loss(binary, y % 2), loss(binary, (y % 2).float().unsqueeze(-1)))


def test_class_balanced_single_label_weights_the_whole_sample(logits):
    y = torch.arange(N) % L
    loss = ClassBalancedLoss(base="sigmoid", class_counts=COUNTS, reduction="none")
    w = effective_number_weights(torch.tensor(COUNTS), 0.9999)
    close(loss(logits, y), w[y] * BCEWithLogitsLoss(reduction="none")(logits, y))


# --- gradients and extreme logits ----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64_on_multi_hot_targets(name, overrides, reduction):
    loss = load(name, **overrides, reduction=reduction)
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(6, L, generator=g, dtype=torch.float64) * 2).requires_grad_()
    t = multi_hot(6, L, seed=1)
    assert torch.autograd.gradcheck(lambda z: loss(z, t), (z,))


EXTREME = torch.tensor(
    [
        [1e4, -1e4, 1e4, -1e4, 0.0],
        [-1e4] * 5,
        [1e4] * 5,
        [30.0, -30.0, 90.0, -90.0, 1e-4],
        [-1e4, 1e4, 0, 5, -5],
    ]
)


@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_loss_and_gradients_for_extreme_logits(name, overrides, dtype):
    loss = load(name, **overrides)
    z = torch.cat([EXTREME, -EXTREME])
    for t in (torch.zeros_like(z), torch.ones_like(z), multi_hot(len(z), L, seed=2), (z > 0).float()):
        x = z.to(dtype).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is torch.bfloat16):
            value = loss(x, t)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value), f"{name}: loss {value}"
        assert torch.isfinite(x.grad).all(), f"{name}: gradient {x.grad}"
