"""DDP on CPU (2 gloo processes) matches one process with the same global batch."""

from __future__ import annotations

import torch

from lossbench.data.loader import EpochSampler, TensorBatchLoader


def _rank_batches(n: int, batch_size: int, world: int, epoch: int = 0):
    x = torch.arange(n)
    sampler = EpochSampler(n, shuffle=True, seed=3)
    sampler.set_epoch(epoch)
    loaders = [
        TensorBatchLoader((x, x), batch_size, sampler, train=True, rank=r, world_size=world)
        for r in range(world)
    ]
    assert len({len(loader) for loader in loaders}) == 1, "every rank must take the same number of steps"
    return [list(loader) for loader in loaders]


def test_each_training_sample_is_seen_once_per_epoch_across_ranks():
    for n, batch_size, world in ((1077, 32, 2), (10, 4, 3), (5, 1, 4), (64, 8, 2)):
        per_rank = _rank_batches(n, batch_size, world)
        seen = torch.cat([b[0] for rank in per_rank for b in rank if b[2] > 0])
        assert sorted(seen.tolist()) == list(range(n)), (n, batch_size, world)
        single = list(TensorBatchLoader((torch.arange(n),) * 2, batch_size * world, EpochSampler(n, True, 3)))
        for step, global_batch in enumerate(single):
            parts = [rank[step] for rank in per_rank]
            used = torch.cat([p[0] for p in parts if p[2] > 0])
            assert sorted(used.tolist()) == sorted(global_batch[0].tolist()), "same global batches"
            # the scaled per-rank means average to the global mean: sum_r scale_r * mean_r / world
            means = [p[0].double().mean() * p[2] for p in parts if p[2] > 0]
            assert torch.isclose(sum(means) / world, global_batch[0].double().mean())


def test_each_eval_sample_is_counted_once_across_ranks():
    n, world = 361, 2
    x = torch.arange(n)
    seen = []
    for r in range(world):
        loader = TensorBatchLoader((x, x), 100, EpochSampler(n, False), train=False, rank=r, world_size=world)
        seen += [v for b in loader for v in b[0].tolist()]
    assert sorted(seen) == list(range(n))
