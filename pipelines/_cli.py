"""What the Ray-backed command lines share: their cluster and safety flags, and how a run ends.

Light on purpose (no Ray or torch at import), so ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def add_run_arguments(p: argparse.ArgumentParser, *, dashboard: bool = False) -> None:
    """``--ray-cpus``, ``--ray-address`` (and ``--dashboard``), ``--overwrite``, ``--max-pixels``."""
    p.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    if dashboard:
        p.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (local Ray only)")
    p.add_argument("--overwrite", action="store_true", help="replace shards of another configuration in --out")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images above this many pixels (default: 100 megapixels, or DRI_MAX_PIXELS)")


def run(args: argparse.Namespace, body: Callable[[], int], errors: tuple[type[BaseException], ...]) -> int:
    """Apply the pixel limit, run ``body``; an expected error is one line on stderr (exit 2), Ctrl-C
    says that the finished shards are kept (exit 130), and Ray is shut down whatever happens."""
    import ray

    from datasets.decoding import set_limits

    from .runner import RayUnavailable
    from .shardio import ConfigMismatch, WriteFailed

    if args.max_pixels is not None:
        set_limits(max_pixels=args.max_pixels)
    try:
        return body()
    except (*errors, ValueError, FileNotFoundError, ConfigMismatch, WriteFailed, RayUnavailable) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished shards are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if ray.is_initialized():
            ray.shutdown()
