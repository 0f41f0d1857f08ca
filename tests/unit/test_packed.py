"""Packed replicas without training: initial weights, forward, dropout masks, batches, optimizers, clipping,
best-epoch choice and which runs may be packed together (the training equivalence is in
tests/integration/test_packed.py)."""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch

from lossbench.build import build_data, build_module
from lossbench.data.loader import EpochSampler, TensorBatchLoader
from lossbench.errors import RunInterrupted
from lossbench.packed import PackedMLP, PackedTrainLoader, build_replicas, packing_problems
from lossbench.packed.checkpoints import AUTOMATIC, MANUAL, automatic_loops, manual_loops
from lossbench.packed.module import PackedModule
from lossbench.packed.optim import ReplicaOptimizers, SharedOptimizer, clip_gradients
from lossbench.packed.selection import BestWeights

SEEDS = (0, 1, 2, 3)


def unpacked(cfg):
    """What ``lossbench.run.run`` builds before training: (data module, module, CPU generator state)."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_data(cfg)
    _, _, module = build_module(cfg, dm)
    return dm, module, torch.get_rng_state()


@pytest.fixture
def cfgs(make_cfg):
    return [make_cfg(f"seed={s}", "logger=none", "model.dropout=0.1") for s in SEEDS]


def test_initial_weights_are_each_seeds_unpacked_weights(cfgs):
    _, replicas = build_replicas(cfgs)
    model = PackedMLP([r.model for r in replicas], SEEDS, [r.rng_state for r in replicas])
    for seed, cfg in zip(SEEDS, cfgs, strict=True):
        _, module, _ = unpacked(cfg)
        reference = module.model.state_dict()
        assert replicas[seed].model.state_dict().keys() == reference.keys()
        for name, value in replicas[seed].model.state_dict().items():
            assert torch.equal(value, reference[name]), (seed, name)
        for index, layer in enumerate(module.model.net):
            if isinstance(layer, torch.nn.Linear):
                weight, bias = model.stacked(index)
                assert torch.equal(weight[seed], layer.weight) and torch.equal(bias[seed], layer.bias)
    # the seeds do give different weights, so the equalities above say something
    assert not torch.equal(replicas[0].model.net[1].weight, replicas[1].model.net[1].weight)


def test_packed_forward_equals_each_unpacked_forward(cfgs):
    dm, replicas = build_replicas(cfgs)
    model = PackedMLP([r.model for r in replicas], SEEDS, [r.rng_state for r in replicas]).eval()
    x_val = dm.splits["val"][0]
    x_train = dm.splits["train"][0][: 4 * 50].reshape(4, 50, -1)
    with torch.no_grad():
        shared, own = model(x_val, shared=True), model(x_train)
    assert shared.shape == (4, len(x_val), 10) and own.shape == (4, 50, 10)
    for k, replica in enumerate(replicas):
        replica.model.eval()
        with torch.no_grad():
            torch.testing.assert_close(shared[k], replica.model(x_val), rtol=0, atol=1e-6)
            torch.testing.assert_close(own[k], replica.model(x_train[k]), rtol=0, atol=1e-6)
    assert (shared[0] - shared[1]).abs().max() > 1e-3


def test_heads_of_different_widths_are_packed(make_cfg):
    """A loss sets the head's width (mse: 1 output, gaussian_nll: mean and variance): narrower heads are
    padded in the packed product and each replica's outputs are its own head's."""
    cfgs = [make_cfg("data=diabetes", "logger=none", f"loss={loss}") for loss in ("mse", "gaussian_nll")]
    dm, replicas = build_replicas(cfgs)
    model = PackedMLP([r.model for r in replicas], [0, 0], [r.rng_state for r in replicas]).eval()
    assert model.output_widths == [1, 2]
    x = dm.splits["val"][0]
    with torch.no_grad():
        packed = model(x, shared=True)
        for k, replica in enumerate(replicas):
            own = model.outputs(k, packed)
            assert own.shape == (len(x), k + 1)
            torch.testing.assert_close(own, replica.model.eval()(x), rtol=0, atol=1e-6)


def test_training_forward_draws_each_runs_dropout_masks(cfgs):
    """On the CPU each replica's masks are those its run draws from the global generator, step after step."""
    dm, replicas = build_replicas(cfgs)
    model = PackedMLP([r.model for r in replicas], SEEDS, [r.rng_state for r in replicas]).train()
    x = dm.splits["train"][0][:64]
    steps = [model(x, shared=True).detach() for _ in range(2)]
    for seed, cfg in zip(SEEDS, cfgs, strict=True):
        _, module, state = unpacked(cfg)
        assert torch.equal(state, replicas[seed].rng_state)
        module.model.train()
        for step in steps:  # the run's generator continues from its first step to its second
            torch.testing.assert_close(step[seed], module.model(x).detach(), rtol=0, atol=1e-6)
    assert not torch.equal(steps[0][0], steps[1][0])  # a new mask each step


def test_packed_mlp_refuses_different_architectures(make_cfg):
    cfgs = [make_cfg("logger=none"), make_cfg("logger=none", "model.hidden_dims=[32]")]
    models = [unpacked(cfg)[1].model for cfg in cfgs]
    with pytest.raises(ValueError, match="architecture"):
        PackedMLP(models, [0, 0])


def test_each_replica_gets_its_runs_batches(cfgs):
    dm, _ = build_replicas(cfgs)
    x, y = dm.splits["train"]
    packed = PackedTrainLoader((x, y), dm.batch_size, SEEDS)
    batches = assert_runs_batches(packed, (x, y), dm.batch_size, SEEDS, epochs=(0, 3))
    assert not torch.equal(batches[0][1][0], batches[0][1][1])  # the seeds' orders differ


def assert_runs_batches(
    packed: PackedTrainLoader, tensors: tuple, batch_size: int, seeds, epochs, transform=None
) -> list:
    """Assert that replica ``k`` of ``packed`` gets, in each of ``epochs``, the training batches of its
    run (``seeds[k]``; ``transform(seed)``: its run's training transform); the last epoch's batches."""
    for epoch in epochs:
        packed.sampler.set_epoch(epoch)
        batches = list(packed)
        for k, seed in enumerate(seeds):
            sampler = EpochSampler(len(tensors[1]), shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            own = transform(seed) if transform is not None else None
            ordinary = list(TensorBatchLoader(tensors, batch_size, sampler, train=True, transform=own))
            assert len(batches) == len(ordinary) == len(packed)
            for (px, py), (ox, oy) in zip(batches, ordinary, strict=True):
                assert torch.equal(px[k], ox) and torch.equal(py[k], oy)
    return batches


def test_replica_optimizers_step_only_active_replicas_as_separate_optimizers():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)) for _ in range(3)]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    lrs = [0.1, 0.01, 0.5]
    packed = ReplicaOptimizers([torch.optim.AdamW([p], lr=lr) for p, lr in zip(params, lrs, strict=True)])
    alone = [torch.optim.AdamW([p], lr=lr) for p, lr in zip(copies, lrs, strict=True)]
    packed.active = [True, False, True]
    for _ in range(3):
        packed.zero_grad()
        sum((p**2).sum() for p in params).backward()
        packed.step()
        for k in (0, 2):
            alone[k].zero_grad()
            (copies[k] ** 2).sum().backward()
            alone[k].step()
    for k in (0, 2):
        assert torch.equal(params[k], copies[k])
    assert torch.equal(params[1], copies[1])  # not stepped: as it started
    assert [g["lr"] for g in packed.param_groups] == lrs
    state = packed.state_dict()
    assert len(state["replicas"]) == 3
    packed.load_state_dict(state)


@pytest.mark.parametrize("kind", ["replicas", "shared"])
def test_a_replicas_optimizer_state_is_a_copy_that_later_steps_leave_as_it_was(kind):
    """A replica's checkpoint is written in the background while the group trains on: the optimizer state
    it holds must be that step's (the replicas' own AdamW moments, aliased, were written a step later)."""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(2, 3))
    if kind == "shared":
        optimizer = SharedOptimizer(torch.optim.AdamW([weight], lr=0.1), [[(0,), (1,)]])
    else:
        rows = [torch.nn.Parameter(weight.detach()[k].clone()) for k in range(2)]
        optimizer = ReplicaOptimizers([torch.optim.AdamW([rows[k]], lr=0.1 * (k + 1)) for k in range(2)])
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def step() -> None:
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()

    step()
    taken = optimizer.replica_state_dict(1)
    before = copy.deepcopy(taken)
    step()
    for i, entries in before["state"].items():
        assert all(torch.equal(taken["state"][i][name], value) for name, value in entries.items())


def test_shared_optimizer_updates_and_states_are_each_replicas_own():
    """AdamW on stacked ``[K, ...]`` weights (a padded head: replica 1's has 2 rows of 3) updates each slice
    as a separate AdamW on that replica's tensors, bit for bit; each replica's state is that optimizer's
    (sliced), loads into a fresh shared optimizer, and a stopped replica keeps its weights."""
    torch.manual_seed(0)
    weight, bias = torch.nn.Parameter(torch.randn(3, 3, 4)), torch.nn.Parameter(torch.randn(3, 3))
    slices = [(k, slice(0, 2 if k == 1 else 3)) for k in range(3)]
    alone = [[torch.nn.Parameter(p.detach()[s].clone()) for p in (weight, bias)] for s in slices]
    separate = [torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1) for ps in alone]
    shared = SharedOptimizer(torch.optim.AdamW([weight, bias], lr=0.01, weight_decay=0.1), [slices, slices])
    for step in range(4):
        grads = [torch.randn(3, 3, 4), torch.randn(3, 3)]
        for g in grads:
            g[1, 2:] = 0  # the padded row's gradient
        weight.grad, bias.grad = grads[0].clone(), grads[1].clone()
        shared.active = [True, True, step < 2]
        shared.step()
        for k in (0, 1) if step >= 2 else (0, 1, 2):
            for p, g in zip(alone[k], grads, strict=True):
                p.grad = g[slices[k]].clone()
            separate[k].step()
    for k in (0, 1, 2):
        assert torch.equal(weight.detach()[slices[k]], alone[k][0]) and torch.equal(
            bias.detach()[slices[k]], alone[k][1]
        )
    for k in (0, 1):
        mine, theirs = shared.replica_state_dict(k), separate[k].state_dict()
        assert mine["param_groups"] == theirs["param_groups"]
        for i, state in theirs["state"].items():
            for name, value in state.items():
                assert torch.equal(mine["state"][i][name], value), (k, i, name)
    fresh = SharedOptimizer(torch.optim.AdamW([weight, bias], lr=0.01, weight_decay=0.1), [slices, slices])
    for k in (0, 1):
        fresh.load_replica_state_dict(k, separate[k].state_dict())
        for i, state in separate[k].state_dict()["state"].items():
            assert all(torch.equal(fresh.replica_state_dict(k)["state"][i][n], v) for n, v in state.items())
    with pytest.raises(TypeError, match="element-wise"):
        SharedOptimizer(torch.optim.LBFGS([weight]), [slices])


def test_checkpoint_loops_count_manual_steps_as_automatic_ones():
    """A replica's checkpoint counts the packed module's manual steps as its run's automatic optimization
    counts them, and converts back for the packed module."""
    total = {"ready": 34, "completed": 34}
    fit = {
        MANUAL: {"total": dict(total), "current": dict(total)},
        AUTOMATIC: {"optimizer": {"step": {}, "zero_grad": {}}},
        "epoch_loop.batch_progress": {"current": {"ready": 17, "completed": 17}},
    }
    loops = automatic_loops({"fit": fit, "test": {"batch_progress": {}}})
    state = loops["fit"]
    assert state[AUTOMATIC]["optimizer"]["step"] == {
        "total": total,
        "current": {"ready": 17, "completed": 17},
    }
    assert state[AUTOMATIC]["optimizer"]["zero_grad"]["total"] == {**total, "started": 34}
    assert state[MANUAL]["total"] == {"ready": 0, "completed": 0} and loops["test"] == {"batch_progress": {}}
    back = manual_loops(loops)["fit"]
    assert back[MANUAL]["total"] == total and back[AUTOMATIC]["optimizer"]["step"]["total"]["completed"] == 0


def test_gradient_clipping_is_per_replica(make_cfg):
    """Replicas 0 and 1 clip at 0.5 by the norm of their own gradients (as ``clip_grad_norm_`` on their
    run's parameters); replica 2's run does not clip."""
    cfgs = [make_cfg(f"seed={s}", "logger=none", "trainer.gradient_clip_val=0.5") for s in (0, 1)]
    cfgs.append(make_cfg("seed=2", "logger=none"))
    dm, replicas = build_replicas(cfgs)
    module = PackedModule(replicas, dm.task, dm.num_classes)
    torch.manual_seed(1)
    grads = [[torch.randn_like(p) * (k + 1) for p in r.parameters()] for k, r in enumerate(replicas)]
    for k, replica in enumerate(replicas):
        for p, g in zip(replica.parameters(), grads[k], strict=True):
            p.grad = g.clone()
        clip_gradients(module.model, replicas[k], k)
    for k in (0, 1):
        alone = [torch.nn.Parameter(p.detach().clone()) for p in replicas[k].parameters()]
        for p, g in zip(alone, grads[k], strict=True):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(alone, 0.5)
        for p, q in zip(replicas[k].parameters(), alone, strict=True):
            assert torch.equal(p.grad, q.grad)
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in replicas[k].parameters()]))
        assert math.isclose(float(norm), 0.5, rel_tol=1e-4)  # its own norm, not the group's
    for p, g in zip(replicas[2].parameters(), grads[2], strict=True):
        assert torch.equal(p.grad, g)


def test_a_replicas_state_is_its_runs_module_state(make_cfg):
    """Named as its run's checkpoint names them, with the loss's buffers (class_balanced's weights)."""
    cfgs = [make_cfg("logger=none", "loss=ce"), make_cfg("logger=none", "loss=class_balanced", "seed=1")]
    dm, replicas = build_replicas(cfgs)
    module = PackedModule(replicas, dm.task, dm.num_classes)
    for k, cfg in enumerate(cfgs):
        reference = unpacked(cfg)[1].state_dict()
        state = module.replica_state_dict(k)
        assert state.keys() == reference.keys()
        for name, value in reference.items():
            assert torch.equal(state[name], value), name
    assert any(name.startswith("loss.") for name in module.replica_state_dict(1))


def test_best_weights_follow_model_checkpoint():
    """The first epoch always counts, NaN is the worst value, a tie is not better; the kept state is the
    best epoch's (the weights hold the epoch's number here)."""
    model = torch.nn.Linear(2, 1)

    def epoch(number: int, value: float) -> bool:
        with torch.no_grad():
            model.weight.fill_(number)
        return best.update({"val/acc": value}, number, {"model": model})

    best = BestWeights("val/acc", "max")
    assert epoch(0, float("nan"))
    assert epoch(1, 0.5)
    assert not epoch(2, 0.5)
    assert not epoch(3, float("nan"))
    assert best.restore({"model": model}) and bool((model.weight == 1).all())
    assert (best.best, best.epoch) == (0.5, 1)
    low = BestWeights("val/loss", "min")
    assert low.update({"val/loss": 2.0}, 0, {}) and low.update({"val/loss": 1.0}, 1, {})
    assert not low.update({"val/loss": 1.5}, 2, {})


def test_runs_whose_checkpoints_loggers_or_start_a_replica_does_not_reproduce_are_not_packed(make_cfg):
    """Each setting that would make a packed replica's files or best epoch differ from its run's is named."""

    def problems(*overrides: str) -> str:
        return "; ".join(packing_problems([make_cfg(*overrides)]))

    assert problems("logger=csv") == "" and problems("logger=default") == ""
    assert "logger.tensorboard is not written by a packed replica" in problems("logger=tensorboard")
    assert "logger.mlflow" in problems("logger=mlflow")
    uploads = problems("logger=default", "logger.wandb.log_model=true")  # the checkpoints as W&B artifacts
    assert "logger.wandb.log_model=True: a packed replica uploads no checkpoints" in uploads
    assert "callbacks.lr_monitor is not packed" in problems("logger=csv", "callbacks=lr_monitor")
    assert "ckpt_path=/x.ckpt continues that checkpoint" in problems("logger=csv", "ckpt_path=/x.ckpt")
    other_metric = problems("logger=csv", "callbacks.model_checkpoint.monitor=val/ece")
    assert "callbacks.model_checkpoint.monitor=val/ece differs from monitor.metric=None" in other_metric
    assert problems("logger=csv", "monitor.metric=val/ece", "monitor.mode=min") == ""
    assert "save_top_k=2 is not packed" in problems("logger=csv", "callbacks.model_checkpoint.save_top_k=2")
    assert "last_checkpoint.every_n_epochs=3" in problems(
        "logger=csv", "callbacks.last_checkpoint.every_n_epochs=3"
    )
    theirs = problems(
        "logger=csv", "callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint"
    )
    assert (
        "callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint is not packed"
        in theirs
    )
    assert problems("logger=csv", "callbacks.last_checkpoint=null") == ""


def test_what_can_be_packed(make_cfg):
    base = make_cfg("logger=none")
    own = ("loss=focal", "seed=3", "optim.optimizer.lr=0.01", "trainer.gradient_clip_val=1")
    assert packing_problems([base, make_cfg("logger=none", *own)]) == []

    def problems(*overrides: str) -> str:
        return "; ".join(packing_problems([base, make_cfg("logger=none", *overrides)]))

    assert "data_seed" in problems("data_seed=1")
    assert "model" in problems("model.hidden_dims=[8]")
    assert "data" in problems("data.batch_size=32")
    assert "trainer" in problems("trainer.max_epochs=2")
    assert "callbacks" in problems("callbacks=none")
    half = make_cfg("logger=none", "trainer.precision=16-mixed")
    assert "precision" in "; ".join(packing_problems([half]))
    sparse_val = make_cfg("logger=none", "+trainer.check_val_every_n_epoch=2")  # last.ckpt after validations
    assert "check_val_every_n_epoch" in "; ".join(packing_problems([sparse_val]))
    for interval in ("0.5", "8", "1"):  # an int counts batches; a checkpoint follows each validation
        within = make_cfg("logger=none", f"+trainer.val_check_interval={interval}")
        assert "val_check_interval" in "; ".join(packing_problems([within])), interval
    assert not packing_problems([make_cfg("logger=none", "+trainer.val_check_interval=1.0")])
    lbfgs = make_cfg(
        "logger=none", "optim=sgd", "optim.optimizer._target_=torch.optim.LBFGS", "~optim.optimizer.momentum"
    )
    assert "torch.optim.LBFGS needs a closure" in "; ".join(packing_problems([lbfgs]))
    for model in ("cnn", "resnet32", "resnet18"):
        assert packing_problems([make_cfg("logger=none", f"model={model}")]) == []
    own_model = make_cfg("logger=none", "model._target_=mypkg.Net")
    assert "no packed version" in "; ".join(packing_problems([own_model]))
    assert "channels_last" in "; ".join(
        packing_problems([make_cfg("logger=none", "model=cnn", "model.channels_last=true")])
    )
    assert "data.seed=3 differs from seed=0" in "; ".join(
        packing_problems([make_cfg("logger=none", "data.seed=3")])
    )
    no_tie_break = make_cfg("logger=none", "callbacks.model_checkpoint.tie_break=null")
    assert "tie_break=None is not packed" in "; ".join(packing_problems([no_tie_break]))
    early = make_cfg("logger=none", "callbacks=early_stopping")
    assert "callbacks.early_stopping is not packed" in "; ".join(packing_problems([early, early]))
    lightnings_own = make_cfg("logger=none", "callbacks=none")  # the Trainer adds its ModelCheckpoint
    assert "Lightning's own checkpoint" in "; ".join(packing_problems([lightnings_own]))
    without_checkpoints = make_cfg("logger=none", "callbacks=none", "+trainer.enable_checkpointing=false")
    assert packing_problems([without_checkpoints] * 2) == []
    assert not build_replicas([without_checkpoints])[1][0].select_best  # tested at its last epoch
    assert build_replicas([base])[1][0].select_best


def test_reusing_config_loader_composes_a_job_once_for_the_sweeper_and_the_launcher():
    from hydra_plugins.lossbench_packed_launcher.config_cache import ReusingConfigLoader

    class Loader:
        def __init__(self) -> None:
            self.calls = 0

        def load_sweep_config(self, master_config, sweep_overrides):
            self.calls += 1
            return {"overrides": list(sweep_overrides), "call": self.calls}

    inner, master = Loader(), object()
    loader = ReusingConfigLoader(inner)  # type: ignore[arg-type]
    checked = loader.load_sweep_config(master, ["seed=0"])  # the sweeper's check
    launched = loader.load_sweep_config(master, ["seed=0"])  # the launcher's: a copy of the checked one
    assert launched == checked and launched is not checked and inner.calls == 1
    assert loader.load_sweep_config(master, ["seed=0"])["call"] == 2  # asked a third time: composed again
    assert loader.load_sweep_config(master, ["seed=1"])["overrides"] == ["seed=1"] and inner.calls == 3


def test_without_a_best_checkpoint_callback_a_replica_names_its_last_checkpoint(make_cfg, tmp_path):
    """As its run's ``trainer.checkpoint_callback`` (then the last checkpoint's callback) names it."""
    from lossbench.packed.checkpoints import PackedCheckpoints

    cfg = make_cfg("callbacks.model_checkpoint=null", output_dir=tmp_path)
    checkpoints = PackedCheckpoints([cfg], [[]])
    try:
        callbacks = checkpoints.callbacks[0]
        assert callbacks.best is None and checkpoints.best_path(0) == ""
        callbacks.last.best_model_path = str(callbacks.last_path(0, 10))  # as each epoch's save sets it
        assert checkpoints.best_path(0).endswith("checkpoints/last.ckpt")
    finally:
        checkpoints.close()


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), RunInterrupted("SIGTERM", "")])
def test_a_stop_while_a_replicas_run_dir_is_written_goes_to_the_launcher(stop):
    """A stop there was recorded as the job's failure (SIGTERM raised in the task) or ended the sweep
    without its table and continue line (Ctrl-C): it joins the group's stops, which the launcher raises
    once Hydra's ``run_job`` has returned, and nothing is recorded for the job."""
    from lossbench.packed.run_files import guarded

    def write(cfg):
        raise stop

    stops: list = []
    assert math.isnan(guarded(write, stops)(None))
    assert [s.signal_name for s in stops] == ["SIGINT" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"]
