"""``lossbench compare``: statistics, the files it writes, failed runs listed, W&B paths, HTML in Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lossbench.cli import main as cli_main
from lossbench.report.collect import collect_local
from lossbench.report.stats import summarize
from tests.conftest import run_cli

FAST = ("trainer.max_epochs=1", "callbacks.rich_progress_bar=null")


def test_report_table_logged_to_wandb_offline(sweep_dir, monkeypatch):
    """The summary run of the group gets the table (offline here: no credentials)."""
    from lossbench.report.wandb_log import log_report

    rows = summarize(collect_local(sweep_dir))
    log_report(rows, {}, project="lossbench", group="g", save_dir=sweep_dir)
    runs = list((sweep_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].rglob("comparison_*.table.json"))


# --- the HTML page in a real browser --------------------------------------------------------------------
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600)
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip(
            "Debian package chromium is not installed and cannot be installed here (needs root + apt-get)"
        )
    return exe


def headless(exe: str, page: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
    ]
    flags += ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom"]
    return subprocess.run([exe, *flags, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(sweep_dir, tmp_path):
    exe = chromium()
    # the check can see a console error: a page that logs one is caught
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script></body></html>')
    assert ":CONSOLE" in headless(exe, bad).stderr
    assert cli_main(["compare", str(sweep_dir), "--no-log-wandb"]) == 0
    proc = headless(exe, sweep_dir / "report" / "report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    dom = proc.stdout
    assert 'data-images-ok="true"' in dom and 'data-images="4"' in dom  # every embedded plot decoded
    assert "<table" in dom and "ConfigError: bad thing" in dom


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "figure", "absent", "ranked"),
    [
        (("data=multilabel", "loss=bce,asl"), "per_label_ap_multilabel.png", "reliability", "test/map"),
        (("data=diabetes", "loss=mse,gaussian_nll,beta_nll"), "calibration_diabetes.png", "", "test/crps"),
    ],
    ids=["multilabel", "distributional"],
)
def test_compare_a_real_multilabel_or_distributional_sweep(tmp_path, overrides, figure, absent, ranked):
    """A multi-label sweep gets the per-label AP figure (and no single-label reliability diagram); a sweep
    over point and distributional regression losses gets the calibration figure, and ranks CRPS but not the
    coverages (they have no better direction)."""
    run_cli("-m", *overrides, "seed=0,1", *FAST, "logger=csv", "hydra.sweep.dir=sw", cwd=tmp_path)
    assert cli_main(["compare", str(tmp_path / "sw"), "--no-log-wandb"]) == 0
    report = tmp_path / "sw" / "report"
    assert (report / figure).stat().st_size > 1000
    if absent:
        assert not list(report.glob(f"{absent}_*.png"))
    md = (report / "report.md").read_text()
    assert f"| {ranked} " in md, "the deciding score is ranked"
    assert "test/coverage_90" not in md and "test/width_90" not in md
    assert ("in standardised units" in md) is (ranked == "test/crps"), "regression errors say their units"
