"""The report names what its numbers are: the standardised units of a regression setting's errors, and the
classes or labels of its per-item figures by the names the runs recorded."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.record import RunRecord
from lossbench.report import figure_base, plots, task_plots
from lossbench.report.collect import ReportRun
from lossbench.report.notes import units


def run(name: str, data_info: dict, predictions: str | None = None, group: str = "g") -> ReportRun:
    record = RunRecord("ok", loss=name, seed=0, data_info=data_info)
    return ReportRun(
        name, record, metrics={"test/mae": 0.3}, predictions=predictions, group=group, variant=name
    )


def test_a_regression_setting_says_its_errors_are_in_units_of_the_target_std():
    runs = [run("mse", {"task": "regression", "target_std": [40.4567]}), run("ce", {"task": "x"}, group="h")]
    said = units(runs, "g")
    assert "in standardised units" in said and "standard deviation (40.46;" in said
    assert "larger by the log of that std" in said
    assert units(runs, "h") == "", "a classification setting has no target std"
    runs.append(run("huber", {"target_std": [2.0, 3.0]}))
    assert "(2, 3 or 40.46;" in units(runs, "g"), "runs of another std (another table) are each named"
    labelled = [run("mse", {"target_std": [2.0]}, group="diabetes data=diabetes lr=0.1")]
    assert "(2;" in units(labelled, "diabetes lr=0.1"), "found by the setting's label, as the tables name it"


@pytest.fixture
def ticks(monkeypatch) -> list[list[str]]:
    """The x tick labels of each figure the report saves."""
    seen: list[list[str]] = []

    def save(fig, path):
        seen.append([t.get_text() for t in fig.axes[0].get_xticklabels()])
        return path

    monkeypatch.setattr(figure_base, "save_figure", save)
    return seen


def test_per_label_and_per_class_figures_name_the_recorded_labels(tmp_path, ticks):
    rng = np.random.default_rng(0)
    y = (rng.random((40, 3)) < [0.2, 0.5, 0.3]).astype(np.float32)
    np.savez(tmp_path / "ml.npz", targets=y, probs=rng.random((40, 3)), preds=y)
    labels = {"labels": ["cat", "dog", "eel"]}
    task_plots.per_label_ap([run("bce", labels, str(tmp_path / "ml.npz"))], "g", tmp_path)
    assert [t.split("\n")[0] for t in ticks[-1]] == ["cat", "eel", "dog"], "rarest first, by name"
    task_plots.per_label_ap([run("bce", {}, str(tmp_path / "ml.npz"))], "g", tmp_path)
    assert [t.split("\n")[0] for t in ticks[-1]] == ["0", "2", "1"], "no names recorded: indices"
    t = np.array([0, 1, 1, 2, 2, 2])
    np.savez(tmp_path / "c.npz", targets=t, preds=t, probs=np.eye(3)[t])
    plots.per_class_recall([run("ce", {"labels": ["a", "b", "c"]}, str(tmp_path / "c.npz"))], "g", tmp_path)
    assert [t.split("\n")[0] for t in ticks[-1]] == ["a", "b", "c"]


def test_per_label_ap_keeps_a_label_the_last_runs_split_has_no_positive_of(tmp_path, ticks):
    """Runs of other data splits (data_seed): the rarest label, with test positives in the first run's split
    only, keeps its bar, and the count is the mean over the runs, whichever run is read last."""
    rng = np.random.default_rng(0)
    first = (rng.random((40, 3)) < [0.5, 0.3, 0.05]).astype(np.float32)
    first[:, 2] = 0
    first[:2, 2] = 1  # 2 positives of label 2
    last = first.copy()
    last[:, 2] = 0  # none in the last run's test split
    runs = []
    for name, y in (("a", first), ("b", last)):
        np.savez(tmp_path / f"{name}.npz", targets=y, probs=rng.random((40, 3)), preds=y)
        runs.append(run("bce", {}, str(tmp_path / f"{name}.npz")))
    task_plots.per_label_ap(runs, "g", tmp_path)
    shown = dict(t.split("\n") for t in ticks[-1])
    assert shown["2"] == "(n=1)" and list(shown)[0] == "2"  # (2 + 0) / 2
    third = first.copy()
    third[:, 2] = 0
    np.savez(tmp_path / "c.npz", targets=third, probs=rng.random((40, 3)), preds=third)
    np.savez(tmp_path / "d.npz", targets=first[:, :2], probs=rng.random((40, 2)), preds=first[:, :2])
    task_plots.per_label_ap(
        [*runs, run("bce", {}, str(tmp_path / "c.npz")), run("bce", {}, str(tmp_path / "d.npz"))],
        "g",
        tmp_path,
    )
    assert dict(t.split("\n") for t in ticks[-1])["2"] == "(n=0.7)", "2 of 3 runs: a mean, not rounded to 0"
