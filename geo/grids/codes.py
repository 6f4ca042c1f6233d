"""Standard 15-digit grid codes, stable across re-partitions and edits.

A grid code is ``DDDDDDSSS`` + ``CCC`` + ``NNN``:

* ``DDDDDD`` the 6-digit GB/T 2260 county code (e.g. ``320581`` Changshu) and ``SSS`` the 3-digit
  street (街道/乡镇) code: together the 9-digit division code, a project setting;
* ``CCC`` the community number inside the street, 001-999;
* ``NNN`` the grid number inside the community, 001-999.

Numbering follows the unit-grid convention of Beijing's DB11/T 2157-2023: west to east and north to
south. The exact rule (:func:`reading_order`): grid centroids are cut into horizontal rows whose
height is the median height of the grids' bounding boxes, counted from the northernmost centroid;
rows are read north to south and, inside a row, west to east (ties by key).

Stability. A grid is identified by its set of buildings. A grid whose set of buildings appeared in
the parent plan keeps that plan's code; every other grid is new and takes the lowest number never
issued in its community (``used`` holds every code issued in the plan's history), so a code is never
reused for a different grid. Moving one building between two grids therefore gives both of them new
numbers while all other grids keep theirs; ``match="majority"`` instead lets a changed grid keep the
code of the parent grid with which it shares more than half of the buildings both ways.

Examples
--------
>>> validate_division_code("320581104")
'320581104'
>>> parse_grid_code("320581104003012")["grid_number"]
12
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.divisions import PLACEHOLDER_DIVISION_CODE, PROVINCES
from geo.errors import InputError

MAX_NUMBER = 999


def validate_division_code(text: str | int) -> str:
    """Return the 9-digit division code (6-digit county + 3-digit street) or raise InputError.

    Examples
    --------
    >>> validate_division_code(" 320581104 ")
    '320581104'
    """
    code = str(text).strip()
    if code == PLACEHOLDER_DIVISION_CODE:
        return code
    if len(code) != 9 or not code.isdigit():
        raise InputError(
            f"division code {code!r} must be 9 digits: the 6-digit county code and a 3-digit street code",
            hint="e.g. 320581104 for a street of Changshu (320581)",
            zh=f"区划代码 {code!r} 应为 9 位数字：6 位县级代码加 3 位街道代码，例如 320581104",
        )
    if code[:2] not in PROVINCES:
        raise InputError(
            f"division code {code}: {code[:2]} is not a GB/T 2260 province code",
            zh=f"区划代码 {code}：{code[:2]} 不是 GB/T 2260 省级代码",
        )
    if code[6:] == "000":
        raise InputError(
            f"division code {code}: the street code (last 3 digits) cannot be 000",
            zh=f"区划代码 {code}：街道代码（后 3 位）不能为 000",
        )
    return code


def parse_grid_code(code: str) -> dict[str, str | int]:
    """Split a grid code into its parts, or raise InputError.

    Examples
    --------
    >>> parse_grid_code("320581104003012")
    {'division_code': '320581104', 'county_code': '320581', 'street_code': '104', 'community_number': 3, 'grid_number': 12}
    """
    text = str(code).strip()
    if len(text) != 15 or not text.isdigit():
        raise InputError(
            f"grid code {text!r} must be 15 digits", zh=f"网格编码 {text!r} 应为 15 位数字"
        )
    division = validate_division_code(text[:9])
    community, grid = int(text[9:12]), int(text[12:])
    if community == 0 or grid == 0:
        raise InputError(
            f"grid code {text}: community and grid numbers start at 001",
            zh=f"网格编码 {text}：社区号和网格号从 001 开始",
        )
    return {
        "division_code": division,
        "county_code": division[:6],
        "street_code": division[6:],
        "community_number": community,
        "grid_number": grid,
    }


def is_valid_grid_code(code: object) -> bool:
    """True if ``code`` is a well-formed 15-digit grid code.

    Examples
    --------
    >>> is_valid_grid_code("320581104003012"), is_valid_grid_code("32058110400301")
    (True, False)
    """
    try:
        parse_grid_code(str(code))
    except InputError:
        return False
    return True


def reading_order(geometries: gpd.GeoSeries, *, row_height: float | None = None) -> pd.Series:
    """Rank (0, 1, ...) of each geometry read north to south in rows, west to east in a row.

    Rows are bands of ``row_height`` metres (default: the median bounding-box height of the
    geometries) counted down from the northernmost centroid. Ties are broken by the index.

    Examples
    --------
    >>> import shapely
    >>> boxes = gpd.GeoSeries([shapely.box(10, 0, 20, 10), shapely.box(0, 0, 10, 10),
    ...                        shapely.box(0, 10, 10, 20)], index=["se", "sw", "n"])
    >>> reading_order(boxes).to_dict()
    {'se': 2, 'sw': 1, 'n': 0}
    """
    if len(geometries) == 0:
        return pd.Series([], index=geometries.index, dtype=int)
    xy = shapely.get_coordinates(shapely.centroid(geometries.values))
    if row_height is None:
        bounds = shapely.bounds(geometries.values)
        row_height = float(np.median(bounds[:, 3] - bounds[:, 1]))
    row_height = row_height if row_height > 0 else 1.0
    rows = np.floor((xy[:, 1].max() - xy[:, 1]) / row_height)
    ties = pd.Index(geometries.index).astype(str).to_numpy()
    order = np.lexsort((ties, xy[:, 0], rows))
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return pd.Series(rank, index=geometries.index)


def community_numbers(
    communities: Iterable[str] | gpd.GeoDataFrame,
    *,
    previous: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The 3-digit number of each community, keeping the numbers of ``previous``.

    New communities take the lowest free numbers, in the order given, or in reading order when
    ``communities`` is a GeoDataFrame with ``community`` and outline geometry.

    Examples
    --------
    >>> community_numbers(["西园", "东园"], previous={"东园": 1})
    {'东园': 1, '西园': 2}
    """
    if isinstance(communities, gpd.GeoDataFrame):
        rank = reading_order(communities.geometry)
        names = communities["community"].astype(str).to_numpy()[np.argsort(rank.to_numpy())]
    else:
        names = [str(name) for name in communities]
    numbers = {str(k): int(v) for k, v in (previous or {}).items()}
    taken = set(numbers.values())
    free = (n for n in range(1, MAX_NUMBER + 2) if n not in taken)
    for name in dict.fromkeys(names):
        if name not in numbers:
            numbers[name] = next(free)
    too_many = [name for name, number in numbers.items() if number > MAX_NUMBER]
    if too_many:
        raise InputError(
            f"more than {MAX_NUMBER} communities in one street: {len(numbers)}; "
            "use a separate division code per street",
            zh=f"一个街道内社区超过 {MAX_NUMBER} 个（{len(numbers)} 个）；请按街道分别设置区划代码",
        )
    return {name: numbers[name] for name in sorted(numbers, key=numbers.get)}


def assign_grid_codes(
    grids: gpd.GeoDataFrame,
    members: Mapping[object, frozenset],
    *,
    division_code: str,
    community_numbers: Mapping[str, int],
    previous: Mapping[frozenset, str] | None = None,
    used: Iterable[str] | None = None,
    match: Literal["exact", "majority"] = "exact",
) -> pd.Series:
    """The code of each grid, stable against the parent plan and never reusing a code.

    Parameters
    ----------
    grids : GeoDataFrame
        Indexed by grid key, with ``community`` and geometry (for the numbering order).
    members : mapping
        Grid key -> frozenset of the building ids in the grid.
    division_code : str
        The 9-digit county + street code.
    community_numbers : mapping
        Community name -> number (see :func:`community_numbers`).
    previous : mapping, optional
        frozenset of building ids -> code, the parent plan's grids.
    used : iterable of str, optional
        Every code issued in the plan's history; none is issued again.
    match : {"exact", "majority"}
        Which grids keep a parent code: those with exactly the same buildings, or also a changed
        grid sharing more than half of its buildings with a parent grid and holding more than
        half of that parent's buildings.

    Returns
    -------
    Series
        Grid key -> 15-digit code, aligned to ``grids.index``.

    Examples
    --------
    >>> import shapely
    >>> grids = gpd.GeoDataFrame({"community": ["a", "a"]},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], index=["k1", "k2"])
    >>> codes = assign_grid_codes(grids, {"k1": frozenset({"b1"}), "k2": frozenset({"b2"})},
    ...     division_code="320581104", community_numbers={"a": 1})
    >>> codes.tolist()
    ['320581104001001', '320581104001002']
    """
    division = validate_division_code(division_code)
    previous = {frozenset(k): str(v) for k, v in (previous or {}).items()}
    used = set(map(str, used or ())) | set(previous.values())
    sets = _member_sets(grids, members, community_numbers)
    codes: dict[object, str] = {}
    for name, frame in grids.groupby(grids["community"].astype(str), sort=True):
        prefix = f"{division}{int(community_numbers[name]):03d}"
        kept = _kept_codes(frame.index, sets, previous, prefix, match)
        codes.update(kept)
        codes.update(_new_codes(name, frame, kept, prefix, used))
    return pd.Series(
        [codes[key] for key in grids.index], index=grids.index, dtype=object, name="grid_code"
    )


def _member_sets(
    grids: gpd.GeoDataFrame, members: Mapping[object, frozenset], numbers: Mapping[str, int]
) -> dict[object, frozenset]:
    """Each grid's building ids; a community without a number or a grid without members
    raises."""
    missing = sorted(set(grids["community"].astype(str)) - set(map(str, numbers)))
    if missing:
        raise InputError(f"communities without a number: {', '.join(missing)}")
    absent = [key for key in grids.index if key not in members]
    if absent:
        raise InputError(f"grids without a member list: {', '.join(map(str, absent[:5]))}")
    return {key: frozenset(members[key]) for key in grids.index}


def _new_codes(
    name: str, frame: gpd.GeoDataFrame, kept: Mapping[object, str], prefix: str, used: set[str]
) -> dict[object, str]:
    """Grid key -> a fresh code, in reading order, for the grids of community ``name`` (in
    ``frame``) that keep no parent code: the lowest numbers never issued under ``prefix``."""
    new = frame.index[~frame.index.isin(list(kept))]
    if len(new) == 0:
        return {}
    height = float(np.median(np.diff(shapely.bounds(frame.geometry.values)[:, [1, 3]], axis=1)))
    order = reading_order(frame.geometry.loc[new], row_height=height).sort_values().index
    taken = {int(code[12:]) for code in used | set(kept.values()) if code.startswith(prefix)}
    numbers = [n for n in range(1, MAX_NUMBER + 1) if n not in taken][: len(order)]
    if len(numbers) < len(order):
        raise InputError(
            f"community {name} would need more than {MAX_NUMBER} grid numbers "
            f"({len(taken)} issued, {len(order)} new); split the community or use another street code",
            zh=f"社区 {name} 的网格编号将超过 {MAX_NUMBER} 个；请拆分社区或使用其他街道代码",
        )
    return dict(zip(order, (f"{prefix}{n:03d}" for n in numbers), strict=True))


def _kept_codes(
    keys: pd.Index,
    sets: Mapping[object, frozenset],
    previous: Mapping[frozenset, str],
    prefix: str,
    match: str,
) -> dict[object, str]:
    """Grid key -> parent code for the grids of one community that keep their code."""
    kept: dict[object, str] = {}
    for key in keys:
        code = previous.get(sets[key])
        if code is not None and code.startswith(prefix):
            kept[key] = code
    if match != "majority":
        return kept
    taken = set(kept.values())
    parents = {s: c for s, c in previous.items() if c.startswith(prefix) and c not in taken}
    for key in keys:
        if key in kept:
            continue
        mine = sets[key]
        for parent, code in parents.items():
            shared = len(mine & parent)
            if 2 * shared > len(mine) and 2 * shared > len(parent) and code not in taken:
                kept[key] = code
                taken.add(code)
                break
    return kept
