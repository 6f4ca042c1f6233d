"""Statistics of cases per grid, community or worker, repeat hotspots and monthly trends.

Inputs: the incidents table (``incident_id``, ``category_code``, ``reported_at`` and the
assignment columns ``grid_code``, ``community``, ``worker``; optionally ``deadline``) and the
events table of :mod:`geo.incidents.workflow` (``incident_id, from_status, to_status, actor,
at``). Rates: 立案率 = registered / reported, 结案率 = closed / registered, 按期结案率 = closed on
time / closed; handling time is registration (立案) to closure (结案) in hours.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely.geometry import MultiPoint

from geo.errors import InputError
from geo.incidents.catalogue import load_catalogue
from geo.incidents.workflow import EVENT_COLUMNS, WorkCalendar, deadlines, is_open, is_overdue

BY_COLUMNS = {"grid": "grid_code", "community": "community", "worker": "worker"}
UNASSIGNED = "(unassigned)"


def case_timeline(
    incidents: pd.DataFrame,
    events: pd.DataFrame,
    *,
    catalogue: pd.DataFrame | None = None,
    calendar: WorkCalendar | None = None,
) -> pd.DataFrame:
    """Per incident: ``status``, ``registered_at``, ``closed_at``, ``deadline`` and
    ``handling_hours``, aligned to ``incidents``.

    ``registered_at`` is the first registration, ``closed_at`` the closure; ``deadline`` is
    taken from ``incidents`` when it has one, else computed from the catalogue's time limits.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(f"events lack the column(s) {', '.join(missing)}")
    ordered = events.assign(at=pd.to_datetime(events["at"], utc=True)).sort_values("at")
    by_incident = ordered.groupby("incident_id")
    status = by_incident["to_status"].last()
    first = ordered.groupby(["incident_id", "to_status"])["at"].min().unstack()
    ids = incidents["incident_id"]
    out = pd.DataFrame(index=incidents.index)
    out["status"] = ids.map(status).fillna("reported")
    out["registered_at"] = ids.map(first.get("registered", pd.Series(dtype=object)))
    out["closed_at"] = ids.map(first.get("closed", pd.Series(dtype=object)))
    for column in ("registered_at", "closed_at"):
        out[column] = pd.to_datetime(out[column], utc=True)
    if "deadline" in incidents.columns:
        out["deadline"] = pd.to_datetime(incidents["deadline"], utc=True)
    else:
        table = incidents[["category_code", "reported_at"]].assign(
            registered_at=out["registered_at"]
        )
        catalogue = load_catalogue() if catalogue is None else catalogue
        out["deadline"] = deadlines(table, catalogue, calendar=calendar)
    out["handling_hours"] = (out["closed_at"] - out["registered_at"]).dt.total_seconds() / 3600
    return out


def _window(frame: pd.DataFrame, column: str, since, until) -> pd.Series:
    times = pd.to_datetime(frame[column], utc=True)
    keep = pd.Series(True, index=frame.index)
    if since is not None:
        keep &= times >= pd.Timestamp(since)
    if until is not None:
        keep &= times < pd.Timestamp(until)
    return keep


def _key(incidents: pd.DataFrame, by: str) -> pd.Series:
    if by not in BY_COLUMNS:
        raise InputError(f"statistics by {by!r}: use one of {', '.join(BY_COLUMNS)}")
    column = BY_COLUMNS[by]
    if column not in incidents.columns:
        raise InputError(f"incidents lack the column {column} (assign them to grids first)")
    key = incidents[column].astype(object)
    return key.where(key.notna(), UNASSIGNED).rename(column)


def incident_stats(
    incidents: pd.DataFrame,
    events: pd.DataFrame,
    *,
    by: str = "grid",
    since=None,
    until=None,
    now=None,
    catalogue: pd.DataFrame | None = None,
    calendar: WorkCalendar | None = None,
) -> pd.DataFrame:
    """Case counts and rates per grid, community or worker over a time range.

    Incidents reported in ``[since, until)`` count; their events are taken up to ``until``, so
    the figures are "as of until" (``now`` defaults to ``until``, else the current time).

    Returns
    -------
    DataFrame
        One row per group (``(unassigned)`` for incidents without one): ``reported``,
        ``registered``, ``closed``, ``closed_on_time``, ``overdue``, ``registration_rate``
        (立案率), ``closure_rate`` (结案率), ``on_time_rate`` (按期结案率),
        ``median_handling_hours``, and ``class_06`` ... ``class_10`` counts. Rates are NaN
        when their denominator is 0.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-05 09:00", tz="Asia/Shanghai")
    >>> inc = pd.DataFrame({"incident_id": [1], "category_code": ["06001"], "reported_at": [t],
    ...                     "grid_code": ["G1"], "community": ["c"], "worker": ["w"]})
    >>> ev = pd.DataFrame({"incident_id": [1], "from_status": ["reported"],
    ...                    "to_status": ["registered"], "actor": ["a"], "at": [t]})
    >>> incident_stats(inc, ev, now=t).loc["G1", "registration_rate"]
    np.float64(1.0)
    """
    key = _key(incidents, by)
    chosen = incidents.loc[_window(incidents, "reported_at", since, until)]
    if until is not None:
        events = events.loc[_window(events, "at", None, until)]
    timeline = case_timeline(chosen, events, catalogue=catalogue, calendar=calendar)
    frame = timeline.assign(
        key=key.loc[chosen.index],
        cls="class_" + chosen["category_code"].astype(str).str[:2],
        registered=timeline["registered_at"].notna(),
        closed=timeline["closed_at"].notna(),
        overdue=is_overdue(timeline, now=_as_of(now, until)),
    )
    frame["closed_on_time"] = frame["closed"] & (frame["closed_at"] <= frame["deadline"])
    stats = _group_stats(frame).join(_class_counts(frame))
    stats = stats.fillna(dict.fromkeys(_CLASS_COLUMNS, 0))
    stats.index.name = BY_COLUMNS[by]
    counts = [c for c in stats.columns if "rate" not in c and "hours" not in c]
    return stats.astype(dict.fromkeys(counts, "int64"))


_CLASS_COLUMNS = [f"class_{c}" for c in ("06", "07", "08", "09", "10")]


def _as_of(now: Any, until: Any) -> pd.Timestamp:
    """The moment overdue is judged at: ``now``, else ``until``, else the current time (UTC
    where naive)."""
    moment = pd.Timestamp(
        now if now is not None else until if until is not None else pd.Timestamp.now("UTC")
    )
    return moment if moment.tzinfo is not None else moment.tz_localize("UTC")


def _group_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts, rates and the median handling time per ``key`` of a case frame."""
    groups = frame.groupby("key", sort=True)
    stats = pd.DataFrame(
        {
            "reported": groups.size(),
            "registered": groups["registered"].sum(),
            "closed": groups["closed"].sum(),
            "closed_on_time": groups["closed_on_time"].sum(),
            "overdue": groups["overdue"].sum(),
            "median_handling_hours": groups["handling_hours"].median(),
        }
    )
    stats.insert(4, "registration_rate", _rate(stats["registered"], stats["reported"]))
    stats.insert(5, "closure_rate", _rate(stats["closed"], stats["registered"]))
    stats.insert(6, "on_time_rate", _rate(stats["closed_on_time"], stats["closed"]))
    return stats


def _class_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases per ``key`` and category class (06..10, 0 where none)."""
    return pd.crosstab(frame["key"], frame["cls"]).reindex(columns=_CLASS_COLUMNS, fill_value=0)


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator > 0)


def open_counts(cases: pd.DataFrame, grid_codes: pd.Series) -> pd.DataFrame:
    """Per grid of ``grid_codes`` (in its order, 0 where none): ``open`` cases and ``overdue``
    ones among them, as the maps show them.

    Open is :func:`~geo.incidents.workflow.is_open`; overdue is the cases' ``overdue`` column
    (as :func:`geo.incidents.records.list_incidents` computes it), none when there is no such column.
    """
    status = cases["status"] if "status" in cases else pd.Series(None, index=cases.index)
    still_open = is_open(status)
    overdue = cases["overdue"] if "overdue" in cases else pd.Series(False, index=cases.index)
    by_grid = (
        pd.DataFrame(
            {
                "grid": cases["grid_code"].astype(str),
                "open": still_open,
                "overdue": still_open & overdue.fillna(False).astype(bool),
            }
        )
        .groupby("grid")[["open", "overdue"]]
        .sum()
    )
    return by_grid.reindex(grid_codes.astype(str).to_numpy()).fillna(0).astype(int)


def category_counts(
    incidents: pd.DataFrame, *, by: str = "grid", since=None, until=None
) -> pd.DataFrame:
    """Long table of case counts per group and category: (group, ``category_code``, ``count``)."""
    key = _key(incidents, by)
    keep = _window(incidents, "reported_at", since, until)
    frame = pd.DataFrame(
        {key.name: key[keep], "category_code": incidents.loc[keep, "category_code"]}
    )
    return (
        frame.value_counts().rename("count").reset_index().sort_values([key.name, "category_code"])
    )


def monthly_trend(
    incidents: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    by: str | None = None,
    since=None,
    until=None,
    tz: str = "Asia/Shanghai",
) -> pd.DataFrame:
    """Cases reported (and closed, when events are given) per local calendar month.

    Returns a DataFrame with ``month`` (``"2026-01"``), the group column when ``by`` is given,
    ``reported`` and ``closed`` (closures in that month of the incidents in the range).
    """
    keep = _window(incidents, "reported_at", since, until)
    chosen = incidents.loc[keep]
    keys = [] if by is None else [_key(incidents, by).loc[chosen.index]]
    month = _month(chosen["reported_at"], tz)
    reported = chosen.groupby([month, *keys]).size().rename("reported")
    result = reported.to_frame()
    if events is not None:
        closures = events.loc[events["to_status"].eq("closed")]
        closures = closures.loc[closures["incident_id"].isin(chosen["incident_id"])]
        closures = closures.drop_duplicates("incident_id")
        lookup = chosen.set_index("incident_id")
        closed_keys = [lookup.loc[closures["incident_id"], k.name].to_numpy() for k in keys]
        closed_keys = [
            pd.Series(k, index=closures.index, name=n.name).fillna(UNASSIGNED)
            for k, n in zip(closed_keys, keys, strict=True)
        ]
        closed = closures.groupby([_month(closures["at"], tz), *closed_keys]).size()
        result = result.join(closed.rename("closed"), how="outer")
        result = result.fillna(0).astype("int64")
    return result.reset_index()


def _month(times: pd.Series, tz: str) -> pd.Series:
    local = pd.to_datetime(times, utc=True).dt.tz_convert(tz)
    return local.dt.strftime("%Y-%m").rename("month")


def hotspot_labels(
    incidents_metric: gpd.GeoDataFrame,
    *,
    radius: float = 30.0,
    min_cases: int = 3,
    window_days: float = 90.0,
) -> pd.Series:
    """Label repeat-hotspot clusters: DBSCAN over space and time with a KD-tree.

    Two cases are neighbours when they lie within ``radius`` metres and ``window_days`` days of
    each other. A case with at least ``min_cases - 1`` neighbours (so ``min_cases`` cases
    counting itself) is a core; cores that are neighbours share a cluster, and a case next to a
    core joins that core's cluster. Fallback points (``fallback_point`` True) and cases without
    a point are never in a hotspot.

    Returns
    -------
    Series of int
        Cluster number per case (0, 1, ...), -1 for none; aligned to ``incidents_metric``.
    """
    if incidents_metric.crs is None or not incidents_metric.crs.is_projected:
        raise InputError("hotspots need incidents in a metric (projected) CRS")
    labels = pd.Series(-1, index=incidents_metric.index, name="hotspot")
    geometry = incidents_metric.geometry
    usable = geometry.notna() & ~geometry.is_empty
    if "fallback_point" in incidents_metric.columns:
        usable &= ~incidents_metric["fallback_point"].fillna(False).astype(bool)
    usable &= pd.to_datetime(incidents_metric["reported_at"], utc=True).notna()
    points = incidents_metric.loc[usable]
    if len(points) < min_cases:
        return labels
    xy = np.column_stack([points.geometry.x, points.geometry.y])
    # in days since 1970, whatever the datetime resolution (pandas 3 infers s/ms/us/ns)
    times = pd.to_datetime(points["reported_at"], utc=True)
    days = ((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)).to_numpy()
    pairs = cKDTree(xy).query_pairs(r=radius, output_type="ndarray")
    pairs = pairs[np.abs(days[pairs[:, 0]] - days[pairs[:, 1]]) <= window_days]
    n = len(points)
    degree = np.bincount(pairs.ravel(), minlength=n)
    core = degree + 1 >= min_cases
    both_core = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    graph = coo_matrix((np.ones(len(both_core)), (both_core[:, 0], both_core[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    local = np.full(n, -1)
    local[core] = component[core]
    for a, b in pairs:  # border cases join the cluster of a neighbouring core
        if core[a] and local[b] == -1:
            local[b] = component[a]
        elif core[b] and local[a] == -1:
            local[a] = component[b]
    clustered = local >= 0
    _, renumbered = np.unique(local[clustered], return_inverse=True)
    local[clustered] = renumbered
    labels.loc[points.index] = local
    return labels


def repeat_hotspots(
    incidents_metric: gpd.GeoDataFrame,
    *,
    radius: float = 30.0,
    min_cases: int = 3,
    window_days: float = 90.0,
) -> gpd.GeoDataFrame:
    """Places with repeated cases: ``min_cases`` or more within ``radius`` m and ``window_days``.

    Parameters
    ----------
    incidents_metric : GeoDataFrame
        Incident points in a metric CRS with ``reported_at`` (and ``incident_id``,
        ``category_code``, ``fallback_point`` when present).

    Returns
    -------
    GeoDataFrame
        One row per hotspot: ``hotspot``, ``n_cases``, ``incident_ids`` (list), ``first_reported``,
        ``last_reported``, ``top_category`` and the centroid of its cases as geometry, in the
        input CRS; largest first.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> t = pd.Timestamp("2026-01-05", tz="UTC")
    >>> g = gpd.GeoDataFrame({"reported_at": [t] * 3},
    ...                      geometry=[Point(0, 0), Point(10, 0), Point(0, 10)], crs=32651)
    >>> int(repeat_hotspots(g)["n_cases"].iloc[0])
    3
    """
    labels = hotspot_labels(
        incidents_metric, radius=radius, min_cases=min_cases, window_days=window_days
    )
    members = incidents_metric.loc[labels >= 0].assign(hotspot=labels[labels >= 0])
    if "incident_id" not in members.columns:
        members = members.assign(incident_id=members.index)
    if "category_code" not in members.columns:
        members = members.assign(category_code=None)
    rows = []
    for number, group in members.groupby("hotspot"):
        times = pd.to_datetime(group["reported_at"], utc=True)
        top = group["category_code"].mode()
        rows.append(
            {
                "hotspot": int(number),
                "n_cases": len(group),
                "incident_ids": group["incident_id"].tolist(),
                "first_reported": times.min(),
                "last_reported": times.max(),
                "top_category": top.iloc[0] if len(top) else None,
                "geometry": MultiPoint(list(group.geometry)).centroid,
            }
        )
    columns = ["hotspot", "n_cases", "incident_ids", "first_reported", "last_reported",
               "top_category", "geometry"]  # fmt: skip
    result = gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=incidents_metric.crs)
    return result.sort_values(["n_cases", "hotspot"], ascending=[False, True]).reset_index(
        drop=True
    )
