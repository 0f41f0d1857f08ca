"""What a data set's training split looks like, as the shortlist needs it: task, sizes, class imbalance,
an estimate of the label-noise rate, the share of outlying regression targets. Each figure says how it
was estimated (:attr:`Profile.how`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lossbench.task import Task

#: the most training samples the noise estimate's baseline is fitted on (a seeded subsample beyond)
NOISE_SAMPLES = 10_000
#: a robust z-score above this marks an outlying target (Iglewicz & Hoaglin 1993)
OUTLIER_Z = 3.5


@dataclass
class Profile:
    """The training split's figures; ``None`` where a figure does not apply to the task."""

    task: str
    n_train: int
    n_val: int | None = None
    n_test: int | None = None
    num_classes: int | None = None
    class_counts: list[int] | None = None
    imbalance_ratio: float | None = None
    head_share: float | None = None
    tail_share: float | None = None
    noise_rate: float | None = None
    outlier_share: float | None = None
    how: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The profile as printed: one figure per line, with how it was estimated."""
        out = [
            f"task: {self.task}, {self.n_train} training samples"
            + (f" ({self.n_val} val, {self.n_test} test)" if self.n_val is not None else "")
        ]
        if self.num_classes is not None:
            out.append(
                f"classes: {self.num_classes}"
                if self.task == Task.CLASSIFICATION.value
                else f"labels: {self.num_classes}"
            )
        for key, label in (
            ("imbalance_ratio", "imbalance ratio"),
            ("head_share", "head share"),
            ("tail_share", "tail share"),
            ("noise_rate", "estimated label noise"),
            ("outlier_share", "outlying targets"),
        ):
            value = getattr(self, key)
            if value is not None:
                out.append(f"{label}: {value:.3g} — {self.how.get(key, '')}")
            elif key in self.how:
                out.append(f"{label}: not estimated — {self.how[key]}")
        return out


def training_arrays(
    dm: Any, inputs: bool, limit: int = NOISE_SAMPLES
) -> tuple[np.ndarray | None, np.ndarray]:
    """The training split as NumPy: an in-memory module's tensors (inputs flattened, when ``inputs``),
    else up to ``limit`` samples read through its ``train_dataloader()``."""
    splits = getattr(dm, "splits", None)
    if isinstance(splits, dict) and isinstance(splits.get("train"), tuple):
        x, y = splits["train"]
        return (x.reshape(len(x), -1).float().numpy() if inputs else None), y.numpy()
    xs, ys, n = [], [], 0
    for batch in dm.train_dataloader():
        x, y = batch[0], batch[1]
        if inputs:
            xs.append(x.reshape(len(x), -1).float().cpu().numpy())
        ys.append(y.cpu().numpy())
        n += len(y)
        if n >= limit:
            break
    return (np.concatenate(xs) if inputs else None), np.concatenate(ys)


def split_sizes(dm: Any) -> tuple[int | None, int | None]:
    splits = getattr(dm, "splits", None)
    if isinstance(splits, dict) and "val" in splits and "test" in splits:
        return len(splits["val"][1]), len(splits["test"][1])
    return None, None


def head_tail_shares(counts: np.ndarray) -> tuple[float, float]:
    """Shares of the training samples in the most and in the least frequent third of the classes."""
    ordered = np.sort(counts)[::-1]
    third = max(1, len(ordered) // 3)
    total = max(ordered.sum(), 1)
    return float(ordered[:third].sum() / total), float(ordered[-third:].sum() / total)


def noise_rate(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float | None, str]:
    """Confident learning's estimate of the share of wrong training labels (Northcutt et al., JAIR 2021):
    ``1 - trace(Q)`` of cleanlab's estimated joint ``Q`` of given and true labels, from out-of-fold
    probabilities of a logistic regression on the standardised inputs."""
    from cleanlab.count import estimate_joint
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    if len(y) > NOISE_SAMPLES:
        keep = np.sort(rng.choice(len(y), NOISE_SAMPLES, replace=False))
        x, y = x[keep], y[keep]
    classes, y = np.unique(y, return_inverse=True)
    folds = min(5, int(np.bincount(y).min()))
    if len(classes) < 2 or folds < 2:
        return None, "every class needs at least 2 training samples for out-of-fold probabilities"
    steps: list[Any] = [StandardScaler()]
    if x.shape[1] > 256:
        steps.append(PCA(n_components=128, random_state=seed))
    model = make_pipeline(*steps, LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    joint = estimate_joint(labels=y, pred_probs=probs)
    how = (
        f"confident learning (Northcutt et al. 2021; cleanlab's estimate_joint) on {folds}-fold out-of-fold "
        f"probabilities of a logistic regression, {len(y)} training samples"
    )
    return float(max(0.0, 1.0 - np.trace(joint))), how


def outlier_share(y: np.ndarray) -> float:
    """Share of training rows with a target whose robust z-score ``|y - median| / (1.4826 MAD)`` exceeds
    :data:`OUTLIER_Z` in some column (a column without spread has none)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    median = np.median(y, axis=0)
    mad = 1.4826 * np.median(np.abs(y - median), axis=0)
    z = np.abs(y - median) / np.where(mad > 0, mad, np.inf)
    return float(np.mean((z > OUTLIER_Z).any(axis=1)))


def profile(dm: Any, seed: int = 0) -> Profile:
    """The :class:`Profile` of ``dm``'s training split (``setup("fit")`` has run)."""
    task = Task(dm.task)
    x, y = training_arrays(dm, inputs=task is Task.CLASSIFICATION)
    n_val, n_test = split_sizes(dm)
    counts = None if dm.class_counts is None else np.asarray(dm.class_counts, dtype=np.int64)
    n_train = int(counts.sum()) if task is Task.CLASSIFICATION and counts is not None else len(y)
    p = Profile(task=task.value, n_train=n_train, n_val=n_val, n_test=n_test, num_classes=dm.num_classes)
    if task in (Task.CLASSIFICATION, Task.MULTILABEL):
        p.class_counts = counts.tolist()
        seen = counts[counts > 0]
        p.imbalance_ratio = float(seen.max() / seen.min()) if len(seen) else None
        what = "class" if task is Task.CLASSIFICATION else "label's positives"
        p.how["imbalance_ratio"] = f"largest over smallest training {what} count"
        p.head_share, p.tail_share = head_tail_shares(counts)
        unit = "samples" if task is Task.CLASSIFICATION else "label positives"
        p.how["head_share"] = f"share of the training {unit} in the most frequent third of the classes"
        p.how["tail_share"] = f"share of the training {unit} in the least frequent third of the classes"
    if task is Task.CLASSIFICATION:
        p.noise_rate, p.how["noise_rate"] = noise_rate(x, y.astype(np.int64), seed)
    elif task is Task.MULTILABEL:
        p.how["noise_rate"] = "confident learning is estimated for single-label classes only"
    else:
        p.outlier_share = outlier_share(y)
        p.how["outlier_share"] = f"training rows with a target's robust z-score (median, MAD) > {OUTLIER_Z}"
    return p
