"""The roster of grid workers in the project file: reading it, replacing it, staffing grids.

A roster is checked by :func:`geo.people.workers.read_roster`; :func:`import_roster` replaces the
``workers`` table with it in one transaction, refusing (:class:`RosterShrinks`) a roster that
would remove workers or leave published grids without one unless the caller confirms, and takes a
worker who left off every plan's grids, the published ``grids`` layer and the open cases.
Giving grids their workers is :func:`geo.usecases.staffing.fill_workers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import Conflict
from geo.incidents.workflow import OPEN_STATUSES
from geo.people.workers import unassigned_grids
from geo.storage.store import Store, workers


def roster(store: Store, *, conn: Connection | None = None) -> pd.DataFrame:
    """The ``workers`` table: worker_id, name, phone, community."""
    return store.read_table(workers, conn=conn)


def worker_names(store: Store, *, conn: Connection | None = None) -> pd.Series:
    """Each worker's name by worker id (empty when there is no roster)."""
    table = store.read_table(workers, conn=conn)
    return table.set_index("worker_id")["name"] if not table.empty else pd.Series(dtype=object)


@dataclass
class RosterChange:
    """What replacing the roster did: workers stored, workers removed, grids left without one."""

    workers: int
    removed: list[str]
    released: (
        int  # grid rows (every plan) and open cases that lost a worker no longer on the roster
    )
    without_worker: pd.DataFrame  # published grids without a worker: grid_code, community, reason


def import_roster(
    store: Store, frame: pd.DataFrame, *, author: str = "", replace: bool = False
) -> RosterChange:
    """Replace the workers table with a checked roster (see :func:`geo.people.workers.read_roster`).

    A roster that would remove workers (or move them to another community) or take published
    grids off their worker is refused with that difference (:class:`RosterShrinks`, 409) unless
    ``replace``: a one-row file must not silently empty a district. The check and the change are
    one transaction. A worker who left is taken off every plan's grids, the published ``grids``
    layer and the open cases, and the names of the others are refreshed; the published grids
    left without a worker are returned (``no_worker`` violations until ``gridmap workers assign``).
    """
    team = frame[["worker_id", "name", "phone", "community"]]
    with store.transaction() as conn:
        before = store.read_table(workers, conn=conn)
        removed = sorted(set(before["worker_id"]) - set(team["worker_id"]))
        losing = _grids_losing_worker(store, conn, team)
        if (removed or losing) and not replace:
            raise RosterShrinks(removed=removed, moved=_moved(before, team), grids=losing)
        conn.execute(sa.delete(workers))
        rows = team.to_dict("records")
        if rows:
            conn.execute(sa.insert(workers), rows)
        released = sum(_release_workers(store, conn, layer, team) for layer in _STAFFED_LAYERS)
        store.log(
            conn,
            "workers import",
            actor=author,
            workers=len(rows),
            removed=removed,
            released=released,
        )
        without = _published_without_worker(store, conn, team)
    return RosterChange(
        workers=len(frame), removed=removed, released=released, without_worker=without
    )


class RosterShrinks(Conflict):
    """A roster that would remove workers or leave published grids without one, not confirmed."""

    def __init__(self, *, removed: list[str], moved: list[str], grids: list[str]) -> None:
        shown = ", ".join(removed[:10]) + (" ..." if len(removed) > 10 else "")
        moving = f", move {len(moved)} to another community ({', '.join(moved[:10])})"
        super().__init__(
            f"this roster would remove {len(removed)} workers ({shown or 'none'})"
            + (moving if moved else "")
            + f" and leave {len(grids)} published grids without a worker; nothing was changed",
            hint="import it with --replace (API: PUT /workers?replace=true) to accept that",
            zh=f"该花名册将移除 {len(removed)} 名网格员（{shown or '无'}），"
            f"使 {len(grids)} 个已发布网格无网格员，未作任何修改；确认替换请加 --replace",
        )
        #: extra members of the API's problem+json answer: the difference
        self.problem_extra = {"removed": removed, "moved": moved, "grids_without_worker": grids}


def _moved(before: pd.DataFrame, team: pd.DataFrame) -> list[str]:
    """Workers on both rosters whose community changed."""
    was = dict(zip(before["worker_id"], before["community"].astype(str), strict=True))
    return sorted(
        w
        for w, c in zip(team["worker_id"], team["community"].astype(str), strict=True)
        if w in was and was[w] != c
    )


def _grids_losing_worker(store: Store, conn: Connection, team: pd.DataFrame) -> list[str]:
    """Published grids whose worker is off ``team`` or now of another community."""
    if not store.has_layer("grids", conn):
        return []
    staffed = conn.exec_driver_sql(
        "SELECT grid_code, worker_id, community FROM grids WHERE worker_id IS NOT NULL"
    ).fetchall()
    community_of = dict(zip(team["worker_id"], team["community"].astype(str), strict=True))
    return sorted(str(g) for g, w, c in staffed if community_of.get(w) != str(c))


#: layers naming a responsible worker, and which of their rows follow the roster
_STAFFED_LAYERS = {
    "plan_grids": "",
    "grids": "",
    "incidents": " AND status IN ({})".format(", ".join(f"'{s}'" for s in OPEN_STATUSES)),
}


def _release_workers(store: Store, conn: Connection, layer: str, team: pd.DataFrame) -> int:
    """Clear the worker of rows whose worker is off the roster or of another community; refresh
    the names of the others. Returns the rows cleared."""
    if not store.has_layer(layer, conn):
        return 0
    staffed = conn.exec_driver_sql(
        f'SELECT fid, worker_id, community FROM "{layer}" WHERE worker_id IS NOT NULL'
        + _STAFFED_LAYERS[layer]
    ).fetchall()
    community_of = dict(zip(team["worker_id"], team["community"].astype(str), strict=True))
    gone = [
        {"fid": fid} for fid, worker, community in staffed if community_of.get(worker) != community
    ]
    if gone:
        conn.execute(
            sa.text(f'UPDATE "{layer}" SET worker_id = NULL, worker = NULL WHERE fid = :fid'), gone
        )
    names = [
        {"name": n, "worker_id": w} for n, w in zip(team["name"], team["worker_id"], strict=True)
    ]
    if names:
        conn.execute(
            sa.text(f'UPDATE "{layer}" SET worker = :name WHERE worker_id = :worker_id'), names
        )
    return len(gone)


def _published_without_worker(store: Store, conn: Connection, team: pd.DataFrame) -> pd.DataFrame:
    columns = ["grid_code", "community", "reason"]
    if not store.has_layer("grids", conn):
        return pd.DataFrame(columns=columns)
    grids = pd.DataFrame(
        conn.exec_driver_sql("SELECT grid_code, community, worker_id FROM grids").fetchall(),
        columns=["grid_code", "community", "worker_id"],
    ).set_index("grid_code")
    missing = unassigned_grids(grids, grids["worker_id"], team)
    return missing.reset_index(names="grid_code")[columns]
