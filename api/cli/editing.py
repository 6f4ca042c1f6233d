"""``gridmap plan copy|diff|move|swap|merge|split|...``: a planner's edits of a draft plan.

Each edit command works on ``--plan`` (default: the newest draft) at ``--revision`` (default: the
plan's current revision; give it to be sure nobody edited in between), prints the touched grids
and the rules they now break as JSON on stdout and a one-line summary on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_DB,
    AuthorOption,
    DbOption,
    console,
    lazy,
    output_file,
    print_json,
    say,
    store_for,
)
from api.cli.grids import plan_app

if TYPE_CHECKING:
    from geo.plans import diff as diffs
    from geo.plans import editing
    from geo.plans import store as plans
    from geo.storage.store import Store
else:  # imported by the commands that use them (issue #16: start-up)
    editing, plans = lazy("geo.plans.editing"), lazy("geo.plans.store")
    diffs = lazy("geo.plans.diff")

PlanOption = Annotated[
    int | None,
    typer.Option(
        "--plan", help="草稿方案编号（默认最新草稿）draft plan id (default: newest draft)"
    ),
]
RevisionOption = Annotated[
    int | None,
    typer.Option(
        help="编辑所基于的版本（默认当前）revision the edit is made on (default: current)"
    ),
]


def register(app: typer.Typer) -> None:
    """Add the editing commands to the ``gridmap plan`` app (registered by api.cli.grids)."""
    for name, command in (
        ("copy", plan_copy),
        ("diff", plan_diff),
        ("move", plan_move),
        ("swap", plan_swap),
        ("merge", plan_merge),
        ("split", plan_split),
        ("repartition", plan_repartition),
        ("lock", plan_lock),
        ("unlock", plan_unlock),
        ("assign-worker", plan_assign_worker),
        ("undo", plan_undo),
        ("redo", plan_redo),
        ("history", plan_history),
    ):
        plan_app.command(name)(command)


def newest_draft(store: Store) -> int:
    """The id of the newest draft plan (:func:`geo.usecases.drafts.newest_draft`)."""
    from geo.usecases.drafts import newest_draft as newest

    return newest(store)


def _edit(
    db: Path, plan: int | None, revision: int | None, author: str, op: str, args: dict
) -> None:
    store = store_for(db)
    plan_id = plan if plan is not None else newest_draft(store)
    if revision is None:
        revision = int(plans.plan_row(store, plan_id)["revision"])
    if op in ("undo", "redo"):
        step = editing.undo if op == "undo" else editing.redo
        result = step(store, plan_id, revision=revision, author=author)
    else:
        result = editing.apply_edit(store, plan_id, op, args, revision=revision, author=author)
    _report(result)


def _report(result: editing.EditResult) -> None:
    broken = len(result.violations)
    console.print(
        say(
            f"方案 {result.plan_id} 版本 {result.revision}：{result.op}，涉及 {len(result.touched)} 个网格，"
            f"{broken} 处违规（全方案 {result.total_violations} 处需理由，"
            f"{result.unavoidable_flags} 处无法避免）",
            f"plan {result.plan_id} revision {result.revision}: {result.op} touched "
            f"{len(result.touched)} grids, {broken} violations there ({result.total_violations} "
            f"in the plan need a reason, {result.unavoidable_flags} unavoidable)",
        ),
        markup=False,
        highlight=False,
    )
    print_json(result.to_dict())


def plan_copy(
    plan_id: Annotated[int, typer.Argument(help="要复制的方案 plan to copy")],
    db: DbOption = DEFAULT_DB,
    note: Annotated[str, typer.Option(help="说明 note")] = "",
    author: AuthorOption = "",
) -> None:
    """复制方案为新草稿 Copy a plan into a new draft (its parent is recorded)."""
    store = store_for(db)
    new_id = editing.copy_plan(store, plan_id, author=author, note=note)
    console.print(
        say(
            f"新草稿方案 {new_id}（复制自 {plan_id}）",
            f"new draft plan {new_id} (copy of {plan_id})",
        )
    )
    print_json({"plan_id": new_id, "parent_id": plan_id})


def plan_diff(
    before: Annotated[int, typer.Argument(help="旧方案 plan A")],
    after: Annotated[int, typer.Argument(help="新方案 plan B")],
    db: DbOption = DEFAULT_DB,
    map_out: Annotated[
        Path | None, typer.Option("--map", help="写出差异地图 write the diff map (HTML)")
    ] = None,
    lang: Annotated[str, typer.Option(help="地图语言 map language (zh/en)")] = "zh",
    offline: Annotated[bool, typer.Option(help="离线地图 self-contained map, no tiles")] = False,
) -> None:
    """比较两个方案 List the buildings that changed grid and the grids added, removed, changed."""
    store = store_for(db)
    changes = diffs.diff_plans(editing.plan_state(store, before), editing.plan_state(store, after))
    console.print(
        say(
            f"{len(changes['buildings_moved'])} 栋楼换了网格；新增 {len(changes['grids_added'])}、"
            f"删除 {len(changes['grids_removed'])}、变更 {len(changes['grids_changed'])} 个网格",
            f"{len(changes['buildings_moved'])} buildings changed grid; grids added "
            f"{len(changes['grids_added'])}, removed {len(changes['grids_removed'])}, "
            f"changed {len(changes['grids_changed'])}",
        ),
        markup=False,
    )
    if map_out is not None:
        from api.mapping import plan_diff_map
        from maps.render import save_map

        m = plan_diff_map(store, before, after, lang=lang, offline=offline)
        with output_file(map_out, db=db) as scratch:
            save_map(m, scratch, offline=offline)
        console.print(say(f"差异地图：{map_out}", f"diff map: {map_out}"), markup=False)
    print_json(changes)


def plan_move(
    buildings: Annotated[list[str], typer.Argument(help="楼栋编号 building ids")],
    to: Annotated[
        str, typer.Option("--to", help="目标网格编码，或 new 新建网格 target grid code, or 'new'")
    ],
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """移动楼栋到另一网格 Move buildings to another grid (adjacent or not), or to a new grid."""
    target: Any = None if to.lower() == "new" else to
    _edit(db, plan, revision, author, "move", {"buildings": buildings, "to": target})


def plan_swap(
    a: Annotated[str, typer.Argument(help="楼栋 A building")],
    b: Annotated[str, typer.Argument(help="楼栋 B building")],
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """交换两栋楼的网格 Swap the grids of two buildings."""
    _edit(db, plan, revision, author, "swap", {"a": a, "b": b})


def plan_merge(
    grids: Annotated[
        list[str], typer.Argument(help="网格编码（至少两个）grid codes (two or more)")
    ],
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """合并网格 Merge grids of one community into one."""
    _edit(db, plan, revision, author, "merge", {"grids": grids})


def plan_split(
    grid: Annotated[str, typer.Argument(help="网格编码 grid code")],
    part: Annotated[
        list[str] | None,
        typer.Option(
            help="一部分楼栋，逗号分隔（可多次）one part: building ids, comma-separated (repeat)"
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """拆分网格 Split a grid: automatically into valid pieces, or along the given parts."""
    parts = [[i.strip() for i in text.split(",") if i.strip()] for text in part or []]
    _edit(db, plan, revision, author, "split", {"grid": grid, "parts": parts or None})


def plan_repartition(
    community: Annotated[
        list[str] | None, typer.Option(help="社区（可多次）community (repeat)")
    ] = None,
    grid: Annotated[
        list[str] | None, typer.Option(help="网格编码（可多次）grid code (repeat)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """重新划分所选社区或网格 Re-partition whole communities or chosen grids (locked grids kept)."""
    _edit(db, plan, revision, author, "repartition", {"communities": community, "grids": grid})


def plan_lock(
    grids: Annotated[list[str], typer.Argument(help="网格编码 grid codes")],
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """锁定网格 Lock grids: edits and re-partitions keep them as they are."""
    _edit(db, plan, revision, author, "lock", {"grids": grids})


def plan_unlock(
    grids: Annotated[list[str], typer.Argument(help="网格编码 grid codes")],
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """解锁网格 Unlock grids."""
    _edit(db, plan, revision, author, "unlock", {"grids": grids})


def plan_assign_worker(
    grid: Annotated[str, typer.Argument(help="网格编码 grid code")],
    worker: Annotated[
        str | None, typer.Argument(help="网格员工号（省略则清除）worker id (none: clear)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """指定网格员 Make a worker responsible for a grid (or clear it)."""
    _edit(db, plan, revision, author, "assign_worker", {"grid": grid, "worker_id": worker})


def plan_undo(
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """撤销上一步 Undo the latest step."""
    _edit(db, plan, revision, author, "undo", {})


def plan_redo(
    db: DbOption = DEFAULT_DB,
    plan: PlanOption = None,
    revision: RevisionOption = None,
    author: AuthorOption = "",
) -> None:
    """重做 Redo the step undone last."""
    _edit(db, plan, revision, author, "redo", {})


def plan_history(
    plan_id: Annotated[int | None, typer.Argument(help="方案编号（默认最新草稿）")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """编辑历史 The plan's steps, oldest first (JSON)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    table = editing.history(store, plan_id if plan_id is not None else newest_draft(store))
    print_json(json_records(table))
