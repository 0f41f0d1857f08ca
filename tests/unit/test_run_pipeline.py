"""The parts of one run's pipeline: the checks, the run dir, the task specs, exit statuses, predictions."""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from lossbench import run as run_module
from lossbench.checks import check_run
from lossbench.errors import ConfigError, DataError, RunInterrupted, exit_status
from lossbench.predictions import gather_shards
from lossbench.record import RunRecord
from lossbench.run_dir import RunDir
from lossbench.task import SPECS, Task, resolve_monitor, spec

SRC = Path(__file__).resolve().parents[2] / "src" / "lossbench"


def test_run_reads_top_to_bottom_in_at_most_60_lines():
    tree = ast.parse(inspect.getsource(run_module))
    (run,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
    assert run.end_lineno - run.lineno + 1 <= 60


def test_every_problem_of_a_config_is_named_at_once(make_cfg):
    cfg = make_cfg("seed=-1", "trainer.gradient_clip_val=-2", "optim.optimizer.lr=0", "trainer.max_epochs=0")
    with pytest.raises(ConfigError) as err:
        check_run(cfg)
    message = str(err.value)
    assert message.startswith("4 problems:")
    for key in ("seed=-1", "trainer.gradient_clip_val=-2", "optim.optimizer.lr=0", "trainer.max_epochs=0"):
        assert key in message
    check_run(make_cfg())  # the defaults pass


def test_wrong_types_and_ranges_are_named_together(make_cfg):
    with pytest.raises(ConfigError, match=r"2 problems: \(1\) seed='abc' has the wrong type.*\(2\) "):
        check_run(make_cfg("seed=abc", "trainer.accumulate_grad_batches=0"))


def test_a_learning_rate_monitor_without_a_logger_is_refused_before_training(make_cfg):
    """Lightning refuses ``LearningRateMonitor`` without a logger once training starts, in a traceback."""
    said = r"callbacks.lr_monitor logs the learning rate to the loggers, and this run has none.*logger=csv"
    for overrides in (("logger=none",), ("debug=fdr",)):
        with pytest.raises(ConfigError, match=said):
            check_run(make_cfg("callbacks=lr_monitor", *overrides))
    check_run(make_cfg("callbacks=lr_monitor", "logger=csv"))


def test_the_run_dir_names_every_file_and_reads_the_overrides(tmp_path):
    files = RunDir(tmp_path)
    assert files.record.name == "metrics.json" and files.labels.name == "labels.json"
    assert files.last_checkpoint == tmp_path / "checkpoints" / "last.ckpt"
    assert files.csv == tmp_path / "csv" / "metrics.csv" and files.predictions.name == "predictions.npz"
    assert files.overrides() == [] and not files.has_overrides()
    files.hydra.mkdir()
    files.overrides_file.write_text(yaml.safe_dump(["loss=focal", "seed=2"]))
    assert files.overrides() == ["loss=focal", "seed=2"]
    assert RunDir.of_checkpoint(files.last_checkpoint).path == tmp_path.resolve()
    files.overrides_file.write_text("{a: 1}")
    with pytest.raises(ValueError, match="overrides.yaml holds a dict"):
        files.overrides()


def test_overrides_yaml_is_opened_in_one_module_of_src():
    opened = [p.relative_to(SRC) for p in SRC.rglob("*.py") if '"overrides.yaml"' in p.read_text()]
    assert opened == [Path("run_dir.py")]


def test_each_task_has_one_spec_with_its_defaults():
    assert {t: (s.monitor, s.headline, s.baseline) for t, s in SPECS.items()} == {
        Task.CLASSIFICATION: ("val/acc", "test/acc", "ce"),
        Task.MULTILABEL: ("val/map", "test/map", "bce"),
        Task.REGRESSION: ("val/rmse", "test/rmse", "mse"),
    }
    assert spec("regression").headline_of({"test/rmse": 0.5, "test/mae": 0.4}) == ("test/rmse", 0.5)


def test_the_monitor_is_resolved_from_the_task_and_checked():
    assert resolve_monitor(None, None, Task.CLASSIFICATION) == ("val/acc", "max")
    assert resolve_monitor("val/nll", None) == ("val/nll", "min")
    assert resolve_monitor(None, None, Task.REGRESSION, ["val/rmse", "val/nll", "val/crps"]) == (
        "val/nll",
        "min",
    )
    assert resolve_monitor(None, None, Task.REGRESSION, ["val/rmse", "val/crps_grid"])[0] == "val/crps_grid"
    with pytest.raises(ConfigError, match="no better direction"):
        resolve_monitor("val/coverage_90", None, Task.REGRESSION)
    with pytest.raises(ConfigError, match=r"use monitor.metric=val/mae or val/rmse instead"):  # a point loss
        resolve_monitor("val/conformal_width_90", None, Task.REGRESSION, ["val/mae", "val/rmse", "val/r2"])
    with pytest.raises(ConfigError, match="not a logged validation metric: choose one of val/acc"):
        resolve_monitor("val/map", None, Task.CLASSIFICATION, ["val/acc"])


def test_a_monitor_mode_against_the_metrics_direction_is_named(caplog):
    """``monitor.metric=val/mae monitor.mode=max`` kept the worst epoch without a word."""
    with caplog.at_level("WARNING", logger="lossbench"):
        assert resolve_monitor("val/mae", "max", Task.REGRESSION, {"val/mae": False}) == ("val/mae", "max")
        resolve_monitor("val/acc", "max", Task.CLASSIFICATION, {"val/acc": True})
        resolve_monitor("val/mine", "min", Task.CLASSIFICATION)  # a direction nobody declared: no word
    assert len(caplog.records) == 1
    assert "monitor.mode=max keeps the epoch with the highest val/mae, which is better lower" in caplog.text


def test_one_mapping_from_errors_and_signals_to_exit_statuses():
    assert exit_status(ConfigError("x")) == 2 and exit_status(DataError("x")) == 2
    wrapped = RuntimeError("hydra")
    wrapped.__cause__ = ConfigError("x")
    assert exit_status(wrapped) == 2
    assert exit_status(RuntimeError("bug")) == 1
    assert (
        exit_status(RunInterrupted("SIGTERM", "")) == 143 and exit_status(RunInterrupted("SIGINT", "")) == 130
    )
    literal_exits = [
        (p.relative_to(SRC), m.group(0))
        for p in SRC.rglob("*.py")
        for m in re.finditer(r"SystemExit\((1|2|130|143)\)", p.read_text())
    ]
    assert literal_exits == [], "exit statuses come from lossbench.errors"


class _Ranks:
    """Stands in for the LightningModule of each of ``world`` processes: ``all_gather`` stacks them."""

    def __init__(self, shards: list[torch.Tensor]) -> None:
        self.shards, self.calls = shards, 0

    def all_gather(self, value: torch.Tensor) -> torch.Tensor:
        if value.ndim == 0:
            return torch.stack([torch.tensor(len(s)) for s in self.shards])
        longest = value.shape[0]
        padded = []
        for s in self.shards:
            p = s.new_zeros((longest, *s.shape[1:]))
            p[: len(s)] = s
            padded.append(p)
        return torch.stack(padded)


@pytest.mark.parametrize("n, world", [(10, 2), (11, 3), (2, 4)])
def test_ddp_shards_are_put_back_in_the_split_order(n, world):
    values = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    shards = [values[r::world] for r in range(world)]
    assert torch.equal(gather_shards(_Ranks(shards), shards[0]), values)


@pytest.mark.parametrize(
    ("loss_cfg", "task", "num_classes"),
    [
        ("ce", Task.CLASSIFICATION, 3),
        ("bce", Task.MULTILABEL, 3),
        ("mse", Task.REGRESSION, None),
        ("gaussian_nll", Task.REGRESSION, None),
        ("pinball", Task.REGRESSION, None),
    ],
)
def test_the_reports_metric_directions_are_torchmetrics_own(loss_cfg, task, num_classes):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lossbench.config import CONFIG_DIR
    from lossbench.directions import higher_is_better, is_descriptive
    from lossbench.module import LossBenchModule

    loss = instantiate(OmegaConf.load(CONFIG_DIR / "loss" / f"{loss_cfg}.yaml"))
    module = LossBenchModule(torch.nn.Identity(), loss, torch.optim.SGD, task, num_classes)
    directions = module.metric_directions("test")
    assert len(directions) >= 4
    for name, declared in directions.items():
        if declared is None:
            assert is_descriptive(name), f"{name} has no direction in torchmetrics but is ranked"
        else:
            assert higher_is_better(name) == declared, name


def test_the_bounded_metrics_are_metrics_a_run_logs_and_their_intervals_stay_within():
    """Each name in the range tables is logged by some task (no misspelling bounds nothing), and an
    interval of an accuracy near 1 ends at 1."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lossbench.config import CONFIG_DIR
    from lossbench.directions import AT_MOST_ONE, NON_NEGATIVE, UNIT_INTERVAL, value_range
    from lossbench.module import LossBenchModule
    from lossbench.report.intervals import estimates

    logged = set()
    runs = [("ce", Task.CLASSIFICATION, 3), ("bce", Task.MULTILABEL, 3)]
    runs += [("gaussian_nll", Task.REGRESSION, None), ("pinball", Task.REGRESSION, None)]
    for loss_cfg, task, classes in runs:
        loss = instantiate(OmegaConf.load(CONFIG_DIR / "loss" / f"{loss_cfg}.yaml"))
        module = LossBenchModule(torch.nn.Identity(), loss, torch.optim.SGD, task, classes)
        logged |= {name.split("/", 1)[1] for name in module.metric_directions("test")}
    assert set(UNIT_INTERVAL + NON_NEGATIVE + AT_MOST_ONE) <= logged | {"ece_ts"}, (
        logged
    )  # ece_ts: after a fit
    assert value_range("test/acc (best)") == (0.0, 1.0) and value_range("test/nll") == (-math.inf, math.inf)
    assert value_range("test/r2") == (-math.inf, 1.0)
    r2 = estimates([0.99, 0.995, 0.97], bounds=value_range("test/r2"))  # the t-interval runs past 1
    assert r2["ci_high"] == 1.0 and r2["ci_low"] < r2["mean"]
    est = estimates([1.0, 1.0, 0.94], bounds=value_range("test/acc"))
    assert est["ci_high"] == 1.0 and est["ci_low"] < est["mean"] < 1.0
    assert estimates([1.0, 1.0, 0.94])["ci_high"] > 1.0  # the t-interval itself runs past the bound
    assert math.isnan(estimates([1.0, 1.0], bounds=(0.0, 1.0))["ci_low"])  # no spread: no interval


def test_a_damaged_record_trains_again_from_the_start_and_a_finished_one_is_kept(tmp_path, make_cfg):
    from lossbench.record import write_record
    from lossbench.resume import Resumption

    files = RunDir(tmp_path / "job")
    files.csv.parent.mkdir(parents=True)
    files.csv.write_text("epoch,step,val/acc\n0,9,0.5\n1,19,0.6\n")
    files.last_checkpoint.parent.mkdir()
    files.last_checkpoint.write_bytes(b"not read: the record is damaged")
    files.record.write_text('{"status": "ok", "te')
    cfg = make_cfg("resume=true", output_dir=files.path)
    resumption = Resumption.prepare(cfg, files, [], sweep_job=True)
    assert resumption.checkpoint is None and resumption.finished is None
    assert files.csv.read_text() == "epoch,step,val/acc\n", "the stale rows are dropped"
    write_record(RunRecord("ok", overrides=[], monitor={"best": 0.9}), files.path)
    before = files.record.read_bytes()
    assert Resumption.prepare(cfg, files, [], sweep_job=True).finished["monitor"]["best"] == 0.9
    assert files.record.read_bytes() == before


def test_the_sweep_table_covers_the_jobs_that_never_started(tmp_path):
    from lossbench.sweep import all_job_dirs, print_sweep_summary, read_job

    sweep = tmp_path / "sweep"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
                    "overrides": {"task": ["loss=ce,focal", "seed=0,1"]},
                }
            }
        )
    )
    rows = [read_job(d) for d in all_job_dirs(sweep)]
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["error"] for r in rows[1:]] == ["the job did not start"] * 3
    print_sweep_summary(sweep, fail=False)
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert summary[3]["overrides"] == ["loss=focal", "seed=1"], "named by the sweep's enumeration"


def test_imbalanced_classes_monitor_and_headline_balanced_accuracy():
    names = ["val/acc", "val/bal_acc", "val/nll"]
    assert resolve_monitor(None, None, Task.CLASSIFICATION, names, [97, 3]) == ("val/bal_acc", "max")
    assert resolve_monitor(None, None, Task.CLASSIFICATION, names, [60, 40])[0] == "val/acc"
    assert resolve_monitor("val/acc", None, Task.CLASSIFICATION, names, [97, 3])[0] == "val/acc", "given wins"
    test = {"test/acc": 0.97, "test/bal_acc": 0.68}
    assert spec(Task.CLASSIFICATION).headline_of(test, [97, 3]) == ("test/bal_acc", 0.68)
    assert spec(Task.CLASSIFICATION).headline_of(test, [50, 50]) == ("test/acc", 0.97)


def test_an_early_best_epoch_on_a_small_validation_split_is_warned(tmp_path, caplog):
    from lossbench.run import warn_if_early_best

    best = tmp_path / "trials" / "focal" / "3" / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    torch.save({"epoch": 1}, best)

    def record(
        n_val: int, epochs: int, metric: str = "val/acc", val: tuple = ("val/acc", "val/nll")
    ) -> RunRecord:
        monitor = {"metric": metric, "best_checkpoint": str(best)}
        logged = dict.fromkeys(val, 0.5)
        return RunRecord("ok", monitor=monitor, data_info={"n_val": n_val}, epochs=epochs, val=logged)

    with caplog.at_level("WARNING", logger="lossbench"):
        warn_if_early_best(record(n_val=36, epochs=40))
        assert "the best val/acc was at epoch 1 of 40, picked on 36 validation samples" in caplog.text
        assert f"({(tmp_path / 'trials' / 'focal' / '3').resolve()}): " in caplog.text, "which run"
        assert "monitor.metric=val/nll" in caplog.text
        caplog.clear()
        warn_if_early_best(record(n_val=36, epochs=40, metric="val/rmse", val=("val/rmse", "val/mae")))
        assert "(a larger data.val_fraction picks more steadily)" in caplog.text, "no val/nll to suggest"
        caplog.clear()
        warn_if_early_best(record(n_val=500, epochs=40))
        warn_if_early_best(record(n_val=36, epochs=5))
        assert caplog.text == ""


def test_loss_auto_is_the_tasks_baseline_with_the_keys_added_to_it(make_cfg):
    from lossbench.build import with_task_loss

    cfg = with_task_loss(make_cfg("+loss.label_smoothing=0.1"), Task.CLASSIFICATION)
    assert cfg.loss._target_.endswith("CrossEntropyLoss") and cfg.loss.label_smoothing == 0.1
    assert cfg.loss_name == "ce" and "auto" not in cfg.loss
    assert with_task_loss(make_cfg("data=diabetes"), Task.REGRESSION).loss_name == "mse"
    assert with_task_loss(make_cfg("loss=focal"), Task.CLASSIFICATION).loss_name == "focal"


def test_the_sweep_table_prints_overrides_literally():
    from rich.console import Console

    from lossbench.sweep import render_table

    rows = [
        {
            "job": str(n),
            "overrides": ["data.drop=[rownames]", f"seed={n}"],
            "status": "failed",
            "error": "[x]",
        }
        for n in range(2)
    ]
    console = Console(width=200, record=True)
    console.print(render_table(rows, "sweep [dir]"))
    text = console.export_text()
    assert "common overrides: data.drop=[rownames]" in text and "sweep [dir]" in text and "[x]" in text


def test_the_common_overrides_of_a_stopped_sweep_leave_out_what_it_varies(tmp_path):
    """Only the ce jobs started before the stop: ``loss=ce`` is not common to the sweep's jobs."""
    from lossbench.sweep import common_overrides, swept_keys

    sweep = {
        "hydra": {
            "sweeper": {"params": {"seed": "0,1"}},
            "overrides": {"task": ["loss=ce,focal", "logger=csv"]},
        }
    }
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(sweep))
    assert swept_keys(tmp_path) == {"loss", "seed"} and swept_keys(tmp_path / "none") == set()
    started = [{"overrides": ["loss=ce", f"seed={n}", "logger=csv"]} for n in (0, 1)]
    rows = [*started, {"overrides": []}, {"overrides": []}]
    assert common_overrides(rows, swept_keys(tmp_path)) == ["logger=csv"]
    assert common_overrides(rows) == ["loss=ce", "logger=csv"]  # what the table said


def test_a_plateau_schedule_ranking_the_metric_against_the_monitor_is_named(caplog):
    """Its own mode (min by default) on val/acc cut the rate at every epoch that raised the accuracy."""
    from lossbench.schedulers import check_plateau_mode

    plateau = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "_partial_": True, "patience": 2}
    with caplog.at_level("WARNING", logger="lossbench"):
        check_plateau_mode(plateau, "val/acc", "max")
        check_plateau_mode({**plateau, "mode": "max"}, "val/acc", "max")
        check_plateau_mode(plateau, "val/loss", "min")
    assert len(caplog.records) == 1
    assert "mode=min) follows val/acc, which monitor.mode=max ranks" in caplog.text
    assert "set optim.scheduler.mode=max" in caplog.text


def test_the_epochs_a_spawned_fit_trained_come_back_among_the_callback_metrics(make_cfg):
    """Under ddp_spawn this process's trainer stays at epoch 0; the epochs come back as a callback metric
    (logged to no logger), also when validation, and so last.ckpt, skips epochs."""
    from types import SimpleNamespace

    from lossbench.run import run
    from lossbench.spawned import EPOCHS_KEY, epochs_trained

    spawned = SimpleNamespace(current_epoch=0, callback_metrics={EPOCHS_KEY: torch.tensor(3.0)})
    assert epochs_trained(spawned) == 3
    assert epochs_trained(SimpleNamespace(current_epoch=2, callback_metrics={})) == 2
    record = run(make_cfg("trainer.max_epochs=3", "+trainer.check_val_every_n_epoch=2", "logger=csv"))
    assert record["epochs"] == 3
    with open(Path(make_cfg().paths.output_dir) / "csv" / "metrics.csv") as f:
        assert EPOCHS_KEY not in f.readline(), "in no logger"


def test_keys_of_a_class_without_an_init_of_its_own_are_refused():
    """A user's callback that only overrides hooks takes no argument (``object``'s ``**kwargs`` do not
    count), and a key given to it is named before anything is built."""
    from omegaconf import OmegaConf

    from lossbench.argument_checks import accepted_arguments, unknown_argument_problems

    assert accepted_arguments("lightning.pytorch.callbacks.Callback") == []
    cfg = OmegaConf.create(
        {"callbacks": {"mine": {"_target_": "lightning.pytorch.callbacks.Callback", "foo": 1}}}
    )
    assert list(unknown_argument_problems(cfg)) == [
        "callbacks.mine.foo is not an argument of lightning.pytorch.callbacks.Callback: remove it "
        "(~callbacks.mine.foo)"
    ]
