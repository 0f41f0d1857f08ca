"""Plot each loss and its gradient against the margin (classification) or residual (regression).

    python scripts/loss_curves.py loss=[ce,focal,mse] out=docs/loss_curves.png
    python scripts/loss_curves.py loss=[focal,sigmoid_focal] focal.gamma=0.5 range=8

The curves come from the actual implementations, built from ``conf/loss/<name>.yaml`` (with any
``<name>.<param>=value`` overrides). Classification: two classes; softmax losses see logits
``[m/2, -m/2]`` with target 0, one-logit (sigmoid) losses the logit ``m`` with target 1, so ``m`` is the
margin of the correct class. Class-count losses get equal counts. Regression: output ``r``, target 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from lossbench.config import CONFIG_DIR, group_options  # noqa: E402
from lossbench.errors import ConfigError  # noqa: E402
from lossbench.losses import BenchLoss, Task  # noqa: E402

DEFAULT_LOSSES = [
    "ce",
    "focal",
    "poly1",
    "gce",
    "sce",
    "brier",
    "mse",
    "huber",
    "l1",
    "log_cosh",
    "cauchy",
    "barron",
]


def parse(argv: list[str]) -> tuple[list[str], dict[str, list[str]], Path, float]:
    """``loss=[a,b]``, ``out=PATH``, ``range=R`` and ``<loss>.<param>=value`` overrides."""
    losses, overrides, out, span = DEFAULT_LOSSES, {}, Path("loss_curves.png"), 6.0
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"expected key=value, got {arg!r}")
        if key == "loss":
            losses = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        elif key == "out":
            out = Path(value)
        elif key == "range":
            span = float(value)
        elif "." in key and key.split(".", 1)[0] in group_options("loss"):
            name, param = key.split(".", 1)
            overrides.setdefault(name, []).append(f"{param}={value}")
        else:
            raise ConfigError(
                f"unknown argument {arg!r}: use loss=[...], out=PATH, range=R or <loss>.<param>=value"
            )
    unknown = [n for n in losses if n not in group_options("loss")]
    if unknown:
        raise ConfigError(f"unknown loss {unknown}: choose from {', '.join(group_options('loss'))}")
    return losses, overrides, out, span


def build(name: str, overrides: list[str]) -> BenchLoss:
    cfg = OmegaConf.merge(
        OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), OmegaConf.from_dotlist(overrides)
    )
    cfg.reduction = "none"
    return instantiate(cfg)


def curve(loss: BenchLoss, x: torch.Tensor, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and its derivative at each margin / residual in ``x``."""
    x = x.clone().requires_grad_()
    if task is Task.CLASSIFICATION:
        if loss.num_outputs(task, 2) == 1:
            outputs, target = x.unsqueeze(-1), torch.ones(len(x), dtype=torch.long)
        else:
            outputs, target = torch.stack([x / 2, -x / 2], dim=-1), torch.zeros(len(x), dtype=torch.long)
    else:  # a distributional loss's further outputs (variance, quantile steps) stay at 0
        k = loss.num_outputs(task, None, 1)
        outputs = torch.cat([x.unsqueeze(-1), x.new_zeros(len(x), k - 1)], dim=-1)
        target = torch.zeros(len(x), 1, dtype=x.dtype)
    value = loss(outputs, target)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def plot(losses: list[str], overrides: dict[str, list[str]], out: Path, span: float = 6.0) -> Path:
    x = torch.linspace(-span, span, 601, dtype=torch.float64)
    curves = {}  # (name, task) -> (loss, gradient); losses serving both tasks appear in both columns
    for name in losses:
        loss = build(name, overrides.get(name, []))
        if not {Task.CLASSIFICATION, Task.REGRESSION} & set(loss.tasks):
            raise ConfigError(f"{name} serves multi-label data only: this plot draws single-label margins")
        for task in (Task.CLASSIFICATION, Task.REGRESSION):
            if task in loss.tasks:
                curves[name, task] = curve(loss, x, task)
    tasks = [t for t in (Task.CLASSIFICATION, Task.REGRESSION) if any(k[1] is t for k in curves)]
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 7), squeeze=False, sharex=True)
    for col, task in enumerate(tasks):
        ax_l, ax_g = axes[0, col], axes[1, col]
        for (name, t), (value, grad) in curves.items():
            if t is task:
                label = name + "".join(f" {o}" for o in overrides.get(name, []))
                ax_l.plot(x, value, label=label)
                ax_g.plot(x, grad, label=label)
        what = "margin m = z_y - z_other" if task is Task.CLASSIFICATION else "residual r = output - target"
        ax_l.set_title(f"{task.value}: loss")
        ax_g.set_title(f"{task.value}: d loss / d{what.split()[0]}")
        ax_g.set_xlabel(what)
        ax_l.set_ylim(-0.1 if task is Task.CLASSIFICATION else -0.5, 6 if task is Task.CLASSIFICATION else 8)
        ax_g.set_ylim(*((-2.5, 0.5) if task is Task.CLASSIFICATION else (-4, 4)))
        for ax in (ax_l, ax_g):
            ax.axvline(0, color="0.8", lw=0.8)
            ax.axhline(0, color="0.8", lw=0.8)
            ax.grid(alpha=0.3)
        ax_l.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        losses, overrides, out, span = parse(sys.argv[1:] if argv is None else argv)
        print(plot(losses, overrides, out, span))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
