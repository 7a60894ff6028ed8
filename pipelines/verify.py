"""Verifying a shard folder (the library behind ``python -m pipelines.verify_shards``).

Nothing is taken on trust from the files being checked. For group shards the configuration in
the manifest is re-derived: the shards it calls for (every one listed, none extra), every group
index present exactly once and in its own shard, each group's metadata (contents, sources, views,
seeds and plans) equal to what the seed plans, the totals equal to the configuration, and every
x1, x2 and y re-rendered from its references and plans (same device, same render batches as the
build) and required to be pixel-equal. Each tar's sha256 must match both the manifest and its
stats sidecar. Shards made by another engine version are reported as such: their replay is
skipped, not called corrupt. IQA shards (``pack_iqa``) are checked for checksums, counts, fields
and decodable images.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch

import degrade
from datasets.decoding import ImageError, decode
from datasets.shardformat import (
    GROUP_FIELDS,
    IQA_LABEL,
    BuildSpec,
    group_key,
    iter_samples,
    read_manifest,
    shard_name,
    stats_path,
)
from degrade.pairs import GroupPlans

from .groups import Content, plan_group, render
from .runner import run_tasks, start_ray
from .shardio import file_sha256

FOLDER = "(folder)"


def _replay_groups(samples: list[dict[str, bytes]], metas: list[dict], name: str) -> list[str]:
    problems = []
    device = metas[0]["device"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        return [f"{name}: rendered on {device}; replay needs that device (exact replay is per device)"]
    decode_field = lambda s, f: decode(s[f], f"{name}:{s['__key__']}.{f}")  # noqa: E731
    refs_a = torch.stack([decode_field(s, "ref_a.png") for s in samples])
    refs_b = torch.stack([decode_field(s, "ref_b.png") for s in samples])
    plans = [GroupPlans.from_dict(m["plans"]) for m in metas]
    x1, x2, y = render(refs_a, refs_b, plans, device, metas[0]["render_batch"])
    for i, sample in enumerate(samples):
        for fname, expected in (("x1.png", x1[i]), ("x2.png", x2[i]), ("y.png", y[i])):
            if not torch.equal(decode_field(sample, fname), expected):
                diff = (decode_field(sample, fname).int() - expected.int()).abs()
                problems.append(f"{name}:{sample['__key__']}.{fname}: differs from its replay "
                                f"({int((diff > 0).sum())} values, max {int(diff.max())})")
    return problems


def _expected_meta(index: int, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the seed plans for group ``index`` of the build the manifest describes."""
    spec = BuildSpec.from_mapping(manifest["config"])
    contents = [Content(c[0], "", c[1], c[2], c[3], c[4]) for c in manifest["contents"]]
    planned = plan_group(index, contents, seed=spec.seed, size=spec.size, preset=spec.preset, policy=spec.policy,
                         augment=spec.augment, weights=manifest["weights"])
    return {**planned, "engine": manifest["engine"], "device": spec.device, "render_batch": spec.render_batch}


def check_shard(path: str, expected: dict[str, Any], manifest: dict[str, Any], index: int | None,
                replay: bool) -> tuple[list[str], list[int]]:
    """Everything wrong with one shard (an empty list when it is sound), and the group indices it holds."""
    name = Path(path).name
    if not Path(path).is_file():
        return [f"{name}: missing"], []
    problems = []
    sha = file_sha256(Path(path))
    if sha != expected["sha256"]:
        problems.append(f"{name}: sha256 {sha[:12]}... does not match the manifest's {expected['sha256'][:12]}...")
    if index is not None:
        try:
            stats = json.loads(stats_path(Path(path).parent, index).read_text())
        except (OSError, ValueError):
            stats = {}
        if stats.get("sha256") != sha:
            problems.append(f"{name}: its stats sidecar records sha256 {str(stats.get('sha256'))[:12]}..., not the "
                            f"tar's {sha[:12]}...")
    try:
        samples = list(iter_samples(path))
    except Exception as error:  # noqa: BLE001 - any read error makes the shard unusable
        return problems + [f"{name}: unreadable tar ({error})"], []
    if len(samples) != expected["samples"]:
        problems.append(f"{name}: {len(samples)} samples, the manifest says {expected['samples']}")
    kind = manifest.get("kind", "groups")
    if kind == "iqa":
        return problems + _check_iqa(samples, name), []
    spec = BuildSpec.from_mapping(manifest["config"])
    wanted = {group_key(g): g for g in spec.shard_groups(index)} if index is not None else {}
    indices, metas, good = [], [], []
    for sample in samples:
        key = sample["__key__"]
        fields = set(sample) - {"__key__"}
        if fields != set(GROUP_FIELDS):
            problems.append(f"{name}:{key}: fields {sorted(fields)}, expected {sorted(GROUP_FIELDS)}")
            continue
        if key not in wanted:
            problems.append(f"{name}:{key}: not a group of this shard (it holds {group_key(spec.shard_groups(index)[0])}"
                            f"..{group_key(spec.shard_groups(index)[-1])})" if index is not None else
                            f"{name}:{key}: not a shard of this build")
            continue
        indices.append(wanted[key])
        try:
            meta = json.loads(sample["meta.json"])
        except ValueError as error:
            problems.append(f"{name}:{key}: meta.json is not JSON ({error})")
            continue
        planned = _expected_meta(wanted[key], manifest)
        wrong = sorted(k for k in set(planned) | (set(meta) - {"schema"}) if meta.get(k) != planned.get(k))
        if wrong:
            problems.append(f"{name}:{key}: meta.json differs from what the seed plans in {', '.join(wrong)}")
            continue
        metas.append(meta)
        good.append(sample)
    if replay and not problems and good:
        if manifest.get("engine") != degrade.ENGINE_VERSION:
            problems.append(f"{name}: built by engine version {manifest.get('engine')}; this toolkit's engine is "
                            f"version {degrade.ENGINE_VERSION}, so the images cannot be replayed exactly (rebuild "
                            "with this version, or verify with the version that built them)")
        else:
            try:
                problems += _replay_groups(good, metas, name)
            except ImageError as error:
                problems.append(str(error))
    return problems, indices


def _check_iqa(samples: list[dict[str, bytes]], name: str) -> list[str]:
    problems = []
    for sample in samples:
        fields = set(sample) - {"__key__"}
        if IQA_LABEL not in fields:
            problems.append(f"{name}:{sample['__key__']}: no {IQA_LABEL}")
        for f in fields - {IQA_LABEL}:
            try:
                decode(sample[f], f"{name}:{sample['__key__']}.{f}")
            except ImageError as error:
                problems.append(str(error))
    return problems


_remote_check = ray.remote(num_cpus=1)(check_shard)


@dataclass
class VerifyReport:
    """``shards``: how many the folder should hold; ``problems``: by shard name (``(folder)`` for the rest)."""

    shards: int
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def sound(self) -> int:
        """How many of the shards the folder should hold have no problem."""
        return self.shards - len([n for n in self.problems if n != FOLDER])


def _expected_names(manifest: dict[str, Any]) -> list[str] | None:
    if manifest.get("kind", "groups") != "groups":
        return None
    return [shard_name(i) for i in range(BuildSpec.from_mapping(manifest["config"]).shards)]


def verify(folder: str | Path, *, replay: bool = True, workers: int | None = None,
           ray_address: str | None = None) -> VerifyReport:
    """Check a shard folder; see the module docstring.

    Raises:
        FileNotFoundError: ``folder`` has no manifest.
        ManifestError: the manifest is damaged.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(f"{folder}: no _meta/manifest.json; verify needs a folder written by build_shards or "
                                "pack_iqa")
    listed = {s["name"]: s for s in manifest["shards"]}
    expected_names = _expected_names(manifest)
    names = expected_names if expected_names is not None else list(listed)
    report = VerifyReport(len(names))
    folder_problems = []
    for failed in manifest.get("failed_shards", []):
        report.problems.setdefault(failed["name"], []).append(f"{failed['name']}: the build failed ({failed['error']})")
    for name in names:
        if name not in listed and name not in report.problems:
            report.problems[name] = [f"{name}: missing from the manifest (the build calls for {len(names)} shards)"]
    extra = sorted(set(listed) - set(names))
    on_disk = sorted(p.name for p in folder.glob("*.tar"))
    folder_problems += [f"{n}: listed in the manifest but not a shard of this build" for n in extra]
    folder_problems += [f"{n}: in the folder but not in the manifest" for n in on_disk if n not in listed]
    if expected_names is not None:
        spec = BuildSpec.from_mapping(manifest["config"])
        total = sum(s["samples"] for s in listed.values())
        if manifest.get("groups") != spec.groups or total != spec.groups:
            folder_problems.append(f"the build calls for {spec.groups} groups; the manifest says {manifest.get('groups')} "
                                   f"and its shards hold {total}")
    to_check = [n for n in names if n in listed]
    index_of = {n: i for i, n in enumerate(names)} if expected_names is not None else {}
    cpus = start_ray(ray_address, workers)
    outcome = run_tasks(lambda n: _remote_check.remote(str(folder / n), listed[n], manifest, index_of.get(n), replay),
                        to_check, 2 * cpus, units=lambda n: listed[n]["samples"], unit="sample",
                        description="verifying")
    seen: Counter[int] = Counter()
    for name, (problems, indices) in outcome.results.items():
        seen.update(indices)
        if problems:
            report.problems.setdefault(name, []).extend(problems)
    for name, error in outcome.failures.items():
        report.problems.setdefault(name, []).append(f"{name}: check failed: {error}")
    twice = sorted(i for i, n in seen.items() if n > 1)
    if twice:
        folder_problems.append(f"{len(twice)} group(s) appear more than once, e.g. {group_key(twice[0])}")
    if expected_names is not None:
        faulty = {index_of[n] for n in report.problems if n in index_of}  # their own problems say why
        absent = sorted(g for g in set(range(spec.groups)) - set(seen) if g // spec.per_shard not in faulty)
        if absent:
            folder_problems.append(f"{len(absent)} of the {spec.groups} groups are nowhere in the shards, e.g. "
                                   f"{group_key(absent[0])}")
    if folder_problems:
        report.problems[FOLDER] = folder_problems
    return report
