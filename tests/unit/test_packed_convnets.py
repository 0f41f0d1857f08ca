"""Packed convolutional models (:mod:`lossbench.packed.cnn`, :mod:`lossbench.packed.resnet`) compute each
replica's own forward, update each replica's own batch-norm statistics, and keep the replicas' tensors
views of the stacked ones; packed batches augment each replica as its run does."""

from __future__ import annotations

import copy

import pytest
import torch

from lossbench.data.transforms import Normalize, PadCropFlip
from lossbench.errors import ConfigError
from lossbench.models.cnn import CNN
from lossbench.models.resnet import CifarResNet, resnet18_cifar
from lossbench.packed.batches import PackedTrainLoader, replica_transforms
from lossbench.packed.cnn import PackedCNN
from lossbench.packed.models import packed_model
from lossbench.packed.resnet import PackedCifarResNet
from tests.unit.test_packed import assert_runs_batches

SHAPE = (3, 8, 8)
MODELS = {
    "cnn": lambda outputs: CNN(SHAPE, outputs, channels=(4, 8), hidden=16, dropout=0.0),
    "resnet32-A": lambda outputs: CifarResNet(SHAPE, outputs, depth=8, width=4),
    "resnet32-B": lambda outputs: CifarResNet(SHAPE, outputs, depth=8, width=4, shortcut="B"),
    "resnet18": lambda outputs: resnet18_cifar(SHAPE, outputs),
}


def replicas(name: str, widths=(10, 10, 3)) -> list[torch.nn.Module]:
    """Replicas seeded 0, 1, …, heads of ``widths`` (the last one narrower, as another loss's)."""
    models = []
    for seed, width in enumerate(widths):
        torch.manual_seed(seed)
        models.append(MODELS[name](width))
    return models


@pytest.mark.parametrize("name", list(MODELS))
def test_packed_forward_and_batch_norm_are_each_replicas_own(name):
    """In float64 (the packed model cast after packing, as ``trainer.precision=64-true`` casts it): the
    outputs in eval and train mode, and the running statistics after two training steps."""
    widths = [10, 3] if name == "resnet18" else [10, 10, 3]
    models = replicas(name, widths)
    alone = [copy.deepcopy(m).double() for m in models]
    packed = packed_model(models, list(range(len(models)))).double()
    torch.manual_seed(9)
    x = torch.randn(len(models), 6, *SHAPE, dtype=torch.float64)
    shared = x[0]
    packed.eval()
    with torch.no_grad():
        own, common = packed(x), packed(shared, shared=True)
        for k, model in enumerate(alone):
            model.eval()
            torch.testing.assert_close(packed.outputs(k, own), model(x[k]), rtol=0, atol=1e-12)
            torch.testing.assert_close(packed.outputs(k, common), model(shared), rtol=0, atol=1e-12)
    packed.train()
    for step in range(2):
        out = packed(x + step)
        for k, model in enumerate(alone):
            model.train()
            torch.testing.assert_close(packed.outputs(k, out), model(x[k] + step), rtol=0, atol=1e-12)
    for k, model in enumerate(alone):
        mine = dict(models[k].named_buffers())
        for buffer_name, value in model.named_buffers():
            torch.testing.assert_close(mine[buffer_name], value, rtol=0, atol=1e-12)
        assert mine.keys() == dict(model.named_buffers()).keys()
    assert packed.output_widths == widths


def test_replicas_stay_views_of_the_stacked_tensors_after_a_cast():
    """``.double()`` gives every tensor new memory; the replicas' parameters (the same objects, so an
    optimizer built on them stays valid) and buffers are views of the stacked ones again at the next
    forward, so a step on the stacked parameters is the replicas' step and their state is their own."""
    models = replicas("resnet32-A")
    params = [list(m.parameters()) for m in models]
    packed = PackedCifarResNet(models, [0, 1, 2]).double()
    packed.train()
    packed(torch.randn(3, 2, *SHAPE)).sum().backward()
    assert [list(m.parameters()) for m in models] == params
    with torch.no_grad():
        for stacked in packed.stacked_parameters():
            stacked -= 0.1 * stacked.grad
    for k, model in enumerate(models):
        assert model.head.weight.dtype == torch.float64
        assert torch.equal(model.head.weight, packed.param("head.weight")[k, : model.head.out_features])
        assert torch.equal(model.stem[1].running_var, packed.buffer("stem.1.running_var")[k])
    state = {n: torch.zeros_like(v) for n, v in models[1].state_dict().items()}
    models[1].load_state_dict(state)  # a best epoch restored into the replica writes its stacked slices
    assert not packed.param("stem.0.weight")[1].any() and packed.param("stem.0.weight")[0].any()
    packed.share_grads(2)
    assert torch.equal(models[2].head.weight.grad, packed.param("head.weight").grad[2, :3])


def test_a_frozen_replica_keeps_its_running_statistics():
    models = replicas("resnet32-A")
    packed = PackedCifarResNet(models, [0, 1, 2]).train()
    packed(torch.randn(3, 4, *SHAPE))
    kept = {n: b.clone() for n, b in models[1].named_buffers()}
    packed.freeze(1)
    packed(torch.randn(3, 4, *SHAPE)).sum().backward()  # the statistics' update leaves autograd whole
    for name, value in models[1].named_buffers():
        assert torch.equal(value, kept[name]), name
    assert int(models[0].stem[1].num_batches_tracked) == 2 and int(models[1].stem[1].num_batches_tracked) == 1


def test_different_architectures_are_refused():
    with pytest.raises(ValueError, match="architecture"):
        PackedCNN([CNN(SHAPE, 10, channels=(4, 8)), CNN(SHAPE, 10, channels=(4, 6))], [0, 1])
    with pytest.raises(ValueError, match="architecture"):
        PackedCifarResNet([CifarResNet(SHAPE, 10, depth=8), CifarResNet(SHAPE, 10, depth=14)], [0, 1])
    with pytest.raises(TypeError, match="packs"):
        PackedCNN([CifarResNet(SHAPE, 10, depth=8)], [0])


def test_each_replica_augments_its_batches_as_its_run():
    """Packed batches: replica ``k``'s are its run's batches through its run's ``PadCropFlip`` (seeded by
    its ``data.seed``), epoch after epoch; a ``Normalize`` alone is one transform for all."""
    torch.manual_seed(0)
    x, y = torch.randint(0, 256, (40, *SHAPE), dtype=torch.uint8), torch.arange(40) % 10
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    seeds = [0, 1, 2]
    transforms = replica_transforms(PadCropFlip(mean, std, pad=2, seed=0), seeds, "cifar")
    packed = PackedTrainLoader((x, y), 16, seeds, transforms)

    def augment(seed: int) -> PadCropFlip:  # a run's transform for its data.seed
        return PadCropFlip(mean, std, pad=2, seed=seed)

    batches = assert_runs_batches(packed, (x, y), 16, seeds, (0, 1), augment)
    assert not torch.equal(batches[0][0][0], batches[0][0][1])
    normalize = Normalize(mean, std)
    assert replica_transforms(normalize, seeds, "cifar") == [normalize] * 3
    assert replica_transforms(None, seeds, "digits") is None
    with pytest.raises(ConfigError, match="cannot each reproduce"):
        replica_transforms(lambda batch, epoch: batch, seeds, "mine")


def test_a_dropout_before_the_flatten_is_refused_not_mispacked():
    models = replicas("cnn")
    for model in models:
        model.features.append(torch.nn.Dropout(0.5))  # per-channel activations: no per-replica mask fits
    packed = PackedCNN(models, seeds=[0, 1, 2])
    with pytest.raises(TypeError, match="packs Dropout layers after the flatten only"):
        packed(torch.randn(3, 2, *SHAPE))
