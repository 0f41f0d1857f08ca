"""The table ``scripts/bench.py`` prints and writes: each measurement against its target and baseline."""

from __future__ import annotations

import os
import platform
from typing import Any

#: upper bounds: ratios against the baseline of the same run, or seconds
TARGETS = {
    "step_ratio": 1.3,
    "startup_s": 10.0,
    "help_s": 2.0,
    "sweep_ratio": 1.3,
    "report_s": 10.0,
    "report_plots_s": 30.0,
    "shared_idle_ratio": 1.05,  # lossbench's wait policy on an idle machine: as fast as OpenMP's default
    "shared_busy_ratio": 0.8,  # and on a busy one clearly faster
}
#: lower bounds (throughput ratios)
MIN_TARGETS = {"image_folder_ratio": 0.95, "tune_workers_ratio": 1.5}


def machine() -> dict[str, Any]:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }
    try:
        import lightning

        info["lightning"] = lightning.__version__
    except ImportError:
        pass
    return info


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def floor_verdict(value: float, target: float) -> str:
    """``verdict`` for a target the value must reach (a ratio ≥ target)."""
    return "met" if value >= target else "MISSED"


def load_note(m: dict[str, Any]) -> str:
    start, end = m.get("load_average_start"), m.get("load_average_end")
    if start is None or end is None:
        return ""
    note = f"1-min load average {start:.2f} at the start, {end:.2f} at the end"
    if max(start, end) > (m.get("cpu_count") or 1):
        return (
            note + ": above the core count, other processes shared the CPU (times inflated, ratios less so)."
        )
    return note + "."


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# lossbench benchmark ({results['device']}, {results['started']})",
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPU cores (torch threads {m['torch_threads']}), "
        f"GPU: {m['cuda'] or 'none'}; Python {m['python']}, torch {m['torch']}, "
        f"lightning {m.get('lightning', '?')}, OMP_WAIT_POLICY={m.get('OMP_WAIT_POLICY')}. "
        f"Medians of {results['repeats']} repeats. {load_note(m)}",
        "",
        "| # | measure | lossbench | baseline (same run) | ratio | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    s = results.get("step")
    if s:
        lines.append(
            f"| 1 | step time, digits MLP, batch 64, {s['epochs']} epochs "
            f"| {s['lossbench']['step_ms']:.3f} ms "
            f"| hand-written loop {s['hand']['step_ms']:.3f} ms | {s['ratio']:.2f}× | ≤ 1.3× "
            f"| {verdict(s['ratio'], TARGETS['step_ratio'])} |"
        )
        lines.append(
            f"| 1 | fit time (train + val, {s['epochs']} epochs) | {s['lossbench']['fit_s']:.2f} s "
            f"| hand-written loop {s['hand']['fit_s']:.2f} s | {s['fit_ratio']:.2f}× | | |"
        )
        if "lightning" in s:
            lines.append(
                f"| 1 | step time, plain Lightning + DataLoader + per-step `self.log` (before) "
                f"| {s['lightning']['step_ms']:.3f} ms | hand-written loop {s['hand']['step_ms']:.3f} ms "
                f"| {s['lightning_ratio']:.2f}× | | reference |"
            )
    st = results.get("startup")
    if st:
        floor = st["import_torch"]["median_s"]
        for key, label in (
            ("train_default", "`python train.py` (default: W&B offline + CSV)"),
            ("train_csv", "`python train.py logger=csv`"),
            ("import_lossbench_run", "`python -c 'import lossbench.run'`"),
            ("train_help", "`python train.py --help` (torch and Lightning not loaded)"),
        ):
            if key not in st:
                continue
            v = st[key]["median_s"]
            limit = {"train_default": ("≤ 10 s", "startup_s"), "train_help": ("≤ 2 s", "help_s")}.get(key)
            target = limit[0] if limit else ""
            ok = verdict(v, TARGETS[limit[1]]) if limit else ""
            lines.append(
                f"| 2 | {label} | {v:.2f} s | `import torch` {floor:.2f} s | {v / floor:.1f}× "
                f"| {target} | {ok} |"
            )
    sw = results.get("sweep")
    if sw:
        lines.append(
            f"| 3 | sweep {len(sw['losses'])} losses × {sw['seeds']} seeds = {sw['runs']} runs "
            f"({sw['ok']} ok), one `-m` process, `logger=csv` | {sw['wall_s']:.1f} s "
            f"| `scripts/hand_sweep.py` (same work, plain PyTorch) {sw['hand_wall_s']:.1f} s "
            f"| {sw['ratio']:.2f}× | ≤ 1.3× | {verdict(sw['ratio'], TARGETS['sweep_ratio'])} |"
        )
        if "lightning_ratio" in sw:
            lines.append(
                f"| 3 | floor: the same sweep with a bare LightningModule + Trainer (no logger, callbacks, "
                f"checkpoints) | {sw['lightning_wall_s']:.1f} s | `scripts/hand_sweep.py` "
                f"{sw['hand_wall_s']:.1f} s | {sw['lightning_ratio']:.2f}× | | reference |"
            )
            lines.append(
                f"| 3 | Hydra: composing one job's config (done twice per job by the basic sweeper and "
                f"launcher) | {sw['compose_s_per_job']:.3f} s | | | | |"
            )
        ph = sw["phases_median_s"]
        lines.append(
            f"| 3 | per run (median s): fit {ph.get('fit', float('nan')):.2f}, test "
            f"{ph.get('test', float('nan')):.2f}, setup "
            f"{sum(ph.get(k, 0.0) for k in ('data', 'model', 'callbacks', 'loggers', 'trainer')):.2f} "
            f"| run() {sw['run_wall_median_s']:.2f} s | | | "
            f"| outside run(): {sw['outside_run_per_job_s']:.2f} s/job |"
        )
    cu = results.get("cuda")
    if cu and "ratio" in cu:
        lines.append(
            f"| 5 | ResNet-18 CIFAR-10 images/s, {cu['gpu']} "
            f"| data on device {cu['images_per_s_on_device']:.0f} "
            f"| DataLoader, {cu['dataloader_workers']} workers {cu['images_per_s_dataloader']:.0f} "
            f"| {cu['ratio']:.2f}× faster | | |"
        )
    imf = results.get("image_folder")
    if imf:
        ok = floor_verdict(imf["ratio"], MIN_TARGETS["image_folder_ratio"])
        lines.append(
            f"| 6 | image folder training images/s, CNN, {imf['images']} 32×32 PNGs, batch "
            f"{imf['batch_size']}, {imf['workers']} workers | {imf['images_per_s']:.0f} "
            f"| `ImageFolder` + `DataLoader` + hand-written loop {imf['hand_images_per_s']:.0f} "
            f"| {imf['ratio']:.2f}× | ≥ 0.95× | {ok} |"
        )
    rp = results.get("report")
    if rp:
        for key, label, target in (
            ("no_plots_s", "--no-plots", "report_s"),
            ("plots_s", "with plots", "report_plots_s"),
        ):
            lines.append(
                f"| 7 | `lossbench compare` {label}, {rp['runs']} runs ({' × '.join(map(str, rp['shape']))}) "
                f"| {rp[key]:.1f} s | | | ≤ {TARGETS[target]:.0f} s | {verdict(rp[key], TARGETS[target])} |"
            )
    tw = results.get("tune_workers")
    if tw:
        ok = floor_verdict(tw["ratio"], MIN_TARGETS["tune_workers_ratio"])
        lines.append(
            f"| 8 | `lossbench tune --workers 2`, trials/min (ce + focal, {tw['trials']} trials each, "
            "5 epochs) "
            f"| {tw['two_workers_per_min']:.1f} | `--workers 1` {tw['one_worker_per_min']:.1f} "
            f"| {tw['ratio']:.2f}× | ≥ 1.5× | {ok} |"
        )
    sh = results.get("shared")
    if sh:
        for load, label in (("idle", "an idle machine"), ("busy", "one busy process per core beside it")):
            ratio, target = sh[f"{load}_ratio"], TARGETS[f"shared_{load}_ratio"]
            lines.append(
                f"| 9 | `python train.py logger=csv`, lossbench's OpenMP wait policy, {label} "
                f"| {sh[f'{load}_lossbench']['median_s']:.1f} s "
                f"| OpenMP's default wait policy {sh[f'{load}_openmp_default']['median_s']:.1f} s "
                f"| {ratio:.2f}× | ≤ {target:g}× | {verdict(ratio, target)} |"
            )
    lo = results.get("losses")
    if lo:
        lines += ["", "## 4. Loss kernels (`scripts/bench_losses.py`)", ""]
        lines += [f"`{lo['command']}` ({lo['wall_s']:.0f} s):", "", "```", lo["output"], "```"]
    return "\n".join(lines) + "\n"


def insert_rows(text: str, rows: list[str]) -> str:
    """Markdown ``text`` with ``rows`` after the last row of its first table (the items whose rows
    :func:`markdown` does not write: ``bench_ddp``, ``bench_packed``)."""
    lines = text.split("\n")
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    gaps = [i for i, j in zip(table, table[1:], strict=False) if j != i + 1]
    end = (gaps[0] if gaps else table[-1]) if table else len(lines) - 1
    lines[end + 1 : end + 1] = rows
    return "\n".join(lines)
