"""Shared by the benchmark scripts: machine description, timing, and BENCHMARKS.md sections."""
from __future__ import annotations

import json
import os
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, after one warm-up run."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


SETTLE_S = 0.05  # pause before each timed run of interleaved_times
WINDOW_S = 0.3  # shortest timed window of interleaved_times


def interleaved_times(runs: dict[str, Callable[[], object]], repeats: int,
                      sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each named function over ``repeats`` rounds, each round running every
    function in turn (after one warm-up round), so drifting load on a shared machine hits them all alike.

    Each timing repeats its function for at least :data:`WINDOW_S` (waking idle threads and cores
    costs milliseconds, which would dominate a 10 ms call timed once) and starts after a short
    pause, so threads a previous run left spinning (torch's OpenMP workers busy-wait for a while
    after a parallel op) are not charged to the next.
    """
    calls: dict[str, int] = {}
    for name, fn in runs.items():  # warm-up, sizing each window
        start = time.perf_counter()
        fn()
        sync()
        calls[name] = max(1, math.ceil(WINDOW_S / max(time.perf_counter() - start, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            sync()
            times[name].append((time.perf_counter() - start) / calls[name])
    return times


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def update_section(key: str, markdown: str) -> None:
    """Replace the text between ``<!-- key:start -->`` and ``<!-- key:end -->`` in BENCHMARKS.md."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)


def describe(info: dict[str, object]) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (
        f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} with {info['torch_threads']} threads{gpu}"
    )
