"""The rows of the ``incidents`` layer, made and changed on frames, without the project file.

Why: a case row is decided in one place: made from a normalised feed (:func:`new_rows`), its
stored coordinates read again in their real system (:func:`read_as`), stepped through the case
loop (:func:`apply_steps`). :mod:`geo.incidents.records` reads and writes these rows, and the use
cases (:mod:`geo.usecases.incidents`) put the two together in one transaction each; what a row
holds can be read, and tested, here without a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import to_wgs84
from geo.errors import InputError
from geo.incidents.feeds import FEED_COLUMNS, FeedError, IncidentMapping
from geo.incidents.workflow import FINAL_STATUSES, STATUSES, deadlines, transition

#: columns of the incidents layer, in order
COLUMNS = (
    "incident_id",
    "source",
    "source_id",
    "category_code",
    "category_name",
    "class_code",
    "category_known",
    "category_raw",
    "status",
    "reported_at",
    "registered_at",
    "closed_at",
    "deadline",
    "description",
    "address",
    "lon",
    "lat",
    "located",
    "unlocated_reason",
    "fallback_point",
    "grid_code",
    "community",
    "worker_id",
    "worker",
    "imported_at",
)
#: the grid, community and worker a case is assigned (from the published grids)
ASSIGNED = ("grid_code", "community", "worker_id", "worker")
#: what a re-import with ``--update`` may change: the feed's own facts, not the workflow
CONTENT = (
    "category_code",
    "category_raw",
    "reported_at",
    "description",
    "address",
    "lon",
    "lat",
    "located",
    "unlocated_reason",
    "fallback_point",
)
#: what a case keeps when its content is updated or relocated: the case loop and its times
WORKFLOW = ("status", "registered_at", "closed_at", "deadline", "imported_at")
#: text columns stored as None where missing (never NaN)
_TEXT = (
    "description",
    "address",
    "category_raw",
    "unlocated_reason",
    "grid_code",
    "community",
    "worker_id",
    "worker",
)


@dataclass(frozen=True)
class CaseImport:
    """How a feed's cases are taken in.

    Attributes
    ----------
    mapping : IncidentMapping
        The feed's columns (unnamed ones are recognised by their usual headers).
    source : str
        The feed's name (``12345``, ``数字城管``): a case is ``source:id``.
    author : str
        Who imports, for the events and the audit log.
    allow_unlocated : bool
        Store a feed even when none of its cases has usable coordinates.
    check_crs : bool
        Refuse a feed read as WGS84 whose points look like GCJ-02 or BD-09.
    update : bool
        Rewrite stored cases whose content changed; their workflow stays.
    """

    mapping: IncidentMapping
    source: str
    author: str = ""
    allow_unlocated: bool = False
    check_crs: bool = True
    update: bool = False


def utc(moment: Any) -> pd.Timestamp:
    """A time as UTC; naive times are taken as Asia/Shanghai (the users' clock)."""
    stamp = pd.Timestamp(moment)
    return (
        stamp.tz_localize("Asia/Shanghai").tz_convert("UTC")
        if stamp.tzinfo is None
        else stamp.tz_convert("UTC")
    )


def refuse_unplaceable(summary: dict[str, Any]) -> None:
    """Refuse a feed in which no case has usable coordinates: its mapping is wrong, or it is not
    this district's, and storing it would only add cases no grid or worker ever sees."""
    if not summary["read"] or summary["located"]:
        return
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["unlocated_reasons"].items())
    times = summary["bad_time"]
    when = f"; {times} without a readable time" if times else ""
    read_with = f"; columns read: {summary['mapping']}" if summary.get("mapping") else ""
    raise FeedError(
        f"none of the {summary['read']} cases has usable coordinates ({reasons}){when}; "
        f"nothing was stored{read_with}",
        hint="check the coordinate columns and --crs, or store them unlocated with "
        "--allow-unlocated (API: allow_unlocated=true)",
        zh=f"{summary['read']} 条案件均无可用坐标（{reasons}），未导入任何案件；"
        "请检查坐标列和坐标系，或用 --allow-unlocated 导入为未定位案件",
    )


def feed_cases(feed: pd.DataFrame) -> pd.DataFrame:
    """The feed's rows that are not duplicates, with their ``incident_id`` (``source:id``);
    normalised feed rows (:data:`FEED_COLUMNS`) are required."""
    missing = [c for c in FEED_COLUMNS if c not in feed.columns]
    if missing:
        raise InputError(f"incident rows lack the columns {', '.join(missing)}")
    feed = feed[~feed["duplicate"].astype(bool)].copy()
    feed["incident_id"] = feed["source"].astype(str) + ":" + feed["source_id"].astype(str)
    return feed


def new_rows(
    feed: pd.DataFrame, catalogue: pd.DataFrame, assigned: pd.DataFrame, *, imported_at: str
) -> gpd.GeoDataFrame:
    """Layer rows (:data:`COLUMNS`, WGS84 points) of fresh cases: status ``reported``, category
    names from ``catalogue``, deadlines from their reported time, ``assigned`` grids."""
    cases = _named(feed, catalogue)
    cases["deadline"] = _deadlines(cases, catalogue)
    for column in ASSIGNED:
        cases[column] = assigned[column]
    cases["imported_at"] = imported_at
    for column in _TEXT:
        cases[column] = cases[column].astype(object).where(cases[column].notna(), None)
    for column in ("located", "fallback_point", "category_known"):
        cases[column] = cases[column].astype("boolean")
    return gpd.GeoDataFrame(cases[list(COLUMNS)], geometry=points_of(cases), crs=4326)


def _named(feed: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """The feed's columns with the category's names and the times of a case just reported."""
    names = catalogue.set_index("code")
    cases = pd.DataFrame({c: feed[c] for c in FEED_COLUMNS if c in feed.columns})
    cases.insert(0, "incident_id", feed["incident_id"])
    cases["category_name"] = feed["category_code"].map(names["name_zh"])
    cases["class_code"] = feed["category_code"].map(names["class_code"]).astype(str)
    cases["status"] = "reported"
    cases["registered_at"] = pd.NaT
    cases["closed_at"] = pd.NaT
    for column in ("registered_at", "closed_at"):
        cases[column] = pd.to_datetime(cases[column], utc=True)
    cases["reported_at"] = pd.to_datetime(cases["reported_at"], utc=True)
    return cases


def _deadlines(cases: pd.DataFrame, catalogue: pd.DataFrame) -> pd.Series:
    """Each case's deadline from its reported time (NaT without one)."""
    has_time = cases["reported_at"].notna()
    found = pd.Series(pd.NaT, index=cases.index, dtype="datetime64[ns, UTC]")
    if has_time.any():
        found.loc[has_time] = deadlines(cases[has_time], catalogue)
    return found


def points_of(cases: pd.DataFrame) -> list:
    """Each case's WGS84 point where ``located``, None elsewhere."""
    located = cases["located"].fillna(False).to_numpy(bool)
    points = gpd.points_from_xy(cases["lon"], cases["lat"])
    return list(np.where(located, np.asarray(points, dtype=object), None))


def read_as(
    located: pd.DataFrame, *, crs: str, bounds: tuple[float, float, float, float] | None
) -> pd.DataFrame:
    """Located cases with their stored coordinates read as ``crs``; those that land outside
    ``bounds`` (the district's WGS84 box) become unlocated."""
    located = located.copy()
    lon, lat = to_wgs84(located["lon"].to_numpy(float), located["lat"].to_numpy(float), crs=crs)
    located["lon"], located["lat"] = lon, lat
    if bounds is not None:
        west, south, east, north = bounds
        outside = ~((lon >= west) & (lon <= east) & (lat >= south) & (lat <= north))
        located.loc[outside, "located"] = False
        located.loc[outside, "unlocated_reason"] = "outside the district"
        located.loc[outside, ["lon", "lat"]] = np.nan
    return located


def comparable(cases: pd.DataFrame) -> pd.DataFrame:
    """The :data:`CONTENT` of cases as text, so that stored and fresh rows compare equal."""
    out = pd.DataFrame(index=cases.index)
    for column in CONTENT:
        values = cases[column]
        if column in ("lon", "lat"):
            values = pd.to_numeric(values, errors="coerce").round(7)
        elif column == "reported_at":
            values = pd.to_datetime(values, utc=True, format="ISO8601")
        elif column in ("located", "fallback_point"):
            values = values.fillna(False).astype(bool)
        out[column] = ["" if pd.isna(v) else str(v) for v in values]
    return out


def changed_rows(stored: pd.DataFrame, revised: pd.DataFrame) -> pd.DataFrame:
    """The ``revised`` cases (indexed by id, as ``stored``) whose :data:`CONTENT` differs from
    the stored one, keeping the stored :data:`WORKFLOW`."""
    revised = revised[revised.index.isin(stored.index)]
    old = stored.loc[revised.index]
    changed = (comparable(old) != comparable(revised)).any(axis=1)
    new = revised[changed].copy()
    for column in WORKFLOW:
        new[column] = old.loc[changed, column]
    return new


def check_statuses(statuses: pd.Series) -> None:
    """Refuse steps to a status the case loop does not have."""
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise InputError(
            f"unknown status {', '.join(unknown)}; statuses: {', '.join(STATUSES)}",
            zh=f"未知状态 {', '.join(unknown)}",
        )


@dataclass(frozen=True)
class StepContext:
    """What checking steps needs besides the cases: now, each case's last step, the catalogue
    (for the deadline of a case registered; None when no step registers one)."""

    now: pd.Timestamp
    last_event: dict[str, pd.Timestamp]
    catalogue: pd.DataFrame | None


def apply_steps(
    state: dict[str, dict[str, Any]], steps: pd.DataFrame, context: StepContext
) -> list[dict[str, Any]]:
    """Apply workflow steps (``incident_id``, ``status``, ``actor``, ``note``, ``at``) in order to
    ``state`` (case rows by id, changed in place) and return their events; an illegal step, or
    one in the future or before the case's previous step, refuses them all."""
    events = []
    for step in steps.to_dict("records"):
        case = state[step["incident_id"]]
        at = _step_time(step, context)
        transition(str(case["status"]), step["status"])
        events.append(
            {
                "incident_id": step["incident_id"],
                "from_status": case["status"],
                "to_status": step["status"],
                "actor": step.get("actor") or "",
                "at": at.isoformat(),
                "note": step.get("note") or "",
            }
        )
        _advance(case, step["status"], at, context.catalogue)
        context.last_event[step["incident_id"]] = at
    return events


def _step_time(step: dict[str, Any], context: StepContext) -> pd.Timestamp:
    """When a step was taken (now unless given), refused in the future or before the last step."""
    now = context.now
    at = now if step.get("at") is None or pd.isna(step.get("at")) else utc(step["at"])
    previous = context.last_event.get(step["incident_id"])
    if at > now + pd.Timedelta(minutes=5) or (previous is not None and at < previous):
        raise InputError(
            f"step {step['status']} of {step['incident_id']} at {at.isoformat()} is in the future "
            "or before the case's previous step",
            zh=f"案件 {step['incident_id']} 的流程时间不合理（晚于现在或早于上一步）",
        )
    return at


def _advance(
    case: dict[str, Any], status: str, at: pd.Timestamp, catalogue: pd.DataFrame | None
) -> None:
    """One legal step on a case row: its status, and the times the step sets."""
    case["status"] = status
    if status == "registered" and pd.isna(case["registered_at"]):
        case["registered_at"] = at
        case["deadline"] = deadlines(pd.DataFrame([{**case, "registered_at": at}]), catalogue).iloc[
            0
        ]
    if status in FINAL_STATUSES:
        case["closed_at"] = at


def step_rows(state: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The rows :func:`apply_steps` changed, as the layer's columns to update by ``incident_id``."""
    update = pd.DataFrame(
        [
            {
                "status": case["status"],
                "registered_at": case["registered_at"],
                "closed_at": case["closed_at"],
                "deadline": case["deadline"],
                "incident_id": incident_id,
            }
            for incident_id, case in state.items()
        ]
    )
    for column in ("registered_at", "closed_at", "deadline"):
        update[column] = pd.to_datetime(update[column], utc=True)
    return update
