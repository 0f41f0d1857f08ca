"""``lossbench tune``'s refusals: one line on stderr, the command named once, exit status 2."""

from __future__ import annotations

import pytest

from lossbench.cli import main as cli_main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--loss", "ce", "--trials", "0"], "--trials, --seeds, --workers and --pack must be >= 1"),
        (["--loss", ","], "--loss: name at least one loss, e.g. --loss ce,focal"),
    ],
)
def test_a_refused_tune_names_the_command_once(tmp_path, capsys, flags, message):
    assert cli_main(["tune", "--out", str(tmp_path / "t"), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"lossbench tune: ConfigError: {message}\n"
    assert not (tmp_path / "t").exists()


def test_a_rerun_with_other_trials_names_the_command_once(tmp_path, capsys):
    from lossbench.tune import study as st
    from lossbench.tune.runner import check_plan

    check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path))
    with pytest.raises(st.ConfigError) as caught:
        check_plan(st.Plan(losses=["ce"], trials=3, seeds=1, out=tmp_path))
    assert str(caught.value).startswith(f"{tmp_path} holds a search with other trials (trials=2)")
