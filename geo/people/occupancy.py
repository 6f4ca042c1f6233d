"""以房管人: occupancy per building and per grid, from the household records, aggregates only.

What every role may see: households by type, residents, rented units, floating residents and
their share, contact households and recent visits. No name, ID number or phone is read (nothing
is decrypted), so maps, OGC collections, ledgers and exports can carry these columns.

A building's ``households`` here replaces the bare count imported with the footprints where the
records cover it (:func:`building_households`).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from geo.people import households as hh
from geo.people.access import placement
from geo.people.counts import COLUMNS, TYPE_COLUMNS
from geo.storage.store import Store

RECORD_COLUMNS = ("household_id", "building_id", "household_type", "size", "tags")


def _records(store: Store) -> pd.DataFrame:
    """One row per household (no personal field); none, and no table created, without records."""
    if not has_records(store):
        return pd.DataFrame(columns=[*RECORD_COLUMNS, "contact", "visits"])
    table = hh.households.c
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(
                table.household_id, table.building_id, table.household_type, table.size, table.tags
            )
        ).all()
        cutoff = (dt.date.today() - dt.timedelta(days=30)).isoformat()
        visits = conn.execute(
            sa.select(hh.household_visits.c.household_id, sa.func.count())
            .where(hh.household_visits.c.visited_on >= cutoff)
            .group_by(hh.household_visits.c.household_id)
        ).all()
        cadres = {r[0] for r in conn.execute(sa.select(hh.household_cadres.c.household_id))}
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    contact_tags = set(hh.household_tags().query("contact_household")["tag"])
    frame["contact"] = frame["household_id"].isin(cadres) | frame["tags"].map(
        lambda text: bool(contact_tags & set(str(text).split("|")))
    )
    frame["visits"] = frame["household_id"].map(dict(visits)).fillna(0).astype(int)
    return frame


def _aggregate(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    grouped = frame.groupby(key)
    out = pd.DataFrame({"households": grouped.size()})
    for kind, column in TYPE_COLUMNS.items():
        out[column] = grouped["household_type"].agg(lambda s, k=kind: int((s == k).sum()))
    out["residents"] = grouped["size"].sum()
    out["rented_units"] = out["rented"]
    floating = frame["size"].where(frame["household_type"] == "流动", 0)
    out["floating_residents"] = floating.groupby(frame[key]).sum()
    out["floating_share"] = (
        out["floating_residents"] / out["residents"].where(out["residents"] > 0)
    ).round(3)
    out["contact_households"] = grouped["contact"].sum()
    out["visits_30d"] = grouped["visits"].sum()
    return out.astype({c: "int64" for c in COLUMNS if c != "floating_share"})


def building_occupancy(store: Store) -> pd.DataFrame:
    """One row per building with records (index ``building_id``), the :data:`COLUMNS`."""
    frame = _records(store)
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS)).rename_axis("building_id")
    return _aggregate(frame, "building_id")


def grid_occupancy(store: Store) -> pd.DataFrame:
    """One row per published grid (index ``grid_code``, with ``community``), the :data:`COLUMNS`;
    grids without records get zeros."""
    places = placement(store)
    frame = _records(store).join(places[["grid_code"]], on="building_id")
    grids = places.drop_duplicates("grid_code").set_index("grid_code")[["community"]]
    if frame.empty:
        counts = pd.DataFrame(columns=list(COLUMNS))
    else:
        counts = _aggregate(frame.dropna(subset=["grid_code"]), "grid_code")
    joined = grids.join(counts)
    filled = joined[[c for c in COLUMNS if c != "floating_share"]].fillna(0).astype("int64")
    joined[filled.columns] = filled
    return joined.sort_index()


def building_households(store: Store, counts: pd.Series) -> pd.Series:
    """The buildings' household counts, the records' count where a building has records."""
    recorded = building_occupancy(store)["households"]
    return recorded.reindex(counts.index).fillna(counts).astype("Int64")


# -- the facts maps and the ledger show ------------------------------------------------------------

#: a building's facts from its records, shown where the bare imported count was
BUILDING_FACTS = ("households", "residents", "rented_units", "floating_residents")


def has_records(store: Store) -> bool:
    """Whether the project holds household records (read without creating any table)."""
    try:
        with store.reading() as conn:
            return (
                conn.execute(sa.select(hh.households.c.household_id).limit(1)).first() is not None
            )
    except sa.exc.DBAPIError:  # no household table yet
        return False


def building_facts(store: Store, buildings: pd.DataFrame) -> pd.DataFrame:
    """``buildings`` (``building_id``, ``households``) with the records' facts where a building
    has records: ``households`` replaced by the records' count, ``residents``, ``rented_units``
    and ``floating_residents`` added (missing where a building has none). Counts only."""
    return with_building_facts(buildings, building_occupancy(store))


def with_building_facts(buildings: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """:func:`building_facts` from :func:`building_occupancy`'s ``facts`` (kept by a cache)."""
    if facts.empty:
        return buildings
    out = buildings.copy()
    found = out["building_id"].map(facts["households"])
    bare = out["households"] if "households" in out.columns else pd.Series(pd.NA, index=out.index)
    bare = pd.to_numeric(bare, errors="coerce").astype("float64")
    out["households"] = found.astype("float64").fillna(bare).round().astype("Int64")
    for column in BUILDING_FACTS[1:]:
        out[column] = out["building_id"].map(facts[column]).astype("Int64")
    return out


def grid_facts(grids: pd.DataFrame, buildings: pd.DataFrame, store: Store) -> pd.DataFrame:
    """``grids`` (``grid_code``) with the :data:`COLUMNS` of the records on their buildings
    (``buildings``: ``building_id``, ``grid_code`` in the plan shown, ``households`` as
    :func:`building_facts` gives them): a grid's ``households`` becomes the sum of its buildings'
    where any of them has records; grids without records keep their columns, the others NA."""
    out = grids.copy()
    frame = _records(store)
    codes = buildings.set_index("building_id")["grid_code"]
    frame["grid_code"] = frame["building_id"].map(codes)
    frame = frame.dropna(subset=["grid_code"])
    if frame.empty:
        return out
    counts = _aggregate(frame, "grid_code").drop(columns="households")
    covered = out["grid_code"].isin(counts.index)
    summed = pd.to_numeric(buildings["households"], errors="coerce").groupby(buildings["grid_code"])
    recounted = out["grid_code"].map(summed.sum())
    old = out["households"] if "households" in out.columns else pd.Series(pd.NA, index=out.index)
    out["households"] = recounted.where(covered, pd.to_numeric(old, errors="coerce"))
    out["households"] = out["households"].astype("Int64")
    for column in counts.columns:
        values = out["grid_code"].map(counts[column])
        out[column] = values if column == "floating_share" else values.astype("Int64")
    return out
