"""Staffing grids: every grid without a worker gets one from its community (定人、定岗、定责).

A use case over a plan (:mod:`geo.plans.store`) and the roster (:mod:`geo.people.roster`), one
transaction; it lives here so that people/ never reads plans.
"""

from __future__ import annotations

import pandas as pd

from geo.people.roster import roster, worker_names
from geo.people.workers import assign_workers, unassigned_grids
from geo.plans.store import load_plan
from geo.storage.store import Store


def fill_workers(
    store: Store, plan_id: int | None = None, *, author: str = ""
) -> tuple[int, pd.DataFrame]:
    """Give every grid without a worker one from its community, fairly; report the rest.

    Returns the number of grids newly assigned and the grids still without a worker (with the
    reason). Workers who left the roster or moved community lose their grids first.
    """
    plan = load_plan(store, plan_id)
    team = roster(store)
    current = plan.grids["worker_id"].dropna()
    chosen = assign_workers(plan.grids.assign(grid_code=plan.grids.index), team, current=current)
    changed = chosen[chosen.ne(plan.grids["worker_id"].reindex(chosen.index)) & chosen.notna()]
    lost = plan.grids.index[plan.grids["worker_id"].notna() & chosen.isna()]
    names = worker_names(store)
    update = pd.DataFrame(
        {
            "worker_id": pd.concat([changed, pd.Series(None, index=lost, dtype=object)]),
        }
    )
    update["worker"] = update["worker_id"].map(names)
    update["grid_code"] = update.index
    update["plan_id"] = plan.plan_id
    with store.transaction() as conn:
        store.update_rows(conn, "plan_grids", update, key=["plan_id", "grid_code"])
        if plan.status == "published" and store.has_layer("grids", conn):
            store.update_rows(conn, "grids", update, key=["plan_id", "grid_code"])
        store.log(conn, "workers assign", actor=author, plan_id=plan.plan_id, assigned=len(changed))
    missing = unassigned_grids(plan.grids, chosen, team)
    return len(changed), missing
