"""Test a checkpoint with the config of the run that wrote it: ``lossbench-eval ckpt_path=<file>``.

The run dir holding the checkpoint (``<run dir>/checkpoints/<file>``) keeps the run's overrides in
``.hydra/overrides.yaml``; :func:`main` composes the training config again with them (so data split,
model and loss are the run's own), then with the command line's other overrides (e.g. ``trainer=gpu``),
and tests the checkpoint on the test split. The new run dir (``task_name=eval``) gets a ``metrics.json``
with ``evaluated_checkpoint`` and the test metrics, and ``predictions.npz``. Nothing is logged to W&B
unless ``logger=`` is given.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lossbench.config import CONFIG_DIR
from lossbench.errors import ConfigError, LossbenchError
from lossbench.resume import plain_overrides, run_overrides
from lossbench.threads import choose_wait_policy

log = logging.getLogger("lossbench")

#: overrides of the training run that do not describe what was trained
_NOT_CARRIED = ("ckpt_path=", "resume=", "test=", "task_name=", "logger=")


def run_overrides_of(checkpoint: Path) -> list[str]:
    """The overrides (and ``hydra.searchpath``) of the run whose ``checkpoints/`` holds ``checkpoint``."""
    run_dir = checkpoint.resolve().parents[1]
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not checkpoint.is_file() or not saved.is_file():
        raise ConfigError(
            f"ckpt_path={checkpoint} is not a checkpoint inside a lossbench run dir (<run dir>/checkpoints/"
            f"<file> with <run dir>/.hydra/overrides.yaml): pass a checkpoint a lossbench run wrote"
        )
    overrides = [o for o in plain_overrides(list(OmegaConf.load(saved))) if not o.startswith(_NOT_CARRIED)]
    hydra_saved = run_dir / ".hydra" / "hydra.yaml"
    if hydra_saved.is_file():  # the user's config dirs, so their loss/model/data options compose again
        hydra_overrides = OmegaConf.load(hydra_saved).hydra.overrides.hydra
        overrides += [o for o in hydra_overrides if o.startswith("hydra.searchpath=")]
    return overrides


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _evaluate_app(cfg: DictConfig) -> None:
    try:
        summary = evaluate(cfg)
    except LossbenchError as err:
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from None
    tested = " ".join(f"{k}={v:.4f}" for k, v in summary["test"].items())
    log.info("run dir %s | %s | %s", cfg.paths.output_dir, summary["evaluated_checkpoint"], tested)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on the test split; write its record (``metrics.json``, with
    ``evaluated_checkpoint``) and ``predictions.npz``; return the record as its JSON object."""
    import lightning as L
    from hydra.utils import instantiate

    from lossbench.build import build_data, build_module, check_accelerator
    from lossbench.config import check_required, check_types
    from lossbench.loggers import build_loggers, finish_wandb
    from lossbench.metrics import with_monitor
    from lossbench.record import OK, RunRecord
    from lossbench.resume import read_checkpoint
    from lossbench.run import metric_values, record_fields, write_predictions, write_run_files

    check_required(cfg)
    check_types(cfg)
    check_accelerator(cfg)
    checkpoint = Path(cfg.ckpt_path)
    read_checkpoint(checkpoint)  # a damaged file: one line naming it
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_data(cfg)
    cfg = with_monitor(cfg, dm.task)
    loss, _, module = build_module(cfg, dm)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    output_dir = Path(cfg.paths.output_dir)
    try:
        loggers = build_loggers(cfg.get("logger"), config=resolved)
        trainer = instantiate(cfg.trainer, logger=loggers or False, enable_checkpointing=False)
        results = trainer.test(module, datamodule=dm, ckpt_path=str(checkpoint), weights_only=True)
        record = RunRecord(
            OK,
            evaluated_checkpoint=str(checkpoint.resolve()),
            **record_fields(cfg, loss, dm, resolved, run_overrides()),
            test=metric_values(results[0] if results else {}, "test/"),
        )
        if trainer.is_global_zero:
            write_run_files(record, output_dir)
            write_predictions(trainer, module, dm, str(checkpoint), output_dir)
        return record.to_dict()
    finally:
        finish_wandb()


def main() -> None:
    """``lossbench-eval ckpt_path=<file> [overrides]``: the run's own overrides first, then these."""
    args = sys.argv[1:]
    given = [a for a in args if a.startswith("ckpt_path=")]
    if not given or any(a in ("--help", "-h") for a in args):
        usage = "Usage: lossbench-eval ckpt_path=<run dir>/checkpoints/<file> [overrides]"
        print(__doc__.split("\n\n")[0] + "\n" + usage)
        raise SystemExit(0 if given or "--help" in args or "-h" in args else 2)
    checkpoint = Path(given[-1].split("=", 1)[1])
    try:
        carried = run_overrides_of(checkpoint)
    except ConfigError as err:
        print(f"lossbench-eval: ConfigError: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    choose_wait_policy()  # before torch loads, as train.py does
    rest = [a for a in args if not a.startswith("ckpt_path=")]
    given_keys = {_key(a) for a in rest}
    first = [o for o in [*carried, "task_name=eval", "logger=none"] if _key(o) not in given_keys]
    # a quoted value, so that a file name holding "=" (older runs' best-epoch=019.ckpt) parses as one path
    sys.argv = [sys.argv[0], *first, *rest, f"ckpt_path='{checkpoint}'"]
    _evaluate_app()


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")
