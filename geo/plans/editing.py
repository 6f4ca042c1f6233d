"""A planner's edits to a draft plan: one transaction and one history step each, undo and redo.

An edit names the plan ``revision`` it was made on. Inside one store transaction (``BEGIN
IMMEDIATE``, so two planners are served one after the other) the revision is checked -- a stale one
raises :class:`StaleRevision` (409) with the steps made since -- the change is applied to the
plan's assignments and to the ``plan_grids`` rows of the grids it touched only, the step is
appended to the ``edits`` table and the revision goes up by one. A crash before the commit leaves
the plan at the last complete edit.

Rules
-----
* Only drafts are edited (:class:`NotDraft`, 409): copy a published plan first (:func:`copy_plan`).
* A grid never spans two communities: a move, swap or merge across communities is refused
  (:class:`EditError`, 422) rather than recorded as a violation, because the codes, polygons and
  worker rosters are per community.
* A locked grid keeps its buildings: edits that would change its membership are refused (unlock
  it first); re-partitioning a community keeps its locked grids.
* The other rules (size outside ``[min_size, max_size]``, not contiguous, households above the
  cap, no worker) may be broken by a draft: every edit answers with the grids it touched and the
  rules they now break (:class:`EditResult`), and publishing then needs an override reason.

Codes. Grid codes of the touched grids are assigned with :func:`geo.grids.codes.assign_grid_codes`
against the touched grids before the edit, with ``match="majority"``: a grid keeping more than
half of its buildings (and being more than half new-grid) keeps its code, so moving one building
between two grids of five renumbers nothing; a grid that is really new (a split piece, a merge of
equals) takes the lowest number never issued in its community. A new grid takes the worker of the
grid most of its buildings came from. Untouched grids are never looked at.

History. Each step stores its arguments and the two patches (``inverse`` JSON: ``before`` and
``after``: building -> code and grid -> worker/lock). Undo applies ``before`` of the latest step
not undone and appends an ``undo`` step; redo applies ``after`` again and appends a ``redo`` step;
a new edit after undo drops the redo tail. The ``revision`` stored with a step is the revision it
produced (it was made on ``revision - 1``).

Speed. The district (buildings, cells, adjacency) and each plan state are cached in-process, keyed
by the project file and its change markers, so an edit reads only the plan row and writes the
touched rows.

Examples
--------
>>> from geo.storage.store import open_store  # doctest: +SKIP
>>> store = open_store("gridmap.gpkg")  # doctest: +SKIP
>>> draft = copy_plan(store, 1, author="王工")  # doctest: +SKIP
>>> result = apply_edit(store, draft, "move", {"buildings": ["B123"], "to": "320581104001003"},
...                     revision=0, author="王工")  # doctest: +SKIP
>>> result.revision, result.violations["rule"].tolist()  # doctest: +SKIP
(1, ['undersized'])
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from scipy import sparse
from sqlalchemy import Connection

from geo.errors import Conflict, InputError, NotFound
from geo.grids import boundaries, codes, partition
from geo.grids.adjacency import building_adjacency
from geo.jsonvalue import json_records, json_value
from geo.people import roster as rosters
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.storage.store import Store, audit_log, edits, now_iso
from geo.storage.store import plans as plans_table

__all__ = [
    "OPERATIONS",
    "EditError",
    "EditResult",
    "NotDraft",
    "StaleRevision",
    "apply_edit",
    "clear_cache",
    "copy_plan",
    "edits_since",
    "history",
    "plan_state",
    "redo",
    "undo",
    "warm",
]

#: the planner's operations, with the arguments each takes
OPERATIONS: dict[str, str] = {
    "move": "buildings: [id, ...], to: grid code (or null for a new grid)",
    "swap": "a: building id, b: building id",
    "merge": "grids: [code, code, ...]",
    "split": "grid: code, parts: [[id, ...], ...] (optional: automatic when left out)",
    "repartition": "communities: [name, ...] or grids: [code, ...]",
    "lock": "grids: [code, ...] (or grid: code)",
    "unlock": "grids: [code, ...] (or grid: code)",
    "assign_worker": "grid: code, worker_id: id (or null to clear)",
}
_CACHE_SIZE = 16


class EditError(InputError):
    """An edit that would break a hard rule (a grid across communities, a locked grid) or is malformed."""


class NotDraft(Conflict):
    """The plan is published or archived: edits go to a copy."""


class StaleRevision(Conflict):
    """The edit was made on an older revision; ``changes`` lists the steps made since."""

    def __init__(self, message: str, *, changes: list[dict], revision: int, zh: str) -> None:
        super().__init__(message, zh=zh)
        self.changes = changes
        self.revision = revision
        #: extra members of the API's problem+json answer
        self.problem_extra = {"revision": revision, "changes": changes}


@dataclass
class EditResult:
    """What an edit, undo or redo answers at once."""

    plan_id: int
    revision: int
    edit_id: int
    op: str
    touched: gpd.GeoDataFrame  # the touched grids after the step, indexed by grid code
    removed: list[str]  # codes that no longer exist
    violations: pd.DataFrame  # rules the touched grids now break
    total_violations: int  # in the whole plan, those that need a reason to publish
    unavoidable_flags: int  # in the whole plan, those no plan could avoid (listed, never blocking)
    moved: dict[str, str]  # building id -> new grid code

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (geometry left out)."""
        grids = pd.DataFrame(self.touched.drop(columns="geometry")).reset_index(names="grid_code")
        return {
            "plan_id": self.plan_id,
            "revision": self.revision,
            "edit_id": self.edit_id,
            "op": self.op,
            "touched": json_records(grids),
            "removed": self.removed,
            "violations": json_records(self.violations),
            "total_violations": self.total_violations,
            "unavoidable_flags": self.unavoidable_flags,
            "moved": self.moved,
        }


# -- caches ------------------------------------------------------------------------------------


@dataclass
class _Context:
    """The district as the edits need it: buildings by id, cells, adjacency by position."""

    district: plans.District
    adjacency: sparse.csr_array
    position: pd.Series  # building id -> row of the adjacency
    community: pd.Series  # building id -> community


_districts: OrderedDict[tuple, _Context] = OrderedDict()
_states: OrderedDict[tuple, plans.Plan] = OrderedDict()
_cache_lock = threading.Lock()  # the API serves requests from a thread pool
_build_lock = threading.Lock()  # one district load at a time (a warm-up and an edit share it)


def clear_cache() -> None:
    """Forget the cached districts and plan states (tests; after a re-import)."""
    with _cache_lock:
        _districts.clear()
        _states.clear()


def _remember(cache: OrderedDict, key: tuple, value: Any) -> Any:
    with _cache_lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return value


def _recall(cache: OrderedDict, key: tuple) -> Any:
    with _cache_lock:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value


def _district_key(store: Store, conn: Connection) -> tuple:
    # both backends stamp a layer's last change whenever its rows are written
    stamps = store.layer_changes(("buildings", "cells", "communities"), conn)
    return (store.identity, stamps)


def _context(store: Store, conn: Connection) -> _Context:
    key = _district_key(store, conn)
    cached = _recall(_districts, key)
    if cached is not None:
        return cached
    with _build_lock:  # an edit arriving during the server's warm-up waits for it, not redoes it
        cached = _recall(_districts, key)
        if cached is not None:
            return cached
        district = plans.load_district(store, conn=conn)
        buildings = district.buildings
        context = _Context(
            district=district,
            adjacency=building_adjacency(buildings),
            position=pd.Series(np.arange(len(buildings)), index=buildings.index),
            community=buildings["community"].astype(str),
        )
        return _remember(_districts, key, context)


def warm(store: Store, *, drafts: int = 4) -> None:
    """Load now what the first edit would otherwise wait for (a server calls this at start).

    The district (buildings, cells, adjacency), the states of the newest ``drafts`` draft plans
    and the partition engine's compiled functions (loaded from numba's cache on first call,
    a fifth of a second) are the same whoever loads them first: an edit after the warm-up
    answers what it would have answered cold, in the time later edits take. A project without
    plans has nothing to edit yet and is left alone.
    """
    with store.reading() as conn:
        if not store.has_layer("plan_grids", conn) or not store.has_layer("cells", conn):
            return
        context = _context(store, conn)
        newest = conn.execute(
            sa.select(plans_table.c.plan_id)
            .where(plans_table.c.status == "draft")
            .order_by(plans_table.c.plan_id.desc())
            .limit(drafts)
        ).scalars()
        for plan_id in list(newest):
            plan_state(store, int(plan_id), conn=conn)
    _compile(context)


def _compile(ctx: _Context) -> None:
    """Run the grid report and the partition engine once on a few buildings of one community."""
    if ctx.community.empty:
        return
    largest = ctx.community.value_counts().index[0]
    ids = ctx.community.index[ctx.community == largest][:12]
    buildings = ctx.district.buildings.loc[ids]
    adjacency = _sub_adjacency(ctx, ids)
    labels = pd.Series(np.arange(len(ids)) // 4, index=ids).astype(str)
    partition.grid_report(buildings, labels, adjacency=adjacency)
    partition.partition_buildings(buildings, adjacency=adjacency)


def _state_key(store: Store, conn: Connection, plan_id: int, revision: int) -> tuple:
    # writes outside the editor (worker assignment, publishing) log to the audit log
    marker = conn.execute(sa.select(sa.func.max(audit_log.c.entry_id))).scalar()
    return (store.identity, int(plan_id), int(revision), marker)


def plan_state(store: Store, plan_id: int, *, conn: Connection | None = None) -> plans.Plan:
    """The plan, from the in-process cache when its revision has not changed."""
    with store.reading(conn) as c:
        row = plans.plan_row(store, plan_id, conn=c)
        key = _state_key(store, c, plan_id, row["revision"])
        cached = _recall(_states, key)
        if cached is not None:
            return cached
        return _remember(_states, key, plans.load_plan(store, plan_id, conn=c))


# -- plans ---------------------------------------------------------------------------------------


def copy_plan(store: Store, plan_id: int, *, author: str = "", note: str = "") -> int:
    """A new draft with the grids of plan ``plan_id`` (any status); returns its id.

    The copy records ``plan_id`` as its parent and starts at revision 0 with an empty history.
    """
    source = plan_state(store, plan_id)
    grids = source.grids.assign(grid_code=source.grids.index.astype(str))
    with store.transaction() as conn:
        header = plans.PlanHeader(
            parent_id=plan_id,
            author=author,
            note=note or f"copy of plan {plan_id}",
            min_size=source.min_size,
            max_size=source.max_size,
            max_households=source.max_households,
        )
        new_id = plans.save_plan(store, conn, labels=source.labels, grids=grids, header=header)
        store.log(conn, "plan copy", actor=author, plan_id=new_id, parent_id=plan_id)
    return new_id


def history(store: Store, plan_id: int) -> pd.DataFrame:
    """Every step of a plan, oldest first: edit id, revision, op, args, author, time, undone."""
    plans.plan_row(store, plan_id)
    table = store.read_table(edits, where={"plan_id": plan_id})
    table = table.sort_values("edit_id").reset_index(drop=True)
    table["args"] = [json.loads(text) for text in table["args"]]
    table["undone"] = table["undone"].astype(bool)
    return table.drop(columns=["inverse"])


def edits_since(
    store: Store, plan_id: int, revision: int, *, conn: Connection | None = None
) -> list[dict]:
    """The steps that produced revisions after ``revision`` (what a stale editor missed)."""
    with store.reading(conn) as c:
        rows = c.execute(
            sa.select(
                edits.c.edit_id,
                edits.c.revision,
                edits.c.op,
                edits.c.args,
                edits.c.author,
                edits.c.at,
            )
            .where(edits.c.plan_id == plan_id, edits.c.revision > revision)
            .order_by(edits.c.edit_id)
        ).mappings()
        return [{**row, "args": json.loads(row["args"])} for row in rows]


# -- the entry points --------------------------------------------------------------------------


def apply_edit(
    store: Store,
    plan_id: int,
    op: str,
    args: Mapping[str, Any],
    *,
    revision: int,
    author: str = "",
) -> EditResult:
    """Apply one planner's operation (see :data:`OPERATIONS`) to a draft made on ``revision``.

    Raises
    ------
    StaleRevision
        ``revision`` is not the plan's current revision (409, with the steps made since).
    NotDraft
        The plan is not a draft (409).
    EditError
        The operation is unknown, malformed, crosses a community or touches a locked grid (422).
    NotFound
        A building, grid or worker that does not exist (404).
    """
    if op not in _OPERATIONS:
        raise EditError(
            f"unknown operation {op!r}; use one of {', '.join(OPERATIONS)}",
            zh=f"未知操作 {op}，可用：{', '.join(OPERATIONS)}",
        )
    args = dict(args or {})
    with store.transaction() as conn:
        plan = _editable(store, conn, plan_id, revision)
        context = _context(store, conn)
        change = _OPERATIONS[op](store, conn, plan, context, args)
        return _commit(store, conn, plan, context, change, op=op, args=args, author=author)


def undo(store: Store, plan_id: int, *, revision: int, author: str = "") -> EditResult:
    """Undo the latest step not undone yet (its stored ``before`` patch), as a new step."""
    return _walk(store, plan_id, revision=revision, author=author, direction="undo")


def redo(store: Store, plan_id: int, *, revision: int, author: str = "") -> EditResult:
    """Redo the step undone last, unless a new edit came after it."""
    return _walk(store, plan_id, revision=revision, author=author, direction="redo")


def _walk(store: Store, plan_id: int, *, revision: int, author: str, direction: str) -> EditResult:
    with store.transaction() as conn:
        plan = _editable(store, conn, plan_id, revision)
        undo_stack, redo_stack = _stacks(conn, plan_id)
        stack = undo_stack if direction == "undo" else redo_stack
        if not stack:
            raise EditError(
                f"nothing to {direction} in plan {plan_id}",
                zh=f"方案 {plan_id} 没有可{'撤销' if direction == 'undo' else '重做'}的操作",
            )
        target = stack[-1]
        stored = json.loads(
            conn.execute(sa.select(edits.c.inverse).where(edits.c.edit_id == target)).scalar()
        )
        patch = stored["before"] if direction == "undo" else stored["after"]
        conn.execute(
            sa.update(edits).where(edits.c.edit_id == target).values(undone=direction == "undo")
        )
        return _commit(
            store,
            conn,
            plan,
            _context(store, conn),
            _Change(patch["labels"], patch["grids"]),
            op=direction,
            args={"edit_id": int(target)},
            author=author,
        )


def _stacks(conn: Connection, plan_id: int) -> tuple[list[int], list[int]]:
    """Replay the history: the steps undo would take (last = next) and those redo would take."""
    rows = conn.execute(
        sa.select(edits.c.edit_id, edits.c.op)
        .where(edits.c.plan_id == plan_id)
        .order_by(edits.c.edit_id)
    ).fetchall()
    undo_stack: list[int] = []
    redo_stack: list[int] = []
    for edit_id, op in rows:
        if op == "undo":
            redo_stack.append(undo_stack.pop())
        elif op == "redo":
            undo_stack.append(redo_stack.pop())
        else:
            undo_stack.append(edit_id)
            redo_stack.clear()  # a new edit after undo drops the redo tail
    return undo_stack, redo_stack


def _editable(store: Store, conn: Connection, plan_id: int, revision: int) -> plans.Plan:
    row = plans.plan_row(store, plan_id, conn=conn)
    if row["status"] != "draft":
        raise NotDraft(
            f"plan {plan_id} is {row['status']}; edit a copy: gridmap plan copy {plan_id}",
            zh=f"方案 {plan_id} 已{'发布' if row['status'] == 'published' else '归档'}，"
            f"请先复制：gridmap plan copy {plan_id}",
        )
    if int(revision) != int(row["revision"]):
        changes = edits_since(store, plan_id, int(revision), conn=conn)
        raise StaleRevision(
            f"plan {plan_id} is at revision {row['revision']}, the edit was made on {revision}: "
            f"{len(changes)} steps since ({', '.join(c['op'] for c in changes[:10])}); reload and retry",
            zh=f"方案 {plan_id} 已被修改（当前版本 {row['revision']}，编辑基于 {revision}），请刷新后重试",
            changes=changes,
            revision=int(row["revision"]),
        )
    return plan_state(store, plan_id, conn=conn)


# -- the operations: each returns a _Change (building -> code, grid -> facts) --------------------


@dataclass
class _Change:
    """What an operation asks for: building -> code, grid -> facts, and the regrouped polygons."""

    labels: dict[str, str]
    grids: dict[str, dict[str, Any]]
    shapes: gpd.GeoDataFrame | None = None  # by new code, to spare a second union


def _move(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    ids = _building_ids(
        ctx, _as_list(args, "buildings") or ([args["building"]] if "building" in args else [])
    )
    target = args.get("to")
    community = _one_community(ctx, ids, what="the moved buildings")
    if target is not None:
        target = _grid(plan, target)
        if str(plan.grids.at[target, "community"]) != community:
            raise _across(
                f"moving into grid {target}", str(plan.grids.at[target, "community"]), community
            )
    sources = set(plan.labels[ids])
    affected = sources | ({target} if target else set())
    keys = _members(plan, affected)
    keys[ids] = target if target else "new:0"
    return _regroup(store, conn, plan, ctx, keys, affected)


def _swap(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    if args.get("a") is None or args.get("a") == args.get("b"):
        raise EditError("swap needs two different buildings a and b", zh="交换需要两栋不同的楼")
    a, b = _building_ids(ctx, [args.get("a"), args.get("b")])
    _one_community(ctx, [a, b], what=f"buildings {a} and {b}")
    grid_a, grid_b = plan.labels[a], plan.labels[b]
    if grid_a == grid_b:
        raise EditError(
            f"buildings {a} and {b} are both in grid {grid_a}; nothing to swap",
            zh=f"楼栋 {a} 与 {b} 同在网格 {grid_a}，无需交换",
        )
    keys = _members(plan, {grid_a, grid_b})
    keys[a], keys[b] = grid_b, grid_a
    return _regroup(store, conn, plan, ctx, keys, {grid_a, grid_b})


def _merge(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    grids = list(dict.fromkeys(_grid(plan, code) for code in _as_list(args, "grids")))
    if len(grids) < 2:
        raise EditError("merge needs at least two different grids", zh="合并至少需要两个不同的网格")
    communities = plan.grids.loc[grids, "community"].astype(str)
    if communities.nunique() > 1:
        raise _across(grids[1], communities.iloc[1], communities.iloc[0])
    keys = _members(plan, set(grids))
    keys[:] = grids[0]
    return _regroup(store, conn, plan, ctx, keys, set(grids))


def _split(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    grid = _grid(plan, args.get("grid"))
    keys = _members(plan, {grid})
    parts = _as_list(args, "parts")
    if parts:
        seen: set[str] = set()
        for i, part in enumerate(parts):
            ids = _building_ids(ctx, part)
            outside = sorted(set(ids) - set(keys.index))
            if outside or seen & set(ids):
                raise EditError(
                    f"split part {i + 1} names buildings outside grid {grid} or in two parts: "
                    f"{', '.join(outside or sorted(seen & set(ids)))[:200]}",
                    zh=f"拆分的第 {i + 1} 部分包含不属于网格 {grid} 或重复的楼栋",
                )
            seen |= set(ids)
            keys[ids] = f"new:{i}"
    else:
        buildings = ctx.district.buildings.loc[keys.index]
        result = partition.partition_buildings(
            buildings,
            min_size=plan.min_size,
            max_size=plan.max_size,
            max_households=plan.max_households,
            adjacency=_sub_adjacency(ctx, keys.index),
        )
        keys = "new:" + result.labels.astype(str)
    if keys.nunique() < 2:
        raise EditError(
            f"grid {grid} ({len(keys)} buildings) cannot be split into grids of "
            f"{plan.min_size} to {plan.max_size}; name the parts",
            zh=f"网格 {grid}（{len(keys)} 栋）无法自动拆分为每格 {plan.min_size}–{plan.max_size} 栋，请指定拆分方式",
        )
    return _regroup(store, conn, plan, ctx, keys, {grid})


def _repartition(
    store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict
) -> _Change:
    locked_codes = set(plan.grids.index[plan.grids["locked"].fillna(False).astype(bool)])
    if _as_list(args, "communities"):
        names = [str(name) for name in args["communities"]]
        unknown = sorted(set(names) - set(ctx.community))
        if unknown:
            raise NotFound(
                f"unknown communities: {', '.join(unknown)}", zh=f"未知社区：{', '.join(unknown)}"
            )
        ids = ctx.community.index[ctx.community.isin(names)]
    elif _as_list(args, "grids"):
        grids = [_grid(plan, code) for code in args["grids"]]
        for code in grids:
            _unlocked(plan, code)
        ids = plan.labels.index[plan.labels.isin(grids)]
    else:
        raise EditError("repartition needs communities or grids", zh="重新划分需要指定社区或网格")
    ids = ctx.position.index.intersection(ids, sort=False)
    current = plan.labels[ids]
    locked = current[current.isin(locked_codes)]
    result = partition.partition_buildings(
        ctx.district.buildings.loc[ids],
        min_size=plan.min_size,
        max_size=plan.max_size,
        max_households=plan.max_households,
        locked=locked if len(locked) else None,
        adjacency=_sub_adjacency(ctx, ids),
    )
    keys = result.labels.astype(str)
    free = ~keys.index.isin(locked.index)
    keys[free] = "new:" + keys[free]
    affected = set(current) - locked_codes
    keys = keys[free]
    return _regroup(store, conn, plan, ctx, keys, affected)


def _lock(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    return _Change({}, {code: {"locked": True} for code in _grid_list(plan, args)})


def _unlock(store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict) -> _Change:
    return _Change({}, {code: {"locked": False} for code in _grid_list(plan, args)})


def _assign_worker(
    store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, args: dict
) -> _Change:
    grid = _grid(plan, args.get("grid"))
    worker = args.get("worker_id")
    if worker is not None:
        team = rosters.roster(store, conn=conn).set_index("worker_id")
        worker = str(worker)
        if worker not in team.index:
            raise NotFound(f"no worker {worker!r} on the roster", zh=f"花名册中没有网格员 {worker}")
        if str(team.at[worker, "community"]) != str(plan.grids.at[grid, "community"]):
            raise EditError(
                f"worker {worker} belongs to community {team.at[worker, 'community']}, "
                f"grid {grid} to {plan.grids.at[grid, 'community']}",
                zh=f"网格员 {worker} 属于社区 {team.at[worker, 'community']}，与网格 {grid} 所在社区不同",
            )
    return _Change({}, {grid: {"worker_id": worker}})


_OPERATIONS: dict[str, Callable[..., _Change]] = {
    "move": _move,
    "swap": _swap,
    "merge": _merge,
    "split": _split,
    "repartition": _repartition,
    "lock": _lock,
    "unlock": _unlock,
    "assign_worker": _assign_worker,
}


# -- helpers of the operations ------------------------------------------------------------------


def _as_list(args: Mapping[str, Any], key: str) -> list:
    """``args[key]`` as a list (missing or null: empty); anything else is a named error."""
    value = args.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise EditError(f"{key} must be a list, not {type(value).__name__}", zh=f"{key} 应为列表")
    return list(value)


def _building_ids(ctx: _Context, ids: Any) -> list[str]:
    if not isinstance(ids, list | tuple) or not ids:
        raise EditError("name at least one building", zh="请至少指定一栋楼")
    ids = [str(i) for i in ids]
    unknown = [i for i in ids if i not in ctx.position.index]
    if unknown:
        raise NotFound(
            f"no building {', '.join(unknown[:5])} in the project",
            zh=f"项目中没有楼栋 {', '.join(unknown[:5])}",
        )
    return list(dict.fromkeys(ids))


def _grid(plan: plans.Plan, code: Any) -> str:
    code = str(code) if code is not None else ""
    if code not in plan.grids.index:
        raise NotFound(
            f"no grid {code!r} in plan {plan.plan_id}", zh=f"方案 {plan.plan_id} 中没有网格 {code}"
        )
    return code


def _grid_list(plan: plans.Plan, args: dict) -> list[str]:
    codes_ = _as_list(args, "grids") or ([args["grid"]] if args.get("grid") else [])
    if not codes_:
        raise EditError("name at least one grid", zh="请至少指定一个网格")
    return list(dict.fromkeys(_grid(plan, code) for code in codes_))


def _unlocked(plan: plans.Plan, code: str) -> None:
    if bool(plan.grids.at[code, "locked"]) is True:
        raise EditError(
            f"grid {code} is locked; unlock it first", zh=f"网格 {code} 已锁定，请先解锁"
        )


def _one_community(ctx: _Context, ids: list[str], *, what: str) -> str:
    names = ctx.community[ids].unique()
    if len(names) > 1:
        raise _across(what, names[1], names[0])
    return str(names[0])


def _across(what: str, one: str, other: str) -> EditError:
    return EditError(
        f"{what} would put community {one} and community {other} in one grid; "
        "a grid never spans two communities",
        zh=f"{what} 会把社区 {one} 与社区 {other} 划入同一网格；网格不能跨社区",
    )


def _members(plan: plans.Plan, codes_: set[str]) -> pd.Series:
    """Building -> current code for the buildings of ``codes_`` (to be re-keyed)."""
    for code in codes_:
        _unlocked(plan, code)
    return plan.labels[plan.labels.isin(list(codes_))].astype(object).copy()


def _sub_adjacency(ctx: _Context, ids: pd.Index | list) -> sparse.csr_array:
    pos = ctx.position[list(ids)].to_numpy()
    return sparse.csr_array(ctx.adjacency[pos][:, pos])


def _regroup(
    store: Store,
    conn: Connection,
    plan: plans.Plan,
    ctx: _Context,
    keys: pd.Series,
    affected: set[str],
) -> _Change:
    """Codes for new groupings ``keys`` (building -> key) of the ``affected`` grids' buildings.

    A grouping keeps the code of the old grid it mostly is (``match="majority"``); others get new
    never-issued codes. Returns the building patch and the workers of the new groupings.
    """
    ids = keys.index
    community = ctx.community[ids]
    spread = community.groupby(keys).nunique()
    if (spread > 1).any():
        key = spread.index[spread > 1][0]
        names = community[keys == key].unique()
        raise _across(f"grid {key}", names[1], names[0])
    polygons = boundaries.grid_polygons(ctx.district.cells.loc[ids], keys, community=community)
    members = {key: frozenset(group) for key, group in keys.groupby(keys).groups.items()}
    old = plan.labels[plan.labels.isin(list(affected))]
    previous = {frozenset(group): code for code, group in old.groupby(old).groups.items()}
    code_of = codes.assign_grid_codes(
        polygons,
        members,
        division_code=ctx.district.division_code,
        community_numbers=ctx.district.community_numbers,
        previous=previous,
        used=plans.issued_codes(store, conn=conn),
        match="majority",
    )
    new_labels = keys.map(code_of)
    # a new grid takes the worker of the grid most of its buildings came from
    source = plan.labels[ids].groupby(new_labels).agg(lambda s: s.value_counts().index[0])
    workers = plan.grids["worker_id"].reindex(source.to_numpy())
    grids_patch = {
        str(code): {"worker_id": json_value(worker), "locked": False}
        for code, worker in zip(source.index, workers, strict=True)
    }
    shapes = polygons.rename(index=lambda key: str(code_of[key]))
    return _Change({str(b): str(c) for b, c in new_labels.items()}, grids_patch, shapes)


# -- applying a patch -------------------------------------------------------------------------


def _commit(
    store: Store,
    conn: Connection,
    plan: plans.Plan,
    ctx: _Context,
    change: _Change,
    *,
    op: str,
    args: dict,
    author: str,
) -> EditResult:
    """Apply ``change`` to ``plan``, write the touched rows and the history step."""
    step = _step(store, conn, plan, ctx, change)
    _write(store, conn, step.after, step.changed, step.touched, step.new_rows)
    edit_id = _record(conn, step, op=op, args=args, author=author)
    _remember(_states, _state_key(store, conn, plan.plan_id, step.after.revision), step.after)
    broken = publishing.violations(dataclasses.replace(step.after, grids=step.new_rows))
    forced = publishing.violations(step.after)["unavoidable"].astype(bool)
    unavoidable, total = int(forced.sum()), int((~forced).sum())
    return EditResult(
        plan_id=plan.plan_id,
        revision=step.after.revision,
        edit_id=edit_id,
        op=op,
        touched=step.new_rows,
        removed=step.removed,
        violations=broken,
        total_violations=total,
        unavoidable_flags=unavoidable,
        moved={str(b): str(c) for b, c in step.changed.items()},
    )


@dataclass
class _Step:
    """One step worked out, not yet written: the plan after it and what it changed."""

    after: plans.Plan
    previous: pd.Series  # building -> code before the step, for the moved buildings
    changed: pd.Series  # building -> code after the step, for the moved buildings
    touched: set[str]  # codes of the grids whose rows change
    before_grids: gpd.GeoDataFrame  # their rows before
    new_rows: gpd.GeoDataFrame  # and after
    removed: list[str]  # codes of the grids the step emptied


def _step(
    store: Store, conn: Connection, plan: plans.Plan, ctx: _Context, change: _Change
) -> _Step:
    """``plan`` with ``change`` applied; refuses a building the plan does not hold."""
    patch = pd.Series(dict(change.labels), dtype=object)
    current = plan.labels.reindex(patch.index)
    if current.isna().any():
        raise NotFound(f"no building {current.index[current.isna()][0]!r} in plan {plan.plan_id}")
    changed = patch[patch.ne(current)]
    reshaped = set(current[changed.index]) | set(changed)
    labels = plan.labels.copy()
    labels[changed.index] = changed.to_numpy()
    touched = reshaped | set(change.grids)
    kept = sorted(touched & set(plan.grids.index))
    new_rows = _grid_rows(
        plan, ctx, labels, reshaped, change.grids, shapes=change.shapes, store=store, conn=conn
    )
    grids = pd.concat([plan.grids.drop(index=kept), new_rows])
    return _Step(
        after=dataclasses.replace(plan, labels=labels, grids=grids, revision=plan.revision + 1),
        previous=current[changed.index],
        changed=changed,
        touched=touched,
        before_grids=plan.grids.reindex(kept),
        new_rows=new_rows,
        removed=sorted(reshaped - set(new_rows.index)),
    )


def _record(conn: Connection, step: _Step, *, op: str, args: dict, author: str) -> int:
    """The history row of ``step`` (with the patches undo and redo apply) and the plan's new
    revision; returns the edit id."""
    inverse = {
        "before": {
            "labels": {str(b): str(c) for b, c in step.previous.items()},
            "grids": {str(c): _facts(row) for c, row in step.before_grids.iterrows()},
        },
        "after": {
            "labels": {str(b): str(c) for b, c in step.changed.items()},
            "grids": {str(c): _facts(row) for c, row in step.new_rows.iterrows()},
        },
    }
    plan_id, revision = step.after.plan_id, step.after.revision
    edit_id = conn.execute(
        sa.insert(edits).values(
            plan_id=plan_id,
            revision=revision,
            op=op,
            args=json.dumps(args, ensure_ascii=False, default=str),
            inverse=json.dumps(inverse, ensure_ascii=False),
            author=author,
            at=now_iso(),
        )
    ).inserted_primary_key[0]
    conn.execute(
        sa.update(plans_table).where(plans_table.c.plan_id == plan_id).values(revision=revision)
    )
    return int(edit_id)


def _grid_rows(
    plan: plans.Plan,
    ctx: _Context,
    labels: pd.Series,
    reshaped: set[str],
    grids_patch: Mapping[str, Mapping[str, Any]],
    *,
    shapes: gpd.GeoDataFrame | None,
    store: Store,
    conn: Connection,
) -> gpd.GeoDataFrame:
    """The touched grids' rows after the step: polygons and facts for the reshaped ones only.

    ``shapes`` are the polygons the operation already unioned (by new code), used when they
    cover every reshaped grid; undo and redo union again.
    """
    rows = []
    members = labels[labels.isin(list(reshaped))]
    if len(members):
        rows.append(_reshaped_rows(plan, ctx, labels, members, shapes=shapes))
    only_facts = [c for c in grids_patch if c not in reshaped and c in plan.grids.index]
    if only_facts:
        rows.append(plan.grids.loc[only_facts].drop(columns=["worker_id", "worker", "locked"]))
    frame = gpd.GeoDataFrame(pd.concat(rows), crs=plan.grids.crs)
    names = rosters.worker_names(store, conn=conn)
    worker_id, locked = _workers_and_locks(plan, frame.index, grids_patch)
    # a worker who left the roster since the step was recorded does not come back with undo/redo
    on_roster = [w if w is not None and w in names.index else None for w in worker_id]
    frame["worker_id"] = pd.Series(on_roster, index=frame.index, dtype=object)
    frame["worker"] = frame["worker_id"].map(names).astype(object)
    frame["locked"] = pd.array(locked, dtype="boolean")
    frame["contiguous"] = frame["contiguous"].astype("boolean")
    frame["households"] = pd.array(frame["households"], dtype="Int64")
    frame["n_buildings"] = pd.array(frame["n_buildings"], dtype="Int64")
    columns = [c for c in plans.GRID_COLUMNS[1:] if c in frame.columns]
    frame = frame[[*columns, "geometry"]]
    frame.index.name = "grid_code"
    return frame


def _reshaped_rows(
    plan: plans.Plan,
    ctx: _Context,
    labels: pd.Series,
    members: pd.Series,
    *,
    shapes: gpd.GeoDataFrame | None,
) -> gpd.GeoDataFrame:
    """Polygons and facts (by code) of the grids ``members`` (building -> code) now make up."""
    ids = members.index
    wanted = pd.unique(members.to_numpy())
    if shapes is not None and set(wanted) <= set(shapes.index):
        polygons = shapes.loc[wanted]
    else:
        polygons = boundaries.grid_polygons(
            ctx.district.cells.loc[ids], members, community=ctx.community[ids]
        )
    # facts are judged within whole communities (a cut-off piece is reported as forced)
    scope = ctx.community.index[ctx.community.isin(set(ctx.community[ids]))]
    report = partition.grid_report(
        ctx.district.buildings.loc[scope],
        labels[scope],
        adjacency=_sub_adjacency(ctx, scope),
        min_size=plan.min_size,
        max_size=plan.max_size,
        max_households=plan.max_households,
    ).set_index("grid_key")
    facts = report.loc[polygons.index].drop(columns=["community", "n_buildings", "pieces"])
    shaped = polygons.join(facts)
    shaped.index = shaped.index.astype(str)
    return shaped


def _workers_and_locks(
    plan: plans.Plan, codes: pd.Index, grids_patch: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Any], list[bool]]:
    """Each grid's worker id and lock: as the patch gives them, else as the plan had them."""
    worker_id, locked = [], []
    for code in codes:
        given = grids_patch.get(code, {})
        old = plan.grids.loc[code] if code in plan.grids.index else None
        worker_id.append(
            given["worker_id"]
            if "worker_id" in given
            else json_value(old["worker_id"])
            if old is not None
            else None
        )
        locked.append(
            bool(given["locked"])
            if "locked" in given
            else bool(old["locked"])
            if old is not None
            else False
        )
    return worker_id, locked


def _write(
    store: Store,
    conn: Connection,
    after: plans.Plan,
    changed: pd.Series,
    touched: set[str],
    new_rows: gpd.GeoDataFrame,
) -> None:
    if len(changed):
        store.update_rows(
            conn,
            "assignments",
            pd.DataFrame(
                {
                    "grid_code": changed.to_numpy(),
                    "plan_id": after.plan_id,
                    "building_id": changed.index,
                }
            ),
            key=["plan_id", "building_id"],
        )
        fresh = after.labels[after.labels.isin(list(set(changed)))]
        plans.record_codes(
            conn, fresh, plan_id=after.plan_id, communities=new_rows["community"].astype(str)
        )
    # delete without the store's extent refresh: the append below refreshes it once
    conn.execute(
        sa.text(
            "DELETE FROM plan_grids WHERE plan_id = :p AND grid_code IN "
            f"({', '.join(f':c{i}' for i in range(len(touched)))})"
        ),
        {"p": after.plan_id, **{f"c{i}": code for i, code in enumerate(sorted(touched))}},
    )
    if len(new_rows):
        _append_grid_rows(store, conn, new_rows, after.plan_id)


def _append_grid_rows(store: Store, conn: Connection, rows: gpd.GeoDataFrame, plan_id: int) -> None:
    """Append rows to ``plan_grids`` as MultiPolygons, without the store's extent refresh.

    The store recomputes a layer's extent by decoding every row after each write (all plans'
    grids: tens of milliseconds per edit on a 10,000-building district). An edit only regroups
    cells that are already inside the layer, so the extent cannot grow and is left alone.
    """
    geometries = np.asarray(rows.geometry.values, dtype=object)
    single = shapely.get_type_id(geometries) == 3
    geometries[single] = [shapely.MultiPolygon([g]) for g in geometries[single]]
    # the columns of plans.GRID_COLUMNS, typed as plans.save_plan writes them
    attributes = pd.DataFrame(rows.drop(columns=rows.geometry.name))
    attributes["grid_code"] = rows.index.astype(str)
    for column in ("worker_id", "worker", "reason", "reason_zh"):
        attributes[column] = (
            attributes[column].astype(object).where(attributes[column].notna(), None)
        )
    attributes.insert(0, "plan_id", plan_id)
    attributes = attributes[["plan_id", *plans.GRID_COLUMNS]].reset_index(drop=True)
    store.write_layer(
        conn,
        "plan_grids",
        gpd.GeoDataFrame(attributes, geometry=geometries, crs=rows.crs),
        mode="append",
    )


def _facts(row: pd.Series) -> dict[str, Any]:
    return {
        "worker_id": json_value(row.get("worker_id")),
        "locked": bool(row.get("locked") is True),
    }
