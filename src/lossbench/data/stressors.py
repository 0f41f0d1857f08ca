"""Controlled stress tests applied to the training split only: long-tailed imbalance, label noise, outliers.

Pure functions on index arrays and targets (NumPy), each seeded by a ``numpy.random.Generator`` that the
data module derives from ``data_seed`` alone, so every loss and every training ``seed`` sees exactly the
same stressed training set. Validation and test splits are never passed through them.

Conventions (the choices the literature leaves open, fixed here):

* **Imbalance** — the long-tailed exponential profile of Cui et al. (2019), as in their code and LDAM's:
  ``n_i = floor(n_max · imbalance_factor^(-i/(C-1)))`` for class ``i = 0..C-1`` (class 0 is the head).
  ``n_max`` is the size of the *smallest* class in the split before subsampling, so every class can
  supply its quota and the profile is exact (for CIFAR-10 with its default 10% validation hold-out, 4,500).
  Which samples of a class are kept is a seeded random choice.
* **Label noise** — for each class ``c``, exactly ``round(rate · n_c)`` of its training samples are
  relabelled (so the realised transition matrix is the nominal one up to rounding):
  ``symmetric`` to a class drawn uniformly from the *other* ``C-1`` classes; ``asymmetric`` by the fixed
  permutation ``c → (c+1) mod C`` ("pair flipping", Han et al. 2018).
* **Outliers** (regression) — exactly ``round(fraction · n)`` training targets are shifted by
  ``± scale · std(y_train)`` (sign uniform, per target column), a gross-error contamination model.
* **Per-label imbalance** (multi-label) — labels are ranked by their positives (rank 0 the most frequent)
  and given the long-tail weight ``w_r = imbalance_factor^(-r/(L-1))``; a sample is kept with probability
  ``min`` of its positive labels' weights (1 for a sample without positives). A sample carries several
  labels, so no exact per-label profile exists; the realised ratio of the most to the least frequent
  label is reported.
* **Missing positives** (multi-label, the "partial labels" setting) — for each label, exactly
  ``round(rate · n_l)`` of its ``n_l`` training positives become 0.
"""

from __future__ import annotations

import math

import numpy as np

from lossbench.errors import ConfigError

NOISE_TYPES = ("symmetric", "asymmetric")

# independent random streams per stressor, all derived from data_seed
STREAM_IMBALANCE, STREAM_NOISE, STREAM_OUTLIERS, STREAM_MISSING = 1, 2, 3, 4


def stream(data_seed: int, which: int) -> np.random.Generator:
    """The random generator of one stressor: depends on ``data_seed`` and the stressor only."""
    return np.random.default_rng([int(data_seed), which])


def long_tail_counts(n_max: int, num_classes: int, imbalance_factor: float) -> list[int]:
    """Per-class sizes ``n_i = floor(n_max · imbalance_factor^(-i/(C-1)))`` (Cui et al. 2019).

    Raises ``ConfigError`` when the factor is < 1 or leaves a class without samples.
    """
    if num_classes < 2 or imbalance_factor == 1.0:
        return [int(n_max)] * num_classes
    counts = [
        int(math.floor(n_max * imbalance_factor ** (-i / (num_classes - 1)) + 1e-9))
        for i in range(num_classes)
    ]
    if min(counts) < 1:
        empty = counts.index(0)
        raise ConfigError(
            f"data.imbalance_factor={imbalance_factor:g} leaves class {empty} with 0 training samples "
            f"(the largest class keeps {n_max}): use data.imbalance_factor <= {n_max}"
        )
    return counts


def imbalance_indices(
    indices: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    imbalance_factor: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Subsample ``indices`` (into ``labels``) to the long-tailed profile; returns sorted kept indices."""
    indices = np.asarray(indices)
    per_class = [indices[labels[indices] == c] for c in range(num_classes)]
    available = [len(p) for p in per_class]
    if min(available) == 0:
        raise ConfigError(
            f"class {available.index(0)} has no training samples before subsampling, so "
            f"data.imbalance_factor={imbalance_factor:g} cannot form a long tail: use data.imbalance_factor=1"
        )
    targets = long_tail_counts(min(available), num_classes, imbalance_factor)
    kept = [rng.choice(p, size=n, replace=False) for p, n in zip(per_class, targets, strict=True)]
    return np.sort(np.concatenate(kept))


def noisy_labels(
    labels: np.ndarray, num_classes: int, rate: float, noise_type: str, rng: np.random.Generator
) -> np.ndarray:
    """A copy of ``labels`` with exactly ``round(rate · n_c)`` labels of each class ``c`` corrupted."""
    labels = np.asarray(labels)
    out = labels.copy()
    if rate == 0.0 or num_classes < 2:
        return out
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        flip = rng.choice(members, size=int(round(rate * len(members))), replace=False)
        if noise_type == "symmetric":
            shift = rng.integers(1, num_classes, size=len(flip))  # 1..C-1: never the true class
            out[flip] = (c + shift) % num_classes
        else:
            out[flip] = (c + 1) % num_classes
    return out


def contaminate_targets(
    targets: np.ndarray, fraction: float, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shift ``round(fraction · n)`` targets by ``± scale · std``; returns (new targets, outlier rows)."""
    targets = np.asarray(targets, dtype=np.float64)
    out = targets.copy()
    n = len(targets)
    rows = np.sort(rng.choice(n, size=int(round(fraction * n)), replace=False))
    if len(rows):
        y2 = out.reshape(n, -1)
        std = y2.std(axis=0)
        signs = rng.choice([-1.0, 1.0], size=(len(rows), y2.shape[1]))
        y2[rows] += signs * scale * np.where(std > 0, std, 1.0)
    return out, rows


def stress_labels(
    train: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    imbalance_factor: float,
    label_noise: float,
    noise_type: str,
    data_seed: int,
) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray | None]:
    """The classification stressors on the training indices ``train`` of labels ``y``, in their order:
    long-tailed subsampling, then label noise.

    Returns the kept training indices, their observed labels, what was done (for ``metrics.json``) and the
    clean labels of the kept indices when noise was added (else ``None``).
    """
    info: dict = {}
    if imbalance_factor > 1.0:
        train = imbalance_indices(
            train, y, num_classes, imbalance_factor, stream(data_seed, STREAM_IMBALANCE)
        )
        info["imbalance_factor"] = imbalance_factor
    y_train, clean = y[train], None
    if label_noise > 0.0:
        clean = y_train
        rng = stream(data_seed, STREAM_NOISE)
        y_train = noisy_labels(clean, num_classes, label_noise, noise_type, rng)
        info.update(noise_type=noise_type, label_noise_realised=float(np.mean(clean != y_train)))
    return train, y_train, info, clean


def label_imbalance_rows(labels: np.ndarray, imbalance_factor: float, rng: np.random.Generator) -> np.ndarray:
    """Rows of the 0/1 matrix ``labels`` ``[N, L]`` kept for a long-tailed label profile (sorted indices).

    See the module notes: a row survives with probability ``min_l w_{rank(l)}`` over its positive labels.
    """
    labels = np.asarray(labels)
    n, num_labels = labels.shape
    if imbalance_factor == 1.0 or num_labels < 2:
        return np.arange(n)
    rank = np.empty(num_labels)
    rank[np.argsort(-labels.sum(axis=0), kind="stable")] = np.arange(num_labels)
    weight = imbalance_factor ** (-rank / (num_labels - 1))
    keep_p = np.where(labels > 0, weight, 1.0).min(axis=1)
    return np.flatnonzero(rng.random(n) < keep_p)


def drop_positives(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of the 0/1 matrix ``labels`` with ``round(rate · n_l)`` positives of label ``l`` set to 0."""
    out = np.array(labels, copy=True)
    for label in range(out.shape[1]):
        positives = np.flatnonzero(out[:, label] > 0)
        out[rng.choice(positives, size=int(round(rate * len(positives))), replace=False), label] = 0
    return out


def label_ratio(labels: np.ndarray) -> float:
    """Positives of the most frequent label over those of the least frequent one that has any."""
    counts = np.asarray(labels).sum(axis=0)
    counts = counts[counts > 0]
    return float(counts.max() / counts.min()) if len(counts) else 1.0


def stress_multilabel(
    train: np.ndarray, y: np.ndarray, imbalance_factor: float, missing_positives: float, data_seed: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The multi-label stressors on the training indices ``train`` of the 0/1 matrix ``y``, in order:
    per-label imbalance, then missing positives. Returns the kept indices, their observed labels and what
    was done (for ``metrics.json``)."""
    info: dict = {}
    if imbalance_factor > 1.0:
        train = train[label_imbalance_rows(y[train], imbalance_factor, stream(data_seed, STREAM_IMBALANCE))]
        info.update(imbalance_factor=imbalance_factor, label_ratio_realised=label_ratio(y[train]))
    y_train = y[train]
    if missing_positives > 0.0:
        observed = drop_positives(y_train, missing_positives, stream(data_seed, STREAM_MISSING))
        dropped = float((y_train.sum() - observed.sum()) / max(y_train.sum(), 1))
        info.update(missing_positives=missing_positives, missing_positives_realised=dropped)
        y_train = observed
    return train, y_train, info
