"""How checkpoints are written: atomically in their own directory, and stamped with the run's overrides.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file may sit on
another file system, so a full disk can leave a cut-off checkpoint under its final name.
:class:`AtomicCheckpointIO` (``trainer.plugins`` in ``conf/trainer/default.yaml``) writes a temporary file
beside the target, fsyncs it and renames it over the target: a checkpoint file is always whole, and a failed
write leaves the previous one as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lossbench.errors import CheckpointWriteError
from lossbench.resume import DATA_INFO_KEY, OVERRIDES_KEY, read_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local writes are temporary file + fsync + rename in the same directory."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if "://" in str(path) or storage_options is not None:  # remote storage: fsspec's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a run continued after a kill removes such a file left unfinished (lossbench.resume.Resumption)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(err, OSError):
                raise CheckpointWriteError(
                    f"could not write the checkpoint {path} ({err.strerror or err}): the earlier checkpoints "
                    "are intact. Free space there (or set paths.output_dir to another disk), then continue "
                    "with resume=true"
                ) from err
            raise
        _fsync_dir(path.parent)  # the rename itself survives a crash


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened or synced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RunDirCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, whose state read from a checkpoint written in a run dir that has
    since been moved or copied (the files it names are here, under another folder) names the files here.

    Lightning keeps only ``best_model_path`` of a state saved under another ``dirpath``, and drops
    ``best_model_score``: a continued run then took its next epoch as its best, whatever its value, and
    its best path named the old folder. A state of another run (``ckpt_path=`` a checkpoint elsewhere,
    whose files are not here) is left to Lightning as it is: the new run's best is one of its own epochs.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(moved_here(state_dict, self.dirpath))


def moved_here(state: dict[str, Any], dirpath: str | None) -> dict[str, Any]:
    """A ``ModelCheckpoint`` ``state`` saved under another ``dirpath``, with its paths under ``dirpath``
    when its best file is there (the run dir was moved or copied); otherwise ``state`` as it is."""
    saved, best = state.get("dirpath"), state.get("best_model_path")
    if dirpath is None or saved is None or saved == dirpath or not best:
        return state
    if "://" in str(dirpath) or not (Path(dirpath) / Path(str(best)).name).is_file():
        return state

    def here(path: Any) -> Any:
        return str(Path(dirpath) / Path(str(path)).name) if path else path

    moved = {**state, "dirpath": dirpath}
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in moved:
            moved[key] = here(moved[key])
    moved["best_k_models"] = {here(p): v for p, v in (state.get("best_k_models") or {}).items()}
    return moved


class OverridesInCheckpoint(Callback):
    """Store the run's command-line overrides in every checkpoint it writes (see :mod:`lossbench.resume`),
    and its ``data_info`` as JSON (given, or the fit's data module's), so a checkpoint of a run stopped
    before its record was complete is tested in its run's target units and table encoding
    (``lossbench-eval``), and a continued run is refused on other data (:func:`check_same_data`)."""

    def __init__(self, overrides: list[str], data_info: dict[str, Any] | None = None) -> None:
        self.overrides = list(overrides)
        self.data_info = None if data_info is None else data_info_stamp(data_info)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[OVERRIDES_KEY] = self.overrides
        if self.data_info is None and getattr(trainer, "datamodule", None) is not None:  # the fit's data
            from lossbench.build import data_info_of

            self.data_info = data_info_stamp(data_info_of(trainer.datamodule))
        if self.data_info is not None:
            checkpoint[DATA_INFO_KEY] = self.data_info


def data_info_stamp(data_info: dict[str, Any]) -> str:
    """A run's ``data_info`` as its checkpoints hold it (under ``DATA_INFO_KEY``): JSON, as ``metrics.json``
    writes it."""
    return json.dumps(data_info, default=str)


def stamped_data_info(path: Path) -> dict[str, Any] | None:
    """The ``data_info`` the checkpoint ``path`` holds (None: one written without the stamp)."""
    stamped = read_checkpoint(path).get(DATA_INFO_KEY)
    return json.loads(stamped) if isinstance(stamped, str) else None


def rng_states() -> dict[str, Any]:
    """This process's random states, as a run's checkpoint keeps them (``rng_states``), so a resumed run
    draws the dropout masks and augmentations its uninterrupted run draws."""
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict[str, Any] | None) -> None:
    """Set this process's random states to a checkpoint's :func:`rng_states` (none: left as they are)."""
    if not states:
        return
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def fitting_checkpoint(path: str, module: torch.nn.Module, continued_by: str | None = None) -> str:
    """``path``, a checkpoint to test on ``module`` (built for the data of this run), once it holds the
    module's weights (Lightning loads them strictly), each of its shape: a model of another architecture,
    or one trained on other classes or features, is named in one line instead of Lightning's state-dict
    mismatch. ``continued_by``: what makes a fit continue from it (``resume=true``, ``ckpt_path=``, a
    requeue), named instead of the evaluation."""
    from lossbench.config import chosen
    from lossbench.errors import ConfigError

    what = f"data={chosen('data')} model={chosen('model')}"
    source = f"ckpt_path={path}" if continued_by in (None, "ckpt_path=") else f"{continued_by}: {path}"
    own, saved = module.state_dict(), read_checkpoint(Path(path)).get("state_dict", {})
    optional = {f"loss.{name}" for name in getattr(getattr(module, "loss", None), "optional_state", ())}
    missing, extra = sorted(set(own) - set(saved) - optional), sorted(set(saved) - set(own))
    if missing or extra:
        differs = f"it lacks {missing[0]}" if missing else f"it holds {extra[0]}, which {what} has not"
        fix = (
            "evaluate it with the model of the run that wrote it (leave out any model overrides); a "
            "checkpoint of another lossbench version, or not of a lossbench run, cannot be tested here"
            if continued_by is None
            else f"continue it with the model options of the run that wrote it, or leave out {continued_by}"
        )
        raise ConfigError(f"{source} holds another architecture than {what} builds ({differs}): {fix}")
    for name, value in own.items():
        if name in saved and tuple(saved[name].shape) != tuple(value.shape):
            fix = (
                "evaluate it on data with the classes and features it was trained on, with the model options "
                "of its run"
                if continued_by is None
                else "the data's classes or features, or the model options, differ from those it was trained "
                f"with: continue it on the same data with the same options, or leave out {continued_by} to "
                "train anew"
            )
            raise ConfigError(
                f"{source} holds a model of another shape: its {name} has shape {list(saved[name].shape)}, "
                f"{what} needs {list(value.shape)}; {fix}"
            )
    return path


def check_checkpoint(cfg: Any, checkpoint: Path, module: torch.nn.Module, dm: Any, fit: bool) -> None:
    """Before a run uses ``checkpoint``: tested (``fit`` false), its classes are the data's; continued by
    ``resume=true`` or a requeue, its data are those it started with (:func:`check_same_data`); continued
    (``ckpt_path=`` too, which may start from a run's weights on other data), its weights fit ``module``
    (:func:`fitting_checkpoint`)."""
    from lossbench.build import data_info_of, describe_data
    from lossbench.evaluate import check_same_classes

    if not fit:  # the checkpoint's outputs are its run's class indices; its test split, its run's data's
        check_same_classes(checkpoint, describe_data(dm).get("labels"))
        check_same_data(str(checkpoint), data_info_of(dm), evaluating=True)
        return
    by = "ckpt_path=" if cfg.get("ckpt_path") else "resume=true"  # a requeue continues as resume=true
    if by == "resume=true":
        check_same_data(str(checkpoint), data_info_of(dm))
    fitting_checkpoint(str(checkpoint), module, by)


def check_same_data(path: str, data_info: dict[str, Any], evaluating: bool = False) -> None:
    """Refuse to continue the run whose checkpoint ``path`` holds (``resume=true``, a requeue) on data that
    differ from those it started with (its checkpoint's ``data_info`` stamp against this run's): a table
    with rows added or dropped, an edited column, an image folder with images moved. Its later epochs
    would train on another split of other data. A checkpoint without a stamp has nothing to compare.

    ``evaluating`` (``lossbench-eval``): the same for data read from where the run read them (its split
    would no longer be the run's: rows it trained on could be tested, a stressor override refits the
    inputs' scaling); data from elsewhere (``data.path=``, ``data.root=``, ``data.test_root=``) are
    other data, tested as such."""
    from lossbench.errors import ConfigError

    then = stamped_data_info(Path(path))
    if then is None:
        return
    now = json.loads(data_info_stamp(data_info))

    def shown(value: Any) -> str:  # JSON text: NaN equals NaN, key order does not count
        return json.dumps(value, default=str, sort_keys=True)

    keys = sorted(set(then) | set(now))
    if evaluating and any(is_location(k) and shown(then.get(k)) != shown(now.get(k)) for k in keys):
        return
    differs = [k for k in keys if not is_location(k) and shown(then.get(k)) != shown(now.get(k))]
    if not differs:
        return
    key = differs[0]
    was, is_now = (
        text if len(text := shown(v)) <= 60 else text[:57] + "..." for v in (then.get(key), now.get(key))
    )
    if evaluating:
        raise ConfigError(
            f"the data differ from those {path} was trained on ({key}: {was} then, {is_now} now): its test "
            "split would not be the run's (it could hold rows the run trained on). Put the data back as they "
            "were, leave out data overrides such as stressors, or test on other data (data.path=, "
            "data.root=, data.test_root=)"
        )
    raise ConfigError(
        f"resume=true: the data differ from those {path} was trained on ({key}: {was} then, {is_now} "
        "now): its later epochs would train on other data. Put the data back as they were, or train a "
        "new run (leave out resume=true)"
    )


def is_location(key: str) -> bool:
    """Whether a ``data_info`` key names where the data are (``path``, ``root``, ``test_root``, ``*_dir``):
    a moved project, or data staged to another folder, holds the same data."""
    return key in ("path", "root", "test_root") or key.endswith(("_dir", "_path", "_root"))
