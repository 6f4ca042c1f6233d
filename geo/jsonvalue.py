"""One way to turn gridmap's values into JSON that every parser accepts.

pandas and numpy carry missing values as ``NaN``, ``NaT`` and ``pd.NA`` and numbers as numpy
scalars; ``json.dumps`` writes the first as the bare word ``NaN`` (not JSON: jq and strict parsers
refuse it) and fails or stringifies the rest. :func:`json_value` maps a value, recursively, to plain
Python: missing and non-finite numbers to ``None``, numpy scalars to Python numbers, times to ISO
8601 text with their offset. :func:`dumps` refuses anything that would still not be JSON.

Examples
--------
>>> dumps({"building_id": float("nan"), "n": np.int64(3), "at": pd.NaT})
'{"building_id": null, "n": 3, "at": null}'
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def json_value(value: Any) -> Any:
    """``value`` as plain JSON-ready Python (dicts, lists, str, int, float, bool, None)."""
    kind = type(value)
    # the plain types first, by exact type: a map page's data is hundreds of thousands of them
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is list or kind is tuple:
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [json_value(v) for v in value]
    return _scalar(value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _iso_time(value: pd.Timestamp | dt.datetime | dt.date | dt.time) -> str:
    return value.isoformat()


def _iso_duration(value: pd.Timedelta | dt.timedelta) -> str:
    return pd.Timedelta(value).isoformat()


def _as_is(value: str | int | bool) -> str | int | bool:
    return value


#: (types, converter) for the scalars that are not plain Python, first match wins
_CONVERTERS: tuple[tuple[Any, Any], ...] = (
    (float, _finite),
    (pd.Timestamp | dt.datetime | dt.date | dt.time, _iso_time),
    (pd.Timedelta | dt.timedelta, _iso_duration),
    (str | int | bool, _as_is),
)


def _scalar(value: Any) -> Any:
    """A scalar other than a plain str/int/bool/float/None: missing, numpy, time or other."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    for types, convert in _CONVERTERS:
        if isinstance(value, types):
            return convert(value)
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` (without its geometry column) as JSON-ready dicts."""
    kept = frame.drop(columns=[c for c in ("geometry",) if c in frame.columns])
    return [
        json_value(dict(zip(kept.columns, row, strict=True)))
        for row in kept.itertuples(index=False, name=None)
    ]


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (UTF-8 characters kept, never NaN or Infinity)."""
    return json.dumps(json_value(value), ensure_ascii=False, allow_nan=False, indent=indent)
