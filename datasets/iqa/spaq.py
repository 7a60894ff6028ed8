"""SPAQ: ``TestImage/*.jpg`` and ``Annotations/MOS and Image attribute scores.xlsx``.

The workbook has a header row with the image name column (``Image name``) and ``MOS``
(0..100, higher is better), followed by the attribute scores. Its multi-part archive is prone
to corrupt extraction: ``python -m datasets.iqa inspect spaq ROOT --verify`` decodes every image.
"""
from __future__ import annotations

from pathlib import Path

from .options import NoOptions
from .table import Builder, DatasetError, Scale, parse_float, require_dir, require_file

SCALE = Scale(0.0, 100.0, higher_is_better=True, kind="mos")
WORKBOOK = Path("Annotations") / "MOS and Image attribute scores.xlsx"


def read(root: Path, strict: bool, options: NoOptions) -> Builder:
    import openpyxl

    labels = require_file(root / WORKBOOK, "label workbook")
    images = require_dir(root / "TestImage", "TestImage")
    try:
        book = openpyxl.load_workbook(labels, read_only=True, data_only=True)
    except Exception as error:
        raise DatasetError(f"{labels}: not a readable Excel workbook ({error})") from None
    found = None
    for sheet in book.worksheets:  # the scores are on the sheet whose first row names them
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip().lower() if c is not None else "" for c in next(rows, None) or ()]
        name_col = next((i for i, c in enumerate(header) if "image" in c), None)
        mos_col = next((i for i, c in enumerate(header) if c == "mos"), None)
        if name_col is not None and mos_col is not None:
            found = rows, name_col, mos_col
            break
    if found is None:
        raise DatasetError(f"{labels}: no sheet whose first row names an image column and a 'MOS' column "
                           f"(sheets: {book.sheetnames})")
    rows, name_col, mos_col = found
    b = Builder("spaq", root, SCALE, strict)
    for line, row in enumerate(rows, start=2):
        if row is None or all(c is None for c in row):
            continue
        try:
            name, score = str(row[name_col]).strip(), parse_float(row[mos_col])
        except (IndexError, TypeError, ValueError):
            b.problem("unparsable_row", labels, line, f"expected an image name and a MOS, got {row}")
            continue
        b.add(images / name, score, content=Path(name).stem, source=(labels, line))
    return b
