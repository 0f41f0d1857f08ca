"""An ``--out`` that holds another command's search: ``lossbench tune`` and ``lossbench advise`` refuse it
before anything trains, and a final run of other overrides is neither kept nor continued."""

from __future__ import annotations

import json

import pytest

from lossbench.cli import main as cli_main
from lossbench.errors import ConfigError
from lossbench.tune import final as fin
from lossbench.tune import study as st
from lossbench.tune.out_dir import check_advise_out, check_tune_out


def _advise_dir(out):
    """What ``lossbench advise`` leaves: its record, its pilot, studies, trials and final runs."""
    for name in ("pilot", "trials/ce/0", "final/ce/0"):
        (out / name).mkdir(parents=True)
    (out / "advise.json").write_text("{}")
    (out / "study.db").write_bytes(b"")
    return out


def _tune_dir(out):
    for name in ("trials/ce/0", "final/ce/0"):
        (out / name).mkdir(parents=True)
    (out / "plan.json").write_text("{}")
    (out / "study.db").write_bytes(b"")
    return out


def test_tune_refuses_an_advise_study_and_advise_a_tune_search(tmp_path):
    advise, tune = _advise_dir(tmp_path / "a"), _tune_dir(tmp_path / "t")
    with pytest.raises(ConfigError, match=r"holds a lossbench advise study \(advise.json, pilot, study.db"):
        check_tune_out(advise)
    with pytest.raises(ConfigError, match=r"holds a lossbench tune search \(plan.json\).*use another --out"):
        check_advise_out(tune)
    check_tune_out(tune)  # each continues its own
    check_advise_out(advise)
    check_tune_out(tmp_path / "new")
    check_advise_out(tmp_path / "new")
    (advise / "advise.json").unlink()  # deleted as its damaged-file error says: the pilot still tells
    check_advise_out(advise)
    with pytest.raises(ConfigError, match="holds a lossbench advise study"):
        check_tune_out(advise)
    (tune / "plan.json").unlink()  # deleted as its damaged-file error says
    check_tune_out(tune)
    with pytest.raises(ConfigError, match=r"another command's search \(study.db, trials, final\) without"):
        check_advise_out(tune)


def test_the_commands_refuse_the_others_out_in_one_line_before_any_work(tmp_path, capsys):
    advise, tune = _advise_dir(tmp_path / "a"), _tune_dir(tmp_path / "t")
    args = ["--loss", "ce,focal", "--trials", "3", "--seeds", "1", "trainer.max_epochs=2", "logger=csv"]
    assert cli_main(["tune", "--out", str(advise), *args]) == 2
    err = capsys.readouterr().err
    assert err == f"lossbench tune: ConfigError: --out {advise} holds a lossbench advise study " + (
        "(advise.json, pilot, study.db, trials, final), not a tune search: use another --out\n"
    )
    assert not (advise / "plan.json").exists() and sorted(p.name for p in (advise / "trials").iterdir()) == [
        "ce"
    ]
    assert cli_main(["advise", "--out", str(tune), "--budget", "2m", "data=digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lossbench advise: ConfigError: --out ") and "use another --out" in err
    assert err.count("\n") == 1 and not (tune / "advise.json").exists() and not (tune / "scratch").exists()


def _finished_run(run_dir, params, overrides):
    run_dir.mkdir(parents=True)
    record = {"status": "ok", "loss": "ce", "overrides": overrides, "test": {"test/acc": 0.9}}
    (run_dir / "metrics.json").write_text(json.dumps(record))
    (run_dir / "tuned.json").write_text(json.dumps(params))


def test_a_final_run_of_other_overrides_is_set_aside_not_kept(tmp_path):
    """An earlier command's final run (20 epochs) in this search's run dir, with the same tuned values."""
    plan = st.Plan(losses=["ce"], trials=1, seeds=1, out=tmp_path, overrides=["trainer.max_epochs=2"])
    params = {"optim.optimizer.lr": 0.001}
    run_dir = fin.final_dir(plan, "ce", 0)
    _finished_run(run_dir, params, ["data=digits", "loss=ce", "seed=0"])
    assert not fin.finished(run_dir, params, fin.final_overrides(plan, "ce", 0))
    assert fin.finished(run_dir, params, ["data=digits", "seed=0", "loss=ce"]), "the same in another order"
    fin.final_job(plan, "ce", 0, params, ("val/acc", "max"))
    assert (run_dir / "metrics.json.earlier").is_file() and not (run_dir / "metrics.json").exists()


def test_a_final_runs_checkpoint_of_other_overrides_is_not_continued(tmp_path):
    import torch

    from lossbench.resume import OVERRIDES_KEY

    run_dir, params = tmp_path / "final" / "ce" / "0", {"optim.optimizer.lr": 0.001}
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "tuned.json").write_text(json.dumps(params))
    given = ["trainer.max_epochs=2", "loss=ce", "seed=0"]
    checkpoint = {"epoch": 3, "state_dict": {}, OVERRIDES_KEY: ["data=digits", "loss=ce", "seed=0"]}
    torch.save(checkpoint, run_dir / "checkpoints" / "last.ckpt")
    assert not fin.continues(run_dir, params, given)
    torch.save({**checkpoint, OVERRIDES_KEY: [*given, "resume=true"]}, run_dir / "checkpoints" / "last.ckpt")
    assert fin.continues(run_dir, params, given)
