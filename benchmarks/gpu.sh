#!/usr/bin/env bash
# One short, prepared GPU run (under ~8 minutes on an H200), every result as JSON under $OUT (or
# benchmarks/results/gpu when OUT is unset):
#   engine.json   the engine on the mixed preset at 256 px, batch 256, and the CPU per-image loop
#   shards.json   build_shards --device cuda (groups/s, time to the first shard)
#   train.json    dri_iqa_tiny and dri_iqa_base train steps/s (stage 1 and 2), predict images/s
# Run from the repository root on a machine with a GPU and the project installed:
#   bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

"$PY" - "$OUT" <<'PY'
import json, sys, time, math, multiprocessing as mp
import torch
sys.path.insert(0, "benchmarks")
import degrade
from _report import machine, median_time
from baseline import apply_plan
from bench_degrade import make_batch

out = sys.argv[1]
assert torch.cuda.is_available(), "no GPU"
x = make_batch(256, 256)
plans = [degrade.sample_plans(256, "arniqa-monotone", seed=s) for s in range(4)]
xd = x.cuda()
sync = torch.cuda.synchronize
def engine():
    for p in plans:
        degrade.apply_plans(xd, p)
with torch.no_grad():
    t_gpu = median_time(engine, 3, sync)
images = [im.permute(1, 2, 0).numpy().copy() for im in x[:64]]
def loop():
    for image, plan in zip(images, plans[0][:64]):
        apply_plan(image, plan)
t_loop = median_time(loop, 2)
gpu_rate, loop_rate = 1024 / t_gpu, 64 / t_loop
result = {"machine": machine(), "engine_img_per_s": gpu_rate, "cpu_loop_1_process_img_per_s": loop_rate,
          "ratio": gpu_rate / loop_rate, "goal_ratio": 20, "goal_img_per_s": 5000}
json.dump(result, open(f"{out}/engine.json", "w"), indent=1)
print(json.dumps(result, indent=1))
PY

start=$(date +%s)
"$PY" -m pipelines.build_shards --out /tmp/gpu-shards --groups 2048 --per-shard 64 --device cuda \
    --render-batch 64 --overwrite > "$OUT/shards.log" 2>&1 || true
"$PY" - "$OUT" "$start" <<'PY'
import json, re, sys, time
out, start = sys.argv[1], int(sys.argv[2])
log = open(f"{out}/shards.log").read()
rate = re.search(r"([\d.]+) groups/s including", log)
first = re.search(r"first shard after ([\d.]+) s", log)
json.dump({"groups_per_s": float(rate.group(1)) if rate else None,
           "first_shard_s": float(first.group(1)) if first else None,
           "wall_s": time.time() - start}, open(f"{out}/shards.json", "w"), indent=1)
PY

"$PY" benchmarks/bench_train.py --device cuda --no-write --json "$OUT/train.json" || true
echo "results in $OUT"
