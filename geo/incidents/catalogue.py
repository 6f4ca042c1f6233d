"""The event catalogue of city management (城市管理事件分类) and category matching.

The catalogue is data (``data/incident_categories.csv``): one row per category with its 5-digit
code (2-digit class + 3-digit item, e.g. ``06001`` 私搭乱建), the class, Chinese and English names,
aliases (``|``-separated, e.g. Bixi's 乱堆乱放 for 06036 乱堆杂物), the time limit and whether it is
the fallback category for unknown cases. The older 4-digit codes (``0101`` ... ``0508``, classes
01 市容环境 ... 05 街面秩序) map onto it through ``data/legacy_category_map.csv``.

Time limits are written ``<number><unit>``: ``h`` working hours, ``wd`` working days, ``d``
calendar days (``"2h"``, ``"5wd"``, ``"3d"``); see :mod:`geo.incidents.workflow` for the calendar.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from geo.errors import InputError
from geo.reference import reference_dir, reference_file

# shipped with gridmap (data/ in a checkout, geo/reference/ in the wheel): geo.reference
DATA_DIR = reference_dir()
CATALOGUE_PATH = reference_file("incident_categories.csv")
LEGACY_PATH = reference_file("legacy_category_map.csv")

REQUIRED_COLUMNS = ("code", "class_code", "name_zh", "name_en", "time_limit")
OPTIONAL_COLUMNS = ("class_zh", "class_en", "aliases", "fallback", "code_status")
LIMIT_UNITS = {"h": "working hours", "wd": "working days", "d": "calendar days"}
_LIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|wd|d)\s*$", re.IGNORECASE)
# Punctuation and spaces people and spreadsheets put into names and codes ("06-001", "乱堆 乱放").
_NOISE_RE = re.compile(r"[\s\-_/\\.,;:·、，。：；()（）\[\]【】\"'“”‘’]+")


class CatalogueError(InputError):
    """The category catalogue (or the legacy code map) is malformed."""


def parse_time_limit(text: str) -> tuple[float, str]:
    """Split a time limit such as ``"4h"`` or ``"2wd"`` into (amount, unit).

    Examples
    --------
    >>> parse_time_limit("2wd")
    (2.0, 'wd')
    """
    match = _LIMIT_RE.match(str(text))
    if not match:
        raise CatalogueError(
            f"time limit {text!r} is not <number><unit>",
            hint="units: h (working hours), wd (working days), d (calendar days)",
        )
    return float(match.group(1)), match.group(2).lower()


def load_catalogue(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a category catalogue CSV (default: the shipped national catalogue).

    Returns one row per category, indexed 0..n-1, with the columns of the file plus
    ``limit_value`` (float) and ``limit_unit`` (``h``/``wd``/``d``) parsed from ``time_limit``
    and a boolean ``fallback`` (exactly one row is the category for unknown cases: the marked
    one, or else the lowest code of class 10).

    Raises
    ------
    CatalogueError
        Missing columns, a malformed or duplicate code, a class that does not match its code, a
        bad time limit or no fallback; the message names the row (1-based, after the header).

    Examples
    --------
    >>> cat = load_catalogue()
    >>> cat.set_index("code").loc["06001", "name_zh"]
    '私搭乱建'
    """
    path = Path(path) if path is not None else CATALOGUE_PATH
    table = _read_table(path)
    limits = [
        _checked_limit(record, row, path)
        for row, record in enumerate(table.itertuples(index=False), start=1)
    ]
    values = [value for value, _ in limits]
    units = [unit for _, unit in limits]
    duplicated = table.loc[table["code"].duplicated(), "code"]
    if len(duplicated):
        raise CatalogueError(f"catalogue {path.name}: duplicate code(s) {', '.join(duplicated)}")
    table["limit_value"] = values
    table["limit_unit"] = units
    table["fallback"] = _fallback_flags(table, path)
    return table.reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    """The catalogue CSV as stripped text, with every required and optional column."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogueError(f"cannot read the catalogue {path}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise CatalogueError(f"catalogue {path.name} lacks the column(s) {', '.join(missing)}")
    table = table.apply(lambda col: col.str.strip())
    for column in OPTIONAL_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    return table


def _checked_limit(record: Any, row: int, path: Path) -> tuple[float, str]:
    """One catalogue row checked (code, class, name); its time limit as (value, unit)."""
    where = f"catalogue {path.name} row {row} ({record.code or 'no code'})"
    if not re.fullmatch(r"\d{5}", record.code):
        raise CatalogueError(f"{where}: code must be 5 digits (class + item), e.g. 06001")
    if record.class_code != record.code[:2]:
        raise CatalogueError(f"{where}: class_code {record.class_code!r} != {record.code[:2]}")
    if not record.name_zh:
        raise CatalogueError(f"{where}: name_zh is empty")
    try:
        return parse_time_limit(record.time_limit)
    except CatalogueError as exc:
        raise CatalogueError(f"{where}: {exc.message}", hint=exc.hint) from exc


def _fallback_flags(table: pd.DataFrame, path: Path) -> pd.Series:
    marked = table["fallback"].str.lower().isin({"1", "true", "yes", "y"})
    if marked.sum() > 1:
        raise CatalogueError(f"catalogue {path.name}: more than one fallback category")
    if marked.sum() == 0:
        other = table.loc[table["class_code"] == "10", "code"]
        if other.empty:
            raise CatalogueError(
                f"catalogue {path.name} has no fallback category for unknown cases",
                hint="mark one row fallback=1 or add a class 10 (其他) category",
            )
        marked = table["code"] == other.min()
    return marked


@functools.cache
def incident_classes() -> dict[str, dict[str, str]]:
    """The classes (大类) of the shipped catalogue in code order, each with its ``zh`` and ``en``
    name (the Chinese one where the file gives no English): what the maps' legends and popups say.

    Examples
    --------
    >>> incident_classes()["09"]
    {'zh': '街面秩序', 'en': 'Street order'}
    """
    table = load_catalogue().drop_duplicates("class_code").sort_values("class_code")
    return {
        row.class_code: {"zh": row.class_zh or row.class_code, "en": row.class_en or row.class_zh}
        for row in table.itertuples(index=False)
    }


def load_legacy_map(path: str | Path | None = None) -> pd.DataFrame:
    """Read the legacy 4-digit code map (``legacy_code`` -> ``code``).

    Examples
    --------
    >>> load_legacy_map().set_index("legacy_code").loc["0101", "code"]
    '06001'
    """
    path = Path(path) if path is not None else LEGACY_PATH
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for column in ("legacy_code", "code"):
        if column not in table.columns:
            raise CatalogueError(f"legacy map {path.name} lacks the column {column}")
    bad = table.loc[~table["legacy_code"].str.fullmatch(r"\d{4}"), "legacy_code"]
    if len(bad):
        raise CatalogueError(f"legacy map {path.name}: codes not 4 digits: {', '.join(bad)}")
    if table["legacy_code"].duplicated().any():
        raise CatalogueError(f"legacy map {path.name}: duplicate legacy codes")
    return table


def normalise_key(text: object) -> str:
    """The form names and codes are compared in: NFKC, lower case, no spaces or punctuation.

    Examples
    --------
    >>> normalise_key(" 乱堆 乱放 ")
    '乱堆乱放'
    >>> normalise_key("Street-Cleaning")
    'streetcleaning'
    """
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    return _NOISE_RE.sub("", unicodedata.normalize("NFKC", str(text)).lower())


def _code_candidate(key: str, codes: set[str], legacy: dict[str, str]) -> str | None:
    """A code from digits: 5-digit code, 4-digit legacy, or one that lost its leading zero."""
    digits = key
    if not digits.isdigit():
        return None
    if len(digits) == 5:
        return digits if digits in codes else None
    if len(digits) == 4:
        if digits.startswith("0"):
            return legacy.get(digits)
        padded = digits.zfill(5)  # 6001 is 06001 after a spreadsheet dropped the zero
        return padded if padded in codes else None
    if len(digits) == 3:
        return legacy.get(digits.zfill(4))  # 101 is legacy 0101
    if len(digits) == 6 and digits[2] == "0":
        shortened = digits[:2] + digits[3:]  # 060001 written with a 4-digit item
        return shortened if shortened in codes else None
    return None


def _name_index(catalogue: pd.DataFrame, legacy: pd.DataFrame) -> dict[str, str]:
    """Normalised name/alias -> code; catalogue names win over aliases over legacy names."""
    index: dict[str, str] = {}
    for record in legacy.itertuples(index=False):
        if "legacy_name_zh" in legacy.columns and record.legacy_name_zh:
            index[normalise_key(record.legacy_name_zh)] = record.code
    for record in catalogue.itertuples(index=False):
        for alias in str(record.aliases).split("|"):
            if normalise_key(alias):
                index[normalise_key(alias)] = record.code
    for record in catalogue.itertuples(index=False):
        index[normalise_key(record.name_en)] = record.code
        index[normalise_key(record.name_zh)] = record.code
    index.pop("", None)
    return index


def match_category(
    raw: pd.Series,
    catalogue: pd.DataFrame | None = None,
    *,
    legacy: pd.DataFrame | None = None,
    extra: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Match free-form category values to catalogue codes.

    A value matches, in this order: an entry of ``extra`` (a feed's own category map), a code
    (5-digit; 4-digit legacy; a code that lost its leading zero in a spreadsheet; ``060001``),
    a Chinese or English name or alias (ignoring case, spaces and punctuation), and last the one
    longest Chinese name or alias contained in the text (``小区门口私搭乱建`` -> 06001). Anything
    else goes to the fallback category (其他, class 10) with ``known=False``.

    Parameters
    ----------
    raw : Series
        The category values as given.
    catalogue : DataFrame, optional
        From :func:`load_catalogue`; the shipped catalogue by default.
    legacy : DataFrame, optional
        From :func:`load_legacy_map`; the shipped map by default.
    extra : dict, optional
        Raw value -> code, e.g. Boston's ``"Parking Enforcement": "09009"``.

    Returns
    -------
    DataFrame
        Aligned to ``raw``: ``code``, ``known`` (bool), ``raw`` (the value unchanged).

    Examples
    --------
    >>> match_category(pd.Series(["乱堆乱放", "0101", "飞碟降落"]))["code"].tolist()
    ['06036', '06001', '10099']
    """
    catalogue = load_catalogue() if catalogue is None else catalogue
    matcher = _Matcher.build(
        catalogue, load_legacy_map() if legacy is None else legacy, extra or {}
    )
    # Feeds repeat a handful of values: match each distinct value once.
    distinct = {value: matcher.match(value) for value in pd.unique(raw.astype(object))}
    matched = raw.astype(object).map(distinct)
    fallback = catalogue.loc[catalogue["fallback"].astype(bool), "code"].iloc[0]
    return pd.DataFrame(
        {
            "code": matched.fillna(fallback).astype(str),
            "known": matched.notna(),
            "raw": raw,
        },
        index=raw.index,
    )


@dataclass(frozen=True)
class _Matcher:
    """What :func:`match_category` matches one value against, in its order."""

    extra_keys: dict[str, str]
    codes: set[str]
    legacy_codes: dict[str, str]
    names: dict[str, str]
    contained: list[str]

    @classmethod
    def build(
        cls, catalogue: pd.DataFrame, legacy: pd.DataFrame, extra: dict[str, str]
    ) -> _Matcher:
        codes = set(catalogue["code"])
        extra_keys = {normalise_key(k): v for k, v in extra.items()}
        unknown_extra = sorted(set(extra_keys.values()) - codes)
        if unknown_extra:
            raise CatalogueError(f"category map names codes not in the catalogue: {unknown_extra}")
        names = _name_index(catalogue, legacy)
        contained = sorted(
            (k for k in names if re.search(r"[\u4e00-\u9fff]", k)), key=len, reverse=True
        )
        legacy_codes = dict(zip(legacy["legacy_code"], legacy["code"], strict=True))
        return cls(extra_keys, codes, legacy_codes, names, contained)

    def match(self, value: object) -> str | None:
        """The code of one value, None when nothing matches."""
        text = "" if value is None or value is pd.NA else str(value).strip()
        if re.fullmatch(r"\d+\.0+", text):
            text = text.split(".")[0]  # 6001.0: a code a spreadsheet turned into a float
        key = normalise_key(text)
        if not key:
            return None
        if key in self.extra_keys:
            return self.extra_keys[key]
        code = _code_candidate(key, self.codes, self.legacy_codes)
        if code is not None:
            return code
        if key in self.names:
            return self.names[key]
        hits = [k for k in self.contained if k in key]
        if hits and len({self.names[k] for k in hits if len(k) == len(hits[0])}) == 1:
            return self.names[hits[0]]
        return None
