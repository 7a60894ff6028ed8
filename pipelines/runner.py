"""Running one Ray task per shard: a bounded window in flight, retries, a progress bar, a report."""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray

from datasets.progress import progress


class RayUnavailable(RuntimeError):
    """Ray could not be started or joined; the message says why and what to do."""


def start_ray(address: str | None, workers: int | None, object_store_mb: int = 256, dashboard: bool = False) -> int:
    """Join the cluster at ``address``, or start a private local Ray with ``workers`` CPUs.

    A local run always starts its own instance (``address="local"``), so a cluster started on the
    same machine with ``ray start`` (or ``RAY_ADDRESS`` in the environment) is not joined by
    accident. Returns the CPUs available.
    """
    if not ray.is_initialized():
        if address:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as error:
                text = str(error)
                hint = ("the cluster uses token authentication: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the "
                        "cluster's token" if "auth" in text.lower() or "token" in text.lower() else
                        "check that the cluster runs (ray status) and that the address is right")
                raise RayUnavailable(f"could not join the Ray cluster at {address}: {text.strip().splitlines()[-1]}; "
                                     f"{hint}") from None
        else:
            ray.init(
                address="local",
                num_cpus=workers or os.cpu_count(),
                include_dashboard=dashboard,
                logging_level=logging.WARNING,
                object_store_memory=object_store_mb * 1024 * 1024,
            )
    return int(ray.cluster_resources().get("CPU", 1))


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once when a ``host:port`` address has nothing listening (Ray itself retries for minutes).

    ``auto``, ``local`` and ``ray://`` client addresses are left to Ray.
    """
    if address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as error:
        reason = error.strerror or str(error) if isinstance(error, OSError) else f"bad port {port!r}"
        raise RayUnavailable(f"could not join the Ray cluster at {address}: {reason}; check that the cluster "
                             f"runs (ray status) and that the address is right") from None


@dataclass
class Outcome:
    """What came back: results by task key, and the keys whose task failed for good, with why."""

    results: dict[Any, Any] = field(default_factory=dict)
    failures: dict[Any, str] = field(default_factory=dict)


def run_tasks(
    submit: Callable[[Any], ray.ObjectRef],
    keys: Sequence[Any],
    window: int,
    units: Callable[[Any], int] = lambda key: 1,
    unit: str = "item",
    description: str = "",
    on_result: Callable[[Any, Any], None] | None = None,
) -> Outcome:
    """Submit one task per key, never more than ``window`` in flight, and wait for them all.

    Ray retries each task as configured at submission; a task that still fails is recorded
    with its error and the others go on. The progress bar counts ``units(key)`` per finished
    task (e.g. groups per shard) and shows the rate and time left.
    """
    outcome = Outcome()
    pending: dict[ray.ObjectRef, Any] = {}
    todo: Iterator[Any] = iter(keys)
    total = sum(units(k) for k in keys)
    with progress(total=total, unit=unit, desc=description, disable=not total) as bar:
        while True:
            while len(pending) < window:
                key = next(todo, None)
                if key is None:
                    break
                pending[submit(key)] = key
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                key = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except (ray.exceptions.RayError, Exception) as error:  # noqa: BLE001 - recorded, not raised
                    outcome.failures[key] = _describe(error)
                else:
                    outcome.results[key] = result
                    if on_result is not None:
                        on_result(key, result)
                bar.update(units(key))
    return outcome


def _describe(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


class Timer:
    """Accumulates seconds per stage: ``with timer("degrade"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self, stage)


class _Stage:
    def __init__(self, timer: Timer, stage: str) -> None:
        self.timer, self.stage = timer, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.seconds[self.stage] = self.timer.seconds.get(self.stage, 0.0) + time.perf_counter() - self.start
