"""Bad input gets a one-line error that names the problem and the fix."""

from __future__ import annotations

import logging

import pytest

from lossbench.config import group_options
from lossbench.errors import ConfigError, LossbenchError
from tests.bad_overrides import INVALID, WRONG_TYPES


@pytest.mark.parametrize(("override", "expected"), WRONG_TYPES)
def test_wrong_value_type(make_cfg, override, expected):
    from lossbench.run import run

    with pytest.raises(LossbenchError) as info:
        run(make_cfg(*override.split(), "logger=none"))
    assert expected in str(info.value)


@pytest.mark.parametrize(("override", "expected"), INVALID)
def test_invalid_hyper_parameter(make_cfg, override, expected):
    from lossbench.run import run

    with pytest.raises(ConfigError) as info:
        run(make_cfg(*override.split(), "logger=none"))
    assert expected in str(info.value)


def test_class_count_loss_on_regression_data_is_a_task_mismatch(make_cfg):
    from lossbench.errors import LossTaskMismatchError
    from lossbench.run import run

    with pytest.raises(LossTaskMismatchError, match="loss=ldam cannot train on data=diabetes"):
        run(make_cfg("loss=ldam", "data=diabetes", "logger=none"))


def test_bce_pos_weight_must_match_the_outputs(make_cfg):
    from lossbench.errors import ConfigError
    from lossbench.run import run

    with pytest.raises(ConfigError, match="loss.pos_weight has 2 values but the model has 1 output"):
        run(make_cfg("loss=bce", "data=breast_cancer", "loss.pos_weight=[1.0,2.0]", "logger=none"))


def test_an_own_loss_or_model_that_cannot_be_imported_is_one_line_naming_it(make_cfg, caplog):
    """The loss class is looked up before it is built (for its class counts): an own loss whose package
    is not on the path was an ImportError traceback, where an own data or model class was one line. The
    error says which part is missing, and is the only thing said: Hydra's lookup logged its own ERROR
    lines first."""
    from lossbench.run import run

    with pytest.raises(
        ConfigError,
        match=r"loss._target_=mypkg.losses.MyLoss cannot be imported \(ImportError: there is no module "
        r"named 'mypkg'\): .*PYTHONPATH",
    ):
        run(make_cfg("loss=ce", "loss._target_=mypkg.losses.MyLoss", "logger=none"))
    with pytest.raises(
        ConfigError,
        match=r"model._target_=lossbench.models.mlp.MLPx cannot be imported \(ImportError: "
        r"lossbench.models.mlp has no attribute 'MLPx'\)",
    ):
        run(make_cfg("model._target_=lossbench.models.mlp.MLPx", "logger=none"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_located_finds_nested_objects_and_keeps_a_modules_own_import_error(tmp_path, monkeypatch):
    from lossbench.argument_checks import located
    from lossbench.losses.base import BenchLoss, Task

    assert located("lossbench.losses.base.BenchLoss") is BenchLoss
    assert located("lossbench.losses.base.Task.REGRESSION") is Task.REGRESSION
    package = tmp_path / "reexporting"  # a class its package imports from the module of the same name
    package.mkdir()
    (package / "__init__.py").write_text("from .Thing import Thing\n")
    (package / "Thing.py").write_text("class Thing: ...\n")
    (tmp_path / "broken_pkg.py").write_text("import not_installed_dependency\nclass Loss: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_installed_dependency"):  # not "no module broken_pkg"
        located("broken_pkg.Loss")
    assert isinstance(located("reexporting.Thing"), type), "the class, as Hydra finds it, not its module"


def test_an_own_loss_whose_module_does_not_compile_is_one_line_naming_its_line(
    make_cfg, tmp_path, monkeypatch
):
    from lossbench.run import run

    (tmp_path / "typo_losses.py").write_text("class MyLoss(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"loss._target_=typo_losses.MyLoss cannot be imported .*line 1"):
        run(make_cfg("loss=ce", "loss._target_=typo_losses.MyLoss", "logger=none"))


def test_an_error_from_a_loader_worker_is_one_line_of_its_own_message():
    """torch's worker wrapper puts the worker's traceback into the message: a 2.5 kB error line."""
    from lossbench.errors import DataError, one_line

    own = "data: cannot decode image /d/dog/005.png (OSError: truncated): fix or delete it"
    caught = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "image_batches.py", line 69, in image\n    raise DataError(...)\n'
        f"lossbench.errors.DataError: {own}"
    )
    assert one_line(caught) == f"DataError: {own}"


SHIPPED = [
    f"{group}={option}"
    for group in ("experiment", "optim", "model", "data", "callbacks", "debug", "logger", "trainer", "loss")
    for option in group_options(group)
] + [f"+sweep={option}" for option in group_options("sweep")]


@pytest.mark.parametrize("option", SHIPPED)
def test_every_shipped_option_passes_the_config_checks(make_cfg, option):
    """The checks that refuse bad values before training refuse no option the package ships (its own
    values: warmup_epochs=0, save_last, a list image size); a required key left unset aside."""
    from lossbench.checks import default_type_problems, trainer_problems, type_problems
    from lossbench.value_checks import value_problems

    cfg = make_cfg(option, "trainer=cpu") if option.startswith("experiment=") else make_cfg(option)
    problems = [
        *type_problems(cfg),
        *default_type_problems(cfg),
        *trainer_problems(cfg),
        *value_problems(cfg),
    ]
    assert problems == []


def test_values_of_another_type_that_an_option_accepts_pass(make_cfg):
    from lossbench.checks import default_type_problems

    cfg = make_cfg("callbacks.model_checkpoint.save_last=link", "optim=sgd_warmup_multistep")
    assert list(default_type_problems(cfg)) == []
    cfg = make_cfg("data=image_folder", "data.root=/x", "data.image_size=[16,24]")
    assert list(default_type_problems(cfg)) == []
    cfg = make_cfg("data=image_folder", "data.root=/x", "data.image_size=[16,big]")
    assert list(default_type_problems(cfg)) == [
        "data.image_size=[16, 'big'] has the wrong type: expected numbers"
    ]


def test_a_misspelt_key_added_to_a_built_in_data_set_is_named_with_the_key_meant(make_cfg):
    """``+data.batchsize=32``: the data module refuses the argument; the error names it and the argument it
    was likely meant to be, not the advice for a changed ``data._target_``."""
    from lossbench.build import build_data

    with pytest.raises(ConfigError, match=r"data.batchsize is not an argument of .*SklearnDataModule \(data="
                       r"digits\): did you mean data.batch_size\?"):  # fmt: skip
        build_data(make_cfg("+data.batchsize=32"))
