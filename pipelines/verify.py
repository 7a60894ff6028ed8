"""Verifying a shard folder (the library behind ``python -m pipelines.verify_shards``).

Checksums and counts are checked against the manifest; for group shards every group's x1, x2 and y of every group from its
``ref_a``/``ref_b`` and recorded plans (same device, same render batches as the build) and
requires pixel equality. IQA shards (``pack_iqa``) are checked for checksums, counts and
decodable images.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch

from datasets.shardformat import GROUP_FIELDS, IQA_LABEL, MANIFEST, iter_samples
from datasets.sources import decode_checked
from degrade.pairs import GroupPlans

from .groups import render
from .runner import run_tasks, start_ray
from .shardio import file_sha256


def _replay_groups(samples: list[dict[str, bytes]], name: str) -> list[str]:
    problems = []
    metas = [json.loads(s["meta.json"]) for s in samples]
    device = metas[0]["device"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        return [f"{name}: rendered on {device}; replay needs that device (exact replay is per device)"]
    decode = lambda s, f: decode_checked(s[f], f"{name}:{s['__key__']}.{f}")  # noqa: E731
    refs_a = torch.stack([decode(s, "ref_a.png") for s in samples])
    refs_b = torch.stack([decode(s, "ref_b.png") for s in samples])
    plans = [GroupPlans.from_dict(m["plans"]) for m in metas]
    x1, x2, y = render(refs_a, refs_b, plans, device, metas[0]["render_batch"])
    for i, sample in enumerate(samples):
        for fname, expected in (("x1.png", x1[i]), ("x2.png", x2[i]), ("y.png", y[i])):
            if not torch.equal(decode(sample, fname), expected):
                diff = (decode(sample, fname).int() - expected.int()).abs()
                problems.append(f"{name}:{sample['__key__']}.{fname}: differs from its replay "
                                f"({int((diff > 0).sum())} values, max {int(diff.max())})")
    return problems


def check_shard(path: str, expected: dict[str, Any], kind: str, replay: bool) -> list[str]:
    """Everything wrong with one shard (an empty list when it is sound)."""
    name = Path(path).name
    if not Path(path).is_file():
        return [f"{name}: missing"]
    problems = []
    sha = file_sha256(Path(path))
    if sha != expected["sha256"]:
        problems.append(f"{name}: sha256 {sha[:12]}... does not match the manifest's {expected['sha256'][:12]}...")
    try:
        samples = list(iter_samples(path))
    except Exception as error:  # noqa: BLE001 - any read error makes the shard unusable
        return problems + [f"{name}: unreadable tar ({error})"]
    if len(samples) != expected["samples"]:
        problems.append(f"{name}: {len(samples)} samples, the manifest says {expected['samples']}")
    for sample in samples:
        fields = set(sample) - {"__key__"}
        if kind == "groups" and fields != set(GROUP_FIELDS):
            problems.append(f"{name}:{sample['__key__']}: fields {sorted(fields)}, expected {sorted(GROUP_FIELDS)}")
        if kind == "iqa":
            if IQA_LABEL not in fields:
                problems.append(f"{name}:{sample['__key__']}: no {IQA_LABEL}")
            for f in fields - {IQA_LABEL}:
                try:
                    decode_checked(sample[f], f"{name}:{sample['__key__']}.{f}")
                except ValueError as error:
                    problems.append(str(error))
    if kind == "groups" and replay and not problems:
        problems += _replay_groups(samples, name)
    return problems


_remote_check = ray.remote(num_cpus=1)(check_shard)


@dataclass
class VerifyReport:
    shards: int
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(folder: str | Path, *, replay: bool = True, workers: int | None = None,
           ray_address: str | None = None) -> VerifyReport:
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; verify needs a folder written by build_shards or pack_iqa")
    manifest = json.loads(manifest_path.read_text())
    shards = {s["name"]: s for s in manifest["shards"]}
    kind = manifest.get("kind", "groups")
    cpus = start_ray(ray_address, workers)
    outcome = run_tasks(lambda n: _remote_check.remote(str(folder / n), shards[n], kind, replay), list(shards),
                        2 * cpus, units=lambda n: shards[n]["samples"], unit="sample", description="verifying")
    report = VerifyReport(len(shards))
    for name, problems in outcome.results.items():
        if problems:
            report.problems[name] = problems
    for name, error in outcome.failures.items():
        report.problems[name] = [f"{name}: check failed: {error}"]
    for failed in manifest.get("failed_shards", []):
        report.problems.setdefault(failed["name"], []).append(f"{failed['name']}: the build failed ({failed['error']})")
    return report
