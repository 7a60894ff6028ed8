"""Progress that reads well on a terminal and in a log file.

On a terminal :func:`progress` is a tqdm bar. When the stream is redirected (a log file, a pipe,
a batch system) it prints one plain line every ``interval`` seconds instead, with no carriage
returns or escape codes: ``building shards: 96/512 groups (18.8%), 11.6 groups/s, ETA 36 s``, and
a last line when it closes.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any

INTERVAL = 10.0


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LineProgress:
    """The log-file form of a progress bar: ``update`` counts, a line every ``interval`` seconds."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 file: IO[str] | None = None, interval: float = INTERVAL, disable: bool = False) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file, self.interval, self.disable = file or sys.stderr, interval, disable
        self.start = self.last = time.monotonic()
        self._start_n = initial
        self.postfix = ""

    def line(self) -> str:
        elapsed = max(1e-9, time.monotonic() - self.start)
        rate = (self.n - self._start_n) / elapsed
        text = f"{self.desc}: {self.n}" + (f"/{self.total}" if self.total else "") + f" {self.unit}s"
        if self.total:
            text += f" ({100.0 * self.n / self.total:.1f}%)"
        text += f", {rate:.3g} {self.unit}s/s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", ETA {_duration((self.total - self.n) / rate)}"
        elif self.n and (not self.total or self.n >= self.total):
            text += f", {_duration(elapsed)} in all"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _emit(self) -> None:
        if not self.disable:
            print(self.line(), file=self.file, flush=True)
        self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._emit()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.n != self._start_n or self.total == 0:
            self._emit()
        self.disable = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
             file: IO[str] | None = None, disable: bool = False, leave: bool = True) -> Any:
    """A tqdm bar on a terminal, a :class:`LineProgress` otherwise (same ``update``/``set_postfix``/``close``)."""
    stream = file or sys.stderr
    if not disable and hasattr(stream, "isatty") and stream.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=stream, dynamic_ncols=True,
                        leave=leave, smoothing=0.1)
    return LineProgress(total, desc, unit, initial, stream, disable=disable)
