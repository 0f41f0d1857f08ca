"""Each replica's checkpoints, written as its own run's ``ModelCheckpoint`` callbacks write them.

An unpacked run keeps ``checkpoints/last.ckpt`` (``callbacks.last_checkpoint``, after every training epoch)
and its best epoch (``callbacks.model_checkpoint``, ``save_top_k: 1``: a new file when the monitored value
improves, the previous one removed). :class:`PackedCheckpoints` writes the same files for every replica at
the same moments (the end of each training epoch, after validation, before the epoch's learning-rate step)
with the same content: the replica's weights, its optimizer and scheduler state, the loops' progress as an
automatically optimized run counts it, both callbacks' state, the run's overrides and its random state
(its dropout stream). ``resume=true``, ``lossbench-eval`` and ``ckpt_path=`` treat them as any run's.

The files are written by one background thread (each a temporary file, fsync'ed and renamed over the
target, :class:`~lossbench.checkpointing.AtomicCheckpointIO`), in order, so training does not wait for
the disk; :meth:`PackedCheckpoints.close` waits for the last one.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lossbench.checkpointing import data_info_stamp
from lossbench.packed.checkpoint_io import CapturingCheckpointIO, CheckpointWriter
from lossbench.packed.history import HISTORY_KEY
from lossbench.resume import DATA_INFO_KEY, OVERRIDES_KEY, VAL_KEY
from lossbench.schedulers import PLATEAU_DUE_KEY, is_plateau

AUTOMATIC = "epoch_loop.automatic_optimization.optim_progress"
MANUAL = "epoch_loop.manual_optimization.optim_step_progress"
SCHEDULES = "epoch_loop.scheduler_progress"


def replica_rng_states(module: Any, k: int) -> dict[str, Any]:
    """Replica ``k``'s random state as its run's checkpoint stores it: its dropout stream as the global
    torch generator, Python's generator, no CUDA generators."""
    return {
        "torch": module.model.dropout.cpu_generators[k].get_state(),
        "python": module.replicas[k].python_rng_state or random.getstate(),
        "cuda": [],
    }


def automatic_loops(loops: dict[str, Any], schedule_steps: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The packed Trainer's loop states as an automatically optimized run's checkpoint holds them: the
    packed module's manual optimizer steps counted as automatic optimization's steps and ``zero_grad``
    calls (``current``: this epoch's, as automatic optimization counts them), and the replica's schedule
    steps (``schedule_steps``: in all, in this epoch) as Lightning counts a run's."""
    loops = copy.deepcopy(loops)
    for state in loops.values():
        if MANUAL not in state:
            continue
        total_steps, current_steps = schedule_steps
        state[SCHEDULES] = {
            "total": {"ready": total_steps, "completed": total_steps},
            "current": {"ready": current_steps, "completed": current_steps},
        }
        total, epoch_steps = (
            state[MANUAL]["total"],
            state["epoch_loop.batch_progress"]["current"]["completed"],
        )
        counts = {"total": dict(total), "current": {"ready": epoch_steps, "completed": epoch_steps}}
        zero_grad = {part: {**c, "started": c["completed"]} for part, c in counts.items()}
        state[AUTOMATIC] = {"optimizer": {"step": counts, "zero_grad": zero_grad}}
        state[MANUAL] = {part: {"ready": 0, "completed": 0} for part in ("total", "current")}
    return loops


def manual_loops(loops: dict[str, Any]) -> dict[str, Any]:
    """A run checkpoint's loop states (:func:`automatic_loops`) for the packed module, which counts its
    optimizer steps as manual optimization."""
    loops = copy.deepcopy(loops)
    for state in loops.values():
        if AUTOMATIC not in state:
            continue
        step = state[AUTOMATIC]["optimizer"]["step"]
        state[MANUAL] = {part: dict(step[part]) for part in ("total", "current")}
        zeros = {part: {"ready": 0, "completed": 0} for part in ("total", "current")}
        started = {part: {"ready": 0, "completed": 0, "started": 0} for part in ("total", "current")}
        state[AUTOMATIC] = {"optimizer": {"step": zeros, "zero_grad": started}}
    return loops


class ReplicaCallbacks:
    """A replica's ``callbacks.model_checkpoint`` (best) and ``callbacks.last_checkpoint`` as its run
    configures them (None where its run has none); their state is what its checkpoints store."""

    def __init__(self, cfg: DictConfig) -> None:
        nodes = cfg.get("callbacks") or {}
        self.best = instantiate(nodes["model_checkpoint"]) if nodes.get("model_checkpoint") else None
        self.last = instantiate(nodes["last_checkpoint"]) if nodes.get("last_checkpoint") else None

    def state(self) -> dict[str, Any]:
        return {cb.state_key: cb.state_dict() for cb in (self.best, self.last) if cb is not None}

    def load(self, states: dict[str, Any]) -> None:
        for cb in (self.best, self.last):
            if cb is not None and cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])

    def best_path(self, epoch: int, step: int, metric: str, value: float) -> Path:
        assert self.best is not None
        metrics = {"epoch": torch.tensor(epoch), "step": torch.tensor(step), metric: torch.tensor(value)}
        return Path(self.best.format_checkpoint_name(metrics))

    def last_path(self, epoch: int, step: int) -> Path:
        assert self.last is not None
        metrics = {"epoch": torch.tensor(epoch), "step": torch.tensor(step)}
        return Path(self.last.format_checkpoint_name(metrics))

    def kept_best(self, path: Path, value: float, tie: float | None) -> Path | None:
        """Record ``path`` (score ``value``, tie-break value ``tie``) as the best, as ``save_top_k: 1``
        does; the path it replaces."""
        assert self.best is not None
        if hasattr(self.best, "best_tie"):  # lossbench.selection.TieBreakingCheckpoint
            self.best.best_tie = tie
        score = torch.tensor(value)
        previous = self.best.best_model_path
        self.best.best_model_path, self.best.best_model_score = str(path), score
        self.best.current_score, self.best.best_k_models = score, {str(path): score}
        self.best.kth_best_model_path, self.best.kth_value = str(path), score
        return Path(previous) if previous and previous != str(path) else None


class PackedCheckpoints:
    """Writes every replica's best and last checkpoints (see the module's docstring).

    Args:
        cfgs: the replicas' run configs (``paths.output_dir`` their run dirs).
        overrides: per replica, its run's overrides (stored in its checkpoints).
        data_info: the group's data's ``data_info``, stored in each checkpoint as its run stores it.
    """

    def __init__(
        self,
        cfgs: Sequence[DictConfig],
        overrides: Sequence[Sequence[str]],
        data_info: dict[str, Any] | None = None,
    ) -> None:
        self.callbacks = [ReplicaCallbacks(cfg) for cfg in cfgs]
        self.overrides = [list(o) for o in overrides]
        self.data_info = None if data_info is None else data_info_stamp(data_info)
        self.writer = CheckpointWriter()
        #: the group Trainer's checkpoint plugin (``trainer.plugins``), whose dump gives the loop progress
        self.capture = CapturingCheckpointIO()

    def checkpoint(self, module: Any, k: int, loops: dict[str, Any]) -> dict[str, Any]:
        """Replica ``k``'s checkpoint now (its callbacks' state added by the caller), holding copies: it is
        written in the background while training goes on; ``loops``: the loop states of the group
        Trainer's own checkpoint."""
        trainer = module.trainer
        state = module.replica_state_dict(k)
        return {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "pytorch-lightning_version": L.__version__,
            "state_dict": {name: value.detach().clone() for name, value in state.items()},
            "loops": automatic_loops(loops, tuple(module.schedule_steps[k])),
            "optimizer_states": [module.replica_optimizers().replica_state_dict(k)],
            "lr_schedulers": [
                copy.deepcopy(s.scheduler.state_dict()) for s in module.schedules if k in s.replicas
            ],
            OVERRIDES_KEY: self.overrides[k],
            VAL_KEY: {name: float(value) for name, value in sorted(module.last_val[k].items())},
            PLATEAU_DUE_KEY: True,  # written at the epoch's end, before its plateau step, as its run's
            "rng_states": replica_rng_states(module, k),
            HISTORY_KEY: copy.deepcopy(module.history[k]),
            **({} if self.data_info is None else {DATA_INFO_KEY: self.data_info}),
        }

    def epoch_end(self, module: Any) -> None:
        """Write the alive replicas' checkpoints of the epoch that just ended."""
        trainer = module.trainer
        epoch, step = trainer.current_epoch, trainer.global_step
        loops = self.capture.dump(trainer)["loops"]
        for k in module.alive():
            callbacks = self.callbacks[k]
            if callbacks.best is None and callbacks.last is None:
                continue
            checkpoint = self.checkpoint(module, k, loops)
            best = module.best[k]
            if callbacks.best is not None and best.epoch == epoch and best.best is not None:
                path = callbacks.best_path(epoch, step, best.metric, best.best)
                replaced = callbacks.kept_best(path, best.best, best.best_tie)
                self.writer.save(as_saved(checkpoint, callbacks, callbacks.best), path)
                if replaced is not None:
                    self.writer.remove(replaced)
            if callbacks.last is not None:
                path = callbacks.last_path(epoch, step)
                callbacks.last.best_model_path = str(path)
                self.writer.save(as_saved(checkpoint, callbacks, callbacks.last), path)

    def best_path(self, k: int) -> str:
        """Replica ``k``'s best checkpoint as its run's ``trainer.checkpoint_callback`` names it: the best
        callback's, else (``callbacks.model_checkpoint=null``) the last one's; "" without either."""
        callbacks = self.callbacks[k]
        first = callbacks.best if callbacks.best is not None else callbacks.last
        return first.best_model_path if first is not None else ""

    def close(self) -> None:
        self.writer.close()


def as_saved(checkpoint: dict[str, Any], callbacks: ReplicaCallbacks, callback: Any) -> dict[str, Any]:
    """A replica's ``checkpoint`` as ``callback`` saves it: with the callbacks' states, or, with
    ``save_weights_only``, as Lightning's weights-only checkpoint (no callback, optimizer or schedule state,
    and no entries the callbacks add, such as the run's overrides)."""
    if not callback.save_weights_only:
        return {**checkpoint, "callbacks": callbacks.state()}
    dropped = ("optimizer_states", "lr_schedulers", OVERRIDES_KEY, DATA_INFO_KEY)
    return {key: value for key, value in checkpoint.items() if key not in dropped}


def resume_replicas(module: Any, checkpoints: Sequence[dict[str, Any]], callbacks: PackedCheckpoints) -> None:
    """Continue each replica of ``module`` from its run's checkpoint (all of one epoch): its weights,
    dropout stream, per-epoch metrics, callbacks' state and best epoch (weights read from its best
    checkpoint); its optimizer and schedule states load when the optimizers are built
    (:func:`load_optimizer_states`)."""
    epochs = {int(c["epoch"]) for c in checkpoints}
    if len(epochs) != 1:
        raise ValueError(f"the replicas' checkpoints are of different epochs ({sorted(epochs)})")
    for k, checkpoint in enumerate(checkpoints):
        modules = module.replica_modules(k)
        for name, part in modules.items():
            prefix = f"{name}."
            part.load_state_dict(
                {n[len(prefix) :]: v for n, v in checkpoint["state_dict"].items() if n.startswith(prefix)}
            )
        module.model.dropout.cpu_generators[k].set_state(checkpoint["rng_states"]["torch"])
        module.history[k] = copy.deepcopy(checkpoint[HISTORY_KEY])
        module.epochs_trained[k] = int(checkpoint["epoch"]) + 1
        counted = next((state[SCHEDULES] for state in checkpoint["loops"].values() if SCHEDULES in state), {})
        module.schedule_steps[k] = [
            int((counted.get(part) or {}).get("completed", 0)) for part in ("total", "current")
        ]
        last = module.history[k][-1] if module.history[k] else {}
        module.last_val[k] = {n: v for n, v in last.items() if n.startswith("val/")}
        replica_callbacks = callbacks.callbacks[k]
        replica_callbacks.load(checkpoint.get("callbacks") or {})
        best_cb = replica_callbacks.best
        if best_cb is not None and best_cb.best_model_path:
            best = torch.load(best_cb.best_model_path, map_location="cpu", weights_only=True)
            state = {name: {} for name in modules}
            for n, v in best["state_dict"].items():
                name, _, key = n.partition(".")
                state[name][key] = v
            module.best[k].best = float(best_cb.best_model_score)
            module.best[k].best_tie = getattr(best_cb, "best_tie", None)
            module.best[k].epoch = int(best["epoch"])
            module.best[k].state = state
    module.resumed = list(checkpoints)


def load_optimizer_states(module: Any) -> None:
    """Load the resumed replicas' optimizer and schedule states (see :func:`resume_replicas`)."""
    optimizers = module.replica_optimizers()
    for k, checkpoint in enumerate(module.resumed or []):
        optimizers.load_replica_state_dict(k, checkpoint["optimizer_states"][0])
    for schedule in module.schedules:
        first = module.resumed[schedule.replicas[0]] if module.resumed else {}
        saved = first.get("lr_schedulers") or []
        if saved:
            schedule.scheduler.load_state_dict(saved[0])
            value = (first.get(VAL_KEY) or {}).get(module.replicas[schedule.replicas[0]].monitor)
            if is_plateau(schedule.scheduler) and first.get(PLATEAU_DUE_KEY) and value is not None:
                schedule.scheduler.step(value)  # the step its checkpoint missed, as its run catches up


def group_checkpoint(module: Any, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The packed module's own checkpoint at a replica checkpoint's epoch, for ``trainer.fit(ckpt_path=)``:
    its loops' progress; the weights and optimizer states are the module's, loaded already."""
    return {
        "epoch": checkpoint["epoch"],
        "global_step": checkpoint["global_step"],
        "pytorch-lightning_version": L.__version__,
        "state_dict": module.state_dict(),
        "loops": manual_loops(checkpoint["loops"]),
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
