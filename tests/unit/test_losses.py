"""Each loss against an independent reference: torch, torchvision, the papers' formulas and identities."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from lossbench.errors import ConfigError, LossTaskMismatchError
from lossbench.losses import (
    AsymmetricLoss,
    BalancedSoftmaxLoss,
    BarronLoss,
    BCEWithLogitsLoss,
    BrierLoss,
    CauchyLoss,
    ClassBalancedLoss,
    CrossEntropyLoss,
    FocalLoss,
    GCELoss,
    HuberLoss,
    L1Loss,
    LDAMLoss,
    LogCoshLoss,
    LogitAdjustedLoss,
    MSELoss,
    Poly1Loss,
    QuantileLoss,
    SCELoss,
    SigmoidFocalLoss,
    SmoothL1Loss,
    Task,
)
from lossbench.losses.long_tail import effective_number_weights

ATOL = 1e-10
N, C = 12, 5
COUNTS = [400, 120, 40, 9, 1]


def close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> None:
    torch.testing.assert_close(a, b, atol=atol, rtol=0.0)


@pytest.fixture
def logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, C, generator=g, dtype=torch.float64) * 3


@pytest.fixture
def target() -> torch.Tensor:
    return torch.arange(N) % C


@pytest.fixture
def regression() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    out = torch.randn(N, 3, generator=g, dtype=torch.float64) * 2
    return out, torch.randn(N, 3, generator=g, dtype=torch.float64)


def ce(z, y, **kw):
    return F.cross_entropy(z, y, reduction="none", **kw)


# --- agreement with torch / torchvision ---------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch_with_weights_smoothing_ignore_index(logits, target, reduction):
    y = target.clone()
    y[3] = -1
    w = [0.5, 1.0, 2.0, 1.5, 0.25]
    loss = CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=-1, reduction=reduction)
    ref = F.cross_entropy(
        logits, y, weight=torch.tensor(w, dtype=torch.float64), label_smoothing=0.1, ignore_index=-1,
        reduction=reduction,
    )  # fmt: skip
    close(loss(logits, y), ref)


def test_cross_entropy_with_a_class_weighing_zero_matches_torch_and_a_batch_of_it_gives_zero(logits, target):
    """A class weight may be 0; a batch of only that class has no weight for torch's mean to divide by
    (0/0: NaN, which stopped the run as a divergence)."""
    w = [0.0, 1.0, 2.0, 1.5, 0.25]
    y = target.clone()
    y[3] = -1
    loss = CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=-1)
    out = logits.clone().requires_grad_()
    value = loss(out, y)
    ref_out = logits.clone().requires_grad_()
    ref = F.cross_entropy(ref_out, y, weight=torch.tensor(w, dtype=torch.float64), label_smoothing=0.1,
                          ignore_index=-1)  # fmt: skip
    close(value, ref)
    value.backward()
    ref.backward()
    close(out.grad, ref_out.grad)
    only_zero = logits[:4].clone().requires_grad_()
    value = loss(only_zero, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert value.item() == 0.0 and torch.equal(only_zero.grad, torch.zeros_like(only_zero))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_matches_torch_one_vs_rest_and_binary(logits, target, reduction):
    pw = [1.0, 2.0, 0.5, 3.0, 1.0]
    onehot = F.one_hot(target, C).double()
    ref = F.binary_cross_entropy_with_logits(logits, onehot, pos_weight=torch.tensor(pw, dtype=torch.float64),
                                             reduction="none").sum(-1)  # fmt: skip
    got = BCEWithLogitsLoss(pos_weight=pw, reduction=reduction)(logits, target)
    close(got, ref.mean() if reduction == "mean" else ref.sum())
    z1, y1 = logits[:, :1], target % 2
    ref1 = F.binary_cross_entropy_with_logits(z1[:, 0], y1.double(), reduction=reduction)
    close(BCEWithLogitsLoss(reduction=reduction)(z1, y1), ref1)


@pytest.mark.parametrize(
    ("loss", "fn"),
    [
        (MSELoss(), F.mse_loss),
        (L1Loss(), F.l1_loss),
        (HuberLoss(delta=0.7), lambda o, t, reduction: F.huber_loss(o, t, delta=0.7, reduction=reduction)),
        (
            SmoothL1Loss(beta=0.3),
            lambda o, t, reduction: F.smooth_l1_loss(o, t, beta=0.3, reduction=reduction),
        ),
    ],
)
def test_regression_losses_match_torch(regression, loss, fn):
    out, t = regression
    close(loss(out, t), fn(out, t, reduction="mean"))
    loss.reduction = "sum"
    close(loss(out, t), fn(out, t, reduction="sum") / out.shape[-1])  # sum over samples of the target mean
    loss.reduction = "none"
    close(loss(out, t), fn(out, t, reduction="none").mean(-1))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("classes", [1, C])
def test_sigmoid_focal_matches_torchvision(logits, target, gamma, alpha, classes):
    z, y = logits[:, :classes], (target if classes > 1 else target % 2)
    t = F.one_hot(y, classes).double() if classes > 1 else y.double().unsqueeze(-1)
    ref = sigmoid_focal_loss(z, t, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="none")
    loss = SigmoidFocalLoss(gamma=gamma, alpha=alpha, reduction="none")
    close(loss(z, y), ref.sum(-1))
    loss.reduction = "mean"
    close(loss(z, y), ref.sum() / len(y))
    # gradients too (the loss has a hand-written backward)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    loss(z1, y).backward()
    (
        sigmoid_focal_loss(z2, t, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="sum") / len(y)
    ).backward()
    close(z1.grad, z2.grad)


# --- identities --------------------------------------------------------------------------------------
def test_focal_gamma_zero_is_cross_entropy(logits, target):
    close(FocalLoss(gamma=0.0)(logits, target), F.cross_entropy(logits, target))


def test_focal_matches_its_formula_with_per_class_alpha(logits, target):
    alpha = [0.1, 0.2, 0.3, 0.4, 0.5]
    p = logits.softmax(-1).gather(-1, target[:, None])[:, 0]
    ref = -torch.tensor(alpha, dtype=torch.float64)[target] * (1 - p) ** 2 * torch.log(p)
    close(FocalLoss(gamma=2.0, alpha=alpha, reduction="none")(logits, target), ref)


@pytest.mark.parametrize(
    ("base", "reference"),
    [
        ("ce", CrossEntropyLoss()),
        ("focal", FocalLoss(gamma=1.5)),
        ("sigmoid", BCEWithLogitsLoss()),
        ("sigmoid_focal", SigmoidFocalLoss(gamma=1.5, alpha=None)),
    ],
)
def test_class_balanced_beta_zero_is_the_unweighted_base(logits, target, base, reference):
    loss = ClassBalancedLoss(base=base, beta=0.0, gamma=1.5, class_counts=COUNTS)
    close(loss(logits, target), reference(logits, target))


def test_class_balanced_weights_follow_cui_et_al(logits, target):
    beta = 0.999
    eff = [(1 - beta**n) / (1 - beta) for n in COUNTS]  # effective numbers, as in the paper's code
    w = torch.tensor([1 / e for e in eff], dtype=torch.float64)
    w = w / w.sum() * C
    close(effective_number_weights(torch.tensor(COUNTS), beta).double(), w, atol=1e-6)
    loss = ClassBalancedLoss(base="ce", beta=beta, class_counts=COUNTS, reduction="none")
    close(loss(logits, target), w[target] * ce(logits, target), atol=1e-6)
    assert w[-1] > w[0], "the rare class weighs more"


def test_poly1_epsilon_zero_is_cross_entropy_and_formula(logits, target):
    close(Poly1Loss(epsilon=0.0)(logits, target), F.cross_entropy(logits, target))
    p = logits.softmax(-1).gather(-1, target[:, None])[:, 0]
    close(Poly1Loss(epsilon=2.0, reduction="none")(logits, target), ce(logits, target) + 2.0 * (1 - p))


def test_gce_tends_to_cross_entropy_and_is_mae_at_q_one(logits, target):
    close(GCELoss(q=1e-7)(logits, target), F.cross_entropy(logits, target), atol=1e-5)
    p = logits.softmax(-1).gather(-1, target[:, None])[:, 0]
    close(GCELoss(q=1.0, reduction="none")(logits, target), 1 - p)
    close(GCELoss(q=0.7, reduction="none")(logits, target), (1 - p**0.7) / 0.7)


def test_sce_matches_the_authors_form(logits, target):
    p = logits.softmax(-1)
    onehot = F.one_hot(target, C).double()
    a = math.log(1e-4)
    rce = -(p * torch.log(onehot.clamp(min=1e-4, max=1.0))).sum(-1)
    got = SCELoss(alpha=0.1, beta=1.0, log_zero=a, reduction="none")(logits, target)
    close(got, 0.1 * ce(logits, target) + rce)


def test_logit_adjusted_tau_zero_is_ce_and_formula(logits, target):
    close(LogitAdjustedLoss(tau=0.0, class_counts=COUNTS)(logits, target), F.cross_entropy(logits, target))
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    ref = ce(logits + 0.5 * prior.log(), target)
    close(LogitAdjustedLoss(tau=0.5, class_counts=COUNTS, reduction="none")(logits, target), ref, atol=1e-6)
    close(LogitAdjustedLoss(tau=1.0)(logits, target), F.cross_entropy(logits, target))  # no counts: uniform


def test_balanced_softmax_formula(logits, target):
    n = torch.tensor(COUNTS, dtype=torch.float64)
    z = logits + n.log()
    ref = -(n[target].log() + logits.gather(-1, target[:, None])[:, 0]) + torch.logsumexp(z, -1)
    close(BalancedSoftmaxLoss(class_counts=COUNTS, reduction="none")(logits, target), ref, atol=1e-6)


def test_ldam_margins_and_drw_schedule(logits, target):
    loss = LDAMLoss(max_m=0.5, s=10.0, drw_epoch=2, drw_beta=0.999, class_counts=COUNTS, reduction="mean")
    inv = torch.tensor(COUNTS, dtype=torch.float64) ** -0.25
    m = inv * 0.5 / inv.max()
    close(loss.margins.double(), m, atol=1e-7)
    shifted = 10.0 * (logits - F.one_hot(target, C) * m[target, None])
    loss.on_train_epoch_start(1, 10)
    close(loss(logits, target), F.cross_entropy(shifted, target), atol=1e-6)
    loss.on_train_epoch_start(2, 10)
    w = effective_number_weights(torch.tensor(COUNTS), 0.999).double()
    close(loss(logits, target), F.cross_entropy(shifted, target, weight=w), atol=1e-6)
    close(LDAMLoss(max_m=0.0, s=1.0, class_counts=COUNTS)(logits, target), F.cross_entropy(logits, target))


def test_ldam_keeps_its_re_weighting_in_its_checkpoint(logits, target):
    """A checkpoint tested later (lossbench-eval) weighs its loss as its epoch did; one written without the
    state loads with re-weighting off."""
    trained = LDAMLoss(drw_epoch=2, class_counts=COUNTS)
    trained.on_train_epoch_start(3, 10)
    tested = LDAMLoss(drw_epoch=2, class_counts=COUNTS)
    tested.load_state_dict(trained.state_dict())
    close(tested(logits, target), trained(logits, target))
    assert tested.drw_active
    before = {k: v for k, v in trained.state_dict().items() if k != "drw_state"}
    tested.load_state_dict(before)
    assert not tested.drw_active


def test_an_ldam_checkpoint_without_its_re_weighting_state_fits_the_model(tmp_path):
    """Written before LDAM kept ``drw_state``: lossbench-eval and resume=true take it (re-weighting off)."""
    from lossbench.checkpointing import fitting_checkpoint

    module = torch.nn.Module()
    module.model, module.loss = torch.nn.Linear(3, 5), LDAMLoss(drw_epoch=1, class_counts=COUNTS)
    state = {k: v for k, v in module.state_dict().items() if k != "loss.drw_state"}
    torch.save({"state_dict": state, "epoch": 1, "global_step": 10}, tmp_path / "old.ckpt")
    assert fitting_checkpoint(str(tmp_path / "old.ckpt"), module) == str(tmp_path / "old.ckpt")
    module.load_state_dict(state)
    assert not module.loss.drw_active


def test_asl_reduces_to_bce_and_matches_the_authors_form(logits, target):
    plain = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    close(plain(logits, target), BCEWithLogitsLoss()(logits, target))
    # the authors' AsymmetricLoss (eps-clamped logs are inactive for these moderate logits)
    t = F.one_hot(target, C).double()
    p = torch.sigmoid(logits)
    p_m = (p - 0.05).clamp(min=0)
    loss = t * torch.log(p) + (1 - t) * torch.log(1 - p_m)
    pt = p * t + (1 - p_m) * (1 - t)  # the authors' xs_neg = 1 - p_m
    gamma = 1.0 * t + 4.0 * (1 - t)
    ref = -(loss * torch.pow(1 - pt, gamma)).sum(-1)
    close(AsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.05, reduction="none")(logits, target), ref)


def test_brier_formula(logits, target):
    ref = ((logits.softmax(-1) - F.one_hot(target, C)) ** 2).sum(-1)
    close(BrierLoss(reduction="none")(logits, target), ref)


def test_huber_limits():
    small = torch.full((4, 1), 1e-4, dtype=torch.float64)
    zero = torch.zeros_like(small)
    close(HuberLoss(delta=1.0)(small, zero), F.mse_loss(small, zero) / 2)
    big = torch.full((4, 1), 1e8, dtype=torch.float64)
    assert HuberLoss(delta=2.0)(big, zero).item() / (2.0 * 1e8) == pytest.approx(1.0, rel=1e-7)


def test_smooth_l1_is_scaled_huber(regression):
    out, t = regression
    close(SmoothL1Loss(beta=0.5)(out, t), HuberLoss(delta=0.5)(out, t) / 0.5)


def test_log_cosh_quantile_cauchy(regression):
    out, t = regression
    r = out - t
    close(LogCoshLoss(reduction="none")(out, t), torch.log(torch.cosh(r)).mean(-1))
    close(QuantileLoss(q=0.5)(out, t), 0.5 * F.l1_loss(out, t))
    u = t - out
    close(QuantileLoss(q=0.9, reduction="none")(out, t), torch.where(u > 0, 0.9 * u, -0.1 * u).mean(-1))
    close(CauchyLoss(scale=2.0, reduction="none")(out, t), (2.0 * torch.log1p((r / 2) ** 2)).mean(-1))
    huge = torch.full((2, 1), 1e200, dtype=torch.float64)
    assert torch.isfinite(LogCoshLoss()(huge, torch.zeros_like(huge)))


@pytest.mark.parametrize(
    ("alpha", "rho"),
    [
        (2.0, lambda x: 0.5 * x**2),
        (0.0, lambda x: torch.log1p(0.5 * x**2)),
        (1.0, lambda x: torch.sqrt(x**2 + 1) - 1),
        (-2.0, lambda x: 2 * x**2 / (x**2 + 4)),
        (-math.inf, lambda x: 1 - torch.exp(-0.5 * x**2)),
        (4.0, lambda x: 0.5 * ((x**2 / 2 + 1) ** 2 - 1)),
    ],
)
def test_barron_special_cases(regression, alpha, rho):
    out, t = regression
    x = (out - t) / 1.5
    close(BarronLoss(alpha=alpha, scale=1.5, reduction="none")(out, t), rho(x).mean(-1))


def test_barron_is_continuous_in_alpha(regression):
    out, t = regression
    for a in (2.0, 0.0):
        for eps in (1e-9, -1e-9):
            close(BarronLoss(alpha=a + eps)(out, t), BarronLoss(alpha=a)(out, t), atol=1e-6)
    close(BarronLoss(alpha=-1e8)(out, t), BarronLoss(alpha=-math.inf)(out, t), atol=1e-6)


@pytest.mark.parametrize(("alpha", "slope"), [(1.0, 1.0), (0.0, 0.0), (1.5, None), (-2.0, 0.0)])
def test_barron_at_residuals_whose_square_overflows_float32(alpha, slope):
    """|r| = 1e20: r² overflows float32; the loss stays finite where its value is (alpha <= 1 grows no faster
    than |r|) and the gradient keeps its sign and size (1 at alpha = 1, a vanishing 2/r at alpha = 0)."""
    out = torch.tensor([[1e20], [-1e20], [3.0]], requires_grad=True)
    value = BarronLoss(alpha=alpha, reduction="sum")(out, torch.zeros(3, 1))
    value.backward()
    reference = BarronLoss(alpha=alpha, reduction="sum")(out[2:].double().detach(), torch.zeros(1, 1))
    assert torch.isfinite(value) and torch.isfinite(out.grad).all()
    assert out.grad[0, 0] >= 0 >= out.grad[1, 0]
    if slope is not None:
        torch.testing.assert_close(out.grad[:2, 0], torch.tensor([slope, -slope]), atol=1e-6, rtol=1e-5)
    assert value >= reference.float()


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_cauchy_at_residuals_whose_square_overflows_float32(scale):
    """(r/c)² overflows float32 beyond |r/c| ≈ 1.8e19: the loss and its gradient c²r / (c² + r²) stay
    equal to their float64 closed forms."""
    r = torch.tensor([[3e19], [-2e17], [1e30], [0.5]], dtype=torch.float64)
    out = r.float().requires_grad_()
    CauchyLoss(scale=scale, reduction="sum")(out, torch.zeros(4, 1)).backward()
    value = CauchyLoss(scale=scale, reduction="none")(out.detach(), torch.zeros(4, 1))
    c = scale
    torch.testing.assert_close(
        value.double(), (0.5 * c * c * torch.log1p((r / c) ** 2))[:, 0], rtol=1e-5, atol=0
    )
    torch.testing.assert_close(out.grad.double(), c * c * r / (c * c + r * r), rtol=1e-5, atol=0)


# --- reductions and the task contract ----------------------------------------------------------------
CLASSIFICATION = [
    FocalLoss(), SigmoidFocalLoss(), ClassBalancedLoss(class_counts=COUNTS), LDAMLoss(class_counts=COUNTS),
    LogitAdjustedLoss(class_counts=COUNTS), BalancedSoftmaxLoss(class_counts=COUNTS), Poly1Loss(), GCELoss(),
    SCELoss(), AsymmetricLoss(), BrierLoss(), BCEWithLogitsLoss(),
]  # fmt: skip
REGRESSION = [L1Loss(), SmoothL1Loss(), LogCoshLoss(), QuantileLoss(), CauchyLoss(), BarronLoss()]


@pytest.mark.parametrize("loss", CLASSIFICATION, ids=lambda x: type(x).__name__)
def test_classification_reductions_and_contract(loss, logits, target):
    loss.reduction = "none"
    per = loss(logits, target)
    assert per.shape == (N,)
    loss.reduction = "sum"
    close(loss(logits, target), per.sum())
    loss.reduction = "mean"
    close(loss(logits, target), per.mean())
    probs = loss.probabilities(logits)
    assert probs.shape == (N, C) and torch.allclose(probs.sum(-1), torch.ones(N))
    assert loss.predictions(logits).equal(logits.argmax(-1))
    with pytest.raises(LossTaskMismatchError):
        loss.check_task(Task.REGRESSION)


def test_sigmoid_class_probabilities_hold_at_extreme_logits():
    """Normalised sigmoids in float32 underflowed: logits of -90, -95, -100 gave [0, 0, 0], and one logit
    of 20 gave class 0 the probability 0 (sigma(-20) = 2.1e-9); subtracting a logsumexp of -1e4 in float32
    lost the digits that tell the classes apart (0.2499 for a quarter, a sum off by 1e-2 at -1e6)."""
    loss = BCEWithLogitsLoss()
    z = torch.tensor(
        [
            [-90.0, -95.0, -100.0],
            [-1e4, -1e4, -1e4],
            [-1e6, -1e6, -1e6],
            [-1e4, -1e4 - 1, -1e4 + 2],
            [3.0, -1.0, 0.5],
        ]
    )
    expected = F.logsigmoid(z.double())
    expected = (expected - expected.logsumexp(-1, keepdim=True)).exp()
    torch.testing.assert_close(loss.probabilities(z).double(), expected, rtol=1e-6, atol=1e-7)
    one = torch.tensor([[20.0], [-20.0], [0.0]])
    binary = loss.probabilities(one)
    torch.testing.assert_close(binary[:, 0], torch.sigmoid(-one[:, 0]), rtol=1e-6, atol=0)
    assert binary[0, 0] > 0 and torch.allclose(binary.sum(-1), torch.ones(3))


@pytest.mark.parametrize("loss", REGRESSION, ids=lambda x: type(x).__name__)
def test_regression_only_contract(loss, regression):
    out, t = regression
    loss.reduction = "none"
    assert loss(out, t).shape == (N,)
    loss.reduction = "mean"
    with pytest.raises(LossTaskMismatchError):
        loss.check_task(Task.CLASSIFICATION, 10)
    loss.check_task(Task.REGRESSION)


def test_sigmoid_losses_use_one_logit_on_binary_data():
    for loss in (
        SigmoidFocalLoss(),
        AsymmetricLoss(),
        ClassBalancedLoss(base="sigmoid"),
        BCEWithLogitsLoss(),
    ):
        assert loss.num_outputs(Task.CLASSIFICATION, 2) == 1
        assert loss.num_outputs(Task.CLASSIFICATION, 10) == 10
        z = torch.tensor([[2.0], [-1.0]])
        assert loss.predictions(z).tolist() == [1, 0]
        assert torch.allclose(loss.probabilities(z).sum(-1), torch.ones(2))
    assert ClassBalancedLoss(base="focal").num_outputs(Task.CLASSIFICATION, 2) == 2


def test_class_counts_must_match_the_classes():
    with pytest.raises(ConfigError, match="class_counts"):
        LDAMLoss(class_counts=[10, 5]).check_task(Task.CLASSIFICATION, 3)
    with pytest.raises(ConfigError, match="class_counts"):
        LogitAdjustedLoss(class_counts=[10, -1])


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), *CLASSIFICATION], ids=lambda x: type(x).__name__)
def test_float_class_targets_are_refused_not_truncated(loss, logits, target):
    with pytest.raises(TypeError, match="integer class indices.*target.long()"):
        loss(logits, target.float() + 0.5)


@pytest.mark.parametrize("loss", [*REGRESSION, MSELoss(), HuberLoss()], ids=lambda x: type(x).__name__)
def test_one_dimensional_regression_outputs_are_one_target(loss, regression):
    out, t = regression
    flat = out[:, 0].detach().clone().requires_grad_()
    column = flat.detach().clone().unsqueeze(1).requires_grad_()
    close(loss(flat, t[:, 0]), loss(column, t[:, :1]))
    loss(flat, t[:, 0]).backward()
    loss(column, t[:, :1]).backward()
    close(flat.grad, column.grad[:, 0])
    with pytest.raises(ValueError, match="one output per target column"):
        loss(flat, t)


def test_hyper_parameters_that_cannot_train_are_refused():
    with pytest.raises(ConfigError, match="alpha='abc' has the wrong type"):
        BarronLoss(alpha="abc")
    with pytest.raises(ConfigError, match="loss 0 for every sample"):
        SCELoss(alpha=0.0, beta=0.0)
    SCELoss(alpha=0.0, beta=1.0)  # reverse cross-entropy alone is a loss


def test_log_cosh_keeps_its_value_for_small_residuals_in_float32():
    """``|r| + softplus(-2|r|) - log 2`` cancels near 0: it gave 0 at r = 1e-4 (log cosh = 5e-9)."""
    r = torch.tensor([1e-4, 3e-4, 1e-3, 0.1, 0.3, 1.0, 10.0, 19.99, 20.01, 1e4])
    got = LogCoshLoss(reduction="none")(r.unsqueeze(-1), torch.zeros(len(r), 1))
    exact = [math.log(math.cosh(v)) if v < 20 else v - math.log(2) for v in r.double().tolist()]
    expected = torch.tensor(exact, dtype=torch.float64)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=0)


def test_a_regression_target_of_another_layout_is_refused_not_misaligned():
    """A transposed ``[T, N]`` target has as many values as ``[N, T]`` outputs: reshaped, it paired each
    output with another sample's target."""
    out = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="do not match"):
        L1Loss()(out, torch.zeros(3, 4))
    assert L1Loss()(out, torch.zeros(4, 3)) == 0 and L1Loss()(out[:, :1], torch.zeros(4)) == 0


def test_asl_on_class_indices_keeps_the_other_classes_terms_beside_a_huge_logit():
    """Summing every negative term and subtracting the target's cancelled them: 0.0 instead of 1.36e-4."""
    z = torch.tensor([[1e4, -10.0, -10.0, -10.0]])
    for gamma_neg in (0.0, 4.0):
        loss = AsymmetricLoss(gamma_neg=gamma_neg, clip=0.0, reduction="none")
        multi_hot = loss(z, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        assert multi_hot.item() > 0 and loss(z, torch.tensor([0])).item() == pytest.approx(
            multi_hot.item(), rel=1e-5
        )
    assert multi_hot.item() == pytest.approx(
        3 * torch.sigmoid(torch.tensor(-10.0)).item() ** 4 * math.log1p(math.exp(-10)), rel=1e-3
    )
    plain = AsymmetricLoss(gamma_neg=0.0, clip=0.0, reduction="none")(z, torch.tensor([0]))
    assert plain.item() == pytest.approx(3 * math.log1p(math.exp(-10.0)), rel=1e-5)
