"""Does a trained model rank quality on content it never saw, degraded by code that is not the engine?

    python benchmarks/bench_transfer.py --checkpoint runs/tiny/stage2/best.pt [--checkpoint ... --name ...]
    python benchmarks/bench_transfer.py --model dri_iqa_tiny          # the shipped weights

Three cells, each scored by ``dri.predict_images`` with a crop policy (``--crop``, default: prediction's default grid):

* ``unseen``: photographs this toolkit never trains on (matplotlib's Grace Hopper, scikit-learn's
  two sample photos, PyWavelets' aerial and ascent images, scikit-image's grey camera, coins and
  moon), degraded by the ten implementations below, written here with OpenCV, Pillow and numpy.
  This is the transfer figure.
* ``built_in``: the built-in training photos, degraded by the same independent code
  (does the model know these degradations at all?).
* ``engine``: the unseen photos, degraded by the engine's closest distortions
  (does the model know the photos' content?).

Each photo is centre-cropped to a square and shrunk (area filter) to at most 384 px, then degraded
at 5 levels by each type. Reported per cell: SRCC between the model's score and a full-reference
oracle over every image (MS-SSIM on luma, implemented here; GMSD as a second oracle), the mean
within-photo SRCC between score and level (levels 1..5 of one type on one photo; 1 = perfect), both
per type, the mean score of the pristine photos and how often a pristine photo outscores its
degraded versions; and four diagnostics: how far the photos' pristine scores lie apart, the SRCC
against the oracle once each photo's pristine score is subtracted (what content costs), how often
the restoration branch brings a degraded image closer to its pristine photo, and the SRCC against
the full-reference teacher the model learned from (``--teacher``; beside it the teacher's own SRCC
against the oracle, which bounds what learning it could give). It also says where the SRCC against
the oracle goes: each type's and each photo's mean rank under the score minus its mean rank under the
oracle (and under the teacher), which tells a type the model weighs unlike the oracle from a photo
whose content it takes for a distortion. Writes
``benchmarks/results/transfer.json`` and the ``bench_transfer`` section of BENCHMARKS.md
(``--no-report`` to skip).

``--niqe`` scores a classical no-reference baseline beside the models (NIQE, its pristine model
fitted on the built-in photos). ``--photos`` keeps a subset of the unseen photos and ``--export DIR``
writes them as PNGs, for k-fold transfer: train with one fold as a folder source, score the other.
``--ablate`` adds rows for each model with one input of its score predictor cut (DRE-Net's quality
vector, the restoration features or the residual), to see which input carries what.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.stats import rankdata, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, machine, update_section, write_json  # noqa: E402
from dri.policy import CROPS  # noqa: E402

SIDE = 384
LEVELS = (1, 2, 3, 4, 5)


# --- content ------------------------------------------------------------------------------------


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return path if path.is_file() else None


def _read(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            array = data[data.files[0]]
    else:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is not None and array.ndim == 3:
            array = cv2.cvtColor(array[:, :, :3], cv2.COLOR_BGR2RGB)
    if array is None:
        raise ValueError(f"{path}: not readable")
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array


def _square(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = image[top : top + s, left : left + s]
    return cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA) if s > side else square.copy()


UNSEEN = {
    "grace_hopper": ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
    "china": ("sklearn", "datasets", "images", "china.jpg"),
    "flower": ("sklearn", "datasets", "images", "flower.jpg"),
    "aero": ("pywt", "data", "aero.npz"),
    "ascent": ("pywt", "data", "ascent.npz"),
    "camera": ("skimage", "data", "camera.png"),
    "coins": ("skimage", "data", "coins.png"),
    "moon": ("skimage", "data", "moon.png"),
}


def unseen_photos() -> dict[str, np.ndarray]:
    """The unseen test photos that are installed (scikit-learn and PyWavelets are optional)."""
    found = {}
    for name, (package, *parts) in UNSEEN.items():
        path = _package_file(package, *parts)
        if path is not None:
            found[name] = _square(_read(path))
    return found


def built_in_photos() -> dict[str, np.ndarray]:
    from degrade.samples import sample_paths

    return {name: _square(_read(path)) for name, path in sample_paths().items()}


# --- degradations written without the engine (uint8 RGB (H, W, 3) in, out) -----------------------


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _pil_codec(image: np.ndarray, fmt: str, **options) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def gaussian_blur(image, level, rng):
    sigma = (0.6, 1.0, 1.8, 3.0, 5.0)[level - 1]
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def motion_blur(image, level, rng):
    length = (3, 5, 9, 15, 23)[level - 1]
    angle = float(rng.uniform(0, 180))
    size = length + 2
    kernel = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    dx, dy = np.cos(np.radians(angle)) * (length - 1) / 2, np.sin(np.radians(angle)) * (length - 1) / 2
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def jpeg(image, level, rng):
    return _pil_codec(image, "JPEG", quality=(50, 30, 18, 10, 5)[level - 1])


def jpeg2000(image, level, rng):
    return _pil_codec(image, "JPEG2000", quality_mode="rates", quality_layers=[(20, 50, 100, 200, 400)[level - 1]])


def webp(image, level, rng):
    return _pil_codec(image, "WEBP", quality=(50, 25, 12, 5, 1)[level - 1])


def gaussian_noise(image, level, rng):
    sigma = (0.02, 0.04, 0.07, 0.11, 0.16)[level - 1]
    return _uint8(_float(image) + rng.normal(0.0, sigma, image.shape).astype(np.float32))


def impulse_noise(image, level, rng):
    density = (0.005, 0.015, 0.03, 0.06, 0.12)[level - 1]
    out = image.copy()
    u = rng.random(image.shape[:2])
    out[u < density / 2] = 0
    out[(u >= density / 2) & (u < density)] = 255
    return out


def resize(image, level, rng):
    scale = (0.7, 0.5, 0.35, 0.25, 0.15)[level - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def contrast_reduction(image, level, rng):
    keep = (0.75, 0.55, 0.4, 0.28, 0.18)[level - 1]
    x = _float(image)
    return _uint8(x.mean() + keep * (x - x.mean()))


def gamma_darkening(image, level, rng):
    gamma = (1.3, 1.7, 2.2, 2.9, 3.8)[level - 1]
    return _uint8(_float(image) ** gamma)


INDEPENDENT: dict[str, Callable] = {f.__name__: f for f in (
    gaussian_blur, motion_blur, jpeg, jpeg2000, webp, gaussian_noise, impulse_noise, resize, contrast_reduction,
    gamma_darkening)}

# The engine's closest counterpart of each type (for the "engine" cell).
ENGINE = {"gaussian_blur": "gaussian_blur", "motion_blur": "motion_blur", "jpeg": "jpeg", "jpeg2000": "jpeg2000",
          "webp": "webp", "gaussian_noise": "white_noise", "impulse_noise": "impulse_noise", "resize": "resize",
          "contrast_reduction": "contrast_compression", "gamma_darkening": "darken"}


def engine_degrade(image: np.ndarray, name: str, seed: int) -> list[np.ndarray]:
    """The engine's ``name`` at levels 1..5 with shared random draws (only severity changes)."""
    import torch

    import degrade
    from degrade.plan import Plan
    from degrade.sampling import at_level, make_step

    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)
    first = make_step(name, 1, torch.Generator().manual_seed(seed))
    plans = [Plan((at_level(first, level),)) for level in LEVELS]
    out = degrade.apply_plans(x.expand(len(LEVELS), -1, -1, -1).contiguous(), plans, quantize=True)
    return [o.permute(1, 2, 0).mul(255.0).round().byte().numpy() for o in out]


# --- full-reference oracles (luma, [0, 1]) -------------------------------------------------------


def _luma(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64) / 255.0
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _ssim_terms(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c1, c2 = 0.01**2, 0.03**2
    blur = lambda t: cv2.GaussianBlur(t, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return float(np.mean(luminance * cs)), float(np.mean(cs))


def ms_ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) on luma: 5 scales, the published weights."""
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    a, b = _luma(reference), _luma(image)
    value = 1.0
    for i, weight in enumerate(weights):
        ssim, cs = _ssim_terms(a, b)
        value *= max(ssim if i == len(weights) - 1 else cs, 1e-6) ** weight
        a, b = cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), cv2.resize(
            b, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return value


def gmsd_quality(reference: np.ndarray, image: np.ndarray) -> float:
    """Minus the Gradient Magnitude Similarity Deviation (Xue et al. 2014): higher is better."""
    prewitt = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float64) / 3.0

    def magnitude(x):
        x = cv2.resize(x, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        gx = cv2.filter2D(x, -1, prewitt, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(x, -1, prewitt.T, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx * gx + gy * gy)

    m_r, m_d = magnitude(_luma(reference)), magnitude(_luma(image))
    c = 170.0 / 255.0**2
    return -float(np.std((2 * m_r * m_d + c) / (m_r**2 + m_d**2 + c)))


# --- one cell -----------------------------------------------------------------------------------


TEACHER = "haarpsi_msssim"  # the pseudo-label of the release recipes (stage2.pseudo_teacher)


def _chw(image: np.ndarray):
    """An (H, W, 3) uint8 array as a (3, H, W) tensor over a writable copy."""
    import torch

    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def make_cell(photos: dict[str, np.ndarray], engine: bool, teacher: str = TEACHER) -> list[dict]:
    """Every test image of a cell: pristine photos (level 0) and each type at levels 1..5, with the
    oracles' values and the value of ``teacher``, the full-reference pseudo-label a model learns from."""
    from datasets.teachers import teacher as teacher_named

    label = teacher_named(teacher)
    items = []
    for p, (photo, image) in enumerate(sorted(photos.items())):
        items.append({"photo": photo, "type": "pristine", "level": 0, "image": image})
        for t, name in enumerate(INDEPENDENT):
            if engine:
                outputs = engine_degrade(image, ENGINE[name], seed=1000 * p + t)
            else:
                outputs = [INDEPENDENT[name](image, level, np.random.default_rng(1000 * p + t)) for level in LEVELS]
            for level, out in zip(LEVELS, outputs):
                items.append({"photo": photo, "type": name, "level": level, "image": out})
    references = {item["photo"]: item["image"] for item in items if item["level"] == 0}
    reference_tensors = {photo: _chw(image) for photo, image in references.items()}
    for item in items:
        item["ms_ssim"] = ms_ssim(references[item["photo"]], item["image"])
        item["gmsd"] = gmsd_quality(references[item["photo"]], item["image"])
        item["teacher"] = label(_chw(item["image"]), reference_tensors[item["photo"]])
    return items


def _srcc(a, b) -> float:
    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _mean(values) -> float:
    values = [v for v in values if v == v]
    return statistics.fmean(values) if values else float("nan")


def summarise(items: list[dict], scores: list[float]) -> dict:
    """Transfer metrics of one model on one cell."""
    for item, score in zip(items, scores):
        item["score"] = score
    degraded = [i for i in items if i["level"] > 0]
    by_curve: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for item in degraded:
        by_curve[(item["photo"], item["type"])].append(item)
    pristine = {i["photo"]: i["score"] for i in items if i["level"] == 0}

    def within(curves):
        return _mean(_srcc([i["score"] for i in c], [-i["level"] for i in c]) for c in curves)

    per_type = {}
    for name in INDEPENDENT:
        of_type = [i for i in degraded if i["type"] == name]
        curves = [c for (photo, t), c in by_curve.items() if t == name]
        per_type[name] = {"within_level": within(curves),
                          "srcc_oracle": _srcc([i["score"] for i in of_type], [i["ms_ssim"] for i in of_type])}
    return {
        "images": len(items),
        "photos": len(pristine),
        "srcc_oracle": _srcc([i["score"] for i in items], [i["ms_ssim"] for i in items]),
        "srcc_gmsd": _srcc([i["score"] for i in items], [i["gmsd"] for i in items]),
        "within_level": within(by_curve.values()),
        # how well the model learned its teacher here; the teacher's own SRCC vs the oracle bounds it
        "srcc_teacher": _srcc([i["score"] for i in items], [i["teacher"] for i in items]),
        "teacher_srcc_oracle": _srcc([i["teacher"] for i in items], [i["ms_ssim"] for i in items]),
        "pristine_mean": _mean(pristine.values()),
        "degraded_mean": _mean(i["score"] for i in degraded),
        "pristine_above_degraded": _mean(float(pristine[i["photo"]] > i["score"]) for i in degraded),
        # how far the photos' pristine scores lie apart, and the SRCC a model with each photo's offset
        # removed would reach: the share of the oracle SRCC lost to content rather than to severity
        "pristine_range": max(pristine.values()) - min(pristine.values()),
        "srcc_oracle_offset_free": _srcc([i["score"] - pristine[i["photo"]] for i in items],
                                         [i["ms_ssim"] for i in items]),
        "oracle_within_level": within_oracle(by_curve.values()),
        "per_type": per_type,
        # where the SRCC against the oracle (and the teacher) goes, per type and per photo
        "rank_bias": rank_bias(items, "ms_ssim"),
        "rank_bias_teacher": rank_bias(items, "teacher"),
    }


def rank_bias(items: list[dict], reference: str) -> dict[str, dict[str, float]]:
    """For each type (``pristine`` included) and each photo, the mean over its images of the score's rank
    minus the rank by ``reference``, both as a share of the images (ties averaged): positive where the
    model ranks them better than the reference does. Each is 0 for a model that ranks like the reference."""
    n = len(items)
    delta = (rankdata([i["score"] for i in items]) - rankdata([i[reference] for i in items])) / n
    return {key: {value: float(np.mean([d for d, i in zip(delta, items) if i[key] == value]))
                  for value in dict.fromkeys(i[key] for i in items)}
            for key in ("type", "photo")}


def within_oracle(curves) -> float:
    return _mean(_srcc([i["ms_ssim"] for i in c], [-i["level"] for i in c]) for c in curves)


def score(model, items: list[dict], batch: int, device: str, crop: str) -> list[float]:
    import dri

    tensors = [_chw(i["image"]).contiguous() for i in items]
    results = dri.predict_images(model, tensors, batch_size=batch, device=device, crop=crop)
    return [r.score for r in results]


def restoration_gain(model, items: list[dict], device: str) -> float:
    """How often the model's restoration branch brings a degraded image closer to its pristine photo
    (lower mean squared error), each whole image restored with the degradation vector DRE-Net gives
    it; NaN for a model without the branch. Below 0.5, the branch's residual ``x - x_hat`` is no
    map of the distortion."""
    if getattr(model, "restorer", None) is None:
        return float("nan")
    unit = lambda image: _chw(image)[None].to(device).float() / 255  # noqa: E731
    pristine = {i["photo"]: unit(i["image"]) for i in items if i["level"] == 0}
    closer = []
    for item in (i for i in items if i["level"] > 0):
        x, reference = unit(item["image"]), pristine[item["photo"]]
        x_hat, _ = model.restore(x, model.represent(x)[1])
        closer.append(float((x_hat.clamp(0, 1) - reference).square().mean() < (x - reference).square().mean()))
    return _mean(closer)


# --- ablations -----------------------------------------------------------------------------------

ABLATIONS = {
    "quality": "f_q fixed to the pristine prototype",
    "features": "no restoration features",
    "residual": "no restoration residual",
}


def ablated(model, part: str):
    """A copy of ``model`` with one input of the score predictor cut, by editing weights only (the same
    code scores it): ``quality``, DRE-Net's quality vector f_q replaced by the mean f_q of pristine
    training patches (the RS loss's prototype: no test content enters) for every image; ``features``,
    the restoration features' contribution to the guidance removed; ``residual``, the residual
    ``x - x_hat`` read as zeros. What the score loses shows what that input carries."""
    import copy

    import torch

    model = copy.deepcopy(model)
    with torch.no_grad():
        if part == "quality":
            rows = model.dre.dim
            model.dre.fc.weight[:rows].zero_()
            model.dre.fc.bias[:rows].copy_(model.prototype_q)
        elif part == "features":
            for guidance in (model.predictor.guidance1, model.predictor.guidance2):
                if guidance is not None and guidance.from_features is not None:
                    guidance.from_features.weight.zero_()
        elif part == "residual":
            if model.predictor.residual is not None:
                model.predictor.residual[0].weight.zero_()  # conv(0) leaves its bias, as conv(zeros) would
        else:
            raise ValueError(f"unknown ablation {part!r}; known: {', '.join(ABLATIONS)}")
    return model


# --- report -------------------------------------------------------------------------------------

CELLS = {"unseen": "unseen photos, independent code", "built_in": "built-in photos, independent code",
         "engine": "unseen photos, the engine's degradations"}


def _or_na(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"


def markdown(results: dict) -> str:
    info = results["machine"]
    lines = [f"Measured on {describe(info)}. Photos: {', '.join(results['photos']['unseen'])} (unseen); "
             f"{len(results['photos']['built_in'])} built-in. Each: pristine + 10 types x 5 levels, at most "
             f"{SIDE} px, scored with the `{results['crop']}` crop policy. Oracle: MS-SSIM on luma "
             f"(GMSD as a second oracle). Teacher: `{results['teacher']}`, the pseudo-label of "
             "the release recipes.", ""]
    lines += ["| model | cell | SRCC vs MS-SSIM | SRCC vs GMSD | within-photo level SRCC | pristine mean | "
              "degraded mean | pristine above degraded | pristine range | SRCC vs MS-SSIM, photo offsets removed | "
              "restored closer to pristine | SRCC vs the teacher (the teacher's vs MS-SSIM) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, model in results["models"].items():
        for cell, r in model["cells"].items():
            lines.append(f"| {name} | {CELLS[cell]} | {r['srcc_oracle']:.3f} | {r['srcc_gmsd']:.3f} | "
                         f"{r['within_level']:.3f} | {r['pristine_mean']:.3f} | {r['degraded_mean']:.3f} | "
                         f"{r['pristine_above_degraded']:.2f} | {r['pristine_range']:.3f} | "
                         f"{r['srcc_oracle_offset_free']:.3f} | {_or_na(r['restoration_closer'])} | "
                         f"{r['srcc_teacher']:.3f} ({r['teacher_srcc_oracle']:.3f}) |")
    lines += _unseen_tables(results)
    oracle = results["oracle_within_level"]
    lines += ["", f"The oracle's own within-photo level SRCC: {oracle:.3f}."]
    if NIQE_NAME in results["models"]:
        lines.append("NIQE's score is its distance negated (higher is better), so its pristine and degraded means "
                     "and its pristine range are on a scale of their own.")
    return "\n".join(lines)


def _unseen_tables(results: dict) -> list[str]:
    """The per-type and rank-bias tables of the unseen cell, for the models scored on it (none without it)."""
    scored = {name: model["cells"]["unseen"] for name, model in results["models"].items() if "unseen" in model["cells"]}
    if not scored:
        return []
    types = list(INDEPENDENT)
    lines = ["", "Per type on unseen photos, independent code (within-photo level SRCC / SRCC vs MS-SSIM):", "",
             "| model | " + " | ".join(types) + " |", "|---|" + "---:|" * len(types)]
    for name, cell in scored.items():
        per = cell["per_type"]
        lines.append(f"| {name} | " + " | ".join(f"{per[t]['within_level']:.2f} / {per[t]['srcc_oracle']:.2f}"
                                                 for t in types) + " |")
    kinds = ["pristine"] + types
    lines += ["", "Where the ranking against MS-SSIM goes, unseen photos: each type's mean rank under the model's "
              "score minus its mean rank under MS-SSIM, as a share of the cell's images (+0.10: placed on average "
              "10% of the images higher than MS-SSIM places it; 0 for a model that ranks like MS-SSIM), then "
              "against the teacher:", "",
              "| model | against | " + " | ".join(kinds) + " |", "|---|---|" + "---:|" * len(kinds)]
    for name, cell in scored.items():
        for against, key in (("MS-SSIM", "rank_bias"), ("teacher", "rank_bias_teacher")):
            lines.append(f"| {name} | {against} | " + " | ".join(f"{cell[key]['type'][k]:+.2f}" for k in kinds) + " |")
    photos = results["photos"]["unseen"]
    lines += ["", "The same per unseen photo, against MS-SSIM (what a photo's content costs):", "",
              "| model | " + " | ".join(photos) + " |", "|---|" + "---:|" * len(photos)]
    for name, cell in scored.items():
        lines.append(f"| {name} | " + " | ".join(f"{cell['rank_bias']['photo'][p]:+.2f}" for p in photos) + " |")
    return lines


NIQE_NAME = "NIQE (classical, fitted on the built-in photos)"


def _print(name: str, cell: str, summary: dict) -> None:
    print(f"{name} [{cell}]: SRCC vs oracle {summary['srcc_oracle']:.3f}, within-photo level "
          f"{summary['within_level']:.3f}, pristine {summary['pristine_mean']:.3f} vs degraded "
          f"{summary['degraded_mean']:.3f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="a checkpoint written by dri.train")
    parser.add_argument("--model", action="append", default=[], help="a registered model with shipped weights")
    parser.add_argument("--name", action="append", default=[], help="a label per checkpoint/model, in order")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--crop", choices=CROPS, default=CROPS[0], help=f"crop policy of scoring (default {CROPS[0]})")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/transfer.json)")
    parser.add_argument("--teacher", default=TEACHER,
                        help="the full-reference pseudo-label the models learned from (datasets.teachers; default: "
                             f"the release recipes' {TEACHER}): the report gives each model's SRCC against it")
    parser.add_argument("--photos", nargs="+", choices=list(UNSEEN), default=None, metavar="PHOTO",
                        help="score only these unseen photos (default: every installed one); with --export, the "
                             "fold to write. For k-fold transfer: train on a fold's exported photos, score the others")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="write the chosen unseen photos, as the benchmark prepares them, as PNGs into DIR "
                             "(a folder source for build_shards) and exit")
    parser.add_argument("--niqe", action="store_true",
                        help="add a classical no-reference baseline: NIQE with its pristine model fitted on the "
                             "built-in photos, the content the models train on (benchmarks/_niqe.py)")
    parser.add_argument("--ablate", nargs="+", choices=list(ABLATIONS), default=[],
                        help="also score each model with one input of its score predictor cut, a row each: "
                             + "; ".join(f"{k}: {v}" for k, v in ABLATIONS.items()))
    parser.add_argument("--no-report", action="store_true", help="do not rewrite the BENCHMARKS.md section")
    args = parser.parse_args(argv)
    unseen = unseen_photos()
    if args.photos is not None:
        missing = sorted(set(args.photos) - set(unseen))
        if missing:
            parser.error(f"not installed: {', '.join(missing)} (install scikit-learn, PyWavelets or matplotlib)")
        unseen = {name: unseen[name] for name in args.photos}
    if args.export is not None:
        folder = Path(args.export)
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in unseen.items():
            cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(f"wrote {len(unseen)} photos to {folder}: {', '.join(unseen)}")
        return 0
    import torch

    import dri

    torch.set_grad_enabled(False)
    models = [(f"checkpoint:{c}", lambda c=c: dri.load_model(c, args.device)[0]) for c in args.checkpoint]
    models += [(f"model:{m}", lambda m=m: dri.create_model(m, pretrained=True).eval()) for m in args.model]
    if not models and not args.niqe:
        parser.error("give at least one --checkpoint, --model or --niqe")
    names = args.name + [label for label, _ in models[len(args.name):]]
    photos = {"unseen": unseen, "built_in": built_in_photos()}
    cells = {cell: make_cell(photos["built_in" if cell == "built_in" else "unseen"], engine=cell == "engine",
                             teacher=args.teacher) for cell in args.cells}
    results: dict = {"machine": machine(), "crop": args.crop, "teacher": args.teacher,
                     "photos": {k: sorted(v) for k, v in photos.items()}, "models": {},
                     "oracle_within_level": within_oracle(
                         [[i for i in cells.get("unseen", next(iter(cells.values()))) if i["photo"] == p and i["type"] == t]
                          for p in photos["unseen"] for t in INDEPENDENT])}
    for name, (label, build) in zip(names, models):
        model = build()
        variants = [(name, label, model)] + [(f"{name}, {ABLATIONS[part]}", f"{label}, ablated: {part}",
                                              ablated(model, part)) for part in args.ablate]
        for row, source, variant in variants:
            results["models"][row] = {"source": source, "cells": {}}
            for cell, items in cells.items():
                summary = summarise(items, score(variant, items, args.batch, args.device, args.crop))
                summary["restoration_closer"] = restoration_gain(variant, items, args.device)
                results["models"][row]["cells"][cell] = summary
                _print(row, cell, summary)
    if args.niqe:
        from _niqe import NIQE

        niqe = NIQE(photos["built_in"].values())
        results["models"][NIQE_NAME] = {"source": f"NIQE, pristine model from {niqe.patches} patches", "cells": {}}
        for cell, items in cells.items():
            summary = summarise(items, [-niqe.distance(i["image"]) for i in items])  # higher is better
            summary["restoration_closer"] = float("nan")
            results["models"][NIQE_NAME]["cells"][cell] = summary
            _print(NIQE_NAME, cell, summary)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    else:
        write_json("transfer", results)
    if not args.no_report:
        update_section("bench_transfer", markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
