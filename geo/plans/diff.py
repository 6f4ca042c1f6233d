"""What changed from one plan to another: the buildings that moved and the grids added,
removed or changed (``gridmap plan diff``, ``GET /plans/{id}/diff``, the diff map)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from geo.plans.store import Plan


def diff_plans(before: Plan, after: Plan) -> dict[str, Any]:
    """What changed from ``before`` to ``after``.

    Returns a dict with ``buildings_moved`` (building_id, from, to), ``grids_added``,
    ``grids_removed`` and ``grids_changed`` (same code, other buildings, worker or lock).
    """
    ids = before.labels.index.union(after.labels.index)
    old = before.labels.reindex(ids)
    new = after.labels.reindex(ids)
    moved = old.ne(new)
    buildings_moved = pd.DataFrame(
        {"building_id": ids[moved], "from": old[moved].to_numpy(), "to": new[moved].to_numpy()}
    )
    old_codes, new_codes = set(before.grids.index), set(after.grids.index)
    members_old = {c: frozenset(g) for c, g in before.labels.groupby(before.labels).groups.items()}
    members_new = {c: frozenset(g) for c, g in after.labels.groupby(after.labels).groups.items()}
    changed = []
    for code in sorted(old_codes & new_codes):
        a, b = before.grids.loc[code], after.grids.loc[code]
        if (
            members_old.get(code) != members_new.get(code)
            or str(a.get("worker_id")) != str(b.get("worker_id"))
            or bool(a.get("locked")) != bool(b.get("locked"))
        ):
            changed.append(code)
    return {
        "before": before.plan_id,
        "after": after.plan_id,
        "buildings_moved": buildings_moved.to_dict("records"),
        "grids_added": sorted(new_codes - old_codes),
        "grids_removed": sorted(old_codes - new_codes),
        "grids_changed": changed,
    }
