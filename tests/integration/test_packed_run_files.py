"""A packed replica's files follow its run's settings: the CSV rows at the steps its run logs them when
epochs are cut short (``limit_train_batches``), a weights-only best checkpoint as Lightning writes one,
in float64 the very test metrics, and, continued the ordinary way from its ``last.ckpt``, the rows of the
epochs it had trained; under ``bf16-mixed`` its recalibration is fitted in the Trainer's precision context,
as its run fits it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from lossbench.packed import build_packed, train_packed
from lossbench.packed.history import HISTORY_KEY
from lossbench.run import run
from tests.conftest import read_metrics, run_cli

pytestmark = pytest.mark.slow

SWEEP = (
    "loss=ce,focal",
    "seed=0",
    "trainer.max_epochs=3",
    "+trainer.limit_train_batches=5",
    "+callbacks.model_checkpoint.save_weights_only=true",
    "trainer.precision=64-true",
    "logger=csv",
    "callbacks.rich_progress_bar=null",
)


def csv_rows(run_dir: Path) -> list[tuple[str, str, list[str]]]:
    """Each row of the run's ``csv/metrics.csv``: its step, epoch and the metrics it holds."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [(r["step"], r["epoch"], sorted(k for k, v in r.items() if v)) for r in csv.DictReader(f)]


def val_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [float(row["val/loss"]) for row in csv.DictReader(f) if row.get("val/loss")]


def test_packed_replicas_write_the_steps_checkpoints_and_rows_of_their_runs(make_cfg, tmp_path):
    """The packed sweep on the command line; each job's ordinary run in this process."""
    proc = run_cli("-m", "hydra/launcher=packed", *SWEEP, "hydra.sweep.dir=packed", cwd=tmp_path)
    assert "jobs #0, #1 train packed as one model (2 replicas)" in proc.stdout + proc.stderr
    for job, loss in (("0", "ce"), ("1", "focal")):
        run(make_cfg(f"loss={loss}", *SWEEP[1:], output_dir=tmp_path / "basic" / job))
    for job in ("0", "1"):
        mine, theirs = tmp_path / "packed" / job, tmp_path / "basic" / job
        assert "packed_group" in read_metrics(mine)["timings"]
        assert read_metrics(mine)["test"] == read_metrics(theirs)["test"]  # in float64, to the last bit
        assert csv_rows(mine) == csv_rows(theirs)  # 5 steps an epoch: rows at steps 4, 9, 14, then test at 15
        assert [row[0] for row in csv_rows(mine)][-1] == "15"
        assert val_losses(mine) == val_losses(theirs)
        (best,) = (mine / "checkpoints").glob("best_epoch_*.ckpt")
        their_best = theirs / "checkpoints" / best.name
        packed_best = torch.load(best, map_location="cpu", weights_only=True)
        ordinary_best = torch.load(their_best, map_location="cpu", weights_only=True)
        assert set(packed_best) == set(ordinary_best) | {HISTORY_KEY}  # no optimizer, callbacks or overrides
        assert "optimizer_states" not in packed_best and "callbacks" not in packed_best

    # continued the ordinary way from its last checkpoint (its record and CSV gone, as after a kill before
    # the packed group wrote them), a replica's CSV starts with the rows of the epochs the checkpoint holds
    job = tmp_path / "packed" / "1"
    expected = csv_rows(job)
    (job / "metrics.json").unlink()
    shutil.rmtree(job / "csv")
    run_cli("-m", *SWEEP, "resume=true", "hydra.sweep.dir=packed", cwd=tmp_path)
    assert read_metrics(job)["status"] == "ok"
    assert csv_rows(job) == expected


def test_a_packed_replicas_recalibration_is_its_runs_under_bf16_autocast(make_cfg, tmp_path):
    """Fitted outside autocast, the temperature of a ``bf16-mixed`` replica was ~1e-3 from its run's."""
    common = ("loss=ce", "trainer.max_epochs=2", "+trainer.limit_train_batches=4", "logger=none")
    cfgs = [
        make_cfg(f"seed={seed}", *common, "trainer.precision=bf16-mixed", output_dir=tmp_path / str(seed))
        for seed in (0, 1)
    ]
    module, data = build_packed(cfgs)
    results = train_packed(module, data, cfgs[0])
    for cfg, mine in zip(cfgs, results, strict=True):
        theirs = run(cfg, overrides=[])
        assert "test/temperature" in mine["test"] and mine["test"].keys() == theirs["test"].keys()
        assert max(abs(mine["test"][k] - theirs["test"][k]) for k in mine["test"]) <= 1e-6
