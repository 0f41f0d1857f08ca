"""Stressors: exact long-tail profile, noise rates, outliers; training split only; seeded by data_seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from lossbench.data import SklearnDataModule
from lossbench.data import stressors as st
from lossbench.errors import ConfigError


def test_long_tail_counts_reproduce_cifar_lt():
    """Cui et al. (2019): CIFAR-10-LT / CIFAR-100-LT with imbalance 100 hold 12,406 / 10,847 images."""
    counts = st.long_tail_counts(5000, 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and sum(counts) == 12406
    assert sum(st.long_tail_counts(500, 100, 100)) == 10847
    assert st.long_tail_counts(7, 3, 1.0) == [7, 7, 7]


@settings(max_examples=60, deadline=None)
@given(n_max=hs.integers(1, 5000), classes=hs.integers(2, 100), imb=hs.floats(1.0, 200.0))
def test_long_tail_profile_properties(n_max, classes, imb):
    try:
        counts = st.long_tail_counts(n_max, classes, imb)
    except ConfigError as err:
        assert "leaves class" in str(err) and n_max * imb ** (-1) < 1 + 1e-6
        return
    assert counts[0] == n_max and counts == sorted(counts, reverse=True) and min(counts) >= 1
    assert counts[-1] == int(np.floor(n_max / imb + 1e-9))


def test_imbalance_that_empties_a_class_is_a_clear_error():
    with pytest.raises(
        ConfigError, match=r"data.imbalance_factor=200 leaves class \d with 0 training samples"
    ):
        st.long_tail_counts(100, 10, 200)
    dm = SklearnDataModule(name="digits", imbalance_factor=500)
    with pytest.raises(ConfigError, match=r"use data.imbalance_factor <= 1\d\d"):
        dm.setup()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imbalance_factor": 0.5}, "data.imbalance_factor=0.5 is out of range"),
        ({"label_noise": 1.0}, r"data.label_noise=1.0 is out of range: expected a finite value in \[0, 1\)"),
        ({"label_noise": -0.1}, "data.label_noise"),
        ({"noise_type": "pairs"}, "choose one of symmetric, asymmetric"),
        ({"outlier_scale": 0.0}, "data.outlier_scale"),
    ],
)
def test_invalid_stressor_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SklearnDataModule(name="digits", **kwargs)


def test_stressor_needs_the_right_task():
    with pytest.raises(ConfigError, match="classification data set: use data.label_noise"):
        SklearnDataModule(name="digits", outlier_fraction=0.1).setup()
    with pytest.raises(ConfigError, match="regression data set: use data.outlier_fraction"):
        SklearnDataModule(name="diabetes", imbalance_factor=10).setup()


def test_digits_lt_class_counts_follow_the_profile_exactly():
    plain = SklearnDataModule(name="digits", standardize=False)  # (the scaler is fit on the stressed split)
    plain.setup()
    lt = SklearnDataModule(name="digits", imbalance_factor=10, standardize=False)
    lt.setup()
    n_max = int(plain.class_counts.min())
    assert lt.class_counts.tolist() == st.long_tail_counts(n_max, 10, 10)
    # kept samples are a subset of the clean training split, and val/test are untouched
    train_rows = {tuple(r) for r in plain.splits["train"][0].numpy().round(5)}
    assert all(tuple(r) in train_rows for r in lt.splits["train"][0].numpy().round(5))
    for split in ("val", "test"):
        assert lt.splits[split][1].equal(plain.splits[split][1])


@pytest.mark.parametrize("noise_type", ["symmetric", "asymmetric"])
def test_label_noise_rate_and_structure(noise_type):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 300)
    noisy = st.noisy_labels(labels, 10, 0.3, noise_type, rng)
    flipped = noisy != labels
    for c in range(10):
        assert flipped[labels == c].sum() == 90  # exactly round(0.3 * 300) per class
    if noise_type == "asymmetric":
        assert np.all(noisy[flipped] == (labels[flipped] + 1) % 10)
    else:
        # uniform over the 9 other classes: each target class gets ~1/9 of the flips
        shares = np.bincount((noisy[flipped] - labels[flipped]) % 10, minlength=10)[1:] / flipped.sum()
        assert np.all(np.abs(shares - 1 / 9) < 0.04)


def test_noisy_data_module_changes_only_training_labels():
    clean = SklearnDataModule(name="digits")
    clean.setup()
    noisy = SklearnDataModule(name="digits", label_noise=0.25, noise_type="asymmetric")
    noisy.setup()
    assert noisy.splits["train"][0].equal(clean.splits["train"][0])
    rate = (noisy.splits["train"][1] != clean.splits["train"][1]).float().mean().item()
    assert abs(rate - 0.25) < 0.01 and noisy.describe()["label_noise_realised"] == pytest.approx(rate)
    assert noisy.clean_train_targets.equal(clean.splits["train"][1])
    for split in ("val", "test"):
        assert noisy.splits[split][1].equal(clean.splits[split][1])
    assert noisy.class_counts.tolist() == np.bincount(noisy.splits["train"][1].numpy(), minlength=10).tolist()


def test_outliers_exact_count_and_scale():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(1000, 1))
    out, rows = st.contaminate_targets(y, 0.1, 5.0, rng)
    assert len(rows) == 100
    shift = (out - y)[rows, 0]
    assert np.allclose(np.abs(shift), 5.0 * y.std())
    untouched = np.setdiff1d(np.arange(1000), rows)
    assert np.array_equal(out[untouched], y[untouched])


def test_outliers_on_diabetes_training_targets_only():
    clean = SklearnDataModule(name="diabetes")
    clean.setup()
    dirty = SklearnDataModule(name="diabetes", outlier_fraction=0.2, outlier_scale=8.0)
    dirty.setup()
    changed = (dirty.splits["train"][1] != clean.splits["train"][1]).squeeze(-1)
    assert changed.sum().item() == round(0.2 * len(changed)) == dirty.describe()["n_outliers"]
    for split in ("val", "test"):
        assert dirty.splits[split][1].equal(clean.splits[split][1])


def _train_targets(**kwargs):
    dm = SklearnDataModule(name="digits", imbalance_factor=5, label_noise=0.2, **kwargs)
    dm.setup()
    return dm.splits["train"]


def test_stressors_depend_on_data_seed_not_seed():
    a_x, a_y = _train_targets(data_seed=0, seed=0)
    b_x, b_y = _train_targets(data_seed=0, seed=7)
    c_x, c_y = _train_targets(data_seed=1, seed=0)
    assert a_x.equal(b_x) and a_y.equal(b_y)
    assert not (a_x.shape == c_x.shape and a_x.equal(c_x) and a_y.equal(c_y))
