"""联系户 and 上门服务: households that need contact, the cadre who answers for each, the visits.

Bixi asks every cadre to answer for two or three households that need contact (种养殖户、动迁户、
上访户、生活困难户) and to visit them at home. :func:`assign` gives a household its cadre and warns
when a cadre then holds more than :data:`MAX_PER_CADRE`; :func:`record_visit` keeps what was asked,
done and left to follow up (sealed: such notes name people); :func:`due` lists, per cadre, the
households not visited within the given days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from geo.errors import InputError, NotFound
from geo.people import households as hh
from geo.people.access import Viewer, placement, scope
from geo.people.privacy import Keyring
from geo.storage.store import Store, now_iso

MAX_PER_CADRE = 3


@dataclass
class Assigned:
    """What assigning did: the cadre, how many households they now hold, and a warning if too many."""

    cadre: str
    households: list[str]
    holds: int
    warning: str = ""


def _in_scope(store: Store, conn: sa.Connection, viewer: Viewer, ids: list[str]) -> None:
    """NotFound unless every household exists and lies in ``viewer``'s grids."""
    allowed = scope(store, viewer, conn)
    rows = conn.execute(
        sa.select(hh.households.c.household_id, hh.households.c.building_id).where(
            hh.households.c.household_id.in_(ids)
        )
    ).all()
    found = {key for key, building in rows if allowed is None or building in allowed}
    missing = sorted(set(ids) - found)
    if missing:
        raise NotFound(
            f"no household {', '.join(missing[:5])} in your scope",
            zh=f"您的范围内没有住户 {', '.join(missing[:5])}",
        )


def assign(store: Store, viewer: Viewer, household_ids: list[str], cadre: str) -> Assigned:
    """Make ``cadre`` answer for the households (replacing their former cadre)."""
    cadre = cadre.strip()
    if not cadre or not household_ids:
        raise InputError("give a cadre and at least one household", zh="请给出联系干部和住户编号")
    table = hh.household_cadres
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        _in_scope(store, conn, viewer, household_ids)
        conn.execute(sa.delete(table).where(table.c.household_id.in_(household_ids)))
        conn.execute(
            sa.insert(table),
            [
                {
                    "household_id": k,
                    "cadre": cadre,
                    "assigned_at": now_iso(),
                    "assigned_by": viewer.name,
                }
                for k in household_ids
            ],
        )
        holds = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.cadre == cadre)
        ).scalar_one()
        hh.touch(store, conn)
        store.log(
            conn,
            "contact households assigned",
            actor=viewer.name,
            cadre=cadre,
            households=household_ids,
        )
    warning = ""
    if holds > MAX_PER_CADRE:
        warning = f"{cadre} now answers for {holds} households, more than {MAX_PER_CADRE}"
    return Assigned(cadre=cadre, households=list(household_ids), holds=int(holds), warning=warning)


def record_visit(
    store: Store,
    keys: Keyring,
    viewer: Viewer,
    household_id: str,
    *,
    cadre: str,
    visited_on: dt.date,
    notes: tuple[str, str, str] = ("", "", ""),
) -> int:
    """Record a home visit; ``notes`` are what was asked, what was done, the follow-up."""
    if visited_on > dt.date.today() + dt.timedelta(days=1):
        raise InputError(
            f"a visit on {visited_on} is in the future", zh=f"走访日期 {visited_on} 在未来"
        )
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        hh.checked_keyring(store, keys, conn)
        _in_scope(store, conn, viewer, [household_id])
        at = now_iso()
        record = f"{household_id}@{at}"
        sealed = {
            column: keys.seal(text.strip(), "household_visits", record, column)
            for column, text in zip(("asked", "done", "follow_up"), notes, strict=True)
        }
        visit_id = conn.execute(
            sa.insert(hh.household_visits).values(
                household_id=household_id,
                cadre=cadre.strip() or viewer.name,
                visited_on=visited_on.isoformat(),
                recorded_at=at,
                recorded_by=viewer.name,
                **sealed,
            )
        ).inserted_primary_key[0]
        hh.touch(store, conn)
        store.log(
            conn,
            "household visited",
            actor=viewer.name,
            household_id=household_id,
            visit_id=visit_id,
        )
    return int(visit_id)


def due(
    store: Store, viewer: Viewer, *, days: int = 30, today: dt.date | None = None
) -> pd.DataFrame:
    """Per cadre, the assigned households not visited within ``days`` (never visited included).

    Returns ``cadre``, ``household_id``, ``building_id``, ``grid_code``, ``community``,
    ``last_visit`` (None if never), ``days_since`` (None if never): no personal field.
    """
    today = today or dt.date.today()
    hh.ensure_tables(store)
    with store.reading() as conn:
        allowed = scope(store, viewer, conn)
        cadres = pd.DataFrame(
            conn.execute(
                sa.select(hh.household_cadres.c.household_id, hh.household_cadres.c.cadre)
            ).all(),
            columns=["household_id", "cadre"],
        )
        homes = pd.DataFrame(
            conn.execute(
                sa.select(hh.households.c.household_id, hh.households.c.building_id)
            ).all(),
            columns=["household_id", "building_id"],
        )
        visits = conn.execute(
            sa.select(
                hh.household_visits.c.household_id, sa.func.max(hh.household_visits.c.visited_on)
            ).group_by(hh.household_visits.c.household_id)
        ).all()
    frame = cadres.merge(homes, on="household_id")
    if allowed is not None:
        frame = frame[frame["building_id"].isin(allowed)]
    last = dict(visits)
    frame["last_visit"] = frame["household_id"].map(last)
    since = (pd.Timestamp(today) - pd.to_datetime(frame["last_visit"])).dt.days
    frame["days_since"] = since.astype("Int64")
    frame = frame[frame["days_since"].isna() | (frame["days_since"] > days)]
    places = placement(store)
    frame = frame.join(places[["grid_code", "community"]], on="building_id")
    columns = [
        "cadre",
        "household_id",
        "building_id",
        "grid_code",
        "community",
        "last_visit",
        "days_since",
    ]
    return frame[columns].sort_values(["cadre", "household_id"]).reset_index(drop=True)
