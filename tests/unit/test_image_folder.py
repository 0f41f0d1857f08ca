"""data=image_folder: a streamed ImageFolder trains end to end, splits and stressors are reproducible,
workers and DDP do not change the metrics, and bad folders fail in setup with one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from lossbench.checks import check_run
from lossbench.data.image_folder import ImageFolderDataModule
from lossbench.data.loader import BatchSpec, FolderBatchSampler
from lossbench.data.stressors import long_tail_counts
from lossbench.errors import ConfigError, DataError
from tests.image_folders import folder_cfg, write_folder


def setup_dm(make_cfg, root: Path, *overrides: str) -> ImageFolderDataModule:
    dm = instantiate(folder_cfg(make_cfg, root, *overrides).data)
    dm.setup("fit")
    return dm


def test_augmentation_is_seeded_per_sample_and_epoch(make_cfg, tmp_path):
    dm = setup_dm(make_cfg, write_folder(tmp_path / "images"), "data.augment=true")
    ds = dm.dataset("train")
    assert torch.equal(ds.image(0, epoch=1), ds.image(0, epoch=1))
    assert any(not torch.equal(ds.image(p, epoch=0), ds.image(p, epoch=1)) for p in range(5))


def test_split_depends_on_data_seed_only(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images")

    def split(*overrides: str) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in setup_dm(make_cfg, root, *overrides).split_index.items()}

    base = split("data_seed=0", "seed=0")
    for name, idx in split("data_seed=0", "seed=7").items():
        assert np.array_equal(idx, base[name])
    other = split("data_seed=1")
    assert not np.array_equal(other["test"], base["test"])
    together = np.concatenate(list(base.values()))
    assert sorted(together.tolist()) == list(range(3 * 23)), "the splits partition the folder"


@pytest.mark.slow
def test_stressors_change_only_the_training_split(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images", per_class=30)
    clean = setup_dm(make_cfg, root)
    targets = np.asarray(clean.folders["train"].targets)

    long_tail = setup_dm(make_cfg, root, "data.imbalance_factor=4")
    again = setup_dm(make_cfg, root, "data.imbalance_factor=4")
    train, y_train = long_tail.split_index["train"]
    assert np.array_equal(train, again.split_index["train"][0]), "reproducible"
    assert set(train) < set(clean.split_index["train"][0]) and np.array_equal(y_train, targets[train])
    counts = long_tail.class_counts.tolist()
    assert counts == np.bincount(y_train).tolist()
    assert counts == long_tail_counts(int(clean.class_counts.min()), 3, 4.0), "the long-tailed profile"
    for split in ("val", "test"):
        assert np.array_equal(long_tail.split_index[split][0], clean.split_index[split][0])
    assert long_tail.describe()["imbalance_factor"] == 4

    noisy = setup_dm(make_cfg, root, "data.label_noise=0.25")
    train, y_noisy = noisy.split_index["train"]
    assert np.array_equal(train, clean.split_index["train"][0]), "noise keeps the samples"
    flipped = y_noisy != targets[train]
    assert 0.2 < flipped.mean() < 0.3 and noisy.describe()["label_noise_realised"] == flipped.mean()
    assert np.array_equal(y_noisy, setup_dm(make_cfg, root, "data.label_noise=0.25").split_index["train"][1])
    assert noisy.class_counts.tolist() == np.bincount(y_noisy, minlength=3).tolist()
    pos = int(np.flatnonzero(flipped)[0])
    _, y = noisy.dataset("train")[BatchSpec([pos], 0, None)]
    assert y.tolist() == [y_noisy[pos]], "the dataset serves the noisy label"
    for split in ("val", "test"):
        idx, y_eval = noisy.split_index[split]
        assert np.array_equal(y_eval, targets[idx]), "val and test stay clean"


def test_test_root_is_the_test_split(make_cfg, tmp_path):
    root = write_folder(tmp_path / "train")
    test_root = write_folder(tmp_path / "test", per_class=5, seed=1)
    dm = setup_dm(make_cfg, root, f"data.test_root={test_root}")
    assert dm.describe()["n_test"] == 15 and dm.folders["test"].root == str(test_root)
    assert np.array_equal(dm.split_index["test"][1], np.repeat([0, 1, 2], 5))
    train_val = np.concatenate([dm.split_index["train"][0], dm.split_index["val"][0]])
    assert sorted(train_val.tolist()) == list(range(3 * 23)), "train + val are all of data.root"


@pytest.mark.parametrize(("n", "batch_size", "world"), [(1077, 32, 2), (10, 4, 3), (5, 1, 4), (64, 8, 2)])
def test_batch_sampler_uses_each_training_sample_once_per_epoch(n, batch_size, world):
    def batches(rank: int, world_size: int, bs: int) -> list[BatchSpec]:
        sampler = FolderBatchSampler(n, bs, train=True, seed=3, rank=rank, world_size=world_size)
        sampler.set_epoch(2)
        return list(sampler)

    per_rank = [batches(r, world, batch_size) for r in range(world)]
    assert len({len(b) for b in per_rank}) == 1, "every rank takes the same number of steps"
    single = batches(0, 1, batch_size * world)
    assert all(b.scale is None and b.epoch == 2 for b in single)
    seen = []
    for step, global_batch in enumerate(single):
        parts = [rank[step] for rank in per_rank]
        used = [p for part in parts if part.scale > 0 for p in part.positions]
        assert sorted(used) == sorted(global_batch.positions), "the global batches of one process"
        seen += used
        for part in parts:
            expected = len(part.positions) * world / len(global_batch.positions) if part.scale else 0.0
            assert part.scale == pytest.approx(expected)
    assert sorted(seen) == list(range(n))


def test_eval_sampler_counts_each_sample_once():
    seen = [p for r in range(2) for b in FolderBatchSampler(361, 100, False, 0, r, 2) for p in b.positions]
    assert sorted(seen) == list(range(361))


@pytest.mark.slow
def test_bad_folders_fail_in_setup_naming_the_problem(make_cfg, tmp_path):
    def error(root: Path, *overrides: str) -> str:
        with pytest.raises(DataError) as info:
            setup_dm(make_cfg, root, *overrides)
        return str(info.value)

    assert "data.root=" in error(tmp_path / "missing") and "does not exist" in error(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    assert "no class sub-folders" in error(tmp_path / "flat")

    single = write_folder(tmp_path / "single", per_class=5, classes=("cat",))
    msg = error(single)
    assert "has 1 class (cat)" in msg and "put each class in its own sub-folder" in msg
    assert "contract" not in msg

    root = write_folder(tmp_path / "images")
    (root / "empty").mkdir()
    (root / "void").mkdir()
    msg = error(root)
    assert f"class folder(s) {root / 'empty'}, {root / 'void'} hold no images" in msg
    (root / "empty").rmdir()
    (root / "void").rmdir()

    broken = [root / "dog" / f"broken{i}.png" for i in range(7)]
    for path in broken:
        path.write_bytes(b"not a png")
    msg = error(root)
    assert "7 file(s) are not readable images: " in msg and "and 2 more" in msg
    assert str(broken[0]) in msg and "UnidentifiedImageError" in msg
    for path in broken:
        path.unlink()

    small = write_folder(tmp_path / "small", per_class=20, classes=("a", "b"))
    for f in sorted((small / "b").iterdir())[2:]:
        f.unlink()
    assert "class 'b' has only 2 sample(s)" in error(small)

    other = write_folder(tmp_path / "other", per_class=3, classes=("cat", "dog", "owl"))
    msg = error(root, f"data.test_root={other}")
    assert "data.test_root=" in msg and "owl" in msg and "same class sub-folders" in msg

    with pytest.raises(ConfigError, match="data.label_noise"):
        setup_dm(make_cfg, root, "data.outlier_fraction=0.1")


def test_undecodable_image_names_the_file(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images")
    dm = setup_dm(make_cfg, root, "data.check_files=false")
    ds = dm.dataset("train")
    path = Path(ds.folder.samples[int(ds.indices[3])][0])
    path.write_bytes(path.read_bytes()[:40])  # a valid header, truncated pixel data
    with pytest.raises(DataError, match=str(path)):
        ds[BatchSpec([3], 0, None)]
    cut = path.with_name("cut.png")  # an intact header and the pixel data cut short
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:-2000])
    path.unlink()
    setup_dm(make_cfg, root)  # the header check passes it
    with pytest.raises(
        DataError, match=r"1 file\(s\) are not readable images: .*cut.png \((OSError|SyntaxE)"
    ):
        setup_dm(make_cfg, root, "data.check_files=full")
    with pytest.raises(ConfigError, match=r"data.check_files='fully' is not valid: choose true .*, full"):
        ImageFolderDataModule(root=str(root), check_files="fully")
    with pytest.raises(
        ConfigError, match=r"data.check_files='fully' has the wrong type: expected true or false"
    ):
        check_run(folder_cfg(make_cfg, root, "data.check_files=fully"))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped_white(tmp_path, mode):
    from lossbench.data.image_batches import load_image

    deep = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    loaded = np.asarray(load_image(str(tmp_path / "deep.png"), mode)).astype(int)
    expected = np.rint(deep / 257.0).astype(int)
    assert np.array_equal(loaded if mode == "L" else loaded[..., 1], expected)
    assert (loaded == 255).mean() < 0.01, "Pillow's convert alone clips every value above 255"


def test_a_resize_below_the_image_size_is_refused(tmp_path):
    """The center crop padded the 4x4 image with black to 8x8: three quarters of each input were zero."""
    with pytest.raises(ConfigError, match=r"data.resize=4 is smaller than data.image_size=\[8, 8\]"):
        ImageFolderDataModule(root=str(tmp_path), image_size=8, resize=4)


def test_hidden_files_and_folders_are_not_data(make_cfg, tmp_path):
    """A folder copied from a Mac (AppleDouble ``._x.png`` files, which are no images) or used in a
    notebook (``.ipynb_checkpoints``): neither is a class or a sample."""
    root = write_folder(tmp_path / "images")
    (root / ".ipynb_checkpoints").mkdir()
    for path in list((root / "cat").iterdir()):
        (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 apple double")
    (root / "dog" / ".@__thumb").mkdir()  # a NAS's thumbnails: near-copies of the photos
    Image.new("RGB", (8, 8)).save(root / "dog" / ".@__thumb" / "000.png")
    dm = setup_dm(make_cfg, root)
    samples = dm.folders["train"].samples
    assert dm.labels == ["cat", "dog", "fox"] and len(samples) == 3 * 23
    assert not [path for path, _ in samples if "/." in path[len(str(root)) :]]


def test_a_root_of_split_folders_is_refused_naming_the_split_to_use(make_cfg, tmp_path):
    """train/<class>/ and test/<class>/: torchvision's ImageFolder learned "train" against "test"."""
    write_folder(tmp_path / "data" / "train")
    write_folder(tmp_path / "data" / "test", per_class=5, seed=1)
    data = tmp_path / "data"
    with pytest.raises(DataError, match=rf"holds split folders \(test, train\).*data.root={data / 'train'} "):
        setup_dm(make_cfg, data)


def test_a_root_of_validation_and_test_folders_names_the_validation_one_to_train_on(make_cfg, tmp_path):
    data = tmp_path / "data"
    write_folder(data / "val")
    write_folder(data / "test", per_class=5, seed=1)
    with pytest.raises(DataError, match=rf"data.root={data / 'val'} data.test_root={data / 'test'}$"):
        setup_dm(make_cfg, data)


@pytest.mark.parametrize("beside", ["unlabeled", "annotations", "stray"])
def test_a_root_of_split_folders_is_refused_whatever_else_it_holds(make_cfg, tmp_path, beside):
    """STL-10's unlabeled/ images, a folder of no images (which the empty-class check named first), or one
    image at the top of a split folder: the splits would still be the classes."""
    data = tmp_path / "data"
    write_folder(data / "train")
    write_folder(data / "test", per_class=5, seed=1)
    if beside == "unlabeled":
        write_folder(data / "unlabeled", per_class=3, seed=2)
    elif beside == "annotations":
        (data / "annotations").mkdir()
        (data / "annotations" / "labels.csv").write_text("file,label\n")
    else:
        Image.new("RGB", (8, 8)).save(data / "train" / "preview.png")
    with pytest.raises(DataError, match=rf"holds split folders \(test, train\).*data.root={data / 'train'} "):
        setup_dm(make_cfg, data)


def test_a_test_folder_holding_training_images_is_refused(make_cfg, tmp_path):
    root = write_folder(tmp_path / "images")
    with pytest.raises(DataError, match=r"data.test_root=.* holds 69 file\(s\) of data.root"):
        setup_dm(make_cfg, root, f"data.test_root={root}/")


def test_images_imagefolder_does_not_read_are_counted_in_a_warning(make_cfg, tmp_path, caplog, monkeypatch):
    root = write_folder(tmp_path / "images")
    for name in ("cat", "dog"):
        Image.new("RGB", (8, 8)).save(root / name / "extra.gif")
    Image.new("RGB", (8, 8)).save(root / "stray.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="lossbench"):
        dm = setup_dm(make_cfg, root)
    assert len(dm.folders["train"].samples) == 3 * 23
    assert "3 image file(s) are not used (2 .gif, 1 beside the class folders)" in caplog.text
    caplog.clear()
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # another DDP process: rank 0 says it
    with caplog.at_level("WARNING", logger="lossbench"):
        setup_dm(make_cfg, root)
    assert "not used" not in caplog.text


def test_a_test_folder_spelling_a_class_otherwise_or_lacking_one_names_it(make_cfg, tmp_path):
    """macOS writes é as e + a combining accent: the same class, and its test images keep their labels."""
    import unicodedata

    classes = ("cat", unicodedata.normalize("NFC", "étoile"), "fox")
    root = write_folder(tmp_path / "train", classes=classes)
    nfd = ("cat", unicodedata.normalize("NFD", "étoile"), "fox")
    dm = setup_dm(make_cfg, root, f"data.test_root={write_folder(tmp_path / 'test', 5, nfd, seed=1)}")
    assert dm.labels == ["cat", "fox", classes[1]], "sorted as data.root spells them: é after f"
    assert np.array_equal(dm.split_index["test"][1], np.repeat([0, 2, 1], 5)), "cat, étoile, fox there"
    lacking = write_folder(tmp_path / "lacking", 5, ("cat", "fox", "owl"), seed=2)
    with pytest.raises(DataError, match=r"lacks class folder\(s\) 'étoile' and has class folder\(s\) 'owl'"):
        setup_dm(make_cfg, root, f"data.test_root={lacking}")


def test_float_or_wide_integer_pixels_are_refused_not_clipped(make_cfg, tmp_path):
    from lossbench.data.image_batches import load_image

    Image.fromarray(np.full((8, 8), 300, dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(DataError, match=r"wide.tif: 32-bit pixels \(Pillow mode I\)"):
        load_image(str(tmp_path / "wide.tif"), "L")
    Image.fromarray(np.full((8, 8), 200, dtype=np.int32)).save(tmp_path / "narrow.tif")
    assert np.asarray(load_image(str(tmp_path / "narrow.tif"), "L")).max() == 200, "0..255: as it is"
    root = write_folder(tmp_path / "images")
    Image.fromarray(np.random.default_rng(0).random((8, 8)).astype(np.float32)).save(root / "cat" / "f.tif")
    with pytest.raises(DataError, match=r"1 image\(s\) hold float pixels, or 32-bit .*cat/f.tif \(F\)"):
        setup_dm(make_cfg, root)
    (root / "cat" / "f.tif").unlink()  # a 32-bit integer image beyond 0..255: refused before training too
    Image.fromarray(np.full((8, 8), 1000, dtype=np.int32)).save(root / "dog" / "i.tif")
    with pytest.raises(DataError, match=r"dog/i.tif \(I\)"):
        setup_dm(make_cfg, root)


def test_a_symbolic_link_back_into_the_folder_is_refused(make_cfg, tmp_path):
    """``os.walk`` follows links: a link to its own class folder repeated each image dozens of times, and
    the copies were split between training and test."""
    root = write_folder(tmp_path / "images")
    (root / "cat" / "again").symlink_to(root / "cat", target_is_directory=True)
    with pytest.raises(DataError, match=r"file\(s\) are reached by more than one path.*cat/again/000.png"):
        setup_dm(make_cfg, root)
