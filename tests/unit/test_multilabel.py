"""Multi-label classification: the data (synthetic, tables, stressors), its metrics and training runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from sklearn.metrics import average_precision_score

from lossbench.data import stressors as st
from lossbench.data.synthetic import SyntheticMultilabelDataModule
from lossbench.errors import ConfigError, DataError, LossTaskMismatchError
from lossbench.metrics import MeanAveragePrecision, multilabel_metrics
from lossbench.run import run
from lossbench.task import Task, check_data_contract

FAST = (
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
)


def small(**kwargs) -> SyntheticMultilabelDataModule:
    dm = SyntheticMultilabelDataModule(n_samples=kwargs.pop("n_samples", 1500), **kwargs)
    dm.setup("fit")
    return dm


# --- data ---------------------------------------------------------------------------------------------
def test_synthetic_multilabel_fulfils_the_contract_with_positives_per_label():
    dm = small()
    check_data_contract(dm)
    x, y = dm.splits["train"]
    assert dm.task is Task.MULTILABEL and dm.num_classes == 10 and dm.num_targets == 10
    assert y.dtype == torch.float32 and y.shape == (len(x), 10) and set(y.unique().tolist()) <= {0.0, 1.0}
    assert dm.class_counts.tolist() == y.sum(0).long().tolist()
    assert dm.describe()["class_counts"] == dm.class_counts.tolist()
    again = small()
    assert torch.equal(again.splits["test"][1], dm.splits["test"][1]), "the data depend on data_seed alone"
    assert not torch.equal(small(data_seed=1).splits["test"][1][:50], dm.splits["test"][1][:50])


def test_label_skew_makes_label_frequencies_long_tailed_in_every_split():
    plain, skewed = small(), small(label_skew=20.0)
    for split in ("train", "test"):
        ratio = st.label_ratio(skewed.splits[split][1].numpy())
        assert ratio > 3 * st.label_ratio(plain.splits[split][1].numpy()), (split, ratio)
    assert (
        len(skewed.splits["train"][1]) + len(skewed.splits["val"][1]) + len(skewed.splits["test"][1]) == 1500
    )


def test_per_label_imbalance_touches_the_training_split_only():
    plain, stressed = small(), small(imbalance_factor=10.0)
    assert torch.equal(plain.splits["val"][1], stressed.splits["val"][1])
    train_ratio = stressed.stress_info["label_ratio_realised"]
    assert train_ratio > 2 * st.label_ratio(plain.splits["train"][1].numpy())
    assert len(stressed.splits["train"][1]) < len(plain.splits["train"][1])


def test_missing_positives_drop_that_share_of_each_labels_training_positives():
    plain, partial = small(), small(missing_positives=0.4)
    before, after = plain.class_counts.numpy(), partial.class_counts.numpy()
    assert np.array_equal(after, before - np.round(0.4 * before)), (before, after)
    assert torch.equal(plain.splits["train"][0], partial.splits["train"][0]), "the samples are the same"
    assert torch.equal(plain.splits["test"][1], partial.splits["test"][1])
    dropped = (plain.splits["train"][1] - partial.splits["train"][1]).numpy()
    assert set(np.unique(dropped)) <= {0.0, 1.0}, "positives become 0; no negative becomes 1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_noise": 0.2}, "data.missing_positives"),
        ({"outlier_fraction": 0.1}, "multi-label data set"),
    ],
)
def test_single_label_stressors_on_multilabel_data_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small(**kwargs)


def test_missing_positives_on_single_label_data_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="data.missing_positives .*use data.label_noise"):
        instantiate(make_cfg("data=digits", "data.missing_positives=0.2").data).setup("fit")


@pytest.fixture
def labels_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["cat"] = (x[:, 0] > 0).astype(int)
    frame["dog"] = (x[:, 1] + x[:, 2] > 0).astype(bool)
    frame["bird"] = (x[:, 3] > 0.5).astype(int)
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_table_with_several_0_1_target_columns_is_multilabel(make_cfg, labels_csv):
    cfg = make_cfg("data=table", f"data.path={labels_csv}", "data.target=[cat,dog,bird]")
    dm = instantiate(cfg.data)
    dm.setup("fit")
    assert dm.task is Task.MULTILABEL and dm.num_classes == 3 and dm.label_names == ["cat", "dog", "bird"]
    explicit = instantiate(
        make_cfg(
            "data=table", f"data.path={labels_csv}", "data.target=[cat,bird]", "data.task=multilabel"
        ).data
    )
    explicit.setup("fit")
    assert explicit.splits["train"][1].shape[1] == 2


def test_a_multilabel_table_column_that_is_not_0_1_is_named(make_cfg, labels_csv, tmp_path):
    frame = pd.read_csv(labels_csv)
    frame.loc[3, "bird"] = 2
    frame.to_csv(tmp_path / "bad.csv", index=False)
    cfg = make_cfg(
        "data=table", f"data.path={tmp_path / 'bad.csv'}", "data.target=[cat,bird]", "data.task=multilabel"
    )
    with pytest.raises(DataError, match="'bird' holds \\['2'\\].*0/1"):
        instantiate(cfg.data).setup("fit")


# --- metrics ------------------------------------------------------------------------------------------
def test_map_averages_average_precision_over_labels_with_positives():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(64, 4, generator=g)
    target = (torch.rand(64, 4, generator=g) > 0.6).long()
    target[:, 3] = 0  # no positive: no AP, left out of the mean
    metric = MeanAveragePrecision(4)
    metric.update(probs[:30], target[:30])
    metric.update(probs[30:], target[30:])
    expected = np.mean([average_precision_score(target[:, j], probs[:, j]) for j in range(3)])
    assert float(metric.compute()) == pytest.approx(expected, abs=1e-6)


def test_label_metrics_match_their_definitions():
    labels, _ = multilabel_metrics(3)
    preds = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    target = torch.tensor([[1, 0, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1]])
    values = {k: float(v) for k, v in labels(preds, target).items()}
    assert values["subset_acc"] == pytest.approx(2 / 4)
    assert values["hamming"] == pytest.approx(3 / 12)
    tp, fp, fn = 5, 2, 1
    assert values["f1_micro"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


# --- training -----------------------------------------------------------------------------------------


def test_a_softmax_loss_on_multilabel_data_names_the_losses_that_serve_it(make_cfg):
    with pytest.raises(LossTaskMismatchError, match="loss=ce cannot train on data=multilabel.*asl.*bce"):
        run(make_cfg("data=multilabel", "loss=ce", *FAST))
