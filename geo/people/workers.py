"""Grid workers (网格员): the roster, one responsible worker per grid, and privacy of contacts.

Bixi's rule is 定人、定岗、定责: every grid has exactly one named worker, who belongs to the grid's
community; a worker may hold several grids of that community. Phone numbers are personal data and
leave the project only when asked for explicitly (:func:`public_worker_columns`).

Examples
--------
>>> roster = pd.DataFrame({"worker_id": ["w1", "w2"], "name": ["张三", "李四"],
...                        "phone": ["13800000000", ""], "community": ["东园", "东园"]})
>>> grids = pd.DataFrame({"community": ["东园"] * 3}, index=["g1", "g2", "g3"])
>>> assign_workers(grids, roster).tolist()
['w1', 'w2', 'w1']
"""

from __future__ import annotations

import csv
import heapq
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from geo.chinese_text import decoded
from geo.errors import InputError
from geo.exchange.xlsx import is_xlsx, read_xlsx

#: Accepted headers (compared without case, spaces, underscores) for each roster column.
HEADERS: dict[str, tuple[str, ...]] = {
    "worker_id": (
        "worker_id",
        "workerid",
        "id",
        "工号",
        "编号",
        "网格员编号",
        "人员编号",
        "员工编号",
    ),
    "name": ("name", "姓名", "名字", "网格员", "网格员姓名"),
    "phone": (
        "phone",
        "mobile",
        "tel",
        "telephone",
        "电话",
        "手机",
        "手机号",
        "手机号码",
        "联系电话",
        "联系方式",
    ),
    "community": ("community", "社区", "所属社区", "社区名称", "社区名"),
}
REQUIRED = ("worker_id", "name", "community")
#: Columns that hold personal contact data, the one list every export, map and answer strips:
#: the project's own ``phone`` and ``worker_phone`` first (the order :func:`contact_column` picks
#: in), then every header a roster may give a phone under (a layer from elsewhere may keep one).
CONTACT_COLUMNS = tuple(dict.fromkeys(("worker_phone", "phone", *HEADERS["phone"])))

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(0\d{2,3})?[2-9]\d{6,7}$")
NO_WORKER = "no worker in this community"


def read_roster(path: str | Path, *, communities: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a worker roster: CSV (UTF-8 with or without BOM, GBK/GB18030) or Excel .xlsx.

    Headers may be Chinese or English.

    Parameters
    ----------
    path : str or Path
        The CSV or .xlsx file: worker id, name, phone (optional), community.
    communities : iterable of str, optional
        The district's community names; a roster naming another community is an InputError.

    Returns
    -------
    DataFrame
        ``worker_id``, ``name``, ``phone`` (normalised digits, "" if none), ``community``; text.

    Examples
    --------
    A GBK file with the header ``工号,姓名,手机号,社区`` reads as
    ``worker_id, name, phone, community``.
    """
    path = Path(path)
    if is_xlsx(path):  # the first sheet, the first row as header
        frame = read_xlsx(path)
        return validate_roster(frame, communities=communities, source=path.name)
    if path.suffix.lower() == ".xls":
        raise InputError(
            f"{path.name}: the old .xls format is not read; save it as .xlsx or CSV",
            zh=f"{path.name}：不支持旧的 .xls 格式，请另存为 .xlsx 或 CSV",
        )
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"cannot read the roster {path}: {error.strerror}", zh=f"无法读取花名册 {path}"
        ) from error
    return parse_roster(raw, communities=communities, source=path.name)


def parse_roster(
    data: bytes, *, communities: Iterable[str] | None = None, source: str = "roster"
) -> pd.DataFrame:
    """:func:`read_roster` for CSV bytes already in memory (a roster sent to the API)."""
    return validate_roster(_parse_csv(data, source), communities=communities, source=source)


def validate_roster(
    frame: pd.DataFrame, *, communities: Iterable[str] | None = None, source: str = "roster"
) -> pd.DataFrame:
    """Rename the columns to the standard ones and check ids, names, phones and communities."""
    frame = _standard_columns(frame, source)
    for column in frame.columns:
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    lines = pd.Series(frame.index.to_numpy() + 2, index=frame.index)  # header is line 1
    for column in REQUIRED:
        empty = frame[column] == ""
        if empty.any():
            raise InputError(
                f"{source}: empty {column} on line(s) {_sample(lines[empty].tolist())}",
                zh=f"{source}：第 {_sample(lines[empty].tolist())} 行缺少{column}",
            )
    duplicated = frame["worker_id"][frame["worker_id"].duplicated()].unique().tolist()
    if duplicated:
        raise InputError(
            f"{source}: worker ids used twice: {_sample(duplicated)}",
            zh=f"{source}：工号重复：{_sample(duplicated)}",
        )
    frame["phone"] = frame["phone"].map(normalise_phone)
    bad = frame["phone"].isna()
    if bad.any():
        raise InputError(
            f"{source}: phone numbers that are neither a mobile (11 digits from 1) nor a landline "
            f"on line(s) {_sample(lines[bad].tolist())}",
            zh=f"{source}：第 {_sample(lines[bad].tolist())} 行电话号码格式不对",
        )
    if communities is not None:
        known = {str(name) for name in communities}
        unknown = sorted(set(frame["community"]) - known)
        if unknown:
            raise InputError(
                f"{source}: communities not in this district: {_sample(unknown)}",
                hint=f"known: {_sample(sorted(known))}",
                zh=f"{source}：本辖区没有这些社区：{_sample(unknown)}",
            )
    return frame.reset_index(drop=True)


def normalise_phone(text: str) -> str | None:
    """Digits of a mobile or landline number, "" for none, None if it cannot be a phone number.

    Examples
    --------
    >>> normalise_phone("+86 138-0000-0000"), normalise_phone("0512-6522 1234"), normalise_phone("12")
    ('13800000000', '051265221234', None)
    """
    digits = re.sub(r"[\s\-()（）+]", "", str(text))
    if digits == "":
        return ""
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isdigit():
        return None
    if _MOBILE.match(digits) or _LANDLINE.match(digits):
        return digits
    return None


def assign_workers(
    grids: pd.DataFrame,
    roster: pd.DataFrame,
    *,
    current: Mapping[object, str] | pd.Series | None = None,
) -> pd.Series:
    """One responsible worker per grid, from the grid's own community, spread fairly.

    Existing assignments in ``current`` are kept when the worker is still on the roster and in
    the grid's community. Each remaining grid (in order of ``grid_code`` if present, else of the
    index) goes to the worker of its community who holds the fewest grids, ties by worker id.

    Parameters
    ----------
    grids : DataFrame
        Indexed by grid key, with ``community``.
    roster : DataFrame
        From :func:`read_roster`.
    current : mapping or Series, optional
        Grid key -> worker id already assigned.

    Returns
    -------
    Series
        Grid key -> worker id, None where the community has no worker (see :func:`unassigned_grids`).
    """
    community_of = dict(zip(roster["worker_id"], roster["community"].astype(str), strict=True))
    grid_community = grids["community"].astype(str)
    chosen: dict[object, str] = {}
    for key, worker in dict(current if current is not None else {}).items():
        if key in grid_community.index and community_of.get(worker) == grid_community[key]:
            chosen[key] = worker
    order = grids.sort_values("grid_code").index if "grid_code" in grids else grids.index
    for name, workers in roster.groupby(roster["community"].astype(str)):
        load = pd.Series(chosen, dtype=object).value_counts()
        heap = [(int(load.get(w, 0)), str(w)) for w in workers["worker_id"]]
        heapq.heapify(heap)
        for key in order[(grid_community[order] == name).to_numpy()]:
            if key in chosen:
                continue
            count, worker = heapq.heappop(heap)
            chosen[key] = worker
            heapq.heappush(heap, (count + 1, worker))
    return pd.Series(
        [chosen.get(key) for key in grids.index], index=grids.index, dtype=object, name="worker"
    )


def unassigned_grids(
    grids: pd.DataFrame, assignment: pd.Series, roster: pd.DataFrame
) -> pd.DataFrame:
    """Grids without a worker and why (their community has no worker on the roster).

    Returns a DataFrame indexed by grid key with ``community`` and ``reason``.
    """
    empty = assignment.reindex(grids.index).isna()
    staffed = set(roster["community"].astype(str))
    frame = grids.loc[empty, ["community"]].copy()
    frame["reason"] = [
        NO_WORKER if str(name) not in staffed else "not assigned yet" for name in frame["community"]
    ]
    return frame


def worker_load(assignment: pd.Series, roster: pd.DataFrame) -> pd.Series:
    """Number of grids each worker holds (0 for workers without a grid), by worker id."""
    counts = assignment.dropna().value_counts()
    return counts.reindex(roster["worker_id"], fill_value=0).rename("n_grids")


def public_worker_columns(frame: pd.DataFrame, *, include_contacts: bool = False) -> pd.DataFrame:
    """``frame`` without phone numbers unless ``include_contacts`` (for exports and maps).

    Examples
    --------
    >>> public_worker_columns(pd.DataFrame({"name": ["张三"], "phone": ["13800000000"]})).columns.tolist()
    ['name']
    """
    if include_contacts:
        return frame
    return frame.drop(columns=[c for c in frame.columns if c in CONTACT_COLUMNS])


def contact_column(frame: pd.DataFrame) -> str | None:
    """The column of ``frame`` that holds a worker's phone number, if any (``worker_phone`` first).

    Examples
    --------
    >>> contact_column(pd.DataFrame(columns=["name", "联系电话"]))
    '联系电话'
    """
    return next((c for c in CONTACT_COLUMNS if c in frame.columns), None)


def _parse_csv(raw: bytes, name: str) -> pd.DataFrame:
    found = decoded(raw)
    if found is None:
        raise InputError(
            f"{name}: not UTF-8 or GBK/GB18030 text",
            zh=f"{name}：文件编码不是 UTF-8 或 GBK",
        )
    try:
        return pd.read_csv(
            io.StringIO(found[0]), dtype=str, keep_default_na=False, sep=None, engine="python"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as error:
        raise InputError(
            f"{name}: not a readable CSV ({error})", zh=f"{name}：不是可读取的 CSV 文件"
        ) from error


def _standard_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    def key(text: object) -> str:
        return re.sub(r"[\s_\-]", "", str(text).lower())

    rename: dict[str, str] = {}
    for column in frame.columns:
        for standard, names in HEADERS.items():
            if key(column) in {key(n) for n in names} and standard not in rename.values():
                rename[column] = standard
                break
    frame = frame.rename(columns=rename)
    missing = [column for column in REQUIRED if column not in frame]
    if missing:
        raise InputError(
            f"{source}: no column for {', '.join(missing)}; the columns are {', '.join(map(str, frame.columns))}",
            hint="expected e.g. 工号,姓名,手机号,社区 or worker_id,name,phone,community",
            zh=f"{source}：缺少列 {', '.join(missing)}（应为 工号,姓名,手机号,社区）",
        )
    if "phone" not in frame:
        frame["phone"] = ""
    return frame[["worker_id", "name", "phone", "community"]].copy()


def _sample(values: list, limit: int = 5) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")
