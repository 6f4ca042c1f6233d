"""Publishing a plan: its checks (violations, the reviewed revision) and what it changes.

A published plan is the district's grids: its rows are copied into the ``grids`` layer that QGIS,
exports and the API read, its locate index is kept (:mod:`geo.locate.kept`), and the open cases
follow their buildings into its grids. Publishing is one transaction; the previous published plan
is archived in it.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import Conflict, NotFound
from geo.grids import partition
from geo.incidents.records import reassign_open_cases
from geo.locate import kept as locate_index
from geo.plans.store import Plan, load_plan, plan_row
from geo.storage.store import Store, ensure_lookup_indexes, now_iso, plans


def violations(plan: Plan) -> pd.DataFrame:
    """Every rule the plan's grids break: size, contiguity, households, a grid without worker.

    ``unavoidable`` marks the flags no plan could avoid (:func:`geo.grids.partition.unavoidable_flags`:
    the one odd grid of a community whose count cannot make regular grids, a forced bridge);
    they are reported but do not make publishing need a reason.
    """
    grids = plan.grids
    columns = ["grid_code", "rule", "reason", "reason_zh", "unavoidable"]
    if grids.empty:
        return pd.DataFrame(columns=columns)
    sizes = {"min_size": int(plan.min_size or 4), "max_size": int(plan.max_size or 5)}
    forced = partition.unavoidable_flags(grids, **sizes)
    flagged = grids["status"] != "ok"
    rows = pd.DataFrame(
        {
            "grid_code": grids.index[flagged],
            "rule": grids.loc[flagged, "status"].to_numpy(),
            "reason": grids.loc[flagged, "reason"].to_numpy(),
            "reason_zh": grids.loc[flagged, "reason_zh"].to_numpy(),
            "unavoidable": forced[flagged.to_numpy()],
        }
    )
    unstaffed = grids.index[grids["worker_id"].isna()] if "worker_id" in grids else []
    no_worker = pd.DataFrame(
        {
            "grid_code": unstaffed,
            "rule": "no_worker",
            "reason": "no responsible worker assigned",
            "reason_zh": "未指定网格员",
            "unavoidable": False,
        }
    )
    both = pd.concat([rows, no_worker], ignore_index=True)
    order = {code: i for i, code in enumerate(grids.index)}
    both = both.sort_values("grid_code", key=lambda c: c.map(order), kind="stable")
    return both.reset_index(drop=True)[columns]


def publish_plan(
    store: Store,
    plan_id: int,
    *,
    author: str = "",
    override_reason: str | None = None,
    revision: int | None = None,
) -> dict:
    """Publish a plan: it becomes the district's grids (the ``grids`` layer).

    ``revision`` is the plan revision the planner reviewed: when the plan has moved on since, the
    publish is refused (:class:`StalePlan`, 409). Status, revision and violations are checked
    inside the write transaction, so an edit or a second publish racing this one is either seen
    or refused. A plan with violations is published only with an ``override_reason`` (recorded);
    flags no plan could avoid (``unavoidable`` in :func:`violations`) are counted apart and need none.
    """
    with store.transaction() as conn:
        row = plan_row(store, plan_id, conn=conn)
        if row["status"] == "published":
            raise Conflict(f"plan {plan_id} is already published", zh=f"方案 {plan_id} 已发布")
        if revision is not None and int(revision) != int(row["revision"]):
            raise StalePlan(plan_id, reviewed=int(revision), current=int(row["revision"]))
        flags = violations(load_plan(store, plan_id, conn=conn))
        broken = flags[~flags["unavoidable"].astype(bool)]
        unavoidable = len(flags) - len(broken)
        if not broken.empty and not (override_reason or "").strip():
            counts = broken["rule"].value_counts().to_dict()
            apart = f"; {unavoidable} unavoidable flags need none" if unavoidable else ""
            raise Conflict(
                f"plan {plan_id} breaks {len(broken)} rules that could be avoided ({counts}); "
                f"publish with an override reason (--override 'why') to accept them{apart}",
                zh=f"方案 {plan_id} 有 {len(broken)} 处可避免的违规，如需发布请用 --override 说明理由"
                + (f"（另有 {unavoidable} 处无法避免的标记，无需理由）" if unavoidable else ""),
            )
        publish_in_transaction(store, conn, plan_id, author=author, override_reason=override_reason)
    return {
        "plan_id": plan_id,
        "revision": int(row["revision"]),
        "violations": len(broken),
        "unavoidable": unavoidable,
        "override_reason": override_reason,
    }


class StalePlan(Conflict):
    """The plan changed after the planner reviewed it: publishing waits for a fresh review."""

    def __init__(self, plan_id: int, *, reviewed: int, current: int) -> None:
        super().__init__(
            f"plan {plan_id} is at revision {current}, but revision {reviewed} was reviewed; "
            "review the plan again and publish that revision",
            zh=f"方案 {plan_id} 已被修改（当前版本 {current}，审阅的是 {reviewed}），请重新审阅后发布",
        )
        #: extra members of the API's problem+json answer
        self.problem_extra = {"revision": current, "reviewed": reviewed}


def publish_in_transaction(
    store: Store,
    conn: Connection,
    plan_id: int,
    *,
    author: str,
    override_reason: str | None,
    index: locate_index.GridIndex | None = None,
) -> None:
    """Publish the plan in ``conn``'s transaction; ``index``: its locate index when the caller
    built it from the frames it has just written (the partition), else built from the layers."""
    conn.execute(sa.update(plans).where(plans.c.status == "published").values(status="archived"))
    conn.execute(
        sa.update(plans)
        .where(plans.c.plan_id == plan_id)
        .values(status="published", published_at=now_iso(), override_reason=override_reason)
    )
    write_published_grids(store, conn, plan_id)
    locate_index.keep_index(store, conn, plan_id, index=index)  # what locate loads
    store.set_setting(conn, "published_plan", plan_id)
    reassign_open_cases(store, conn, actor=author)
    store.log(conn, "publish", actor=author, plan_id=plan_id, override_reason=override_reason)


def write_published_grids(store: Store, conn: Connection, plan_id: int) -> None:
    """Copy a plan's grids into the ``grids`` layer that QGIS, exports and the API read."""
    grids = store.read_layer("plan_grids", where={"plan_id": plan_id}, conn=conn)
    store.write_layer(
        conn, "grids", grids.reset_index(drop=True), description="the published grids (网格)"
    )
    ensure_lookup_indexes(conn)  # the fingerprint reads the grids' workers from one of them


def published_grids(store: Store) -> gpd.GeoDataFrame:
    """The ``grids`` layer (empty frame with the columns when nothing is published)."""
    if not store.has_layer("grids"):
        raise NotFound(
            "no grids yet; run 'gridmap partition' first", zh="尚无网格，请先运行 gridmap partition"
        )
    return store.read_layer("grids")
