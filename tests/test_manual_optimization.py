"""Issue 7: the module's manual optimization and ``data.steps_per_execution`` groups train exactly like
Lightning's automatic optimization, with Lightning's meaning of clipping, accumulation and schedules."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from lossbench.data.loader import EpochSampler, StepGroups, TensorBatchLoader
from lossbench.errors import ConfigError
from lossbench.module import LossBenchModule
from lossbench.train import _build_module, build_trainer, run


class AutomaticReference(LossBenchModule):
    """The reference: the same module trained by Lightning's automatic optimization loop, one Lightning
    batch per optimizer step, with clipping, accumulation and scheduling left to the Trainer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = True

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss(self.model(x), y)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass  # no train/loss bookkeeping

    def on_train_epoch_end(self) -> None:
        pass  # Lightning steps the schedulers

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "interval": self.scheduler_interval}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _setup(make_cfg, *overrides: str) -> tuple[Any, Any, LossBenchModule]:
    """The composed config, its data module (set up) and lossbench's module, seeded like ``run()``."""
    cfg = make_cfg(*overrides)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    _, _, module = _build_module(cfg, dm)
    return cfg, dm, module


def _train(make_cfg, overrides: list[str], trainer_kwargs: dict[str, Any], reference: bool) -> dict:
    """Fit 3 epochs on digits; return the final parameters, the global step and the learning rate.

    ``trainer_kwargs`` go to the Trainer, except (for lossbench's module) the options it applies itself.
    """
    cfg, dm, module = _setup(make_cfg, "optim=sgd", "trainer.max_epochs=3", *overrides)
    if reference:
        dm.steps_per_execution = 1
        module = AutomaticReference(
            model=module.model,
            loss=module.loss,
            optimizer=module.optimizer_factory,
            scheduler=module.scheduler_factory,
            scheduler_interval=module.scheduler_interval,
            task=module.task,
            num_classes=dm.num_classes,
        )
    else:
        module.gradient_clip_val = trainer_kwargs.pop("gradient_clip_val", None)
        module.gradient_clip_algorithm = trainer_kwargs.pop("gradient_clip_algorithm", None) or "norm"
        module.accumulate_grad_batches = trainer_kwargs.pop("accumulate_grad_batches", 1)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=dm)
    params = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    return {
        "params": params,
        "global_step": trainer.global_step,
        "lr": module.optimizers().param_groups[0]["lr"],
    }


@pytest.mark.parametrize(
    ("overrides", "trainer_kwargs"),
    [
        ([], {}),
        (["optim.scheduler_interval=step", "optim.scheduler.T_max=40"], {"gradient_clip_val": 0.5}),
        ([], {"gradient_clip_val": 0.01, "gradient_clip_algorithm": "value", "accumulate_grad_batches": 3}),
        (["optim.scheduler_interval=step", "optim.scheduler.T_max=20"], {"accumulate_grad_batches": 4}),
        # validation inside the epoch must not zero gradients being accumulated (runs ungrouped, see below)
        ([], {"accumulate_grad_batches": 3, "val_check_interval": 0.5}),
        # an epoch cut short by max_steps does not step the epoch schedule
        (["optim.scheduler.T_max=4"], {"max_steps": 20}),
    ],
    ids=[
        "plain",
        "clip-norm+step-schedule",
        "clip-value+accumulate",
        "accumulate+step-schedule",
        "accumulate+mid-epoch-validation",
        "max-steps-mid-epoch",
    ],
)
@pytest.mark.parametrize("steps", [1, 5, 32])
def test_matches_lightning_automatic_optimization(make_cfg, overrides, trainer_kwargs, steps):
    """17 batches per epoch: groups of 5 end with a short group; 32 holds a whole epoch."""
    ours = _train(make_cfg, [f"data.steps_per_execution={steps}", *overrides], dict(trainer_kwargs), False)
    ref = _train(make_cfg, overrides, dict(trainer_kwargs), True)
    assert ours["global_step"] == ref["global_step"] > 0
    assert ours["lr"] == pytest.approx(ref["lr"], rel=1e-12)
    for name, value in ref["params"].items():
        torch.testing.assert_close(ours["params"][name], value, rtol=1e-6, atol=1e-7, msg=name)


def test_clipping_and_accumulation_change_training(make_cfg):
    """The reference comparison above must not pass because the options are ignored on both sides."""
    plain = _train(make_cfg, [], {}, False)["params"]
    for kwargs in ({"gradient_clip_val": 0.01}, {"accumulate_grad_batches": 3}):
        changed = _train(make_cfg, [], kwargs, False)["params"]
        assert any(not torch.equal(plain[k], changed[k]) for k in plain), kwargs


def test_trainer_options_reach_the_module_from_the_config(make_cfg):
    """``trainer.gradient_clip_val`` etc. are plain overrides (no ``+``) and are applied by the module."""
    summary = run(
        make_cfg(
            "trainer.max_epochs=2",
            "trainer.gradient_clip_val=0.5",
            "trainer.gradient_clip_algorithm=value",
            "trainer.accumulate_grad_batches=2",
            "logger=csv",
        )
    )
    assert summary["config"]["trainer"]["gradient_clip_val"] == 0.5
    assert summary["status"] == "ok" and summary["test"]["test/acc"] > 0.5


@pytest.mark.parametrize("steps", [1, 5, 32])
def test_steps_per_execution_gives_identical_runs(make_cfg, tmp_path, steps):
    common = ("trainer.max_epochs=3", "logger=csv")
    summary = run(make_cfg(*common, f"data.steps_per_execution={steps}", output_dir=tmp_path / "groups"))
    baseline = run(make_cfg(*common, "data.steps_per_execution=1", output_dir=tmp_path / "single"))
    assert summary["val"] == baseline["val"] and summary["test"] == baseline["test"]
    # the loggers' step axis counts optimizer steps whatever the grouping: the CSV files are identical
    csv = "csv/metrics.csv"
    assert (tmp_path / "groups" / csv).read_text() == (tmp_path / "single" / csv).read_text()


def _global_step(make_cfg, *overrides: str) -> int:
    cfg, dm, module = _setup(make_cfg, *overrides)
    trainer = build_trainer(cfg, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    return trainer.global_step


def test_max_steps_and_integer_limits_count_optimizer_steps(make_cfg):
    """17 batches per epoch in groups of 32: the limits still count batches, as without groups."""
    assert _global_step(make_cfg, "+trainer.max_steps=7") == 7
    assert _global_step(make_cfg, "trainer.max_epochs=2", "+trainer.limit_train_batches=3") == 6
    assert _global_step(make_cfg, "+trainer.fast_dev_run=true") == 1
    assert _global_step(make_cfg, "trainer.max_epochs=2", "trainer.accumulate_grad_batches=4") == 2 * 5


def test_step_groups_yield_the_loader_batches_in_order():
    x = torch.arange(100.0)[:, None]
    sampler = EpochSampler(100, shuffle=True, seed=3)
    loader = TensorBatchLoader((x, torch.arange(100)), 8, sampler, train=True)
    groups = StepGroups(loader, 5)
    assert len(loader) == 13 and len(groups) == 3
    groups.sampler.set_epoch(4)  # what Lightning does before each epoch
    batches = [b for group in groups for b in group]
    assert [len(g) for g in groups] == [5, 5, 3]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, loader, strict=True))
    limited = StepGroups(loader, 5, max_batches=7)
    assert len(limited) == 2 and [len(g) for g in limited] == [5, 2]


def test_resume_continues_the_epoch_schedule_exactly(make_cfg, tmp_path):
    """The module steps epoch schedulers itself: a run resumed from ``last.ckpt`` (saved after validation,
    before the epoch's scheduler step) must end where the uninterrupted run ends."""
    common = ("optim=sgd", "optim.scheduler.T_max=4", "logger=csv")
    straight = run(make_cfg(*common, "trainer.max_epochs=4", output_dir=tmp_path / "straight"))
    run(make_cfg(*common, "trainer.max_epochs=2", output_dir=tmp_path / "resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = run(
        make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "resumed")
    )
    assert resumed["val"] == straight["val"] and resumed["test"] == straight["test"]


def test_fractional_batch_counts_train_ungrouped(make_cfg, caplog):
    """A fractional ``limit_train_batches`` or a ``val_check_interval`` counts Lightning batches: the run
    falls back to one step per batch (with a warning), so they mean what they mean in Lightning."""
    with caplog.at_level("WARNING", logger="lossbench.data.base"):
        assert _global_step(make_cfg, "trainer.max_epochs=1", "+trainer.limit_train_batches=0.5") == 8
    assert "data.steps_per_execution=1" in caplog.text
    assert _global_step(make_cfg, "trainer.max_epochs=1", "+trainer.val_check_interval=0.5") == 17


def test_reduce_on_plateau_is_refused_before_training(make_cfg):
    cfg = make_cfg(
        "optim=sgd",
        "optim.scheduler._target_=torch.optim.lr_scheduler.ReduceLROnPlateau",
        "~optim.scheduler.T_max",
        "logger=csv",
    )
    with pytest.raises(ConfigError, match="ReduceLROnPlateau needs a monitored metric"):
        run(cfg)
