"""Tiny but faithful copies of each IQA dataset's native layout: real file names, real label formats.

Images are 8x8 real image files (BMP, PNG or JPEG as the dataset ships them); scores are
drawn from a seeded generator inside each dataset's published range.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import scipy.io

RNG = np.random.default_rng(0)


def image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels), path
    return path


def kadid(root: Path, refs: int = 3, types: int = 25, levels: int = 5) -> Path:
    base = root / "kadid10k"
    rows = []
    for r in range(1, refs + 1):
        image(base / "images" / f"I{r:02d}.png", r)
        for t in range(1, types + 1):
            for lv in range(1, levels + 1):
                name = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                image(base / "images" / name, r * 1000 + t * 10 + lv)
                rows.append([name, f"I{r:02d}.png", f"{5.0 - 0.7 * lv + 0.01 * t:.3f}", "0.4"])
    with open(base / "dmos.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dist_img", "ref_img", "dmos", "var"])
        writer.writerows(rows)
    return base


def koniq(root: Path, n: int = 30) -> Path:
    names = [f"{1000000 + i}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        image(root / "1024x768" / name, i)
    with open(root / "koniq10k_scores_and_distributions.csv", "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"])
        for i, name in enumerate(names):
            mos = 1.1 + 3.2 * i / (n - 1)
            writer.writerow([name, 1, 2, 3, 4, 5, 15, f"{mos:.4f}", "0.5", f"{(mos - 1) * 25:.3f}"])
    (root / "metadata").mkdir(exist_ok=True)
    with open(root / "metadata" / "koniq10k_distributions_sets.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"])
        for i, name in enumerate(names):
            side = "training" if i % 10 < 7 else ("validation" if i % 10 == 7 else "test")
            writer.writerow([name, 1, 2, 3, 4, 5, 15, "50", "1", side])
    return root


LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def live(root: Path, realigned: bool = True) -> Path:
    refs = [f"ref{i:02d}.bmp" for i in range(29)]
    for i, ref in enumerate(refs):
        image(root / "refimgs" / ref, i)
    names, dmos, orgs = [], [], []
    entry = 0
    for folder, count in LIVE_FOLDERS:
        for number in range(1, count + 1):
            ref = refs[entry % 29]
            original = entry % 5 == 0  # reference copies
            if not original:
                image(root / folder / f"img{number}.bmp", entry)
            names.append(ref)
            dmos.append(0.0 if original else float(RNG.uniform(0, 100)))
            orgs.append(1 if original else 0)
            entry += 1
    dmos[1], dmos[2] = -2.5, 103.0  # realigned scores overshoot the range slightly
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = names
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": cell})
    scipy.io.savemat(root / "dmos.mat", {"dmos": np.array([dmos]), "orgs": np.array([orgs])})
    if realigned:
        scipy.io.savemat(root / "dmos_realigned.mat",
                         {"dmos_new": np.array([dmos]), "dmos_std": np.ones((1, len(dmos))), "orgs": np.array([orgs])})
    return root


CSIQ_TYPES = (("noise", "awgn", "AWGN"), ("jpeg", "jpeg", "JPEG"), ("jpeg 2000", "jpeg2000", "jpeg2000"),
              ("fnoise", "fnoise", "fnoise"), ("blur", "blur", "BLUR"), ("contrast", "contrast", "contrast"))


def csiq(root: Path, contents=(1600, "aerial_city", "bridge"), workbook: bool = True) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "all_by_image"
    sheet["A1"] = "CSIQ image quality database"
    sheet["A2"] = "DMOS by image"
    sheet.append([])
    sheet.append([None, None, None, "image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    lines = []
    for c, content in enumerate(contents):
        image(root / "src_imgs" / f"{content}.png", c)
        for t, (kind, folder, token) in enumerate(CSIQ_TYPES):
            for level in range(1, 5 if kind in ("fnoise", "contrast") else 6):
                image(root / "dst_imgs" / folder / f"{content}.{token}.{level}.png", c * 100 + t * 10 + level)
                score = round(0.03 + 0.15 * (level - 1) + 0.01 * t, 4)
                sheet.append([None, None, None, content, t + 1, kind, level, 0.05, score])
                lines.append(f"{content}.{token}.{level}.png {score}")
    image(root / "dst_imgs" / "awgn" / f"{contents[0]}.AWGN.9.png")  # on disk, never rated
    if workbook:
        book.save(root / "csiq.DMOS.xlsx")
    else:
        (root / "csiq_label.txt").write_text("\n".join(lines) + "\n")
    return root


def tid2013(root: Path, refs: int = 3) -> Path:
    lines = []
    for r in range(1, refs + 1):
        ref_name = f"I{r:02d}.BMP" if r < refs else f"i{r:02d}.bmp"  # TID mixes cases (i25.bmp)
        image(root / "reference_images" / ref_name, r)
        for t in range(1, 25):
            for lv in range(1, 6):
                on_disk = f"i{r:02d}_{t:02d}_{lv}.bmp" if (t + lv) % 2 else f"I{r:02d}_{t:02d}_{lv}.BMP"
                image(root / "distorted_images" / on_disk, r * 1000 + t * 10 + lv)
                lines.append(f"{7.0 - 1.2 * lv + 0.01 * t:.5f} i{r:02d}_{t:02d}_{lv}.bmp")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def livec(root: Path, n: int = 20) -> Path:
    names = [f"t{i}.bmp" for i in range(1, 8)] + [f"{i}.JPG" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        image(root / "Images" / name, i)
    cell = np.empty((len(names), 1), dtype=object)
    cell[:, 0] = names
    (root / "Data").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
    mos = np.concatenate([np.full(7, 50.0), np.linspace(3.0, 92.0, n)])
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos[None, :]})
    return root


def spaq(root: Path, n: int = 12) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"])
    for i in range(1, n + 1):
        name = f"{i:05d}.jpg"
        image(root / "TestImage" / name, i)
        sheet.append([name, round(10 + 80 * i / n, 3), 50, 50, 50, 50, 50])
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    book.save(root / "Annotations" / "MOS and Image attribute scores.xlsx")
    return root


def pipal(root: Path, refs: int = 3, part: str = "Train") -> Path:
    for r in range(1, refs + 1):
        ref = f"A{r:04d}"
        image(root / f"{part}_Ref" / f"{ref}.bmp", r)
        lines = []
        for group in range(7):
            for sub in range(2):
                name = f"{ref}_{group:02d}_{sub:02d}.bmp"
                image(root / f"{part}_Dist" / name, r * 100 + group * 10 + sub)
                lines.append(f"{name},{1000 + 100 * group + 10 * sub + r:.4f}")
        (root / f"{part}_Label").mkdir(parents=True, exist_ok=True)
        (root / f"{part}_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
    return root


def generic(root: Path) -> Path:
    rows = [["image", "score", "ref"]]
    for r in range(4):
        image(root / "refs" / f"r{r}.png", r)
        for k in range(3):
            image(root / "dist" / f"r{r}_{k}.png", r * 10 + k)
            rows.append([f"dist/r{r}_{k}.png", str(2 + k + r), f"refs/r{r}.png"])
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root
