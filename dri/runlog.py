"""A run's record: metrics as JSONL, CSV and TensorBoard, and PNG plots; written by one process only."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from degrade._extras import require

require("dri.train's logs and plots", "train", "matplotlib", "tensorboard")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class RunLog:
    """Appends ``{"step": ..., **scalars}`` rows to ``metrics.jsonl`` and ``metrics.csv`` and to TensorBoard.

    ``metrics.jsonl`` is the record; ``metrics.csv`` always has one header naming every column seen
    so far (``step`` first), and is rewritten from the record when a new column appears, so
    ``csv.DictReader`` reads every row under the right names.
    """

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder, self.enabled = folder, enabled
        self._tb = None
        self._fields: list[str] = []
        if enabled:
            folder.mkdir(parents=True, exist_ok=True)
            self._fields = self._columns(self.rows())
            self._tensorboard()

    def _tensorboard(self, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if self._tb is not None:
            self._tb.close()
        self._tb = SummaryWriter(str(self.folder / "tensorboard"), purge_step=purge_step)

    @staticmethod
    def _columns(rows: list[dict[str, Any]]) -> list[str]:
        keys = {k for r in rows for k in r} - {"step"}
        return ["step", *sorted(keys)] if rows else []

    def _write_csv(self, rows: list[dict[str, Any]]) -> None:
        with open(self.folder / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in self._fields})

    def log(self, step: int, **scalars: float) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        with open(self.folder / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if set(row) - set(self._fields):
            self._fields = self._columns(self.rows())
            self._write_csv(self.rows())
        else:
            with open(self.folder / "metrics.csv", "a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self._fields).writerow({k: row.get(k, "") for k in self._fields})
        for key, value in scalars.items():
            self._tb.add_scalar(key, float(value), step)

    def truncate_after(self, step: int) -> None:
        """Forget rows after ``step`` (a resumed run logs those steps again)."""
        if not self.enabled:
            return
        rows = [r for r in self.rows() if r["step"] <= step]
        with open(self.folder / "metrics.jsonl", "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
        self._fields = self._columns(rows)
        self._write_csv(rows)
        self._tensorboard(purge_step=step + 1)

    def rows(self) -> list[dict[str, Any]]:
        path = self.folder / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def plot_losses(self, keys: list[str], name: str = "loss.png", title: str = "") -> Path | None:
        """Curves of ``keys`` against step (PNG)."""
        if not self.enabled:
            return None
        rows = self.rows()
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
            if points:
                ax.plot(*zip(*points), label=key)
        ax.set_xlabel("step")
        ax.set_title(title)
        if ax.get_lines():
            ax.legend()
        ax.grid(alpha=0.3)
        path = self.folder / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def scatter(predicted, target, path: Path, title: str, xlabel: str = "predicted quality",
            ylabel: str = "normalised MOS") -> Path:
    """Predicted against true scores (PNG)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(predicted, target, s=8, alpha=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
