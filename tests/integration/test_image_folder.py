"""data=image_folder: a streamed ImageFolder trains end to end, splits and stressors are reproducible,
workers and DDP do not change the metrics, and bad folders fail in setup with one clear line."""

from __future__ import annotations

import pytest

from lossbench.run import run
from tests.conftest import read_metrics, run_cli
from tests.image_folders import CLASSES, folder_cfg, write_folder


@pytest.mark.slow
def test_cli_trains_end_to_end(tmp_path):
    root = write_folder(tmp_path / "images")
    args = (
        "data=image_folder",
        f"data.root={root}",
        "model=cnn",
        "data.image_size=8",
        "trainer.max_epochs=1",
    )
    run_cli(*args, "logger=csv", "hydra.run.dir=run", cwd=tmp_path)
    metrics = read_metrics(tmp_path / "run")
    assert set(metrics["test"]) >= {"test/acc", "test/loss", "test/f1"}
    info = metrics["data_info"]
    assert info["labels"] == list(CLASSES) and info["input_shape"] == [3, 8, 8]
    assert info["n_train"] + info["n_val"] + info["n_test"] == 3 * 23
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_worker_count_does_not_change_metrics(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images")
    common = ("trainer.max_epochs=2", "logger=none", "data.augment=true", "data.batch_size=16")
    a = run(folder_cfg(make_cfg, root, *common, "data.num_workers=0", output_dir=tmp_path / "w0"))
    b = run(folder_cfg(make_cfg, root, *common, "data.num_workers=2", output_dir=tmp_path / "w2"))
    assert a["test"] == b["test"] and a["val"] == b["val"]


@pytest.mark.slow
def test_ddp_matches_one_process(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images", per_class=24)
    common = ("model.dropout=0", "trainer.max_epochs=2", "logger=none")
    single = run(folder_cfg(make_cfg, root, *common, "data.batch_size=16", output_dir=tmp_path / "single"))
    args = ("data=image_folder", f"data.root={root}", "model=cnn", "data.image_size=8", *common)
    run_cli(*args, "trainer=ddp_cpu", "data.batch_size=8", "hydra.run.dir=ddp", cwd=tmp_path)
    ddp = read_metrics(tmp_path / "ddp")
    n_train = ddp["data_info"]["n_train"]
    assert n_train % 16 == 1, "a last global batch of one sample leaves rank 1 a placeholder"
    for key, value in single["test"].items():
        assert abs(ddp["test"][key] - value) < 1e-4, (key, value, ddp["test"][key])
    assert ddp["test"]["test/acc"] == single["test"]["test/acc"]
