"""IQA table loading: time to read a full-size KADID-10k layout (10,125 rows) without decoding images.

Builds the layout (tiny real PNGs, the real ``dmos.csv``) in a temporary folder, then times
``datasets.iqa.load`` and ten content-disjoint splits. Writes ``benchmarks/results/datasets.json``
and its BENCHMARKS.md section.

    python benchmarks/bench_datasets.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, machine, median_time, update_section, write_json  # noqa: E402
from datasets import iqa  # noqa: E402
from tests.datasets.layouts import kadid  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        kadid(Path(tmp), refs=81)
        table = iqa.load("kadid10k", tmp)
        rows = len(table)
        t_load = median_time(lambda: iqa.load("kadid10k", tmp), repeats=5)
        t_splits = median_time(lambda: table.splits(n=10, seed=0), repeats=3)
    info = machine()
    print(f"{rows} rows: load {t_load * 1000:.0f} ms, 10 splits {t_splits * 1000:.0f} ms")
    write_json("datasets", {"machine": info, "rows": rows, "load_seconds": t_load, "ten_splits_seconds": t_splits})
    update_section("bench_datasets", "\n".join([
        f"Measured on {describe(info)}. A full-size KADID-10k layout ({rows} rows, every image present, none decoded):",
        "",
        "| step | time |",
        "|---|---:|",
        f"| `datasets.iqa.load(\"kadid10k\", root)` (parse, check every file exists) | {t_load * 1000:.0f} ms |",
        f"| `table.splits(n=10)` (content-disjoint, seeded) | {t_splits * 1000:.0f} ms |",
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
