"""``lossbench advise``: the profile's estimates, the shortlist's rules, the budget's plan, the verdicts and
recommendation, and one whole (tiny) run."""

from __future__ import annotations

import json

import pytest

from lossbench.cli import main as cli_main


# --- the command --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_advise_runs_the_protocol_and_writes_the_recommendation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "advise",
        "data=wine",
        "trainer.max_epochs=2",
        "--loss",
        "focal",
        "--budget",
        "40s",
        "--out",
        "adv",
    ]
    assert cli_main(args) == 0
    result = json.loads((tmp_path / "adv" / "recommendation.json").read_text())
    assert result["loss"] in ("ce", "focal") and result["metric"] == "test/acc"
    assert [c["loss"] for c in result["shortlist"]] == ["ce", "focal"]
    assert {v["loss"] for v in result["verdicts"]} == {"ce", "focal"}
    assert result["profile"]["task"] == "classification" and result["plan"]["seeds"] >= 3
    md = (tmp_path / "adv" / "report" / "report.md").read_text()
    assert "**Recommendation** (test/acc): Use " in md.split("## Verdict")[0]
    out = capsys.readouterr().out
    assert "recommendation: Use " in out
    first = result["plan"]
    assert cli_main(args) == 0, "the same command again continues (here: finds everything done)"
    again = json.loads((tmp_path / "adv" / "recommendation.json").read_text())
    assert again["plan"]["trials"] == first["trials"] and again["loss"] == result["loss"]
