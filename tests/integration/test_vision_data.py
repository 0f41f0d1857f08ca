"""Vision data through torchvision's real parsing code, on small files written in the native formats."""

from __future__ import annotations

import pytest

from lossbench.run import run
from tests.fake_vision import write_cifar, write_mnist


@pytest.mark.slow
def test_cifar_trains_identically_with_both_loaders(make_cfg, tmp_path):
    """One epoch of a CNN on tiny CIFAR: tensor path and DataLoader path, same augmentation, same metrics."""
    write_cifar(tmp_path / "data", "cifar10", per_batch=40, n_test=50)
    common = (
        "data=cifar10",
        "model=cnn",
        "model.channels=[4,8]",
        "model.hidden=16",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.batch_size=32",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=2",
    )
    a = run(make_cfg(*common, output_dir=tmp_path / "a"))
    b = run(make_cfg(*common, "data.loader=torch", output_dir=tmp_path / "b"))
    assert a["data_info"]["n_train"] == 180 and a["data_info"]["n_test"] == 50
    assert a["test"] == b["test"] and a["val"] == b["val"]


@pytest.mark.slow
def test_the_entry_point_prepares_data_before_setup(make_cfg, tmp_path, monkeypatch):
    from torchvision import datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "download", lambda self: write_mnist(tmp_path / "data"))
    summary = run(
        make_cfg(
            "data=mnist",
            f"paths.data_dir={tmp_path / 'data'}",
            "data.download=true",
            "model=cnn",
            "trainer.max_epochs=1",
            "logger=none",
            "callbacks=none",
        )
    )
    assert summary["data_info"]["n_test"] == 50
