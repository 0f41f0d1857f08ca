"""Training entry point: ``python train.py loss=focal`` and the ``lossbench-train`` console script.

Only Hydra and the config helpers load before the command line is parsed, so ``--help``, ``--cfg job`` and
shell completion answer without importing torch or Lightning; :func:`lossbench.run.run` does the work.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lossbench.config import CONFIG_DIR
from lossbench.errors import LossbenchError
from lossbench.logs import print_config_tree
from lossbench.resume import finished_run, requeued, run_overrides
from lossbench.sweep import (
    check_ddp_in_multirun,
    in_multirun,
    job_line,
    one_line,
    print_sweep_summary,
    record_failure,
    root_error,
)
from lossbench.threads import choose_wait_policy

log = logging.getLogger("lossbench")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: returns the best monitored validation metric, so sweepers can optimise it.

    In a multirun a failing job is recorded in its ``metrics.json`` (``status: failed``) and returns NaN, so
    the other jobs still run (Optuna marks the trial failed); the sweep's exit status is set at its end by
    :class:`lossbench.sweep.SweepSummary`.
    """
    choose_wait_policy()  # PASSIVE OpenMP threads when other processes use the cores; before torch loads
    from lightning.pytorch.utilities import rank_zero_only

    from lossbench.interrupt import RunInterrupted
    from lossbench.run import run  # torch and Lightning load here, after Hydra has parsed the command line

    multirun = in_multirun()
    if (cfg.get("extras") or {}).get("print_config") and rank_zero_only.rank == 0:
        print_config_tree(cfg)
    try:
        if multirun:
            check_ddp_in_multirun(cfg.get("trainer"))
            if cfg.get("resume") or requeued():
                done = finished_run(Path(cfg.paths.output_dir), run_overrides())
                if done is not None:
                    log.info("job %s had finished: its metrics.json is kept", HydraConfig.get().job.num)
                    return done["monitor"]["best"]
        summary = run(cfg)
    except RunInterrupted as err:
        log.error("%s", err)
        if rank_zero_only.rank == 0:  # metrics.json says so until resume=true finishes the run
            record_failure(cfg, err, status="interrupted")
        if multirun:  # the sweep stops here: its table, then the signal's exit status
            print_sweep_summary(Path(HydraConfig.get().sweep.dir), fail=False)
            log.error("the sweep stopped in job %s; its later jobs did not start", HydraConfig.get().job.num)
        raise SystemExit(err.exit_status) from None
    except Exception as err:
        if not multirun:
            if isinstance(err, LossbenchError):
                log.error("%s: %s", type(err).__name__, err)
                raise SystemExit(2) from None
            raise
        if isinstance(root_error(err), LossbenchError):
            log.error("job failed: %s", one_line(root_error(err)))
        else:
            log.exception("job failed: %s: %s", type(err).__name__, err)
        record_failure(cfg, err)
        return float("nan")
    if rank_zero_only.rank != 0:
        return summary["monitor"]["best"]
    if multirun:
        log.info("%s", job_line(summary))
        return summary["monitor"]["best"]
    log.info(
        "run dir %s | best %s=%.4f | %s",
        cfg.paths.output_dir,
        summary["monitor"]["metric"],
        summary["monitor"]["best"],
        " ".join(f"{k}={v:.4f}" for k, v in summary["test"].items()),
    )
    return summary["monitor"]["best"]


if __name__ == "__main__":
    main()
