"""一户一档: households and residents on the buildings, imported from the street office's lists.

A household list arrives as an Excel workbook or a CSV (GBK or UTF-8) with one row per resident
and Chinese headers; a saved column mapping (``data/household_mappings/``) says which header is
which. Every household is placed on a building: by the building id, else by its address (小区 +
楼号 + 单元 + 室, :mod:`geo.people.addresses`), else by its coordinate through the published
plan's locate index. A household that matches no building is kept in ``household_review`` with
the reason, never dropped. Importing the same list again changes nothing; a changed household is
updated and the update is logged.

Names, ID numbers and phones are sealed before they reach the project file
(:mod:`geo.people.privacy`), and the tables holding them are plain tables, not registered as
GeoPackage layers, so QGIS does not list them. The audit log gets counts and household ids,
never a personal field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import InputError
from geo.people import addresses
from geo.people.privacy import Keyring, normalise_id, valid_id
from geo.reference import reference_dir, reference_file
from geo.storage.store import Store

metadata = sa.MetaData()

#: one row per household placed on a building; personal cells are AES-GCM sealed (bytes)
households = sa.Table(
    "households",
    metadata,
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("building_id", sa.Text, nullable=False, index=True),
    sa.Column("unit", sa.Text, nullable=False, server_default=""),
    sa.Column("room", sa.Text, nullable=False, server_default=""),
    sa.Column("household_type", sa.Text, nullable=False, server_default=""),
    sa.Column("size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tags", sa.Text, nullable=False, server_default=""),  # "低保|独居老人"
    sa.Column("head_name", sa.LargeBinary, nullable=True),
    sa.Column("phone", sa.LargeBinary, nullable=True),
    sa.Column("phone_hash", sa.Text, nullable=True, index=True),
    sa.Column("fingerprint", sa.Text, nullable=False),  # keyed hash of the imported rows
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("matched_by", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.Text, nullable=False),
)

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.Text, primary_key=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.LargeBinary, nullable=True),
    sa.Column("id_number", sa.LargeBinary, nullable=True),
    sa.Column("id_hash", sa.Text, nullable=True, index=True),
    sa.Column("phone", sa.LargeBinary, nullable=True),
    sa.Column("phone_hash", sa.Text, nullable=True, index=True),
    sa.Column("relation", sa.Text, nullable=False, server_default=""),
    sa.Column("tags", sa.Text, nullable=False, server_default=""),
)

#: rows that matched no building (or failed a check), kept with the reason; the row sealed whole
household_review = sa.Table(
    "household_review",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("place", sa.Text, nullable=False, server_default=""),  # 小区/楼号/单元/室 as given
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
)

#: the cadre (联系干部) who answers for a household that needs contact
household_cadres = sa.Table(
    "household_cadres",
    metadata,
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("cadre", sa.Text, nullable=False, index=True),
    sa.Column("assigned_at", sa.Text, nullable=False),
    sa.Column("assigned_by", sa.Text, nullable=False, server_default=""),
)

household_visits = sa.Table(
    "household_visits",
    metadata,
    sa.Column("visit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("cadre", sa.Text, nullable=False, index=True),
    sa.Column("visited_on", sa.Text, nullable=False),  # YYYY-MM-DD
    sa.Column("asked", sa.LargeBinary, nullable=True),  # free text may name people: sealed
    sa.Column("done", sa.LargeBinary, nullable=True),
    sa.Column("follow_up", sa.LargeBinary, nullable=True),
    sa.Column("recorded_at", sa.Text, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False, server_default=""),
)

HOUSEHOLD_TYPES = ("户籍", "常住", "流动", "出租", "空置")
KEY_CHECK_SETTING = "household_key_check"
#: counts every change to the records, so caches of what depends on them (served maps) rebuild
REVISION_SETTING = "households_revision"
MAPPINGS = "household_mappings"
DEFAULT_MAPPING = "bixi"
#: the standard columns a household list is read into (each from the mapping's headers)
ROLES = (
    "household_id",
    "building_id",
    "community",
    "building_no",
    "unit",
    "room",
    "address",
    "lon",
    "lat",
    "household_type",
    "household_tags",
    "size",
    "name",
    "id_number",
    "phone",
    "relation",
    "tags",
)
PERSONAL = ("name", "id_number", "phone")
HEAD = ("户主", "本人", "head")


def ensure_tables(store: Store, conn: Connection | None = None) -> None:
    """Create the household tables where missing (SQLAlchemy Core: any backend)."""
    if conn is not None:
        metadata.create_all(conn)
        return
    with store.transaction() as new:
        metadata.create_all(new)


def checked_keyring(store: Store, keys: Keyring, conn: Connection) -> Keyring:
    """``keys`` after checking it is the key this project's records were sealed with (the first
    use records its check value; a different key is a one-line InputError, not garbage)."""
    stored = store.get_setting(KEY_CHECK_SETTING, conn=conn)
    if stored is None:
        store.set_setting(conn, KEY_CHECK_SETTING, keys.check_value())
    elif stored != keys.check_value():
        raise InputError(
            "this household key is not the one the project's records were sealed with",
            zh="住户密钥与本项目加密记录时所用的密钥不同",
        )
    return keys


def touch(store: Store, conn: Connection) -> None:
    """Count one change to the household records (in the writer's transaction)."""
    store.set_setting(conn, REVISION_SETTING, int(store.get_setting(REVISION_SETTING, 0, conn)) + 1)


def revision(store: Store, conn: Connection | None = None) -> int:
    """How many times the household records changed (0: never); read without any table."""
    return int(store.get_setting(REVISION_SETTING, 0, conn))


# -- reference data ------------------------------------------------------------------------------


def household_tags() -> pd.DataFrame:
    """The shipped tag list (``data/household_tags.csv``): tag, tag_en, contact_household, note."""
    frame = pd.read_csv(reference_file("household_tags.csv"), dtype=str, keep_default_na=False)
    frame["contact_household"] = frame["contact_household"].eq("1")
    return frame


def load_mapping(name: str | Path | None = None) -> dict[str, Any]:
    """A saved column mapping: a shipped name (``bixi``) or a JSON file of role -> headers."""
    given = Path(str(name)) if name is not None else None
    if given is not None and given.suffix == ".json" and given.exists():
        path = given
    else:
        shipped = {p.stem: p for p in (reference_dir() / MAPPINGS).glob("*.json")}
        path = shipped.get(str(name or DEFAULT_MAPPING).removesuffix(".json"))
        if path is None:
            raise InputError(
                f"no household mapping {name!r}; shipped: {', '.join(sorted(shipped))}",
                zh=f"没有名为 {name} 的住户表映射",
            )
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read the mapping {path.name}: {error}") from None
    unknown = sorted(set(mapping) - {*ROLES, "crs"})
    if unknown:
        raise InputError(f"{path.name}: unknown roles {', '.join(unknown)}")
    return mapping


def read_household_rows(path: str | Path, mapping: Mapping[str, Any]) -> pd.DataFrame:
    """The list's rows in the standard columns (:data:`ROLES`, text) plus ``line`` (1 = header).

    Reads .xlsx (first sheet) and CSV in UTF-8 or GBK, as the incident feeds do.
    """
    from geo.incidents.feeds import read_feed_records

    raw = read_feed_records(path)
    by_key = {addresses.fold(column): column for column in raw.columns}
    frame = pd.DataFrame(index=raw.index)
    for role in ROLES:
        headers = mapping.get(role) or []
        headers = [headers] if isinstance(headers, str) else headers
        found = next((by_key[h] for h in map(addresses.fold, headers) if h in by_key), None)
        frame[role] = raw[found].astype(str).str.strip() if found is not None else ""
    placed = frame[["building_id", "address", "building_no", "lon"]].ne("").any(axis=1)
    if not len(frame) or not placed.any():
        raise InputError(
            f"{Path(path).name}: no column gives a building id, address, 楼号 or coordinate",
            zh=f"{Path(path).name}：没有楼栋编号、地址、楼号或经纬度列",
        )
    frame["line"] = np.arange(len(frame)) + 2
    return frame.reset_index(drop=True)


# -- one household per group of rows ---------------------------------------------------------------


def complete_addresses(rows: pd.DataFrame) -> pd.DataFrame:
    """Fill 小区/楼号/单元/室 from the one-line address where the columns are empty."""
    rows = rows.copy()
    parsed = [
        addresses.parse_address(text) if text else ("", "", "", "") for text in rows["address"]
    ]
    parts = pd.DataFrame(
        parsed, columns=["community", "building_no", "unit", "room"], index=rows.index
    )
    for column in parts.columns:
        rows[column] = rows[column].where(rows[column] != "", parts[column])
    rows["unit"] = rows["unit"].map(addresses.unit_room)
    rows["room"] = rows["room"].map(addresses.unit_room)
    return rows


def household_keys(rows: pd.DataFrame, keys: Keyring) -> pd.Series:
    """Each row's household: the list's own id, else a keyed hash of where it lives."""
    where = (
        rows["building_id"]
        + "|"
        + [
            addresses.building_key(c, b)
            for c, b in zip(rows["community"], rows["building_no"], strict=True)
        ]
        + "|"
        + rows["unit"]
        + "|"
        + rows["room"]
        + "|"
        + rows["lon"]
        + ","
        + rows["lat"]
    )
    derived = pd.Series(
        ["H" + keys.digest(text, "household")[:15] for text in where], index=rows.index
    )
    given = rows["household_id"]
    # some offices number a household by its head's ID number or phone: never kept in clear
    personal = given.map(lambda text: valid_id(normalise_id(text))) | given.str.fullmatch(
        r"1[3-9]\d{9}"
    )
    hidden = pd.Series(
        ["H" + keys.digest(text, "household id")[:15] for text in given[personal]],
        index=given.index[personal],
        dtype=object,
    )
    return given.where(given != "", derived).where(~personal, hidden)


@dataclass
class ImportOutcome:
    """What ``gridmap households import`` reports (counts only: no personal field)."""

    households: int = 0
    residents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    review: int = 0
    matched_by: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    unknown_tags: list[str] = field(default_factory=list)
