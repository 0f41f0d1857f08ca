"""Packed training gives each replica what its own run gives: three runs (ce seed 0, ce seed 1, focal
seed 0) trained packed for 3 epochs on digits against the same three runs trained one by one.

On the CPU with deterministic math every number agrees exactly: each replica's layers are the same
matrix products on the same values (one ``baddbmm`` over replicas gives, per replica, the ``addmm`` of
its ``nn.Linear`` bit for bit on this CPU), its optimizer is its run's own optimizer on its own tensors,
and its batches and dropout masks come from its run's generators. The tolerance, 1e-6 absolute, leaves
room only for a GEMM kernel that sums a batched product in another order (one float32 rounding, ~1e-7,
carried through a few dozen Adam steps); any difference in data order, initialisation, loss, optimizer
state or clipping moves the metrics by 1e-3 or more.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lossbench.losses.cross_entropy import CrossEntropyLoss
from lossbench.packed import FAILED, OK, build_packed, fit_packed, train_packed
from lossbench.packed.run_files import replica_predictions
from lossbench.run import run
from tests.conftest import script

pytestmark = pytest.mark.slow

JOBS = (("ce", 0), ("ce", 1), ("focal", 0))
ATOL = 1e-6
PLATEAU = "{_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true,patience:0,factor:0.2}"


def job_cfgs(make_cfg, tmp_path: Path, *overrides: str) -> list:
    common = ("trainer.max_epochs=3", "callbacks.rich_progress_bar=null", *overrides)
    return [
        make_cfg(f"loss={loss}", f"seed={seed}", *common, output_dir=tmp_path / f"{loss}_{seed}")
        for loss, seed in JOBS
    ]


def val_losses_per_epoch(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [float(row["val/loss"]) for row in csv.DictReader(f) if row.get("val/loss")]


def assert_close_dicts(packed: dict[str, float], ordinary: dict[str, float], what: str) -> float:
    """The largest absolute difference; fails unless the packed replica reports every metric its run
    reports (its recalibration's too) and no other, all within ATOL."""
    assert packed.keys() == ordinary.keys(), what
    worst = max(abs(packed[k] - ordinary[k]) for k in packed)
    assert worst <= ATOL, f"{what}: {worst}"
    return worst


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_packed_replicas_equal_their_runs(make_cfg, tmp_path, dropout):
    cfgs = job_cfgs(make_cfg, tmp_path, "logger=csv", f"model.dropout={dropout}")
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])  # ends with each replica's best epoch loaded
    records = [run(cfg, overrides=[]) for cfg in cfgs]
    for k, (result, record, cfg) in enumerate(zip(results, records, cfgs, strict=True)):
        assert result["status"] == OK and record["status"] == "ok"
        assert result["epochs"] == record["epochs"] == 3
        assert result["monitor"]["metric"] == record["monitor"]["metric"] == "val/acc"
        assert abs(result["monitor"]["best"] - record["monitor"]["best"]) <= ATOL
        assert_close_dicts(result["val"], record["val"], f"replica {k} val")
        assert_close_dicts(result["test"], record["test"], f"replica {k} test")
        assert {"val/acc", "val/nll", "test/acc", "test/ece"} <= {*result["val"], *result["test"]}
        per_epoch = [row["val/loss"] for row in result["history"]]
        ordinary = val_losses_per_epoch(Path(cfg.paths.output_dir))
        assert len(per_epoch) == len(ordinary) == 3
        assert max(abs(a - b) for a, b in zip(per_epoch, ordinary, strict=True)) <= ATOL
        arrays = replica_predictions(module, k)
        with np.load(Path(cfg.paths.output_dir) / "predictions.npz") as saved:
            assert sorted(arrays) == sorted(saved.files) == ["preds", "probs", "targets"]
            for name in saved.files:
                np.testing.assert_allclose(arrays[name], saved[name], rtol=0, atol=ATOL)
        best = torch.load(record["monitor"]["best_checkpoint"], weights_only=False, map_location="cpu")
        weights = module.replicas[k].model.state_dict()
        for name, value in weights.items():
            torch.testing.assert_close(value, best["state_dict"][f"model.{name}"], rtol=0, atol=ATOL)
    # the replicas did differ: the equalities above compare different runs
    assert results[0]["val"]["val/loss"] != results[1]["val"]["val/loss"] != results[2]["val"]["val/loss"]


def test_replicas_with_their_own_optimizers_schedules_and_clipping_equal_their_runs(make_cfg, tmp_path):
    """SGD with a cosine schedule per epoch; AdamW with a one-cycle schedule per step and clipping by norm;
    AdamW at another learning rate with clipping by value; AdamW cut by ReduceLROnPlateau on the replica's
    own val/acc (mode min: every epoch that raises it cuts the rate): each replica as its run."""
    own = [
        ("loss=ce", "seed=0", "optim=sgd"),
        ("loss=focal", "seed=1", "optim=adamw_onecycle", "trainer.gradient_clip_val=0.1"),
        ("loss=sce", "seed=2", "optim.optimizer.lr=0.003", "trainer.gradient_clip_val=0.05")
        + ("trainer.gradient_clip_algorithm=value",),
        ("loss=gce", "seed=3", f"optim.scheduler={PLATEAU}"),
    ]
    common = ("trainer.max_epochs=3", "logger=none", "callbacks.rich_progress_bar=null")
    cfgs = [make_cfg(*o, *common, output_dir=tmp_path / str(i)) for i, o in enumerate(own)]
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    lrs = [opt.param_groups[0]["lr"] for opt in module.replica_optimizers().optimizers]
    assert lrs[3] < 1e-3 and lrs[2] == 0.003  # the plateau cut replica 3's rate, and only its own
    records = [run(cfg, overrides=[]) for cfg in cfgs]
    for k, (result, record) in enumerate(zip(results, records, strict=True)):
        assert result["status"] == OK and record["status"] == "ok"
        assert_close_dicts(result["val"], record["val"], f"replica {k} val")
        assert_close_dicts(result["test"], record["test"], f"replica {k} test")


def train_losses_per_epoch(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return {int(r["epoch"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


def test_an_epoch_cut_short_by_max_steps_logs_each_replicas_training_loss_as_its_run(make_cfg, tmp_path):
    """``max_steps=20``: the second epoch ends after 3 of its 17 batches, and each replica logs that
    epoch's training loss at the step its run logs it."""
    cfgs = job_cfgs(make_cfg, tmp_path, "logger=csv", "+trainer.max_steps=20", "test=false")[:2]
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    for k, cfg in enumerate(cfgs):
        run(cfg, overrides=[])
        ordinary = train_losses_per_epoch(Path(cfg.paths.output_dir))
        packed = {int(row["epoch"]): row["train/loss"] for row in results[k]["history"]}
        assert sorted(packed) == sorted(ordinary) == [0, 1], f"replica {k}"
        assert max(abs(packed[e] - ordinary[e]) for e in packed) <= ATOL, f"replica {k}"
        assert [row["step"] for row in results[k]["history"]] == [16, 19]


def test_an_optimizer_with_a_scalar_state_steps_in_its_runs_dtype_under_64_true(make_cfg, tmp_path):
    """NAdam keeps a running product (``mu_product``) of torch's default dtype: its run steps outside
    Lightning's float64 context, so packed it must step in float32 too (it drifted by 4e-10 in float64).
    The weights agree to float64 rounding: a batched product may sum in another order than the replica's
    own on some CPUs (1e-16 on an AVX2-only one), far below that drift."""
    nadam = ("optim.optimizer._target_=torch.optim.NAdam", "trainer.precision=64-true", "logger=none")
    cfgs = job_cfgs(make_cfg, tmp_path, *nadam)[:2]
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    records = [run(cfg, overrides=[]) for cfg in cfgs]
    for k, (result, record) in enumerate(zip(results, records, strict=True)):
        assert result["val"] == record["val"] and result["test"] == record["test"], f"replica {k}"
        best = torch.load(record["monitor"]["best_checkpoint"], weights_only=False, map_location="cpu")
        for name, value in module.replicas[k].model.state_dict().items():
            torch.testing.assert_close(value, best["state_dict"][f"model.{name}"], rtol=0, atol=1e-12)


def test_regression_replicas_with_different_heads_equal_their_runs(make_cfg, tmp_path):
    """mse (one output) and gaussian_nll (mean and variance: a wider head, distributional metrics) on
    diabetes. Here the last digit can differ (a few 1e-8): a replica's outputs are a strided slice of the
    packed outputs, and a mean over it may add in another order than over its run's contiguous outputs."""
    common = ("data=diabetes", "trainer.max_epochs=2", "logger=none", "callbacks.rich_progress_bar=null")
    cfgs = [
        make_cfg(f"loss={loss}", f"seed={seed}", *common, output_dir=tmp_path / loss)
        for loss, seed in (("mse", 0), ("gaussian_nll", 1))
    ]
    results = fit_packed(cfgs)
    records = [run(cfg, overrides=[]) for cfg in cfgs]
    for k, (result, record) in enumerate(zip(results, records, strict=True)):
        assert result["monitor"]["metric"] == record["monitor"]["metric"]
        assert_close_dicts(result["val"], record["val"], f"replica {k} val")
        assert_close_dicts(result["test"], record["test"], f"replica {k} test")
    assert "test/nll" in results[1]["test"] and "test/nll" not in results[0]["test"]


class NaNAfter(CrossEntropyLoss):
    """Cross-entropy that returns NaN from its ``steps + 1``-th training step on."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.calls = steps, 0

    def forward(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(outputs, target)
        if self.training:
            self.calls += 1
            if self.calls > self.steps:
                return loss * float("nan")
        return loss


def test_a_replica_with_a_nan_loss_fails_alone(make_cfg, tmp_path):
    cfgs = job_cfgs(make_cfg, tmp_path, "logger=none")
    clean = fit_packed(cfgs)
    module, data = build_packed(cfgs)
    bad = NaNAfter(steps=20)  # 17 steps per epoch: NaN at the 4th step of the second epoch
    module.replicas[1].loss = bad
    module.losses[1] = bad
    before = {n: p.detach().clone() for n, p in module.replicas[1].model.named_parameters()}
    results = train_packed(module, data, cfgs[0])
    failed = results[1]
    assert failed["status"] == FAILED
    assert "NaNAfter returned nan at step 20 (epoch 1)" in failed["error"]
    assert failed["epochs"] == 1 and failed["test"] == {}
    weights = dict(module.replicas[1].model.named_parameters())
    assert all(torch.isfinite(p).all() for p in weights.values())  # no NaN reached its weights
    assert any(not torch.equal(weights[n], before[n]) for n in before)  # it did train its first epoch
    for k in (0, 2):
        assert results[k]["status"] == OK
        for stage in ("val", "test"):
            assert results[k][stage] == clean[k][stage]
        assert all(math.isfinite(v) for v in results[k]["test"].values())


def test_a_nan_read_every_n_steps_stops_its_replica_at_the_read_and_names_its_first_bad_step(
    make_cfg, tmp_path
):
    """As a run's guard on a GPU: the replicas' losses are read every 8 steps, so the bad replica takes the
    updates up to the read (NaN reaches its own weights, none of the others'); it is reported at its first
    bad step, and the others end exactly as without it."""
    cfgs = job_cfgs(make_cfg, tmp_path, "logger=none", "nonfinite_check.every_n_steps=8")
    clean = fit_packed(cfgs)
    module, data = build_packed(cfgs)
    bad = NaNAfter(steps=20)  # NaN from step 20; read at step 23 (the 24th)
    module.replicas[1].loss = bad
    module.losses[1] = bad
    results = train_packed(module, data, cfgs[0])
    assert results[1]["status"] == FAILED and results[1]["epochs"] == 1
    assert "NaNAfter returned nan at step 20 (epoch 1)" in results[1]["error"]
    assert any(not torch.isfinite(p).all() for p in module.replicas[1].model.parameters())
    for k in (0, 2):
        assert results[k]["status"] == OK
        assert all(torch.isfinite(p).all() for p in module.replicas[k].model.parameters())
        for stage in ("val", "test"):
            assert results[k][stage] == clean[k][stage]


def test_bench_script_times_both_sweeps_and_finds_equal_accuracies(monkeypatch, capsys):
    bench = script("bench_packed")
    args = ["bench_packed.py", "--losses", "ce,focal", "--seeds", "1", "--epochs", "1", "--loggers", "csv"]
    monkeypatch.setattr("sys.argv", [*args, "--no-hand"])
    bench.main()
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["runs"] == 2 and printed["ok_runs"] == {"csv": [2, 2]}
    assert printed["csv"]["packed_s"][0] > 0 and printed["csv"]["sequential_s"][0] > 0
    assert printed["csv"]["ratio"] > 0
    assert printed["max_test_acc_difference"] <= ATOL
    rows = bench.markdown_rows(printed)
    assert len(rows) == 1 and rows[0].startswith("| packed |") and "logger=csv" in rows[0]
