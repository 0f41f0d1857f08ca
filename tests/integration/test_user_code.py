"""A user's own loss, model, data module and configs train without editing lossbench, also from the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine

from tests.conftest import ROOT, read_metrics, run_cli
from tests.user_package import PACKAGE, write_user_package

FAST = ("trainer.max_epochs=2", "logger=csv")


@pytest.fixture
def user(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The user's config dir and an environment that puts their package on the path."""
    src, conf = write_user_package(tmp_path / "user")
    return conf, {"PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


@pytest.mark.slow
def test_own_loss_model_and_data_module_through_the_search_path(user, tmp_path):
    conf, env = user
    args = (f"hydra.searchpath=[file://{conf}]", "loss=my_hinge", "model=my_net", "data=my_blobs", *FAST)
    run_cli(*args, "hydra.run.dir=run", cwd=tmp_path, env=env)
    metrics = read_metrics(tmp_path / "run")
    assert metrics["loss"] == "my_hinge" and metrics["model"] == "my_net" and metrics["data"] == "my_blobs"
    assert metrics["test"]["test/acc"] > 0.8, metrics["test"]  # well-separated blobs
    assert metrics["data_info"]["input_shape"] == [4] and sum(metrics["data_info"]["class_counts"]) == 180
    assert (tmp_path / "run" / "predictions.npz").is_file()


@pytest.mark.slow
def test_data_target_alone_builds_a_user_data_module(user, tmp_path):
    conf, env = user
    target = f"data._target_={PACKAGE}.data.Blobs"
    run_cli("data=datamodule", target, "+data.n=200", *FAST, "hydra.run.dir=run", cwd=tmp_path, env=env)
    assert read_metrics(tmp_path / "run")["data_info"]["num_classes"] == 3
    # on top of a built-in data set's keys the error says what to do
    proc = run_cli(target, "logger=none", cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 2 and "start from data=datamodule" in proc.stdout + proc.stderr


def test_help_lists_user_options_beside_the_built_in_ones(user, tmp_path):
    conf, env = user
    out = run_cli(f"hydra.searchpath=[file://{conf}]", "--help", cwd=tmp_path, env=env).stdout
    assert "my_hinge" in out and "my_net" in out and "my_blobs" in out
    assert "focal" in out and "digits" in out and "table" in out


@pytest.mark.slow
def test_a_data_module_missing_part_of_the_contract_fails_before_training(user, tmp_path):
    conf, env = user
    proc = run_cli(
        "data=datamodule",
        f"data._target_={PACKAGE}.data.NoCounts",
        "logger=none",
        cwd=tmp_path,
        env=env,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out
    assert "does not provide the data contract" in out and "input_shape" in out and "class_counts" in out
    assert not list(tmp_path.glob("outputs/**/checkpoints"))


@pytest.mark.slow
def test_installed_wheel_trains_a_user_package_from_an_empty_directory(user, tmp_path):
    """Build the wheel, install it outside the checkout, train with the user's configs and a CSV."""
    conf, _ = user
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("lossbench-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    x, y = load_wine(return_X_y=True)
    work = tmp_path / "empty"
    work.mkdir()
    rows = ["label," + ",".join(f"f{i}" for i in range(x.shape[1]))]
    rows += [f"{'abc'[t]}," + ",".join(f"{v:.6g}" for v in row) for row, t in zip(x, y, strict=True)]
    (work / "wine.csv").write_text("\n".join(rows) + "\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(conf.parent / "src")]),
        "PYTHONUNBUFFERED": "1",
    }

    def sh(*cmd: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc

    where = sh(sys.executable, "-c", "import lossbench.config as c; print(c.CONFIG_DIR)").stdout.strip()
    assert Path(where).is_relative_to(site) and (Path(where) / "train.yaml").is_file()
    sh(
        str(site / "bin" / "lossbench-train"),
        f"hydra.searchpath=[file://{conf}]",
        "loss=my_hinge",
        "model=my_net",
        "data=table",
        "data.path=wine.csv",
        "data.target=label",
        "trainer.max_epochs=1",
        "logger=csv",
        "hydra.run.dir=runs/one",
    )
    metrics = read_metrics(work / "runs" / "one")
    assert metrics["status"] == "ok" and metrics["loss"] == "my_hinge" and metrics["epochs"] == 1
    assert metrics["data_info"]["labels"] == ["a", "b", "c"] and np.isfinite(metrics["test"]["test/nll"])
    report = sh(str(site / "bin" / "lossbench"), "compare", "runs")
    assert "1 ok" in report.stdout and "my_hinge" in (work / "runs" / "report" / "report.html").read_text()
    assert (site / "hydra_plugins" / "lossbench_help" / "__init__.py").is_file(), "the --help plugin ships"
    assert sorted(p.name for p in work.iterdir()) == ["runs", "wine.csv"], "nothing written elsewhere"
