"""The default ``hydra.launcher.max_pack``: one replica's memory, measured, against the memory free."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.packed import memory
from lossbench.packed.launcher import Job, group_jobs


def test_one_replica_needs_its_state_and_the_activations_of_a_full_batch(make_cfg):
    cfg = make_cfg("model.hidden_dims=[32]", "data.batch_size=64", "logger=none")
    need = memory.measure(cfg)
    weights = (64 * 32 + 32 + 32 * 10 + 10) * 4  # digits: 64 features, 10 classes, float32
    assert need.state == weights * 5, "weights, gradients, the best epoch's copy and Adam's two moments"
    # a full batch's training step keeps at least the input, the hidden layer before and after ReLU and
    # dropout, and the outputs: per sample (64 + 3 * 32 + 10) floats
    assert need.activations >= 64 * (64 + 3 * 32 + 10) * 4
    # and no more than ~200 floats a sample: the weights a layer keeps for its backward pass (2,410 floats,
    # scaled with the batch they would be 77,000) are not activations
    assert need.activations < 64 * 200 * 4
    assert need.data == sum(t.numel() * t.element_size() for t in digits_splits(cfg))
    bigger = memory.measure(make_cfg("model.hidden_dims=[32]", "data.batch_size=128", "logger=none"))
    assert bigger.activations == pytest.approx(2 * need.activations, rel=0.01), "scaled to the batch"


def digits_splits(cfg) -> list[torch.Tensor]:
    from lossbench.build import build_data

    dm = build_data(cfg)
    return [t for split in dm.splits.values() for t in split]


def test_max_pack_is_what_half_the_free_memory_holds(make_cfg, monkeypatch, caplog):
    caplog.set_level("INFO", logger="lossbench")
    need = memory.ReplicaMemory(state=3_000_000, activations=1_000_000, data=10_000_000)
    monkeypatch.setattr(memory, "measure", lambda cfg: need)
    cfg = make_cfg("logger=none")
    monkeypatch.setattr(memory, "free_bytes", lambda device: 10_000_000 + 2 * 4_000_000 * 7 + 5)
    assert memory.max_pack_for(cfg) == 7
    assert "max_pack: 7 replicas per packed model (one needs about 3.8 MiB" in caplog.text
    monkeypatch.setattr(memory, "free_bytes", lambda device: 1_000)
    assert memory.max_pack_for(cfg) == 1, "at least one: the job then runs the ordinary way"
    monkeypatch.setattr(memory, "free_bytes", lambda device: 2**50)
    assert memory.max_pack_for(cfg) == memory.MOST


def test_free_memory_of_the_cpu_is_the_systems_available_memory():
    free = memory.free_bytes(torch.device("cpu"))
    assert free > 0 and math.isfinite(free)
    assert memory.size(1536) == "1.5 KiB" and memory.size(12) == "12 B"
    assert memory.size(3 * 2**40) == "3072.0 GiB"


def test_groups_take_their_limit_from_their_first_job(make_cfg):
    overrides = [(f"seed={s}",) for s in range(5)] + [("data_seed=1",), ("data_seed=1", "seed=1")]
    cfgs = [make_cfg(*o, "logger=none") for o in overrides]
    jobs = [Job(n, list(o), cfg, cfg) for n, (o, cfg) in enumerate(zip(overrides, cfgs, strict=True))]
    groups, alone = group_jobs(jobs, lambda job: 2 if job.cfg.data_seed == 0 else 3)
    assert [[job.num for job in group] for group in groups] == [[0, 1], [2, 3], [5, 6]]
    assert list(alone) == [4] and "no other job is left" in alone[4]


def test_a_job_whose_replica_cannot_be_measured_runs_alone_and_the_next_job_leads_its_group(
    make_cfg, monkeypatch
):
    """A job whose replica cannot be built (its own problem, which its ordinary run names) gave its group a
    fixed limit of 16 (the valid jobs of its kind were never measured) and was refused only once the group
    was built. It runs alone with its error; the next job of the kind is measured and leads the group."""

    def measure(cfg):
        if cfg.seed == 0:
            raise FileNotFoundError("no such table: my.csv")
        return 5

    monkeypatch.setattr(memory, "max_pack_for", measure)
    limit = memory.memory_limits()
    with pytest.raises(memory.UnmeasuredReplica, match="FileNotFoundError: no such table: my.csv"):
        limit(make_cfg("logger=none"))
    overrides = [(f"seed={s}",) for s in range(4)]
    cfgs = [make_cfg(*o, "logger=none") for o in overrides]
    jobs = [Job(n, list(o), cfg, cfg) for n, (o, cfg) in enumerate(zip(overrides, cfgs, strict=True))]
    groups, alone = group_jobs(jobs, lambda job: limit(job.cfg))
    assert [[job.num for job in group] for group in groups] == [[1, 2, 3]]
    assert alone == {0: "its replica could not be built (FileNotFoundError: no such table: my.csv)"}
