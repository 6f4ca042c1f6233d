"""Excel workbooks in and out: rosters and case lists arrive as .xlsx, the grid ledger leaves as one.

Street offices keep their rosters (花名册) and case lists in Excel, so everything gridmap reads as
CSV it also reads as .xlsx (the first sheet, the first row as header), with every cell turned into
the text a CSV would have held: ``13800000000`` not ``13800000000.0``, a date cell as
``2026-08-01 08:30:00``. What gridmap writes goes through :func:`geo.exchange.csvsafe.csv_safe_frame`
first, so a case description ``=HYPERLINK(...)`` stays text in the clerk's spreadsheet.

openpyxl is imported inside the functions: most commands never touch a workbook.

Examples
--------
>>> cell_text(13800000000.0), cell_text(None), cell_text(" 东园 ")
('13800000000', '', ' 东园 ')
"""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import InputError
from geo.exchange.csvsafe import csv_safe_frame

XLSX_SUFFIXES = (".xlsx", ".xlsm")


def is_xlsx(path: str | Path) -> bool:
    """Whether ``path`` names an Excel 2007+ workbook (by its suffix)."""
    return Path(path).suffix.lower() in XLSX_SUFFIXES


def cell_text(value: object) -> str:
    """A cell's value as the text a CSV export of the sheet would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def read_xlsx(source: str | Path | bytes, *, name: str = "workbook") -> pd.DataFrame:
    """The first sheet of a workbook as text columns (header from the first non-empty row)."""
    from openpyxl import load_workbook

    data = source if isinstance(source, bytes) else None
    if data is None:
        name = Path(source).name  # type: ignore[arg-type]
        try:
            data = Path(source).read_bytes()  # type: ignore[arg-type]
        except OSError as error:
            raise InputError(
                f"cannot read {name}: {error.strerror}", zh=f"无法读取 {name}"
            ) from None
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise InputError(
            f"{name}: not a readable .xlsx workbook ({error})",
            zh=f"{name}：不是可读取的 Excel (.xlsx) 文件",
        ) from None
    try:
        rows = [
            [cell_text(v) for v in row]
            for row in book.worksheets[0].iter_rows(values_only=True)
            if any(v is not None and str(v).strip() for v in row)
        ]
    finally:
        book.close()
    if not rows:
        raise InputError(f"{name}: the first sheet is empty", zh=f"{name}：第一个工作表是空的")
    header, body = rows[0], rows[1:]
    width = max(len(header), *(len(r) for r in body)) if body else len(header)
    header = [h or f"column{i + 1}" for i, h in enumerate(header + [""] * (width - len(header)))]
    body = [r + [""] * (width - len(r)) for r in body]
    return pd.DataFrame(body, columns=header, dtype=str)


def write_xlsx(target: str | Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    """Write one sheet per frame (headers as given, formula-like text neutralised, header bold)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        safe = csv_safe_frame(frame)
        sheet.append([str(c) for c in safe.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in safe.itertuples(index=False, name=None):
            sheet.append([_excel_value(v) for v in row])
        for i, column in enumerate(safe.columns, start=1):
            longest = max([len(str(column)), *(len(str(v)) for v in safe.iloc[:, i - 1])])
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(
                60, 2 + 1.6 * longest
            )
        sheet.freeze_panes = "A2"
    book.save(target)


def _excel_value(value: object) -> object:
    """A cell value openpyxl can store: None for missing, plain numbers, local times as text."""
    if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
