"""A run's record: metrics as JSONL, CSV and TensorBoard, and PNG plots; written by one process only."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class RunLog:
    """Appends ``{"step": ..., **scalars}`` rows to ``metrics.jsonl`` and ``metrics.csv`` and to TensorBoard."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder, self.enabled = folder, enabled
        self._tb = None
        if enabled:
            folder.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(folder / "tensorboard"))

    def log(self, step: int, **scalars: float) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        with open(self.folder / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        path = self.folder / "metrics.csv"
        fields = ["step", *sorted(scalars)]
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in fields})
        for key, value in scalars.items():
            self._tb.add_scalar(key, float(value), step)

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
