"""``python train.py -m hydra/launcher=packed``: the jobs that can be packed train as one packed model and
each gets the run dir its job gets from Hydra's basic launcher, with the same metrics; a job that cannot be
packed (``model.channels_last=true``), or is left over by ``max_pack``, runs the ordinary way after one
line saying why."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lossbench.cli import main as cli_main
from lossbench.packed.history import HISTORY_KEY
from lossbench.packed.launcher import Job, group_jobs
from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli, start_command

SWEEP = (
    "data.as_images=true",  # the CNN's input; the MLP flattens it
    "loss=ce,focal",
    "seed=0,1",
    "trainer.max_epochs=2",
    "logger=csv",
    "callbacks.rich_progress_bar=null",
)
ATOL = 1e-6


def records(sweep_dir: Path) -> dict[tuple[str, str, int], tuple[Path, dict]]:
    """(model, loss, seed) -> (job dir, record) of every job of a sweep."""
    found = {}
    for record_path in sorted(sweep_dir.glob("*/metrics.json")):
        record = read_metrics(record_path.parent)
        found[(record["model"], record["loss"], record["seed"])] = (record_path.parent, record)
    return found


def val_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [float(row["val/loss"]) for row in csv.DictReader(f) if row.get("val/loss")]


def assert_close(packed: dict[str, float], ordinary: dict[str, float], what: str) -> None:
    assert packed.keys() == ordinary.keys(), what  # the recalibration's metrics too
    worst = max(abs(packed[k] - ordinary[k]) for k in packed)
    assert worst <= ATOL, f"{what}: {worst}"


def assert_same_checkpoint(packed: Path, ordinary: Path, what: str, replica: bool = True) -> None:
    """The packed sweep's job's checkpoint holds what its run's holds: the same entries (a packed replica's
    also its history), loop progress, callback states (its own run dir's paths), optimizer and random
    state, and weights within ATOL."""
    mine = torch.load(packed, map_location="cpu", weights_only=True)
    theirs = torch.load(ordinary, map_location="cpu", weights_only=True)
    assert set(theirs) <= set(mine) and set(mine) - set(theirs) == ({HISTORY_KEY} if replica else set()), what
    for key in ("epoch", "global_step", "loops", "lossbench_overrides"):
        assert mine[key] == theirs[key], f"{what}: {key}"
    assert mine["callbacks"].keys() == theirs["callbacks"].keys(), what
    for key, state in theirs["callbacks"].items():
        for name, value in state.items():
            if isinstance(value, float):  # the tie-break's validation loss: float32 sums in another order
                assert abs(mine["callbacks"][key][name] - value) <= ATOL, f"{what}: {key} {name}"
                continue
            value = str(value).replace(str(ordinary.parents[1]), str(packed.parents[1].resolve()))
            assert str(mine["callbacks"][key][name]) == value, f"{what}: {key} {name}"
    assert mine["state_dict"].keys() == theirs["state_dict"].keys(), what
    for name, value in theirs["state_dict"].items():
        torch.testing.assert_close(mine["state_dict"][name], value, rtol=0, atol=ATOL)
    (opt,), (their_opt,) = mine["optimizer_states"], theirs["optimizer_states"]
    assert opt["param_groups"] == their_opt["param_groups"], what
    for i, state in their_opt["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(opt["state"][i][name], value, rtol=0, atol=ATOL)
    assert torch.equal(mine["rng_states"]["torch"], theirs["rng_states"]["torch"]), what  # its dropout stream
    assert mine["lr_schedulers"] == theirs["lr_schedulers"], f"{what}: the schedule's state"
    assert mine["lossbench_val"].keys() == theirs["lossbench_val"].keys(), what
    for name, value in theirs["lossbench_val"].items():
        assert abs(mine["lossbench_val"][name] - value) <= ATOL, f"{what}: {name}"


@pytest.mark.slow
def test_a_packed_jobs_epoch_schedule_is_checkpointed_as_its_runs(tmp_path):
    """Lightning steps a run's epoch schedule at the epoch's last batch, before validation and both
    checkpoints: each replica's checkpoints hold the stepped schedule and rate, so a continued replica
    trains every later epoch at its run's rate."""
    sweep = ("loss=ce,focal", "optim=sgd", "trainer.max_epochs=3", "logger=csv", "trainer.precision=64-true")
    run_cli("-m", "hydra/launcher=packed", *sweep, "hydra.sweep.dir=packed", cwd=tmp_path)
    run_cli("-m", *sweep, "hydra.sweep.dir=basic", cwd=tmp_path)
    for job in ("0", "1"):
        packed, basic = tmp_path / "packed" / job, tmp_path / "basic" / job
        assert best_name(packed) == best_name(basic)
        for name in (best_name(basic), "last.ckpt"):
            mine, theirs = packed / "checkpoints" / name, basic / "checkpoints" / name
            assert_same_checkpoint(mine, theirs, f"job {job} {name}")
            assert torch.load(theirs, weights_only=True)["lr_schedulers"][0]["last_epoch"] >= 1


def test_jobs_are_grouped_by_what_they_share_at_most_max_pack_per_group(make_cfg):
    overrides = [
        ("seed=0",),
        ("seed=1",),
        ("seed=2",),
        ("model=cnn", "model.channels_last=true"),
        ("seed=3",),
    ]
    overrides += [
        ("data_seed=1",),
        ("data=image_folder", "data.root=images"),
        ("data=image_folder", "seed=1"),
    ]
    cfgs = [make_cfg(*o, "logger=none") for o in overrides]
    jobs = [Job(n, list(o), cfg, cfg) for n, (o, cfg) in enumerate(zip(overrides, cfgs, strict=True))]
    groups, alone = group_jobs(jobs, max_pack=2)
    assert [[job.num for job in group] for group in groups] == [[0, 1], [2, 4]]
    assert sorted(alone) == [3, 5, 6, 7]
    assert "ImageFolderDataModule is not held in memory" in alone[6], "its batches are read from files"
    assert "channels_last" in alone[3] and "max_pack=2" in alone[5]
    groups, alone = group_jobs(jobs, max_pack=16)
    assert [[job.num for job in group] for group in groups] == [[0, 1, 2, 4]]
    assert sorted(alone) == [3, 5, 6, 7]


def best_name(job_dir: Path) -> str:
    """The name of the best checkpoint in ``job_dir`` (its epoch may differ between two runs)."""
    return next((job_dir / "checkpoints").glob("best_*.ckpt")).name


@pytest.mark.slow
def test_packed_sweep_gives_each_job_its_basic_launcher_run(tmp_path):
    proc = run_cli(
        "-m",
        "hydra/launcher=packed",
        "hydra.launcher.max_pack=3",
        "model=mlp,cnn",
        *SWEEP,
        "hydra.sweep.dir=packed",
        cwd=tmp_path,
    )
    run_cli("-m", "model=mlp", *SWEEP, "hydra.sweep.dir=basic", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    packed, basic = records(tmp_path / "packed"), records(tmp_path / "basic")
    assert len(packed) == 8 and len(basic) == 4
    assert all(record["status"] == "ok" for _, record in packed.values())

    # three MLP jobs trained as one packed model, three CNN jobs as another (max_pack=3), and the fourth of
    # each the ordinary way, after one line naming both, as their reason is the same
    assert output.count("train packed as one model (3 replicas)") == 2
    why = [line for line in output.splitlines() if "the ordinary way" in line]
    assert len(why) == 1 and re.search(
        r"jobs #\d, #\d run the ordinary way: no other job is left to pack", why[0]
    )
    assert sum("packed_group" in (record.get("timings") or {}) for _, record in packed.values()) == 6
    for (model, _, _), (job_dir, record) in packed.items():
        if model == "cnn":
            assert "test/temperature" in record["test"] and (job_dir / "checkpoints" / "last.ckpt").is_file()

    for key, (basic_dir, ordinary) in basic.items():
        job_dir, record = packed[key]
        what = f"{key} in {job_dir.name}"
        assert sorted(p.name for p in (job_dir / ".hydra").iterdir()) == [
            "config.yaml",
            "hydra.yaml",
            "overrides.yaml",
        ]
        files = {str(p.relative_to(job_dir)).replace(best_name(job_dir), "best") for p in job_dir.rglob("*")}
        assert files == {
            str(p.relative_to(basic_dir)).replace(best_name(basic_dir), "best") for p in basic_dir.rglob("*")
        }
        assert len((job_dir / "wandb_run_id").read_text().split()) == 1, "its W&B id, as its run stores it"
        assert record["overrides"] == ["model=mlp", *ordinary["overrides"][1:]], what
        assert record["data_info"] == ordinary["data_info"] and record["data_seed"] == ordinary["data_seed"]
        assert record["epochs"] == ordinary["epochs"] == 2
        assert record["monitor"]["metric"] == ordinary["monitor"]["metric"] == "val/acc"
        assert abs(record["monitor"]["best"] - ordinary["monitor"]["best"]) <= ATOL, what
        assert_close(record["val"], ordinary["val"], f"{what} val")
        assert_close(record["test"], ordinary["test"], f"{what} test")
        assert (
            max(abs(a - b) for a, b in zip(val_losses(job_dir), val_losses(basic_dir), strict=True)) <= ATOL
        )
        with np.load(job_dir / "predictions.npz") as mine, np.load(basic_dir / "predictions.npz") as theirs:
            assert sorted(mine.files) == sorted(theirs.files)
            for name in mine.files:
                np.testing.assert_allclose(mine[name], theirs[name], rtol=0, atol=ATOL)
        best = Path(record["monitor"]["best_checkpoint"])
        assert best.is_file() and best.parent == job_dir.resolve() / "checkpoints"
        assert best.name == Path(ordinary["monitor"]["best_checkpoint"]).name, what
        replica = "packed_group" in (record.get("timings") or {})
        for name in (best.name, "last.ckpt"):  # each checkpoint as the job's own run writes it
            mine, theirs = job_dir / "checkpoints" / name, basic_dir / "checkpoints" / name
            assert_same_checkpoint(mine, theirs, what, replica)

    # the sweep's table lists every job
    summary = json.loads((tmp_path / "packed" / "sweep_summary.json").read_text())
    assert sorted(row["job"] for row in summary) == [str(n) for n in range(8)]
    assert {row["status"] for row in summary} == {"ok"}

    # a packed replica's best checkpoint tests as its run's: every test metric, recalibration included
    job_dir, record = packed[("mlp", "focal", 1)]
    evaluated = preloaded.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={record['monitor']['best_checkpoint']}"]
        + ["hydra.run.dir=ev"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    tested = read_metrics(tmp_path / "ev")["test"]
    ordinary = basic[("mlp", "focal", 1)][1]["test"]
    assert tested.keys() == ordinary.keys()
    assert max(abs(tested[k] - ordinary[k]) for k in tested) <= ATOL

    assert cli_main(["compare", str(tmp_path / "packed"), "--no-log-wandb"]) == 0
    assert (tmp_path / "packed" / "report" / "report.html").is_file()


@pytest.mark.slow
def test_each_packed_replica_has_its_own_wandb_run_and_a_diverged_one_leaves_its_runs_files(tmp_path):
    """Default loggers (W&B offline and CSV); job 1's loss becomes NaN in its third epoch. Each replica
    logs its own W&B run with its overrides in its config; the diverged one writes what its run writes:
    its record (naming its last good checkpoint), its curves up to the bad step, its W&B id and run."""
    sweep = ["optim=sgd", "optim.optimizer.lr=0.05,1.5", "trainer.max_epochs=4", "trainer.precision=64-true"]
    sweep += ["callbacks.rich_progress_bar=null"]
    for launcher, folder in ((["hydra/launcher=packed"], "packed"), ([], "basic")):
        proc = run_cli("-m", *launcher, *sweep, f"hydra.sweep.dir={folder}", cwd=tmp_path, check=False)
        assert proc.returncode == 1, f"{folder}: a failed job fails the sweep\n{proc.stderr[-3000:]}"
    ids = []
    for job, lr in (("0", "0.05"), ("1", "1.5")):
        mine, theirs = tmp_path / "packed" / job, tmp_path / "basic" / job
        run_id = (mine / "wandb_run_id").read_text().strip()
        ids.append(run_id)
        (run,) = (mine / "wandb").glob(f"offline-run-*-{run_id}")
        (data,) = (f.read_bytes() for f in run.glob("*.wandb"))  # W&B's offline data file
        assert f'"optim.optimizer.lr={lr}"'.encode() in data, "the overrides in its W&B config"
        assert (mine / "csv" / "metrics.csv").read_text() == (theirs / "csv" / "metrics.csv").read_text(), job
    assert len(set(ids)) == 2
    for folder in ("packed", "basic"):  # the diverged job's W&B run ends failed, with its status and error
        for job, diverged in (("0", False), ("1", True)):
            (data,) = (
                f.read_bytes() for f in (tmp_path / folder / job / "wandb").glob("offline-run-*/*.wandb")
            )
            assert (b'"failed"' in data and b"returned nan" in data) == diverged, (folder, job)
    failed, ordinary = read_metrics(tmp_path / "packed" / "1"), read_metrics(tmp_path / "basic" / "1")
    assert failed["status"] == ordinary["status"] == "failed"
    assert failed["config"]["monitor"] == ordinary["config"]["monitor"]  # the job's config, not the built one
    assert failed["loss"] == ordinary["loss"] == "ce", "loss=auto: the loss it trained"
    message = failed["error"]["message"].replace(str((tmp_path / "packed").resolve()), "<sweep>")
    assert message == ordinary["error"]["message"].replace(str((tmp_path / "basic").resolve()), "<sweep>")
    assert message.endswith("; the last good checkpoint is <sweep>/1/checkpoints/last.ckpt"), message


@pytest.mark.slow
def test_a_packed_sweep_stopped_by_sigterm_says_how_to_continue(tmp_path):
    import signal
    import time

    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=packed", "loss=ce,focal"]
    cmd += ["trainer.max_epochs=500", "logger=csv", "callbacks.rich_progress_bar=null", "hydra.sweep.dir=sw"]
    proc = start_command(cmd, tmp_path)
    deadline = time.monotonic() + 240
    while not (tmp_path / "sw" / "1" / "checkpoints" / "last.ckpt").is_file():  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-3000:]
    said = [line for line in out.splitlines() if "Continue with:" in line and "│" not in line]
    assert len(said) == 1 and "resume=true" in said[0] and "while starting" not in out
    assert "Traceback" not in out
    for job in ("0", "1"):  # each job's run dir says so, as an ordinary sweep job's does
        record = read_metrics(tmp_path / "sw" / job)
        assert record["status"] == "interrupted" and "resume=true" in record["error"]["message"]
        assert (tmp_path / "sw" / job / ".hydra" / "overrides.yaml").is_file()
        # and its curves up to the epoch its last.ckpt holds, as a stopped run's CSV has them
        last = torch.load(tmp_path / "sw" / job / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
        assert f"during epoch {last + 1}: " in record["error"]["message"]
        assert f"last.ckpt holds epoch {last}, the last one finished" in record["error"]["message"]
        with (tmp_path / "sw" / job / "csv" / "metrics.csv").open() as f:
            epochs = sorted({int(float(r["epoch"])) for r in csv.DictReader(f) if r.get("val/acc")})
        assert epochs == list(range(last + 1)), (epochs, last)
