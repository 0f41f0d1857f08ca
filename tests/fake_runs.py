"""A fake ``lossbench`` multirun directory, as ``lossbench compare`` reads it, with no training.

``ACC`` holds the test accuracy of each (loss, seed) run; ``fake_run`` writes one finished job (Hydra
overrides, ``metrics.json``, the CSV logger's ``metrics.csv`` and ``predictions.npz``); ``write_sweep``
writes the whole sweep: one job per ``ACC`` entry, a failed job (``loss=bce``) and a job that never wrote
its ``metrics.json`` (``loss=huber``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# test accuracy per (loss, seed); mse is best, focal ties ce on average
ACC = {
    ("ce", 0): 0.90,
    ("ce", 1): 0.92,
    ("ce", 2): 0.91,
    ("mse", 0): 0.95,
    ("mse", 1): 0.96,
    ("mse", 2): 0.94,
}
ACC |= {("focal", 0): 0.89, ("focal", 1): 0.93, ("focal", 2): 0.91}


def fake_run(job: Path, loss: str, seed: int, acc: float, rng: np.random.Generator) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- loss={loss}\n- seed={seed}\n- trainer.max_epochs=3\n")
    ece = 0.02 if loss == "ce" else 0.1
    metrics = {
        "status": "ok",
        "loss": loss,
        "data": "digits",
        "seed": seed,
        "monitor": {"metric": "val/acc", "mode": "max", "best": acc + 0.01},
        "test": {"test/acc": acc, "test/ece": ece + seed * 0.001, "test/loss": 5.0},
        "config": {"logger": {"csv": {}}},
    }
    (job / "metrics.json").write_text(json.dumps(metrics))
    (job / "csv").mkdir()
    rows = ["epoch,step,train/loss,val/acc,val/loss"] + [
        f"{e},{e * 10},,{acc - 0.1 / (e + 1):.4f},1.0" for e in range(3)
    ]
    (job / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    targets = np.repeat(np.arange(4), 25)
    probs = rng.dirichlet(np.ones(4), size=len(targets)).astype(np.float32)
    probs[np.arange(len(targets)), targets] += 1.0
    probs /= probs.sum(1, keepdims=True)
    np.savez(job / "predictions.npz", targets=targets, probs=probs, preds=probs.argmax(1))


def write_sweep(tmp_path: Path) -> Path:
    """Write the sweep under ``tmp_path/multirun/<date>/<time>`` and return that directory."""
    root = tmp_path / "multirun" / "2026-01-01" / "00-00-00"
    rng = np.random.default_rng(0)
    for job, ((loss, seed), acc) in enumerate(sorted(ACC.items())):
        fake_run(root / str(job), loss, seed, acc, rng)
    failed = root / "9"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "overrides.yaml").write_text("- loss=bce\n- seed=0\n- trainer.max_epochs=3\n")
    err = {"type": "ConfigError", "message": "bad thing"}
    (failed / "metrics.json").write_text(
        json.dumps({"status": "failed", "loss": "bce", "seed": 0, "error": err})
    )
    missing = root / "10"
    (missing / ".hydra").mkdir(parents=True)
    (missing / ".hydra" / "overrides.yaml").write_text("- loss=huber\n- seed=0\n- trainer.max_epochs=3\n")
    return root
