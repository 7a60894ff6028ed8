"""CSIQ: ``src_imgs/<name>.png``, ``dst_imgs/<folder>/<name>.<TOKEN>.<level>.png`` and ``csiq.DMOS.xlsx``.

The workbook's sheet ``all_by_image`` has a few title rows, then a header with ``image,
dst_idx, dst_type, dst_lev, dmos_std, dmos``. Many copies ship a flattened ``csiq_label.txt``
instead (``<name>.<TYPE>.<level>.png <dmos>`` per line); it is used when the workbook is absent.
Only rated rows are records. DMOS is on 0..1, lower is better.
"""
from __future__ import annotations

from pathlib import Path

from .options import NoOptions
from .table import Builder, DatasetError, Folder, Scale, parse_float, read_text, require_dir

SCALE = Scale(0.0, 1.0, higher_is_better=False, kind="dmos")
# workbook dst_type -> (folder, file-name token); tokens are matched case-insensitively
TYPES = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
TOKENS = {token.lower(): kind for kind, (_, token) in TYPES.items()}
COLUMNS = ("image", "dst_type", "dst_lev", "dmos")


def _workbook_rows(path: Path):
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:
        raise DatasetError(f"{path}: not a readable Excel workbook ({error})") from None
    if "all_by_image" not in book.sheetnames:
        raise DatasetError(f"{path}: missing sheet 'all_by_image'; found {book.sheetnames}")
    rows = book["all_by_image"].iter_rows(values_only=True)
    for number, row in enumerate(rows, start=1):
        cells = [str(c).strip().lower() if c is not None else "" for c in row]
        if all(c in cells for c in COLUMNS):
            index = {c: cells.index(c) for c in COLUMNS}
            break
    else:
        raise DatasetError(f"{path}: sheet 'all_by_image' has no header row with columns {list(COLUMNS)}")
    for offset, row in enumerate(rows, start=number + 1):
        if row is None or all(c is None for c in row):
            continue
        yield offset, {c: row[i] if i < len(row) else None for c, i in index.items()}


def _text_rows(path: Path):
    for number, text in enumerate(read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split()
        name = parts[0]
        pieces = name.split(".")
        if len(parts) != 2 or len(pieces) != 4:
            yield number, {"bad": text}
            continue
        yield number, {"image": pieces[0], "dst_type": TOKENS.get(pieces[1].lower(), pieces[1]),
                       "dst_lev": pieces[2], "dmos": parts[1]}


def read(root: Path, strict: bool, options: NoOptions) -> Builder:
    workbook, text = root / "csiq.DMOS.xlsx", root / "csiq_label.txt"
    if workbook.is_file():
        labels, rows = workbook, _workbook_rows(workbook)
    elif text.is_file():
        labels, rows = text, _text_rows(text)
    else:
        raise DatasetError(f"{workbook}: missing label file (or the flattened {text.name})")
    sources = require_dir(root / "src_imgs", "src_imgs")
    folders = {kind: Folder(require_dir(root / "dst_imgs", "dst_imgs") / folder, ignore_case=True)
               for kind, (folder, _) in TYPES.items()}
    b = Builder("csiq", root, SCALE, strict)
    for line, row in rows:
        try:
            kind = str(row["dst_type"]).strip().lower()
            folder, token = TYPES[kind]
            image, level, score = str(row["image"]).strip(), int(float(row["dst_lev"])), parse_float(row["dmos"])
        except (KeyError, TypeError, ValueError):
            b.problem("unparsable_row", labels, line, f"expected image, dst_type in {sorted(TYPES)}, dst_lev, dmos; got {row}")
            continue
        if image.endswith(".0"):  # numeric contents come back from Excel as floats
            image = image[:-2]
        path = folders[kind].find(f"{image}.{token}.{level}.png")
        b.add(path, score, content=image, ref=sources / f"{image}.png", distortion=folder, level=level,
              source=(labels, line))
    return b
