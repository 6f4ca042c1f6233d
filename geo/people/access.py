"""Who may read which household, and the reads themselves, each written to the audit log.

Staff read the households of the grids they answer for (the grid of the household's building in
the published plan, whose worker is theirs); admins read all; planners and viewers see counts
only (:mod:`geo.people.occupancy`). The viewer is a plain argument, :class:`Viewer`, so the API
and the command line decide who is asking and this module decides what they see. Every household
a read returns is one audit row: who, when, which household, for what purpose. A search that
finds a household outside the staff's grids answers as if it found nothing.

Examples
--------
>>> Viewer("staff", worker="张三").reads_personal, Viewer("planner").reads_personal
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import Forbidden, InputError, NotFound
from geo.people import addresses
from geo.people import households as hh
from geo.people.privacy import (
    Keyring,
    mask_id,
    mask_name,
    mask_phone,
    normalise_id,
    normalise_phone,
)
from geo.storage.store import Store, assignments


@dataclass(frozen=True)
class Viewer:
    """Who reads: a role (viewer, staff, planner, admin), a name for the log, a staff's worker."""

    role: str
    name: str = ""
    worker: str | None = None

    @property
    def reads_personal(self) -> bool:
        return self.role == "admin" or (self.role == "staff" and bool(self.worker))

    @classmethod
    def of_token(cls, role: str, name: str, worker: str | None) -> Viewer:
        """A token's holder as a reader, in the API and the CLI alike: a staff token bound to a
        grid worker reads as that worker (their grids only); a worker bound to a token of
        another role does not narrow what it reads."""
        return cls(role, name, worker if role == "staff" else None)


@dataclass(frozen=True)
class Query:
    """What to look for; any combination narrows the answer."""

    name: str = ""
    phone: str = ""
    id_number: str = ""
    id_tail: str = ""
    address: str = ""
    household_id: str = ""

    def is_empty(self) -> bool:
        return not any(vars(self).values())


def placement(store: Store, conn: Connection | None = None) -> pd.DataFrame:
    """Each building's grid, community and worker in the published plan (index: building_id)."""
    columns = ["plan_id", "grid_code", "community", "worker_id", "worker"]
    grids = pd.DataFrame(store.read_layer("grids", conn=conn)[columns])
    if grids.empty:
        return pd.DataFrame(columns=columns[1:])
    plan_id = int(grids["plan_id"].iloc[0])
    table = store.read_table(assignments, where={"plan_id": plan_id}, conn=conn)
    joined = table[["building_id", "grid_code"]].merge(
        grids.drop(columns="plan_id"), on="grid_code"
    )
    return joined.set_index("building_id")


def scope(store: Store, viewer: Viewer, conn: Connection | None = None) -> set[str] | None:
    """The buildings whose households ``viewer`` may read (None: every building).

    Raises
    ------
    Forbidden
        A planner, a viewer or a staff token bound to no worker: counts only.
    """
    if viewer.role == "admin":
        return None
    if not viewer.reads_personal:
        raise Forbidden(
            f"a {viewer.role} sees household counts only; personal records are for the staff "
            "of the household's grid"
            + (" (this staff token is bound to no worker)" if viewer.role == "staff" else ""),
            zh="此角色只能查看住户统计；个人记录仅限所在网格的网格员查看",
        )
    places = placement(store, conn)
    mine = places[(places["worker_id"] == viewer.worker) | (places["worker"] == viewer.worker)]
    return set(mine.index)


def find(
    store: Store,
    keys: Keyring,
    viewer: Viewer,
    query: Query,
    *,
    purpose: str,
    unmask: bool = False,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The households matching ``query`` within ``viewer``'s scope, masked unless ``unmask``.

    Each household returned is one ``personal read`` row in the audit log (actor, household,
    purpose). ``id_tail`` matches the last digits of an ID number, ``address`` 小区 + 楼号 (+
    单元 + 室) or a building's name or address.
    """
    if not purpose.strip():
        raise InputError(
            "say why you read personal records (--purpose)", zh="请说明查询目的（--purpose）"
        )
    if query.is_empty():
        raise InputError("give a name, phone, ID number or its last digits, or an address")
    if query.id_tail and len(normalise_id(query.id_tail)) < 4:
        raise InputError(
            "give at least the last 4 characters of an ID number", zh="身份证号至少给出后 4 位"
        )
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        hh.checked_keyring(store, keys, conn)
        allowed = scope(store, viewer, conn)
        found = _candidates(store, conn, keys, query, allowed)
        answers = [_answer(conn, keys, row, people, unmask) for row, people in found[:limit]]
        places = placement(store, conn)
        spots = _building_points(store, conn, [answer["building_id"] for answer in answers])
        for answer in answers:
            answer.update(_where(places, answer["building_id"]))
            answer["lon"], answer["lat"] = spots.get(answer["building_id"], (None, None))
            store.log(
                conn,
                "personal read",
                actor=viewer.name,
                role=viewer.role,
                household_id=answer["household_id"],
                purpose=purpose,
                unmasked=unmask,
            )
    return answers


def _where(places: pd.DataFrame, building_id: str) -> dict[str, Any]:
    if building_id not in places.index:
        return {"grid_code": None, "community": None, "worker": None}
    row = places.loc[building_id]
    return {"grid_code": row["grid_code"], "community": row["community"], "worker": row["worker"]}


def _building_points(
    store: Store, conn: Connection, building_ids: list[str]
) -> dict[str, tuple[float, float]]:
    """A WGS84 point inside each building (where staff find the household on the map)."""
    if not building_ids:
        return {}
    layer = store.read_layer("buildings", where={"building_id": building_ids}, conn=conn)
    points = layer.set_index("building_id").geometry.representative_point().to_crs(4326)
    return {key: (round(p.x, 7), round(p.y, 7)) for key, p in points.items()}


def _household_rows(
    conn: Connection, allowed: set[str] | None, ids: list[str] | None
) -> list[dict[str, Any]]:
    query = sa.select(hh.households)
    if allowed is not None:
        query = query.where(hh.households.c.building_id.in_(sorted(allowed)))
    if ids is not None:
        query = query.where(hh.households.c.household_id.in_(ids))
    rows = conn.execute(query.order_by(hh.households.c.household_id)).mappings().all()
    return [dict(row) for row in rows]


def _candidates(
    store: Store, conn: Connection, keys: Keyring, query: Query, allowed: set[str] | None
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    # plain rows, not pandas groups: an admin's search opens every resident (22,000 in 0.3 s)
    homes = _household_rows(conn, allowed, _exact_ids(conn, keys, query))
    if homes and query.address:
        homes = _at_address(store, conn, homes, query.address)
    wanted = {row["household_id"] for row in homes}
    by_home: dict[str, list[dict[str, Any]]] = {}
    people = conn.execute(sa.select(hh.residents).order_by(hh.residents.c.resident_id))
    for person in people.mappings():
        if person["household_id"] in wanted:
            by_home.setdefault(person["household_id"], []).append(_opened(keys, person))
    found = []
    for row in homes:
        members = sorted(by_home.get(row["household_id"], []), key=_not_head)
        if _matches(members, query):
            found.append((row, members))
    return found


def _not_head(member: dict[str, Any]) -> bool:
    return member["relation"] not in hh.HEAD


def _exact_ids(conn: Connection, keys: Keyring, query: Query) -> list[str] | None:
    """Households an exact id, ID number or phone names (ID and phone through the keyed hashes);
    None when the query names none of them."""
    ids: set[str] | None = {query.household_id.strip()} if query.household_id.strip() else None
    wanted = (
        ("id_hash", normalise_id(query.id_number), "id"),
        ("phone_hash", normalise_phone(query.phone), "phone"),
    )
    for column, value, purpose in wanted:
        if not value:
            continue
        digest = keys.digest(value, purpose)
        hits = {
            r[0]
            for r in conn.execute(
                sa.select(hh.residents.c.household_id).where(hh.residents.c[column] == digest)
            )
        }
        if column == "phone_hash":
            hits |= {
                r[0]
                for r in conn.execute(
                    sa.select(hh.households.c.household_id).where(
                        hh.households.c.phone_hash == digest
                    )
                )
            }
        ids = hits if ids is None else ids & hits
    return None if ids is None else sorted(ids)


def _at_address(
    store: Store, conn: Connection, homes: list[dict[str, Any]], text: str
) -> list[dict[str, Any]]:
    """The households at ``text``: 小区 + 楼号 (+ 单元 + 室), else the buildings it names best."""
    compound, number, unit, room = addresses.parse_address(text)
    layer = store.read_layer("buildings", conn=conn)
    columns = [c for c in ("building_id", "community", "name", "address") if c in layer.columns]
    buildings = pd.DataFrame(layer[columns])
    if number:
        key = addresses.building_key(compound, number)
        places = {addresses.building_keys(buildings).get(key)}
    else:
        from geo.locate.engine import find_by_address

        places = set(find_by_address(buildings, text, limit=5)["building_id"])
        unit = room = ""
    return [
        row
        for row in homes
        if row["building_id"] in places
        and (not unit or row["unit"] == unit)
        and (not room or row["room"] == room)
    ]


def _opened(keys: Keyring, person: dict[str, Any]) -> dict[str, Any]:
    rid = person["resident_id"]
    return {
        "resident_id": rid,
        "name": keys.open(person["name"], "residents", rid, "name") or "",
        "id_number": keys.open(person["id_number"], "residents", rid, "id_number") or "",
        "phone": keys.open(person["phone"], "residents", rid, "phone") or "",
        "relation": person["relation"],
        "tags": person["tags"],
    }


def _matches(members: list[dict[str, Any]], query: Query) -> bool:
    checks = []
    if query.name:
        checks.append(any(query.name.strip() in m["name"] for m in members))
    if query.id_tail:
        tail = normalise_id(query.id_tail)
        checks.append(any(m["id_number"].endswith(tail) for m in members))
    return all(checks)


def _answer(
    conn: Connection,
    keys: Keyring,
    row: dict[str, Any],
    members: list[dict[str, Any]],
    unmask: bool,
) -> dict[str, Any]:
    key = row["household_id"]
    show_name, show_id, show_phone = (str, str, str) if unmask else (mask_name, mask_id, mask_phone)
    cadre = conn.execute(
        sa.select(hh.household_cadres.c.cadre).where(hh.household_cadres.c.household_id == key)
    ).scalar()
    return {
        "household_id": key,
        "building_id": row["building_id"],
        "unit": row["unit"],
        "room": row["room"],
        "household_type": row["household_type"],
        "size": int(row["size"]),
        "tags": row["tags"],
        "head": show_name(keys.open(row["head_name"], "households", key, "head_name") or ""),
        "phone": show_phone(keys.open(row["phone"], "households", key, "phone") or ""),
        "cadre": cadre,
        "visits": _visits(conn, keys, key),
        "residents": [
            {
                "name": show_name(m["name"]),
                "id_number": show_id(m["id_number"]),
                "phone": show_phone(m["phone"]),
                "relation": m["relation"],
                "tags": m["tags"],
            }
            for m in members
        ],
    }


def _visits(conn: Connection, keys: Keyring, key: str) -> list[dict[str, Any]]:
    """The household's visits, newest first, their notes opened (the reader is in scope)."""
    table = hh.household_visits
    rows = conn.execute(
        sa.select(table).where(table.c.household_id == key).order_by(table.c.visited_on.desc())
    ).mappings()
    notes = ("asked", "done", "follow_up")
    return [
        {"visited_on": row["visited_on"], "cadre": row["cadre"]}
        | {
            column: keys.open(
                row[column], "household_visits", f"{key}@{row['recorded_at']}", column
            )
            or ""
            for column in notes
        }
        for row in rows
    ]


# -- the review list and purging ---------------------------------------------------------------------


def review_list(store: Store, viewer: Viewer) -> pd.DataFrame:
    """The rows no building took, with the reason (no personal field: the row stays sealed)."""
    if viewer.role not in ("admin", "planner"):
        raise Forbidden(
            "the review list is for planners and admins", zh="待核对清单仅限规划员和管理员"
        )
    hh.ensure_tables(store)
    frame = store.read_table(hh.household_review)
    return frame.drop(columns="payload").sort_values(["source", "line"]).reset_index(drop=True)


def purge(store: Store, viewer: Viewer, household_id: str, *, reason: str) -> dict[str, int]:
    """Remove a household and its residents everywhere (records, cadre, visits, review rows).

    Admins purge any household, staff those of their grids; the audit log keeps the household id,
    who and why, never what the record said.
    """
    if not reason.strip():
        raise InputError(
            "say why the household is removed (--reason)", zh="请说明删除原因（--reason）"
        )
    tables = (
        hh.households,
        hh.residents,
        hh.household_cadres,
        hh.household_visits,
        hh.household_review,
    )
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        allowed = scope(store, viewer, conn)
        row = conn.execute(
            sa.select(hh.households.c.building_id).where(
                hh.households.c.household_id == household_id
            )
        ).first()
        in_review = conn.execute(
            sa.select(sa.func.count())
            .select_from(hh.household_review)
            .where(hh.household_review.c.household_id == household_id)
        ).scalar()
        outside = row[0] not in allowed if row is not None and allowed is not None else False
        if (row is None and (not in_review or allowed is not None)) or outside:
            raise NotFound(
                f"no household {household_id} in your scope",
                zh=f"您的范围内没有住户 {household_id}",
            )
        removed = {
            t.name: conn.execute(sa.delete(t).where(t.c.household_id == household_id)).rowcount
            for t in tables
        }
        hh.touch(store, conn)
        store.log(
            conn,
            "household purged",
            actor=viewer.name,
            household_id=household_id,
            reason=reason,
            **removed,
        )
    return removed


def personal_export(store: Store, keys: Keyring, viewer: Viewer, *, reason: str) -> pd.DataFrame:
    """Every resident with the personal fields in clear, one row each: admins only, with a
    reason, and the export itself is one audit row (who, why, how many households)."""
    if viewer.role != "admin":
        raise Forbidden("only an admin exports personal fields", zh="仅管理员可导出个人信息")
    if not reason.strip():
        raise InputError(
            "say why personal fields leave the project (--reason)",
            zh="请说明导出个人信息的原因（--reason）",
        )
    with store.transaction() as conn:
        hh.ensure_tables(store, conn)
        hh.checked_keyring(store, keys, conn)
        homes = {row["household_id"]: row for row in _household_rows(conn, None, None)}
        rows = []
        for person in conn.execute(
            sa.select(hh.residents).order_by(hh.residents.c.resident_id)
        ).mappings():
            home = homes.get(person["household_id"])
            if home is not None:
                opened = _opened(keys, person)
                rows.append(
                    {
                        k: home[k]
                        for k in ("household_id", "building_id", "unit", "room", "household_type")
                    }
                    | opened
                )
        store.log(
            conn,
            "personal export",
            actor=viewer.name,
            reason=reason,
            households=len(homes),
            residents=len(rows),
        )
    frame = pd.DataFrame(rows)
    places = placement(store)
    return (
        frame.join(places[["grid_code", "community", "worker"]], on="building_id")
        if not frame.empty
        else frame
    )
