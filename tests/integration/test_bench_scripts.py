"""scripts/bench.py, device_check.py and hand_sweep.py run and write their tables (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lossbench.run import run
from tests import preloaded
from tests.conftest import ROOT, script


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path) -> None:
    """``scripts/bench.py`` end to end on a tiny setting: the table and the JSON are written."""
    out = tmp_path / "results"
    proc = preloaded.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--only", "step", "--repeats", "1"]
        + ["--epochs", "2", "--no-lightning", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "latest.json").read_text())
    assert result["step"]["ratio"] > 0 and result["step"]["hand"]["step_ms"] > 0
    assert "| 1 | step time" in (out / "latest.md").read_text()


@pytest.mark.slow
def test_bench_ddp_item_measures_both_runs_and_adds_its_row(tmp_path: Path) -> None:
    """Item ``ddp`` (``scripts/bench_ddp.py``): one process under DDP and one device, each a timed run;
    its row goes after the last row of the first table (no timing is asserted)."""
    bench_ddp = script("bench_ddp")
    args = bench_ddp.argparse.Namespace(device="cpu", repeats=1, epochs=2)
    result = bench_ddp.bench_ddp(args, tmp_path)
    assert result["ddp_step_ms"] > 0 and result["single_step_ms"] > 0 and result["ratio"] > 0
    assert result["ddp_trainer"] == "trainer=ddp_cpu trainer.devices=1"
    text = "# bench\n\n| # | measure |\n|---|---|\n| 1 | step |\n\n## 4. Loss kernels\n"
    lines = bench_ddp.with_row(text, {"ddp": result}).splitlines()
    assert lines[5].startswith("| 10 | DDP with one process") and lines[7] == "## 4. Loss kernels"
    assert bench_ddp.with_row(text, {}) == text


@pytest.mark.slow
def test_bench_resnet_images_per_second_code_runs_on_cpu() -> None:
    """Item 5 measures CUDA only; its code runs here on the CPU at a tiny size so a GPU run does not
    discover a bug (no timing is asserted)."""
    bench = script("bench")
    args = bench.argparse.Namespace(quick=True)
    result = bench.bench_cuda_resnet(args, device="cpu", sizes=(64, 8, 2, 1), workers=0)
    assert result["images_per_s_on_device"] > 0 and result["images_per_s_dataloader"] > 0
    assert result["gpu"] == "cpu" and result["batch_size"] == 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
@pytest.mark.slow
def test_bench_cuda_without_gpu_fails_clearly(tmp_path: Path) -> None:
    proc = preloaded.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--device", "cuda", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "no CUDA device is visible" in proc.stdout


@pytest.mark.slow
def test_device_check_without_a_gpu_marks_every_row_not_run(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the table printed where no GPU is visible")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_check.sh"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    names = [r.split(" | ")[0].strip("| ") for r in rows]
    assert names == ["default", "resnet18", "compile", "ddp1", "nan_guard", "limit", "packed"]
    assert all(r.endswith("| not run: no CUDA GPU visible |") for r in rows)


@pytest.mark.slow
def test_device_check_cpu_smoke_path_writes_its_table_and_json(tmp_path: Path) -> None:
    """``device_check.sh --device cpu --tiny``: the ResNet-18 run (channels_last; float32, as a CPU may
    emulate bf16) with its DataLoader baseline, the ``limit`` with lossbench's share of it, and 4 packed
    ResNet-32 replicas (16 without ``--tiny``) against one by one (rows chosen with ``--only``: the default
    run's row times a run as the ResNet-18 row does; no timing is asserted). The script runs from the
    preloaded Python in the setting ``device_check.sh`` gives it (the repository's root, W&B offline,
    unbuffered, ``src`` on the path, 480 s); the wrapper itself runs in the no-GPU test above."""
    wrapper = {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = preloaded.run(
        [sys.executable, str(ROOT / "scripts" / "device_check.py"), "--device", "cpu", "--tiny"]
        + ["--only", "resnet18,limit,packed", "--out", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, **wrapper},
        capture_output=True,
        text=True,
        timeout=480,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert [r["row"] for r in report["rows"]] == ["resnet18", "limit", "packed"]
    assert all(r["status"] == "ran" for r in report["rows"]), report["rows"]
    assert all("float32" in r["measure"] for r in report["rows"] if r["row"] in ("resnet18", "limit"))
    assert report["torch"] == torch.__version__ and report["lightning"]
    assert set(report["figures"]["limit_images_per_s"]) == {"8", "16"}  # JSON keys
    assert report["figures"]["share_of_limit"]["resnet18"] > 0
    limit_row = next(line for line in proc.stdout.splitlines() if line.startswith("| limit |"))
    assert "at batch 8" in limit_row and "of it" in limit_row
    packed = report["figures"]["packed"]
    assert packed["replicas"] == 4
    rates = ("packed_runs_per_hour", "sequential_runs_per_hour", "packed_images_per_s")
    rates += ("packed_limit_images_per_s",)
    assert all(packed[rate] > 0 for rate in rates), packed


@pytest.mark.slow
def test_device_check_plain_loop_and_image_rate_run_on_cpu() -> None:
    """The device check's own measurements run here at a tiny size (no timing is asserted)."""
    device_check = script("device_check")
    assert device_check.plain_loop("cpu", n=16, batch=8, steps=1, workers=0, bf16=False) > 0  # CPU: float32
    timed = {"epochs": [{"train_s": 9.0, "steps": 1}, {"train_s": 2.0, "steps": 4}]}
    assert device_check.images_per_s(timed, batch_size=8) == 16.0  # the first epoch (warm-up) is left out


def hand_sweep(*flags: str) -> dict[str, float]:
    proc = preloaded.run(
        [sys.executable, str(ROOT / "scripts" / "hand_sweep.py"), "--losses", "ce,focal", "--seeds", "1"]
        + ["--epochs", "2", *flags],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["loss"]: r["test_acc"] for r in json.loads(proc.stdout)["runs"]}


@pytest.mark.slow
def test_hand_sweep_baseline_does_the_same_work(make_cfg, tmp_path: Path) -> None:
    """The sweep baselines of ``make bench`` (plain PyTorch, and a bare Lightning module and Trainer) train
    the same runs: the same test accuracy as lossbench."""
    hand, bare = hand_sweep(), hand_sweep("--lightning")
    for loss in ("ce", "focal"):
        ours = run(make_cfg(f"loss={loss}", "trainer.max_epochs=2", "logger=csv", output_dir=tmp_path / loss))
        assert ours["test"]["test/acc"] == pytest.approx(hand[loss], abs=1e-6), loss
        assert bare[loss] == pytest.approx(hand[loss], abs=1e-6), loss


def test_hand_sweep_is_plain_pytorch() -> None:
    """The plain baseline loads neither Lightning nor torchmetrics, and orders batches as lossbench does."""
    from lossbench.data.loader import epoch_seed

    hand_sweep = script("hand_sweep")
    assert all(hand_sweep.epoch_seed(s, e) == epoch_seed(s, e) for s in range(3) for e in range(4))
    code = (
        "import sys; sys.path.insert(0, 'scripts'); import hand_sweep; "
        "print(sorted(m for m in ('lightning', 'torchmetrics') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
