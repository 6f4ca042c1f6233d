"""``gridmap partition``, ``gridmap workers ...`` and ``gridmap plan ...``: the grids and their people.

``--workers N`` / ``--cluster tcp://host:8786`` (here and on ``gridmap import``) run the
communities' work on a Dask cluster (:mod:`geo.province.cluster`, the province commands' own);
without them Dask is never imported.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_DB,
    AuthorOption,
    DbOption,
    JsonOption,
    console,
    input_or_stdin,
    lazy,
    note,
    out,
    print_json,
    progress_bar,
    refuse_project_as_input,
    report,
    rows_table,
    say,
    store_for,
    table,
)
from geo.collect import fewer_collections
from geo.defaults import MAX_GRID_SIZE

if TYPE_CHECKING:
    import pandas as pd

    from geo.people import roster as rosters
    from geo.plans import publish as publishing
    from geo.plans import store as plans
    from geo.province import cluster
    from geo.usecases import district as project
    from geo.usecases import partition as partitioning
    from geo.usecases import staffing
else:  # imported by the commands that use them (issue #16: start-up)
    pd, plans, project = lazy("pandas"), lazy("geo.plans.store"), lazy("geo.usecases.district")
    partitioning = lazy("geo.usecases.partition")
    rosters = lazy("geo.people.roster")
    staffing = lazy("geo.usecases.staffing")
    publishing = lazy("geo.plans.publish")
    cluster = lazy("geo.province.cluster")

workers_app = typer.Typer(
    help="网格员 grid workers: import a roster, assign grids", no_args_is_help=True
)
plan_app = typer.Typer(
    help="网格方案 plan versions: list, show, copy, publish, diff, and edits (move, swap, merge, split, lock, undo, redo)",
    no_args_is_help=True,
)


WorkersOption = Annotated[
    int | None,
    typer.Option(help="本机 Dask 工作进程数 run the communities on N local Dask processes"),
]
ClusterOption = Annotated[
    str | None,
    typer.Option("--cluster", help="已有 Dask 集群 run them on a Dask cluster, tcp://host:8786"),
]


def cluster_mapper(
    cluster_url: str | None, workers: int | None
) -> AbstractContextManager[cluster.Mapper | None]:
    """The mapper of ``--cluster`` / ``--workers`` (None and no Dask import without them)."""
    if cluster_url is None and workers is None:
        return nullcontext(None)
    return cluster.mapping(cluster=cluster_url, workers=workers)


PLAN_COLUMNS = (
    "plan_id",
    "status",
    "parent_id",
    "grids",
    "flagged",
    "revision",
    "author",
    "created_at",
    "note",
)


def register(app: typer.Typer) -> None:
    app.command("partition")(partition_command)
    app.add_typer(workers_app, name="workers")
    app.add_typer(plan_app, name="plan")


def partition_command(
    db: DbOption = DEFAULT_DB,
    min_size: Annotated[
        int | None,
        typer.Option(
            "--min", min=1, max=MAX_GRID_SIZE, help="每格最少建筑 fewest buildings per grid (4)"
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max", min=1, max=MAX_GRID_SIZE, help="每格最多建筑 most buildings per grid (5)"
        ),
    ] = None,
    max_households: Annotated[
        int | None, typer.Option(min=1, help="每格户数上限 households cap")
    ] = None,
    community: Annotated[
        list[str] | None, typer.Option(help="只重划这些社区 re-partition only these communities")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="随机种子 seed (same seed, same grids)")] = 0,
    publish: Annotated[
        bool | None,
        typer.Option("--publish/--draft", help="发布或仅保存草稿 publish, or keep a draft"),
    ] = None,
    author: AuthorOption = "",
    workers: WorkersOption = None,
    cluster_url: ClusterOption = None,
    as_json: JsonOption = False,
) -> None:
    """划分网格 Group each community's buildings into grids of 4 to 5 (a new plan version)."""
    store = store_for(db)
    options = partitioning.PartitionOptions(
        min_size=min_size,
        max_size=max_size,
        max_households=max_households,
        communities=community,
        seed=seed,
    )
    with (
        cluster_mapper(cluster_url, workers) as mapper,
        progress_bar() as update,
        fewer_collections(),
    ):
        outcome = partitioning.partition_project(
            store, options=options, author=author, publish=publish, progress=update, mapper=mapper
        )
    if outcome.division_code_is_default:
        _warn_placeholder_code()
    _report_partition(outcome, as_json=as_json)
    flagged = outcome.summary.get("flagged_communities", [])
    if flagged and not as_json:
        _show_flagged(flagged)
    if not outcome.published:
        note(
            say(
                f"发布：gridmap plan publish {outcome.plan_id}",
                f"publish: gridmap plan publish {outcome.plan_id}",
            )
        )


def _warn_placeholder_code() -> None:
    """The codes carry the placeholder division code: how to set the project's own."""
    console.print(
        say(
            f"注意：未设置区划代码，网格编码暂用占位符 {project.DEFAULT_DIVISION_CODE}；"
            "请运行 gridmap settings set division_code <9位代码>，再运行 gridmap plan recode",
            f"Note: division_code is not set; the codes carry the placeholder "
            f"{project.DEFAULT_DIVISION_CODE}. Set yours: gridmap settings set division_code "
            "<9 digits>, then gridmap plan recode",
        ),
        style="yellow",
        markup=False,
    )


def _report_partition(outcome: partitioning.PartitionOutcome, *, as_json: bool) -> None:
    """The new plan's figures: a table, or JSON with --json."""
    s = outcome.summary
    status = say("已发布", "published") if outcome.published else say("草稿", "draft")
    report(
        table(
            say(f"网格方案 {outcome.plan_id}", f"Plan {outcome.plan_id}"),
            [
                (say("建筑", "buildings"), s["buildings"]),
                (say("网格", "grids"), s["grids"]),
                (say("规模达标比例", "share in range"), f"{s['share_in_range']:.1%}"),
                (say("连片比例", "contiguous share"), f"{s['share_contiguous']:.1%}"),
                (say("平均直径", "mean diameter"), f"{s['mean_diameter_m']:.0f} m"),
                (say("P95 直径", "p95 diameter"), f"{s['p95_diameter_m']:.0f} m"),
                (say("最大直径", "max diameter"), f"{s['max_diameter_m']:.0f} m"),
                (say("状态", "status"), status),
            ],
        ),
        {"plan_id": outcome.plan_id, "published": outcome.published, **s},
        as_json=as_json,
    )


def _show_flagged(flagged: list[dict]) -> None:
    """The communities the summary flags, with the reason in the user's language."""
    reason = "reason_zh" if say("zh", "en") == "zh" else "reason"
    out.print(
        rows_table(
            say("需要关注的社区", "Flagged communities"),
            [say("社区", "community"), say("原因", "reason")],
            ((item["community"], item[reason]) for item in flagged),
        )
    )


@workers_app.command("import")
def workers_import(
    roster_csv: Annotated[
        Path,
        typer.Argument(
            help="花名册 CSV 或 Excel .xlsx（- 为标准输入）：工号,姓名,手机,社区 "
            "(worker id, name, phone, community; - for stdin)"
        ),
    ],
    db: DbOption = DEFAULT_DB,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="确认替换：移除不在新名单上的网格员 accept a roster that removes workers "
            "or leaves grids without one",
        ),
    ] = False,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """导入网格员花名册 Import the grid workers' roster (replaces the current one; one that
    removes workers or leaves grids without a worker is refused, with the difference, unless
    --replace)."""
    refuse_project_as_input(db, roster_csv)
    with input_or_stdin(roster_csv) as roster_file:
        _import_roster(db, roster_file, replace=replace, author=author, as_json=as_json)


def _import_roster(
    db: Path, roster_csv: Path, *, replace: bool, author: str, as_json: bool
) -> None:
    """``gridmap workers import``'s work, on the roster file (stdin saved to one for ``-``)."""
    from geo.people.workers import read_roster

    store = store_for(db)
    communities = store.read_layer("communities", columns=["community"])["community"]
    roster = read_roster(roster_csv, communities=communities)
    change = rosters.import_roster(store, roster, author=author, replace=replace)
    missing = change.without_worker
    if as_json:
        print_json(
            {
                "workers": change.workers,
                "removed": list(change.removed),
                "released": change.released,
                "without_worker": _reasons(missing).to_dict("records"),
            }
        )
        return
    note(say(f"已导入 {change.workers} 名网格员", f"imported {change.workers} workers"))
    if change.removed:
        note(
            say(
                f"移出花名册 {len(change.removed)} 人，已从 {change.released} 个网格/在办案件中撤下",
                f"{len(change.removed)} workers removed, taken off {change.released} grids "
                "and open cases",
            )
        )
    if not missing.empty:
        _show_missing(
            missing,
            say(
                f"{len(missing)} 个网格无网格员：gridmap workers assign",
                f"{len(missing)} grids without a worker: gridmap workers assign",
            ),
        )


@workers_app.command("assign")
def workers_assign(
    db: DbOption = DEFAULT_DB,
    plan: Annotated[
        int | None, typer.Option(help="方案编号（默认已发布方案）plan id (default: published)")
    ] = None,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """为空缺网格指定网格员 Give every grid without a worker one from its community, fairly."""
    store = store_for(db)
    assigned, missing = staffing.fill_workers(store, plan, author=author)
    if as_json:
        print_json({"assigned": assigned, "without_worker": _reasons(missing).to_dict("records")})
        return
    note(say(f"新指定 {assigned} 个网格", f"assigned {assigned} grids"))
    if missing.empty:
        note(say("所有网格均已有网格员", "every grid has a worker"))
        return
    _show_missing(
        missing, say(f"{len(missing)} 个网格仍无网格员", f"{len(missing)} grids without a worker")
    )


def _reasons(missing: pd.DataFrame) -> pd.DataFrame:
    """Grid code, community and the reason, in the user's language, one row per grid."""
    from geo.people.workers import NO_WORKER

    # the Chinese reasons a grid has no worker (geo.people.workers gives them in English)
    reasons_zh = {NO_WORKER: "本社区没有网格员", "no responsible worker assigned": "未指定网格员"}
    frame = missing if "grid_code" in missing.columns else missing.reset_index(names="grid_code")
    frame = frame[["grid_code", "community", "reason"]].copy()
    frame["reason"] = [say(reasons_zh.get(r, r), r) for r in frame["reason"]]
    return frame


def _show_missing(missing: pd.DataFrame, title: str) -> None:
    """The grids without a worker as a table on stdout (every one: no silent limit)."""
    out.print(
        rows_table(
            title,
            [say("网格编码", "grid code"), say("社区", "community"), say("原因", "reason")],
            _reasons(missing).itertuples(index=False),
        )
    )


@workers_app.command("list")
def workers_list(
    db: DbOption = DEFAULT_DB,
    include_contacts: Annotated[bool, typer.Option(help="显示电话 show phone numbers")] = False,
) -> None:
    """列出网格员及其网格数 List workers and how many grids each holds (JSON)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    team = rosters.roster(store)
    grids = publishing.published_grids(store)
    team["grids"] = team["worker_id"].map(grids["worker_id"].value_counts()).fillna(0).astype(int)
    if not include_contacts:
        team = team.drop(columns="phone")
    print_json(json_records(team))


@plan_app.command("list")
def plan_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """列出方案 List the plan versions (a table, or JSON with --json)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    frame = plans.list_plans(store)
    for column in ("plan_id", "parent_id", "grids", "flagged", "revision"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    records = json_records(frame)
    report(
        rows_table(
            say("网格方案", "Plans"),
            PLAN_COLUMNS,
            ([record.get(c, "") for c in PLAN_COLUMNS] for record in records),
        ),
        records,
        as_json=as_json,
    )


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[int | None, typer.Argument(help="方案编号（默认已发布方案）")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """显示方案的网格 Show a plan's grids and its violations (JSON)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    plan = plans.load_plan(store, plan_id)
    grids = plan.grids.drop(columns="geometry")
    print_json(
        {
            "plan_id": plan.plan_id,
            "status": plan.status,
            "revision": plan.revision,
            "parent_id": plan.parent_id,
            "grids": json_records(grids.reset_index(names="grid_code")),
            "violations": json_records(publishing.violations(plan)),
        }
    )


@plan_app.command("publish")
def plan_publish(
    plan_id: Annotated[int, typer.Argument(help="方案编号 plan id")],
    db: DbOption = DEFAULT_DB,
    override: Annotated[
        str | None, typer.Option(help="带违规发布的理由 reason to publish despite violations")
    ] = None,
    revision: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="审阅的版本号，方案已变则拒绝 the revision reviewed (refused if it moved on)",
        ),
    ] = None,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """发布方案 Publish a plan: its grids become the district's grids."""
    store = store_for(db)
    result = publishing.publish_plan(
        store, plan_id, author=author, override_reason=override, revision=revision
    )
    accepted = result["violations"]
    if as_json:
        print_json(result)
        return
    note(
        say(f"方案 {plan_id} 已发布", f"plan {plan_id} published")
        + (
            say(f"（接受 {accepted} 处违规）", f" ({accepted} violations accepted)")
            if accepted
            else ""
        )
    )
    if result.get("unavoidable"):
        unavoidable = result["unavoidable"]
        note(
            say(
                f"另有 {unavoidable} 处无法避免的标记（楼栋数无法成格、被隔开的楼栋），无需理由",
                f"{unavoidable} unavoidable flags (compounds whose count cannot make grids, "
                "forced bridges) need no reason",
            )
        )
