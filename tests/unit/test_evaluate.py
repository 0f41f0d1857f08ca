"""``lossbench-eval``: a checkpoint tested with its own run's config reproduces that run's test metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from lossbench.errors import ConfigError
from lossbench.eval_overrides import run_overrides_of


def test_eval_carries_what_was_trained_and_refuses_other_files(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    saved = ["loss=focal", "resume=true", "logger=csv", "seed=2", "test=false"]
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    assert run_overrides_of(run_dir / "checkpoints" / "last.ckpt") == ["loss=focal", "seed=2"]
    stray = tmp_path / "model.ckpt"
    stray.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a checkpoint inside a lossbench run dir"):
        run_overrides_of(stray)
    with pytest.raises(ConfigError, match=r"ckpt_path=.*nope.ckpt does not exist"):
        run_overrides_of(tmp_path / "nope.ckpt")
    started_in = {"hydra": {"runtime": {"cwd": "/data/me"}}}
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(started_in))
    saved.append("data.path=tables/t.csv")
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    assert run_overrides_of(run_dir / "checkpoints" / "last.ckpt") == [
        "data.path='/data/me/tables/t.csv'",  # relative to where the run started
        "loss=focal",
        "seed=2",
        "paths.root_dir='/data/me'",
    ]
    started_in["hydra"]["runtime"]["cwd"] = "/data/it's mine"  # a quote in a folder's name parses
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(started_in))
    saved.append("data.test_root=test")
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    carried = run_overrides_of(run_dir / "checkpoints" / "last.ckpt")
    parsed = OverridesParser.create().parse_overrides(carried)
    values = {o.key_or_group: o.value() for o in parsed}
    assert values["paths.root_dir"] == "/data/it's mine"
    assert values["data.test_root"] == "/data/it's mine/test"


def test_a_relative_data_path_is_made_absolute_quoted_or_not():
    from lossbench.eval_overrides import relative_to

    start = Path("/runs/started here")
    assert relative_to("data.path=t.csv", start) == "data.path='/runs/started here/t.csv'"
    assert relative_to("data.path='my data.csv'", start) == "data.path='/runs/started here/my data.csv'"
    assert relative_to('+data.root="imgs"', start) == "+data.root='/runs/started here/imgs'"
    for kept in (
        "data.path=/abs/t.csv",
        "data.path=${oc.env:HOME}/t.csv",
        "seed=1",
        "data.path='/abs/x y.csv'",
    ):
        assert relative_to(kept, start) == kept


def test_an_own_data_modules_relative_file_is_taken_from_where_the_run_started(tmp_path):
    from lossbench.eval_overrides import relative_to

    (tmp_path / "basic.csv").write_text("a,b\n")
    (tmp_path / "train").mkdir()
    assert relative_to("+data.csv=basic.csv", tmp_path) == f"+data.csv='{tmp_path}/basic.csv'"
    for kept in ("+data.csv=absent.csv", "+data.split=train", "data.batch_size=8", "+data.rate=1.5"):
        assert relative_to(kept, tmp_path) == kept


def test_a_checkpoint_of_a_model_for_other_classes_is_named_before_testing(tmp_path):
    import torch

    from lossbench.checkpointing import fitting_checkpoint

    module = torch.nn.Sequential(torch.nn.Linear(4, 2))
    path = tmp_path / "best.ckpt"
    torch.save({"epoch": 3, "state_dict": {"0.weight": torch.zeros(3, 4), "0.bias": torch.zeros(3)}}, path)
    with pytest.raises(ConfigError, match=r"holds a model of another shape: its 0.weight has shape \[3, 4\]"):
        fitting_checkpoint(str(path), module)
    torch.save({"epoch": 3, "state_dict": module.state_dict()}, path)
    assert fitting_checkpoint(str(path), module) == str(path)
    other = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(ConfigError, match=r"holds another architecture than .* \(it lacks 2.bias\)"):
        fitting_checkpoint(str(path), other)  # model=cnn for an mlp's checkpoint: Lightning's traceback
    # continuing a fit (resume=true after the table lost a column): the same check, named as a resume
    with pytest.raises(ConfigError, match=r"resume=true: .* another architecture .* leave out resume=true"):
        fitting_checkpoint(str(path), other, "resume=true")
    torch.save({"epoch": 3, "state_dict": {"0.weight": torch.zeros(2, 5), "0.bias": torch.zeros(2)}}, path)
    with pytest.raises(ConfigError, match=r"^ckpt_path=.* classes or features.* leave out ckpt_path= to"):
        fitting_checkpoint(str(path), module, "ckpt_path=")


def test_a_missing_checkpoint_right_under_the_root_is_named():
    """Its run dir (two folders up) was looked up first: IndexError for /nonexist.ckpt."""
    with pytest.raises(ConfigError, match="ckpt_path=/nonexist.ckpt does not exist"):
        run_overrides_of(Path("/nonexist.ckpt"))


def test_eval_refuses_data_whose_classes_are_not_the_runs(tmp_path):
    """The checkpoint's output i is its run's class i (``labels.json``): other classes, or the same in
    another order, are refused by name; data or runs without named classes pass."""
    import json

    from lossbench.errors import DataError
    from lossbench.evaluate import check_same_classes

    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    check_same_classes(checkpoint, ["a", "b"])  # no labels.json: nothing to compare
    labels = tmp_path / "run" / "labels.json"
    labels.write_text(json.dumps(dict(enumerate(["cat", "dog", "fox"]))))
    check_same_classes(checkpoint, ["cat", "dog", "fox"])
    check_same_classes(checkpoint, None)  # regression, or a DataModule that names no classes
    with pytest.raises(DataError, match=r"class 1 is 'dog' there and 'fox' here.*same classes"):
        check_same_classes(checkpoint, ["cat", "fox", "dog"])
    with pytest.raises(DataError, match="3 classes there, 2 here"):
        check_same_classes(checkpoint, ["cat", "dog"])
    labels.write_text("[1, 2]")
    with pytest.raises(DataError, match="not the JSON map of class index"):
        check_same_classes(checkpoint, ["cat", "dog", "fox"])


def test_a_loss_override_is_refused_naming_the_runs_loss(tmp_path):
    """``lossbench-eval ckpt_path=<focal run> loss=mse`` recorded the focal model as an mse run."""
    from lossbench.eval_overrides import eval_overrides

    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("- loss=focal\n- seed=1\n")
    (tmp_path / "run" / "checkpoints").mkdir()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"")
    assert "loss=focal" in eval_overrides(ckpt, ["data.batch_size=8"])
    for given in ("loss=mse", "loss.gamma=1"):
        with pytest.raises(ConfigError, match=r"tested with the loss its run trained \(loss=focal\)"):
            eval_overrides(ckpt, [given])


def test_an_override_that_splits_the_runs_own_data_otherwise_is_refused(tmp_path):
    """``data_seed=7`` for a ``data_seed=3`` run tested on rows it trained on (a lower, wrong test loss);
    the run's own values, and other data (where the run's split does not reach), stay allowed."""
    from lossbench.eval_overrides import eval_overrides

    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("- data=table\n- data_seed=3\n")
    (tmp_path / "run" / "checkpoints").mkdir()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"")
    for given in ("data_seed=7", "data.test_fraction=0.5", "+data.val_fraction=0.3"):
        with pytest.raises(ConfigError, match=r"another split of the same data would test, or fit its calib"):
            eval_overrides(ckpt, [given])
    with pytest.raises(ConfigError, match=r"^data_seed=7: the run's splits come from its own data_seed=3"):
        eval_overrides(ckpt, ["data_seed=7"])
    assert "data_seed=3" in eval_overrides(ckpt, ["data_seed=3"])
    assert "data.test_fraction=1.0" in eval_overrides(ckpt, ["data.path=new.csv", "data.test_fraction=1.0"])
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text("data_seed: 3\ndata:\n  test_fraction: 0.2\n")
    assert "data.test_fraction=0.2" in eval_overrides(ckpt, ["data.test_fraction=0.2"]), (
        "its default, restated"
    )
    with pytest.raises(ConfigError, match="another split of the same data"):
        eval_overrides(ckpt, ["data.test_fraction=0.3"])


def test_a_stopped_runs_checkpoint_is_tested_in_the_units_its_checkpoint_holds(tmp_path):
    """A run stopped by SIGTERM has a record without ``data_info``: its checkpoint's stamp gives the target
    units and encoding (without either, another table's own would be fitted, without a word)."""
    import torch

    from lossbench.checkpointing import OverridesInCheckpoint
    from lossbench.evaluate import tested_data_info
    from lossbench.record import RunRecord, write_record

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    info = {"task": "regression", "target_mean": [147.92], "target_std": [77.0]}
    checkpoint = {"epoch": 5, "state_dict": {}}
    OverridesInCheckpoint(["data=table"], info).on_save_checkpoint(None, None, checkpoint)
    torch.save(checkpoint, ckpt)
    write_record(RunRecord("interrupted", loss="mse", data="table", seed=0, data_seed=0), tmp_path / "run")
    assert tested_data_info(ckpt) == info
    write_record(
        RunRecord("ok", loss="mse", data="table", seed=0, data_seed=0, data_info={"n": 1}), ckpt.parents[1]
    )
    assert tested_data_info(ckpt) == {"n": 1}, "a finished run's record comes first"
    torch.save({"epoch": 5, "state_dict": {}}, ckpt)
    (tmp_path / "run" / "metrics.json").unlink()
    assert tested_data_info(ckpt) == {}


def test_a_run_continued_on_data_other_than_those_it_started_with_is_refused(tmp_path):
    """Half the table's rows dropped between the stop and ``resume=true``: its later epochs trained on
    another split of other data. The same data (its description through JSON, as stamped) continue."""
    import torch

    from lossbench.checkpointing import OverridesInCheckpoint, check_same_data

    ckpt = tmp_path / "last.ckpt"
    info = {"task": "classification", "n_train": 106, "n_val": 36, "class_counts": [35, 43, 28]}
    checkpoint = {"epoch": 5, "state_dict": {}}
    OverridesInCheckpoint(["data=table"], info).on_save_checkpoint(None, None, checkpoint)
    torch.save(checkpoint, ckpt)
    check_same_data(str(ckpt), dict(info))
    with pytest.raises(
        ConfigError, match=r"^resume=true: the data differ .* \(class_counts: \[35, 43, 28\] then"
    ):
        check_same_data(str(ckpt), {**info, "n_train": 53, "class_counts": [17, 21, 15]})
    moved = {"path": "/elsewhere/t.csv", "data_dir": "/scratch/job7", "skew": float("nan")}
    OverridesInCheckpoint(["data=table"], {**info, "path": "t.csv", "skew": float("nan")}).on_save_checkpoint(
        None, None, checkpoint
    )
    torch.save(checkpoint, ckpt)
    check_same_data(str(ckpt), {**info, **moved})  # the same data elsewhere; NaN as NaN
    with pytest.raises(ConfigError, match=r"\(n_val: 36 then, null now\)"):
        check_same_data(str(ckpt), {k: v for k, v in {**info, **moved}.items() if k != "n_val"})
    torch.save({"epoch": 5, "state_dict": {}}, ckpt)  # an older checkpoint without the stamp
    check_same_data(str(ckpt), {**info, "n_train": 53})


def test_a_table_the_run_named_that_is_not_there_now_is_named_with_the_folder_it_was_read_from(tmp_path):
    """A run dir moved away from the folder it started in: its relative ``data.path=w.csv`` is read from
    that folder, which the message says, with the override that tests on the table where it is now."""
    from lossbench.eval_overrides import eval_overrides

    hydra = tmp_path / "run" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text("- data=table\n- data.path=w.csv\n")
    (hydra / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {tmp_path / 'a'}\n")
    (tmp_path / "run" / "checkpoints").mkdir()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"")
    started = tmp_path / "a"
    with pytest.raises(ConfigError) as err:
        eval_overrides(ckpt, [])
    assert str(err.value) == (
        f"the run's data.path ({started / 'w.csv'}, read from the folder it started in ({started})) is not "
        "there now: pass data.path=<file or folder> to test on it where it is"
    )
    assert "data.path=here.csv" in eval_overrides(ckpt, ["data.path=here.csv"])
    started.mkdir()
    (started / "w.csv").write_text("x,y\n")
    assert f"data.path='{started / 'w.csv'}'" in eval_overrides(ckpt, [])


def test_a_folder_as_ckpt_path_names_a_checkpoint_in_it(tmp_path):
    from lossbench.eval_overrides import run_overrides_of

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    for name in ("last.ckpt", "best_epoch_003.ckpt"):
        (tmp_path / "run" / "checkpoints" / name).write_bytes(b"")
    best = tmp_path / "run" / "checkpoints" / "best_epoch_003.ckpt"
    for given in (tmp_path / "run", tmp_path / "run" / "checkpoints"):
        with pytest.raises(
            ConfigError, match=rf"is a folder: pass one checkpoint file, e.g. ckpt_path={best}$"
        ):
            run_overrides_of(given)


def test_a_tune_run_is_tested_with_its_records_overrides_and_tuned_parameters(tmp_path):
    """``lossbench tune`` composes its runs without Hydra's app (no ``.hydra/``); a final run's record names
    the tune's overrides, its tuned values are in ``tuned.json``."""
    import json

    from lossbench.record import RunRecord

    run_dir = tmp_path / "tuned" / "final" / "focal" / "0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    record = RunRecord("ok", loss="focal", seed=0, overrides=["data.path=t.csv", "loss=focal", "seed=0"])
    record.config = {"paths": {"root_dir": "/data/me"}}
    (run_dir / "metrics.json").write_text(json.dumps(record.to_dict()))
    (run_dir / "tuned.json").write_text(json.dumps({"loss.gamma": 0.9, "optim.optimizer.lr": 0.002}))
    assert sorted(run_overrides_of(run_dir / "checkpoints" / "last.ckpt")) == [
        "data.path='/data/me/t.csv'",  # relative to where the tune started
        "loss.gamma=0.9",
        "loss=focal",
        "optim.optimizer.lr=0.002",
        "paths.root_dir='/data/me'",
        "seed=0",
    ]
