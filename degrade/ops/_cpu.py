"""CPU fast paths: the batch split across a thread pool, OpenCV on each image plane where it wins.

On the CPU, per-image OpenCV beats batched torch for cheap filters and codecs; on a GPU the
batched torch ops are used. Threads are set once, deliberately: the engine's pool has
:func:`threads` workers (default: torch's thread count) and a CPU batch is cut into small
parts that the workers take in turn (:func:`map_parts`). Inside them everything is single-threaded:
OpenCV (``cv2.setNumThreads(1)`` when the pool starts) and torch (:func:`torch_threads` for the
duration of the call). Torch's OpenMP workers busy-wait for milliseconds after each parallel
region; left multi-threaded, they spin on the very cores the pool needs, which cost a third of
the engine's CPU throughput on two cores. ``degrade.set_threads(n)`` changes the pool size (and
torch's).
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_THREADS: int | None = None
_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] | None = None


_TORCH_ONLY = 0
_LOCAL = threading.local()  # .inside: this thread runs one part of a batch (nested calls run inline)


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


def _inside() -> bool:
    return getattr(_LOCAL, "inside", False)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` for the duration (process-wide), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def split_batch(x: torch.Tensor) -> bool:
    """Whether the engine cuts this batch into parts (:func:`map_parts`): the CPU fast path applies
    (to a float batch, or to a uint8 one that the parts convert), there is more than one image and
    this thread is not already running one part."""
    fast = use(x) or (not _TORCH_ONLY and x.device.type == "cpu" and x.dtype == torch.uint8)
    return fast and x.shape[0] > 1 and not _inside()


# The engine's parts hold as many images as keep one float32 tensor of a part near this many
# elements (2 MiB): ops chain elementwise torch steps (colour spaces, tone curves), each writing a
# temporary as large as its input, and parts whose temporaries stay in cache run them 1.5-2x
# faster than whole batches (6x for quantization), with the same arithmetic.
PART_ELEMENTS = 2**19


def part_images(x: torch.Tensor) -> int:
    """Images per cache-sized part of a (B, C, H, W) batch (:data:`PART_ELEMENTS`)."""
    return max(1, PART_ELEMENTS // max(1, x[0].numel()))


def map_parts(fn: Callable[[int], object], count: int) -> list:
    """``fn(k)`` for each part k in range(count), results in order.

    The calling thread and the pool's other threads each take the next part as they finish one,
    so parts of unequal cost balance out. Each part runs with torch single-threaded and with every
    nested :func:`run` inline, so the parts are the only parallelism and nothing waits on the pool
    from inside it.
    """
    results: list = [None] * count
    queue = iter(range(count))
    lock = threading.Lock()
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()  # both thread-local

    def work() -> None:
        _LOCAL.inside = True
        try:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                while True:
                    with lock:
                        k = next(queue, None)
                    if k is None:
                        return
                    results[k] = fn(k)
        finally:
            _LOCAL.inside = False

    executor, helpers = pool(), min(threads(), count) - 1  # both read before torch goes single-threaded
    with torch_threads(1):
        futures = [executor.submit(work) for _ in range(helpers)]
        try:
            work()  # the calling thread takes parts too
        finally:
            for future in futures:
                future.result()  # every part has finished before anything is raised or returned
    return results


def run(fn: Callable[[int], None], count: int) -> None:
    """Call ``fn(i)`` for i in range(count): one contiguous run of calls per pool thread (inline when
    there is one call or one thread, or inside one part of a split batch), so the pool costs a few
    hand-offs per batch, not one per image."""
    n = 1 if _inside() else min(threads(), count)
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
