"""Every config group option composes; the CLI's --help, --cfg and errors are clean."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lossbench.config import group_options, loss_options

GROUPS = ("loss", "data", "model", "optim", "trainer", "logger", "callbacks", "debug")


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_options(group):
    assert group_options(group), f"conf/{group}/ has no options"


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
@pytest.mark.slow  # ~0.3 s per option; each loss option is built by test_every_loss_option_instantiates_...
def test_every_group_option_composes(make_cfg, group, option):
    cfg = make_cfg(f"{group}={option}")
    assert HydraConfig.get().runtime.choices[group] == option
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("option", loss_options())
def test_every_loss_option_instantiates_and_sets_only_keys_its_target_takes(make_cfg, option):
    from lossbench.argument_checks import check_options

    cfg = make_cfg(f"loss={option}")
    check_options(cfg)
    loss = instantiate(cfg.loss)
    assert loss.reduction == "mean"


def test_required_options_exist():
    assert {"ce", "bce", "focal", "mse", "huber"} <= set(loss_options())
    assert {"adam", "sgd"} <= set(group_options("optim"))
    assert {"cpu", "gpu", "ddp"} <= set(group_options("trainer"))
    assert {"wandb", "csv", "none", "default"} <= set(group_options("logger"))
    assert "digits" in group_options("data") and "mlp" in group_options("model")


def test_every_target_names_its_defining_module():
    """``_target_: lossbench.losses.focal.FocalLoss``: one hop from a config file to the class."""
    import re

    from hydra.utils import get_object

    from lossbench.config import CONFIG_DIR

    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        for target in re.findall(r"_target_: (lossbench\.[\w.]+)", path.read_text()):
            module = target.rsplit(".", 1)[0]
            assert get_object(target).__module__ == module, f"{path.name}: {target} is defined elsewhere"


@pytest.mark.parametrize("group", ["model", "optim"])  # each loss: test_every_loss_option_instantiates_...
def test_every_option_sets_only_keys_its_target_takes(make_cfg, group):
    from lossbench.argument_checks import check_options

    for option in group_options(group):
        check_options(make_cfg(f"{group}={option}"))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["loss=focal", "+loss.foo=1"], r"loss.foo is not an option of loss=focal \(.*Focal.* takes .*gamma"),
        (["+model.foo=1"], r"model.foo is not an option of model=mlp \(.*MLP takes hidden_dims, dropout\)"),
        (
            ["+optim.optimizer.foo=1"],
            r"optim.optimizer.foo is not an option of optim=adam \(torch.optim.AdamW",
        ),
        (["optim=sgd_warmup_multistep", "+optim.scheduler.foo=1"], r"warmup_multistep takes warmup_epochs"),
    ],
)
def test_a_key_no_target_takes_is_named_before_anything_is_built(make_cfg, overrides, named):
    from lossbench.argument_checks import check_options
    from lossbench.errors import ConfigError

    with pytest.raises(ConfigError, match=named):
        check_options(make_cfg(*overrides))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("+optim.lr=0.1", "+optim.lr=0.1: nothing reads optim.lr: did you mean optim.optimizer.lr?"),
        ("+monitor.metrc=val/nll", "did you mean monitor.metric?"),
        ("+extras.print_cfg=true", "did you mean extras.print_config?"),
    ],
)  # fmt: skip
def test_a_key_added_under_a_node_read_key_by_key_is_named_with_the_key_meant(make_cfg, override, named):
    """``optim``, ``monitor``, ``extras`` are read key by key: a key added under one is read by nothing
    (Hydra's own error for ``optim.lr=0.1`` advises ``+optim.lr=0.1``)."""
    from lossbench.checks import added_key_problems

    (problem,) = added_key_problems(make_cfg(override))
    assert named in problem
    assert not list(added_key_problems(make_cfg("+optim.optimizer.betas=[0.9,0.99]"))), "an argument"
    assert not list(added_key_problems(make_cfg("++optim.scheduler_interval=step"))), "a key it has"
    assert not list(added_key_problems(make_cfg("++optim.base_lr=0.2"))), "++: a key an own optim may read"
    # keys lossbench reads, null in train.yaml or optim=adam (where Hydra takes + to set them)
    plateau = "+optim.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1}"
    for read in (
        plateau,
        "+monitor.metric=val/loss",
        "+monitor.mode=min",
        "+nonfinite_check.every_n_steps=5",
    ):
        assert not list(added_key_problems(make_cfg(read))), read


def test_an_empty_schedule_node_is_no_schedule(make_cfg):
    """``optim.scheduler={}`` trains without a schedule (the build reads an empty node so)."""
    from lossbench.value_checks import scheduler_problems

    assert not list(scheduler_problems(make_cfg("optim.scheduler={}")))


def documented_option_keys() -> list[tuple[str, str, str, str | None]]:
    """``(group, option, key, value)`` for each option docs/reference.md names beside a key of its group:
    a default written ``5.0 (`heteroscedastic`), 0 (`regression_outliers`)``, or a description that
    starts ``` `blobs_imbalanced`: ``` (then the value is the default column's, if it names no option)."""
    import re
    from pathlib import Path

    rows = re.findall(
        r"^\| `(\w+)\.([\w.]+)` \| (.*?) \| (.*?) \|", Path("docs/reference.md").read_text(), re.M
    )
    found = []
    for group, key, default, description in rows:
        options = set(group_options(group)) if group in GROUPS else set()
        for value, named in re.findall(r"([^,()]+?) \(((?:`\w+`(?:, )?)+)\)", default):
            found += [(group, o, key, value.strip()) for o in re.findall(r"`(\w+)`", named) if o in options]
        if (first := re.match(r"`(\w+)`: ", description)) and first[1] in options and "(`" not in default:
            found.append((group, first[1], key, default.strip()))
    return found


def test_every_option_named_in_the_reference_has_its_key_with_that_default(make_cfg):
    """A key the reference gives a default for under one option (``data.noise_growth``: 0 for
    ``regression_outliers``) must be in that option's config, so that ``data.noise_growth=1`` works."""
    documented = documented_option_keys()
    assert len({(g, o) for g, o, _, _ in documented}) >= 6, documented  # the parsing still finds them
    nodes = {(g, o): make_cfg(f"{g}={o}")[g] for g, o in dict.fromkeys((g, o) for g, o, _, _ in documented)}
    for group, option, key, value in documented:
        node = nodes[group, option]
        assert key in node, (
            f"docs/reference.md gives {group}.{key} for {group}={option}, which has no such key"
        )
        shown = value.strip("`")
        actual = node[key]
        try:
            assert float(shown) == float(actual), f"{group}={option}: {key} is {actual}, documented {value}"
        except (TypeError, ValueError):
            if value.startswith("`") and not isinstance(actual, (list, dict)) and actual is not None:
                assert str(actual) == shown, f"{group}={option}: {key} is {actual!r}, documented {value}"


def test_a_composed_run_keeps_a_root_dir_it_was_given_and_writes_to_an_absolute_dir(tmp_path, monkeypatch):
    """``compose_run`` (packed jobs, lossbench-eval, tune) set ``paths.root_dir`` to the working directory
    even when the run was given one: an eval looked for the run's data in the wrong folder."""
    from pathlib import Path

    from lossbench.config import compose_run

    monkeypatch.chdir(tmp_path)
    given = compose_run(["paths.root_dir=/data/me"], output_dir="out/run")
    assert given.paths.root_dir == "/data/me" and given.paths.data_dir == "/data/me/data"
    assert given.paths.output_dir == str(tmp_path / "out" / "run")
    assert compose_run([], output_dir="run").paths.root_dir == str(Path.cwd())
