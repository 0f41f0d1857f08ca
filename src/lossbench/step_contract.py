"""A user's own loss or model, checked against the loss's task contract before training.

Every loss declares how many outputs it needs (``num_outputs``), what it gives for them (a number to
minimise) and how its outputs are scored (``probabilities``, ``predictions``; see
:class:`lossbench.losses.base.BenchLoss`). lossbench's own losses and models keep it, and their tests check
them; a loss or model from elsewhere that breaks it would fail in the first step with a shape error that
names neither, or, worse, train and report wrong metrics (probabilities that do not sum to 1 give a wrong
NLL and ECE). :func:`check_first_step` runs the model once on two all-zero inputs of the data's shape, in
evaluation mode without gradients (no random draw, no statistics updated), and names what breaks it.
"""

from __future__ import annotations

from typing import Any

import torch

from lossbench.batch_contract import is_external
from lossbench.errors import ConfigError
from lossbench.task import Task


def check_first_step(module: Any, task: Task, num_classes: Any, num_targets: Any, input_shape: Any) -> None:
    """Raise a :class:`ConfigError` naming what ``module``'s model and loss (one of them from outside
    lossbench) get wrong of the loss's contract, on two all-zero inputs of ``input_shape``."""
    loss, model = module.loss, module.model
    if not (is_external(loss) or is_external(model)):
        return
    task = Task(task)
    width = loss.num_outputs(task, num_classes, num_targets or 1)
    x = torch.zeros(2, *input_shape)
    y = {
        Task.CLASSIFICATION: torch.zeros(2, dtype=torch.long),
        Task.MULTILABEL: torch.zeros(2, num_classes or 1),
    }.get(task, torch.zeros(2, num_targets or 1))
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(x)
            value = loss(outputs, y) if is_external(loss) else None
            problems = output_problems(loss, task, outputs, width, num_classes)
    except Exception:  # noqa: BLE001 - the first step raises it again, with its own traceback
        return
    finally:
        model.train(training)
    if value is not None and (not isinstance(value, torch.Tensor) or value.ndim != 0):
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        problems.insert(0, f"the loss gives {shape}, not one number to minimise (reduce it, e.g. .mean())")
    if problems:
        names = f"loss {type(loss).__module__}.{type(loss).__qualname__}"
        names += f", model {type(model).__module__}.{type(model).__qualname__}"
        raise ConfigError(
            f"{names}: on an input of the data's shape: {'; '.join(problems)}. A loss's outputs and scores "
            "follow lossbench.losses.base.BenchLoss (num_outputs, probabilities, predictions); a model gives "
            "num_outputs columns"
        )


def output_problems(loss: Any, task: Task, outputs: Any, width: int, num_classes: Any) -> list[str]:
    """What of the model's ``outputs`` (for two samples) and the loss's scores of them breaks the contract."""
    one_column = isinstance(outputs, torch.Tensor) and tuple(outputs.shape) == (2,) and width == 1
    if task is Task.REGRESSION and one_column:  # [N] is [N, 1] to a regression loss (targets.as_columns)
        return []
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2 or tuple(outputs.shape) != (2, width):
        shape = list(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        return [f"the model gives outputs {shape}, the loss needs [B, {width}] (loss.num_outputs)"]
    if task is Task.REGRESSION:
        return []
    problems = []
    if task is Task.MULTILABEL:
        probs, preds = loss.label_probabilities(outputs), loss.label_predictions(outputs)
    else:
        probs, preds = loss.probabilities(outputs), loss.predictions(outputs)
    if tuple(probs.shape) != (2, num_classes):
        problems.append(f"probabilities of shape {list(probs.shape)}, not [B, {num_classes}]")
    elif not bool(((probs >= 0) & (probs <= 1)).all()):
        problems.append("probabilities outside [0, 1]")
    elif task is Task.CLASSIFICATION and not torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-3):
        problems.append(f"class probabilities that sum to {probs.sum(-1)[0].item():.3g}, not 1")
    expected = [2] if task is Task.CLASSIFICATION else [2, num_classes]
    if list(preds.shape) != expected or preds.is_floating_point():
        what = "class indices" if task is Task.CLASSIFICATION else "0/1 labels"
        problems.append(
            f"predictions {preds.dtype} {list(preds.shape)}, not {what} {expected} of an integer dtype"
        )
    elif not bool(((preds >= 0) & (preds < (num_classes if task is Task.CLASSIFICATION else 2))).all()):
        problems.append("predictions outside the classes")
    return problems
