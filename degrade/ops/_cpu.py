"""CPU fast paths: OpenCV on each image plane, across a thread pool (OpenCV releases the GIL).

On the CPU, per-image OpenCV beats batched torch for cheap filters and codecs; on a GPU the
batched torch ops are used. Threads are set once, deliberately: the engine's pool has
:func:`threads` workers (default: torch's thread count), and OpenCV runs single-threaded inside
them (``cv2.setNumThreads(1)`` when the pool starts), so the two never oversubscribe the cores.
``degrade.set_threads(n)`` changes the pool size (and torch's).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_THREADS: int | None = None
_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] | None = None


_TORCH_ONLY = 0


@contextlib.contextmanager
def torch_path() -> Iterator[None]:
    """Run every op through its batched torch implementation, also on the CPU (for tests and benchmarks)."""
    global _TORCH_ONLY
    _TORCH_ONLY += 1
    try:
        yield
    finally:
        _TORCH_ONLY -= 1


def use(x: torch.Tensor) -> bool:
    """Whether the CPU fast path applies to ``x``: on the CPU, float32/64, no gradient wanted."""
    return (not _TORCH_ONLY and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and not (x.requires_grad and torch.is_grad_enabled()))


def threads() -> int:
    """Threads of the engine's CPU pool."""
    return _THREADS or max(1, torch.get_num_threads())


def set_threads(n: int) -> None:
    """Use ``n`` threads for the engine on the CPU: its OpenCV pool and torch's intra-op threads."""
    global _THREADS
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    _THREADS = int(n)
    torch.set_num_threads(_THREADS)


def pool() -> ThreadPoolExecutor:
    """The engine's thread pool for this process (a forked child starts its own)."""
    global _POOL, _POOL_KEY
    key = (os.getpid(), threads())
    if _POOL is None or _POOL_KEY != key:
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from the pool, not from inside each call
        _POOL, _POOL_KEY = ThreadPoolExecutor(threads(), thread_name_prefix="degrade"), key
    return _POOL


def run(fn: Callable[[int], None], count: int) -> None:
    """Call ``fn(i)`` for i in range(count): one contiguous run of calls per pool thread (inline when
    there is one call or one thread), so the pool costs a few hand-offs per batch, not one per image."""
    n = min(threads(), count)
    if n <= 1:
        for i in range(count):
            fn(i)
        return

    def chunk(k: int) -> None:
        for i in range(k * count // n, (k + 1) * count // n):
            fn(i)

    for future in [pool().submit(chunk, k) for k in range(n)]:
        future.result()


def map_planes(x: torch.Tensor, fn: Callable[[np.ndarray, np.ndarray, int], None]) -> torch.Tensor:
    """``fn(plane, out, sample)`` on every (H, W) plane of a (B, C, H, W) CPU batch, writing into ``out``.

    Planes are numpy views of contiguous memory (no copies, no layout change); each call writes its
    own output plane, so the calls run in parallel safely.
    """
    x = x.contiguous()
    out = torch.empty_like(x)
    src, dst = x.numpy(), out.numpy()
    b, c = x.shape[:2]

    def one(k: int) -> None:
        i, j = divmod(k, c)
        fn(src[i, j], dst[i, j], i)

    run(one, b * c)
    return out


def map_images(images: Sequence, fn: Callable[..., np.ndarray], *columns: Sequence) -> list[np.ndarray]:
    """``fn(image, *values)`` for every image, on the pool, in order."""
    results: list = [None] * len(images)

    def one(i: int) -> None:
        results[i] = fn(images[i], *(column[i] for column in columns))

    run(one, len(images))
    return results
