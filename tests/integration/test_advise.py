"""``lossbench advise`` end to end on a tiny data set: a budget too small is refused with one that fits, the
rerun into the same ``--out`` keeps the pilot and fits that budget, and a third run finds it all done."""

from __future__ import annotations

import json
import logging
import re

import pytest

from lossbench.advise.pilot import Pilot
from tests.conftest import advise_in_process


# --- the command --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_advise_runs_the_protocol_and_writes_the_recommendation(tmp_path, monkeypatch, capsys, caplog):
    """At most 2 trials and 3 replicates per loss (the clock's use of a whole budget is checked with a
    fake clock in tests/unit/test_advise_budget.py)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lossbench.advise.budget.MAX_TRIALS", 2)

    def advise(argv: list[str]) -> int:
        return advise_in_process(monkeypatch, argv)

    caplog.set_level(logging.INFO, logger="lossbench")
    args = ["advise", "data=wine", "trainer.max_epochs=2", "--loss", "focal", "--out", "adv"]
    assert advise([*args, "--budget", "2s"]) == 2, "not even the smallest plan fits 2 s"
    err = capsys.readouterr().err
    suggested = re.search(r"rerun with --budget (\d+)m and the same --out", err)
    assert suggested, err
    pilot = json.loads((tmp_path / "adv" / "advise.json").read_text())["pilot"]
    args += ["--budget", f"{suggested[1]}m"]
    assert advise(args) == 0, "the suggested budget is accepted"
    result = json.loads((tmp_path / "adv" / "recommendation.json").read_text())
    if Pilot(**pilot).steady:
        assert result["plan"]["pilot"] == pilot, "the rerun kept the pilot"
    else:  # cut short by a 2 s budget's share: timed again, longer, with the budget the refusal named
        assert "its pilot times more epochs" in err and result["plan"]["pilot"]["epochs_done"] >= 2
    assert result["plan"]["used_s"] <= 1.1 * 60 * int(suggested[1])
    assert result["loss"] in ("ce", "focal") and result["metric"] == "test/acc"
    assert [c["loss"] for c in result["shortlist"]] == ["ce", "focal"]
    assert {v["loss"] for v in result["verdicts"]} == {"ce", "focal"}
    assert result["profile"]["task"] == "classification" and result["plan"]["seeds_done"] >= 3
    md = (tmp_path / "adv" / "report" / "report.md").read_text()
    assert "**Recommendation** (test/acc): Use " in md.split("## Verdict")[0]
    captured = capsys.readouterr()
    assert "recommendation: Use " in captured.out
    assert "Test metric" not in captured.out + captured.err, "no test table per run: one line each"
    final_line = r"final (ce|focal): seed \d+ \(\d+ of \d+(, packed)?\): best val/acc="
    finals = [m for m in caplog.messages if re.match(final_line, m)]
    assert len(finals) == 2 * result["plan"]["seeds_done"], "one line per final run"
    first = result["plan"]
    assert advise(args) == 0, "the same command again continues (here: finds everything done)"
    again = json.loads((tmp_path / "adv" / "recommendation.json").read_text())
    assert again["plan"]["trials"] == first["trials"] and again["loss"] == result["loss"]
