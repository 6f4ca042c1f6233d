"""Writing a household list into the project file: idempotent, sealed, logged by count.

Each household's rows are reduced to one fingerprint (a keyed hash of everything the list says
about it). Importing a list again compares fingerprints: equal households are left alone, changed
ones are replaced whole (household and residents) with one audit row each, new ones are added.
Households absent from the list are kept: people leave through ``gridmap households purge``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.people import households as hh
from geo.people.matching import place_households
from geo.people.privacy import Keyring, normalise_id, normalise_phone, valid_id
from geo.storage.store import Store, now_iso

_TAG_SPLIT = re.compile(r"[|、,，;；/\s]+")


def import_households(
    store: Store,
    path: str | Path,
    keys: Keyring,
    *,
    mapping: str | Path | dict[str, Any] | None = None,
    actor: str = "",
) -> hh.ImportOutcome:
    """Import a household list (.xlsx or CSV, UTF-8 or GBK) into the project file.

    Parameters
    ----------
    store
        The project file; it needs its buildings (and a published plan for coordinates).
    path
        The list: one row per resident (a household without residents: one row).
    keys
        The household keyring (:func:`geo.people.privacy.load_keyring`).
    mapping
        A shipped mapping name, a JSON file, or the mapping itself (default ``bixi``).
    actor
        Who imports, for the audit log.
    """
    spec = mapping if isinstance(mapping, dict) else hh.load_mapping(mapping)
    rows = hh.complete_addresses(hh.read_household_rows(path, spec))
    rows["key"] = hh.household_keys(rows, keys)
    rows = _checked_rows(rows)
    first = rows.drop_duplicates("key").set_index("key")
    placed = place_households(store, first, crs=str(spec.get("crs") or "wgs84"))
    problems = rows[rows["problem"] != ""].drop_duplicates("key").set_index("key")["problem"]
    placed.loc[problems.index, "building_id"] = None
    placed.loc[problems.index, "reason"] = problems
    known = set(hh.household_tags()["tag"])
    outcome = hh.ImportOutcome(households=len(first), residents=int(_named(rows).sum()))
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        hh.checked_keyring(store, keys, conn)
        _write(store, conn, rows, placed, keys, outcome, source=Path(path).name, actor=actor)
        outcome.unknown_tags = sorted(_all_tags(rows) - known)
        hh.touch(store, conn)
        store.log(
            conn,
            "households imported",
            actor=actor,
            source=Path(path).name,
            **{k: v for k, v in vars(outcome).items() if k != "unknown_tags"},
        )
    return outcome


def _named(rows: pd.DataFrame) -> pd.Series:
    return (rows["name"] != "") | (rows["id_number"] != "")


def _checked_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """ID numbers and phones normalised; ``problem`` says what keeps a row's household out."""
    rows = rows.copy()
    rows["id_number"] = rows["id_number"].map(normalise_id)
    rows["phone"] = rows["phone"].map(normalise_phone)
    bad_id = (rows["id_number"] != "") & ~rows["id_number"].map(valid_id)
    bad_type = (rows["household_type"] != "") & ~rows["household_type"].isin(hh.HOUSEHOLD_TYPES)
    problem = pd.Series("", index=rows.index, dtype=object)
    place = rows["building_id"]
    for column in ("community", "building_no", "unit", "room", "lon", "lat"):
        place = place + "\x1f" + rows[column]
    places = place.groupby(rows["key"]).transform("nunique")
    problem[places > 1] = "the household's rows name different places"
    problem[bad_type] = "unknown household type: " + rows.loc[bad_type, "household_type"]
    problem[bad_id] = "ID number fails the GB 11643 check digit, line " + rows.loc[
        bad_id, "line"
    ].astype(str)
    rows["problem"] = problem
    return rows


def _tags(text: str) -> list[str]:
    return [t for t in _TAG_SPLIT.split(text or "") if t]


def _all_tags(rows: pd.DataFrame) -> set[str]:
    return {t for text in (*rows["tags"], *rows["household_tags"]) for t in _tags(text)}


def _write(
    store: Store,
    conn: Connection,
    rows: pd.DataFrame,
    placed: pd.DataFrame,
    keys: Keyring,
    outcome: hh.ImportOutcome,
    *,
    source: str,
    actor: str,
) -> None:
    # plain dicts, not a pandas group per household: 10,000 households in a second, not a minute
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows.to_dict("records"):
        groups.setdefault(row["key"], []).append(row)
    where_of = placed.to_dict("index")
    stored = _stored_fingerprints(conn, list(groups))
    _delete_in(conn, hh.household_review, hh.household_review.c.household_id, list(groups))
    households, people, replaced, review = [], [], [], []
    for key, group in groups.items():
        where = where_of[key]
        if where["building_id"] is None or pd.isna(where["building_id"]):
            review.extend(_review_rows(group, where["reason"], keys, source))
            _count(outcome.reasons, _reason_kind(where["reason"]))
            continue
        record, members = _household(key, group, where, keys, source)
        _count(outcome.matched_by, where["matched_by"])
        if stored.get(key) == record["fingerprint"]:
            outcome.unchanged += 1
            continue
        if key in stored:
            replaced.append(key)
        households.append(record)
        people.extend(members)
    outcome.review = sum(outcome.reasons.values())
    outcome.updated, outcome.added = len(replaced), len(households) - len(replaced)
    _delete_in(conn, hh.residents, hh.residents.c.household_id, replaced)
    _delete_in(conn, hh.households, hh.households.c.household_id, replaced)
    for table, values in (
        (hh.households, households),
        (hh.residents, people),
        (hh.household_review, review),
    ):
        if values:
            conn.execute(sa.insert(table), values)
    for key in replaced:
        store.log(conn, "household updated", actor=actor, household_id=key, source=source)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].split(", line")[0]


def _stored_fingerprints(conn: Connection, ids: list[str]) -> dict[str, str]:
    table = hh.households
    found: dict[str, str] = {}
    for start in range(0, len(ids), 900):  # bound parameters per statement stay few
        chunk = ids[start : start + 900]
        query = sa.select(table.c.household_id, table.c.fingerprint).where(
            table.c.household_id.in_(chunk)
        )
        found.update(dict(conn.execute(query).all()))
    return found


def _delete_in(conn: Connection, table: sa.Table, column: sa.Column, ids: list[str]) -> None:
    for start in range(0, len(ids), 900):
        conn.execute(sa.delete(table).where(column.in_(ids[start : start + 900])))


def _household(
    key: str, group: list[dict[str, Any]], where: dict[str, Any], keys: Keyring, source: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One household row and its residents, sealed, with the fingerprint of what the list said."""
    first = group[0]
    named = [row for row in group if row["name"] or row["id_number"]]
    heads = [row for row in named if row["relation"] in hh.HEAD]
    head = (heads or named or group)[0]
    size_text = next((row["size"] for row in group if row["size"]), "")
    size = int(float(size_text)) if re.fullmatch(r"\d+(\.0+)?", size_text) else len(named)
    tags = sorted(
        {t for row in group for t in (*_tags(row["household_tags"]), *_tags(row["tags"]))}
    )
    said = [[row[r] for r in hh.ROLES] for row in group]
    fingerprint = keys.digest(json.dumps([where["building_id"], said], ensure_ascii=False), "row")
    record = {
        "household_id": key,
        "building_id": str(where["building_id"]),
        "unit": first["unit"],
        "room": first["room"],
        "household_type": first["household_type"] or "常住",
        "size": size,
        "tags": "|".join(tags),
        "head_name": keys.seal(head["name"], "households", key, "head_name"),
        "phone": keys.seal(head["phone"], "households", key, "phone"),
        "phone_hash": keys.digest(head["phone"], "phone") if head["phone"] else None,
        "fingerprint": fingerprint,
        "source": source,
        "matched_by": where["matched_by"],
        "updated_at": now_iso(),
    }
    return record, _residents(key, named, keys)


def _residents(key: str, named: list[dict[str, Any]], keys: Keyring) -> list[dict[str, Any]]:
    people, seen = [], {}
    for row in named:
        who = row["id_number"] or row["name"]
        seen[who] = seen.get(who, 0) + 1
        rid = "R" + keys.digest(f"{key}|{who}|{seen[who]}", "resident")[:15]
        people.append(
            {
                "resident_id": rid,
                "household_id": key,
                "name": keys.seal(row["name"], "residents", rid, "name"),
                "id_number": keys.seal(row["id_number"], "residents", rid, "id_number"),
                "id_hash": keys.digest(row["id_number"], "id") if row["id_number"] else None,
                "phone": keys.seal(row["phone"], "residents", rid, "phone"),
                "phone_hash": keys.digest(row["phone"], "phone") if row["phone"] else None,
                "relation": row["relation"],
                "tags": "|".join(_tags(row["tags"])),
            }
        )
    return people


def _review_rows(
    group: list[dict[str, Any]], reason: str, keys: Keyring, source: str
) -> list[dict[str, Any]]:
    """The household's rows for the review list: where they said, why not placed, sealed whole."""
    values = []
    for row in group:
        key, line = row["key"], int(row["line"])
        parts = (row["community"], row["building_no"], row["unit"], row["room"])
        place = (
            " ".join(p for p in parts if p) or row["building_id"] or f"{row['lon']},{row['lat']}"
        )
        payload = json.dumps({r: row[r] for r in hh.ROLES}, ensure_ascii=False)
        values.append(
            {
                "household_id": key,
                "source": source,
                "line": line,
                "reason": reason,
                "place": place,
                "payload": keys.seal(payload, "household_review", f"{key}#{line}", "payload"),
                "at": now_iso(),
            }
        )
    return values
