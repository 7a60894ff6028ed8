"""A Ray cluster already running on the machine, and a cluster address with nothing behind it.

Kept apart from the other pipeline tests: this module's process never joins Ray itself, and the
cluster it starts lives in its own temporary folder, so stopping it touches no other Ray on the
machine (``ray stop`` would stop them all, a connected driver included).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray

from tests.pipelines.test_attacks import _photos

RAY = Path(sys.executable).with_name("ray")


def _stop(temp_dir: str) -> None:
    """SIGTERM, then SIGKILL, every process whose command line names ``temp_dir``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and temp_dir in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        if not pids:
            return
        time.sleep(2)


@pytest.fixture
def running_cluster():
    assert not ray.is_initialized()
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = 26000 + os.getpid() % 2000
    start = subprocess.run([str(RAY), "start", "--head", "--num-cpus", "1", "--port", str(port),
                            "--temp-dir", temp_dir, "--include-dashboard", "false", "--disable-usage-stats"],
                           capture_output=True, text=True, timeout=120)
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp_dir)


def test_a_running_ray_cluster_does_not_break_the_default_build(running_cluster, tmp_path):
    source = _photos(tmp_path / "src")
    result = subprocess.run([sys.executable, "-m", "pipelines.build_shards", "--source", str(source), "--out",
                             str(tmp_path / "out"), "--groups", "4", "--per-shard", "2", "--size", "48",
                             "--ray-cpus", "1"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "RAY_ADDRESS": running_cluster})
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_address_with_no_cluster_fails_at_once_and_clearly(tmp_path):
    source = _photos(tmp_path / "src")
    wrong = subprocess.run([sys.executable, "-m", "pipelines.build_shards", "--source", str(source), "--out",
                            str(tmp_path / "o2"), "--groups", "4", "--ray-address", "127.0.0.1:1"],
                           capture_output=True, text=True, timeout=120)  # Ray alone retries for minutes
    assert wrong.returncode == 2 and "could not join the Ray cluster at 127.0.0.1:1" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert not (tmp_path / "o2" / "shard-000000.tar").exists()
