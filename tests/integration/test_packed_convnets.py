"""Packed convolutional replicas (cnn, resnet32, resnet18) give each replica what its own run gives: a group
of three losses × two seeds on 8×8 digits images trained packed, against the same six runs one by one.

In float64 on the CPU each replica's grouped convolution, batch norm and linear layers compute its own
layers' values up to the order of a few sums, so its per-epoch validation losses and its metrics agree
within 1e-6 (the metrics themselves are float32; measured: 0 for cnn and resnet18, 1.5e-8 for resnet32).
In float32 those orderings round differently (~1e-7 per layer), and Adam's first steps (``m / √v``) carry
that into the weights: measured, the metrics differ by a few 1e-6 for the small cnn and resnet32, and for
resnet18 (2 steps of 8 samples) by up to 1e-3 in the losses and 1e-2 in the fitted temperature. There the
replicas pick their runs' best epoch and their metrics agree within one test sample.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lossbench.packed import FAILED, OK, build_packed, train_packed
from lossbench.packed.checkpoints import PackedCheckpoints
from lossbench.run import run
from tests.fake_vision import write_cifar
from tests.integration.test_packed import NaNAfter

pytestmark = pytest.mark.slow

JOBS = [(loss, seed) for loss in ("ce", "focal", "sce") for seed in (0, 1)]
ATOL = 1e-6
#: every run: a small validation and test split, no sanity check, its per-epoch curves in a CSV
COMMON = (
    "data=digits",
    "data.as_images=true",
    "data.val_fraction=0.05",
    "data.test_fraction=0.05",
    "trainer.num_sanity_val_steps=0",
    "logger=csv",
)
#: tested at the best epoch (its checkpoint written), as by default
BEST = ("callbacks.rich_progress_bar=null", "callbacks.last_checkpoint=null")
SMALL = ("data.batch_size=16", "+trainer.limit_train_batches=3", "trainer.max_epochs=3", *BEST)
CNN = ("model=cnn", "model.channels=[4,8]", "model.hidden=16")
RESNET18 = (
    "model=resnet18",
    "data.batch_size=8",
    "+trainer.limit_train_batches=1",
    "trainer.max_epochs=2",
    "data.val_fraction=0.012",
    "data.test_fraction=0.012",
)
MODELS = {
    "cnn": (*CNN, *SMALL),
    "resnet32": ("model=resnet32", "model.depth=8", "model.width=4", *SMALL),
    # 11M parameters: a few samples, and in float64 no checkpoints (tested at the last epoch), to stay quick
    "resnet18": (
        *RESNET18,
        "data.val_fraction=0.006",  # 11 images, one per class and one more: the float64 check needs no more
        "data.test_fraction=0.006",
        "callbacks=none",
        "+trainer.enable_checkpointing=false",
    ),
}


def job_cfgs(make_cfg, tmp_path: Path, *overrides: str, jobs=JOBS) -> list:
    return [
        make_cfg(f"loss={loss}", f"seed={seed}", *COMMON, *overrides, output_dir=tmp_path / f"{loss}_{seed}")
        for loss, seed in jobs
    ]


def val_losses_per_epoch(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [float(row["val/loss"]) for row in csv.DictReader(f) if row.get("val/loss")]


def compare(cfgs: list, results: list[dict]) -> float:
    """The largest difference of a per-epoch validation loss or a val/test metric between each packed
    replica and its run (trained here); fails where a replica's best epoch or metrics' names differ."""
    worst = 0.0
    for k, (cfg, result) in enumerate(zip(cfgs, results, strict=True)):
        record = run(cfg, overrides=[])
        assert result["status"] == OK and record["status"] == "ok", k
        epochs = cfg.trainer.max_epochs
        assert result["epochs"] == record["epochs"] == epochs
        best_file = Path(record["monitor"]["best_checkpoint"]).name  # best_epoch_002.ckpt, "" without
        best_epoch = result["monitor"]["best_epoch"]
        assert best_file == ("" if best_epoch is None else f"best_epoch_{best_epoch:03d}.ckpt"), k
        per_epoch = [row["val/loss"] for row in result["history"]]
        ordinary = val_losses_per_epoch(Path(cfg.paths.output_dir))
        assert len(per_epoch) == len(ordinary) == epochs
        worst = max(worst, *(abs(a - b) for a, b in zip(per_epoch, ordinary, strict=True)))
        for stage in ("val", "test"):
            assert result[stage].keys() == record[stage].keys(), (k, stage)
            worst = max(worst, *(abs(result[stage][m] - record[stage][m]) for m in result[stage]))
    losses = [r["val"]["val/loss"] for r in results]
    assert len(set(losses)) == len(losses)  # the replicas differ: the equalities compare different runs
    return worst


@pytest.mark.parametrize("model", list(MODELS))
def test_packed_convnet_replicas_equal_their_runs_in_float64(make_cfg, tmp_path, model):
    cfgs = job_cfgs(make_cfg, tmp_path, *MODELS[model], "trainer.precision=64-true")
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    worst = compare(cfgs, results)
    print(f"{model}: largest difference {worst:.3g}")
    assert worst <= ATOL


@pytest.mark.parametrize("model", list(MODELS))
def test_packed_convnet_replicas_pick_their_runs_best_epoch_in_float32(make_cfg, tmp_path, model):
    overrides = MODELS[model]
    if model == "resnet18":  # its best epoch's checkpoint, without the optimizer state
        overrides = (*RESNET18, *BEST, "+callbacks.model_checkpoint.save_weights_only=true")
    cfgs = job_cfgs(make_cfg, tmp_path, *overrides)
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    n_test = len(data.data.splits["test"][1])
    worst = compare(cfgs, results)
    print(f"{model}: largest difference {worst:.3g}")
    assert worst <= 1 / n_test + ATOL  # one test sample


def test_augmented_replicas_crop_and_flip_as_their_runs(make_cfg, tmp_path):
    """CIFAR-10 (small files in its native format) with the pad-crop-flip augmentation: each replica draws
    its own run's crops and flips (its ``data.seed``)."""
    write_cifar(tmp_path / "data", "cifar10", per_batch=40, n_test=50)
    vision = (
        "data=cifar10",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.batch_size=32",
        "trainer.precision=64-true",
        "trainer.max_epochs=2",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        *CNN,
        *BEST,
    )
    jobs = [("ce", 0), ("focal", 1), ("ce", 2)]
    cfgs = [
        make_cfg(f"loss={loss}", f"seed={seed}", *vision, output_dir=tmp_path / f"{loss}_{seed}")
        for loss, seed in jobs
    ]
    module, data = build_packed(cfgs)
    assert [t.seed for t in data.transforms] == [0, 1, 2]
    results = train_packed(module, data, cfgs[0])
    assert compare(cfgs, results) <= ATOL


def test_a_failed_replica_keeps_its_batch_norm_statistics(make_cfg, tmp_path):
    """Replica 1 fails at its 5th step (epoch 1); the packed forward still runs it, but its running
    statistics and batch counts stay those its failing step left, while the others' go on changing."""
    cfgs = job_cfgs(make_cfg, tmp_path, *MODELS["resnet32"], "logger=none")[:3]
    module, data = build_packed(cfgs)
    bad = NaNAfter(steps=4)
    module.replicas[1].loss = bad
    module.losses[1] = bad
    at_failure: dict[int, dict[str, torch.Tensor]] = {}
    fail = module.fail

    def keep_state(k: int, value: float, step: int | None = None) -> None:
        fail(k, value, step)
        at_failure.update(
            {j: {n: b.clone() for n, b in module.replicas[j].model.named_buffers()} for j in (0, 1)}
        )

    module.fail = keep_state
    results = train_packed(module, data, cfgs[0])
    assert [r["status"] for r in results] == [OK, FAILED, OK]
    assert results[1]["epochs"] == 1
    buffers = [dict(module.replicas[j].model.named_buffers()) for j in (0, 1)]
    for name, value in at_failure[1].items():
        assert torch.equal(buffers[1][name], value), name
    assert int(buffers[1]["stem.1.num_batches_tracked"]) == 5  # its run's count when it stopped
    assert not torch.equal(buffers[0]["stem.1.running_mean"], at_failure[0]["stem.1.running_mean"])


def test_a_replicas_checkpoints_hold_its_runs_batch_norm_state(make_cfg, tmp_path):
    """Each replica's last checkpoint holds its run's weights, running statistics, batch counts and
    optimizer state (float64, within 1e-6; Adam's ``step`` count a float32 scalar in both, as its run's
    optimizer makes it outside Lightning's float64 context)."""
    overrides = (*MODELS["resnet32"][:3], "data.batch_size=16", "+trainer.limit_train_batches=3")
    overrides += ("trainer.max_epochs=2",)
    jobs = [("ce", 0), ("focal", 1)]
    cfgs = job_cfgs(make_cfg, tmp_path, *overrides, "trainer.precision=64-true", "logger=none", jobs=jobs)
    module, data = build_packed(cfgs)
    train_packed(module, data, cfgs[0], PackedCheckpoints([r.cfg for r in module.replicas], [[], []]))
    for cfg in cfgs:
        last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        mine = torch.load(last, map_location="cpu", weights_only=True)
        run(cfg, overrides=[])
        theirs = torch.load(last, map_location="cpu", weights_only=True)
        assert mine["state_dict"].keys() == theirs["state_dict"].keys()
        assert "model.stem.1.num_batches_tracked" in theirs["state_dict"]
        for name, value in theirs["state_dict"].items():
            torch.testing.assert_close(mine["state_dict"][name], value, rtol=0, atol=ATOL)
        (opt,), (their_opt,) = mine["optimizer_states"], theirs["optimizer_states"]
        for i, state in their_opt["state"].items():
            for name, value in state.items():
                torch.testing.assert_close(opt["state"][i][name], value, rtol=0, atol=ATOL)
