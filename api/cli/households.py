"""``gridmap households ...``: 一户一档, the household records, privacy first.

Who is asking decides what is shown: ``--worker NAME`` (or ``GRIDMAP_WORKER``) reads as that
grid worker, who sees the households of their own grids only; ``--role planner`` or ``viewer``
sees counts only; without either, the person holding the project file and the household key
reads as admin. Under ``GRIDMAP_TOKEN`` the token's holder reads, as in the API: its role and the
grid worker a staff token is bound to (``--worker`` and ``--role`` cannot change them). Personal fields are masked unless ``--unmask``, and every household shown is one
audit row with the ``--purpose``. The key comes from ``GRIDMAP_HOUSEHOLD_KEY`` or
``--key-file`` / ``GRIDMAP_HOUSEHOLD_KEY_FILE`` and is never stored in the project file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_DB,
    AuthorOption,
    DbOption,
    JsonOption,
    input_or_stdin,
    lazy,
    note,
    out,
    output_file,
    refuse_project_as_input,
    report,
    rows_table,
    say,
    store_for,
    table,
)

if TYPE_CHECKING:
    import pandas as pd

    from geo.people import access, importing, occupancy, privacy, visits
    from geo.storage.store import Store
else:  # imported by the commands that use them (start-up: tests/test_startup.py)
    pd = lazy("pandas")
    access, importing = lazy("geo.people.access"), lazy("geo.people.importing")
    occupancy, privacy = lazy("geo.people.occupancy"), lazy("geo.people.privacy")
    visits = lazy("geo.people.visits")

households_app = typer.Typer(
    help="一户一档 households and residents: import, find, due, assign, visit, purge, export "
    "(personal fields encrypted, masked, every read audited)",
    no_args_is_help=True,
)

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar="GRIDMAP_HOUSEHOLD_KEY_FILE",
        help="住户密钥文件 household key file (else GRIDMAP_HOUSEHOLD_KEY)",
    ),
]
WorkerOption = Annotated[
    str | None,
    typer.Option(
        "--worker",
        envvar="GRIDMAP_WORKER",
        help="以网格员身份（只见本人网格）read as this grid worker",
    ),
]
RoleOption = Annotated[
    str,
    typer.Option(
        "--role", help="角色 role: admin | staff | planner | viewer (planner/viewer: counts only)"
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(households_app, name="households")


def _viewer(
    store: Store, db: Path | str, author: str, worker: str | None, role: str
) -> access.Viewer:
    """Who reads: the token's holder under ``GRIDMAP_TOKEN`` (its role and bound worker, as the
    API reads it; ``--worker`` and ``--role`` cannot change them), else as the options say."""
    from api.cli.scope import holder
    from geo.errors import Forbidden, InputError

    if role not in ("admin", "staff", "planner", "viewer"):
        raise InputError(f"unknown role {role!r}", zh=f"未知角色 {role}")
    found = holder(store, db)
    if found is None:
        return access.Viewer("staff" if worker else role, author, worker or None)
    if (worker and worker != found.worker) or role not in ("admin", found.role):
        raise Forbidden(
            f"the token {found.name!r} decides who reads (role {found.role}"
            f"{', worker ' + found.worker if found.worker else ''}): leave out --worker and --role",
            zh=f"由令牌 {found.name} 决定读取身份，请去掉 --worker 和 --role",
        )
    return access.Viewer.of_token(found.role, found.name, found.worker)


def _keys(key_file: Path | None) -> privacy.Keyring:
    return privacy.load_keyring(key_file)


@households_app.command("keygen")
def households_keygen(
    target: Annotated[Path, typer.Argument(help="新密钥文件 where to write a new key")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """生成住户密钥 Write a new household key file (keep it outside the project, back it up)."""
    from geo.errors import Conflict

    if target.exists():
        raise Conflict(
            f"{target} exists; a new key would orphan the records sealed with the old one"
        )
    with output_file(target, db=db) as path:
        path.write_text(privacy.new_key_text() + "\n", encoding="ascii")
        path.chmod(0o600)
    note(
        say(
            f"已写入 {target}；请设置 GRIDMAP_HOUSEHOLD_KEY_FILE",
            f"wrote {target}; set GRIDMAP_HOUSEHOLD_KEY_FILE",
        )
    )


@households_app.command("import")
def households_import(
    source: Annotated[
        Path,
        typer.Argument(
            help="住户表 .xlsx 或 CSV（UTF-8/GBK；- 为标准输入）household list (- for stdin)"
        ),
    ],
    db: DbOption = DEFAULT_DB,
    mapping: Annotated[
        str | None, typer.Option(help="列映射 column mapping: name or .json")
    ] = None,
    key_file: KeyFileOption = None,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """导入住户 Import households and residents, matched to buildings; unmatched rows kept for review."""
    refuse_project_as_input(db, source)
    with input_or_stdin(source) as path:
        outcome = importing.import_households(
            store_for(db), path, _keys(key_file), mapping=mapping, actor=author
        )
    data = vars(outcome)
    rows = [(k, v) for k, v in data.items() if not isinstance(v, dict | list)]
    rows += [(f"matched by {k}", v) for k, v in outcome.matched_by.items()]
    rows += [(f"review: {k}", v) for k, v in outcome.reasons.items()]
    report(table(say("住户导入", "Households imported"), rows), data, as_json=as_json)
    if outcome.unknown_tags:
        note(say("未知标签：", "unknown tags: ") + "、".join(outcome.unknown_tags), style="yellow")


@households_app.command("find")
def households_find(
    purpose: Annotated[str, typer.Option(help="查询目的（写入审计日志）why you read (audited)")],
    db: DbOption = DEFAULT_DB,
    name: Annotated[str, typer.Option(help="姓名 name (part)")] = "",
    phone: Annotated[str, typer.Option(help="电话 phone")] = "",
    id_number: Annotated[str, typer.Option("--id", help="身份证号 ID number")] = "",
    id_tail: Annotated[str, typer.Option(help="身份证号后几位 last digits of an ID number")] = "",
    address: Annotated[str, typer.Option(help="地址 小区+楼号+单元+室 address")] = "",
    household: Annotated[str, typer.Option(help="户编号 household id")] = "",
    unmask: Annotated[bool, typer.Option(help="不打码显示 show unmasked (audited)")] = False,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    worker: WorkerOption = None,
    role: RoleOption = "admin",
    key_file: KeyFileOption = None,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """查找住户 Find households by name, phone, ID number (or its last digits) or address."""
    query = access.Query(
        name=name,
        phone=phone,
        id_number=id_number,
        id_tail=id_tail,
        address=address,
        household_id=household,
    )
    store = store_for(db)
    viewer = _viewer(store, db, author, worker, role)
    found = access.find(
        store, _keys(key_file), viewer, query, purpose=purpose, unmask=unmask, limit=limit
    )
    columns = (
        "household_id",
        "community",
        "grid_code",
        "worker",
        "building_id",
        "unit",
        "room",
        "head",
        "phone",
        "size",
        "household_type",
    )
    shown = rows_table(
        say(f"找到 {len(found)} 户", f"{len(found)} households"),
        columns,
        ([answer[c] for c in columns] for answer in found),
    )
    report(shown, found, as_json=as_json)
    if len(found) == 1 and not as_json:  # one household: its residents and visits as well
        _show_one(found[0])


def _show_one(answer: dict) -> None:
    """One household's residents (masked as found) and visits, under its summary row."""
    people = ("name", "id_number", "phone", "relation", "tags")
    residents = ([m[c] for c in people] for m in answer["residents"])
    out.print(rows_table(say("成员", "Residents"), people, residents))
    if answer["visits"]:
        seen = ("visited_on", "cadre", "asked", "done", "follow_up")
        rows = ([v[c] for c in seen] for v in answer["visits"])
        out.print(rows_table(say("走访", "Visits"), seen, rows))


@households_app.command("due")
def households_due(
    db: DbOption = DEFAULT_DB,
    days: Annotated[int, typer.Option(min=1, help="走访周期（天）visit every N days")] = 30,
    worker: WorkerOption = None,
    role: RoleOption = "admin",
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """待走访 Per cadre, the contact households not visited within --days."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    frame = visits.due(store, _viewer(store, db, author, worker, role), days=days)
    shown = rows_table(
        say(
            f"{len(frame)} 户超过 {days} 天未走访",
            f"{len(frame)} households not visited in {days} days",
        ),
        list(frame.columns),
        frame.itertuples(index=False),
    )
    report(shown, json_records(frame), as_json=as_json)


@households_app.command("assign")
def households_assign(
    household_ids: Annotated[list[str], typer.Argument(help="户编号 household ids")],
    cadre: Annotated[str, typer.Option(help="联系干部 the cadre who answers for them")],
    db: DbOption = DEFAULT_DB,
    worker: WorkerOption = None,
    role: RoleOption = "admin",
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """指定联系户 Make a cadre answer for households (warns beyond 3 per cadre)."""
    store = store_for(db)
    viewer = _viewer(store, db, author, worker, role)
    done = visits.assign(store, viewer, household_ids, cadre)
    if done.warning:
        note(
            say(f"注意：{done.cadre} 已联系 {done.holds} 户，超过 3 户", done.warning),
            style="yellow",
        )
    report(
        table(say("联系户", "Contact households"), [("cadre", done.cadre), ("holds", done.holds)]),
        vars(done),
        as_json=as_json,
    )


@households_app.command("visit")
def households_visit(
    household_id: Annotated[str, typer.Argument(help="户编号 household id")],
    cadre: Annotated[str, typer.Option(help="走访干部 cadre")],
    db: DbOption = DEFAULT_DB,
    date: Annotated[str, typer.Option(help="走访日期 YYYY-MM-DD (today)")] = "",
    asked: Annotated[str, typer.Option(help="群众诉求 what was asked")] = "",
    done: Annotated[str, typer.Option(help="办理情况 what was done")] = "",
    follow_up: Annotated[str, typer.Option(help="后续跟进 follow-up")] = "",
    worker: WorkerOption = None,
    role: RoleOption = "admin",
    key_file: KeyFileOption = None,
    author: AuthorOption = "",
) -> None:
    """记录走访 Record a home visit (notes are encrypted like names)."""
    from geo.errors import InputError

    try:
        on = dt.date.fromisoformat(date) if date else dt.date.today()
    except ValueError:
        raise InputError(
            f"--date {date!r} is not YYYY-MM-DD", zh=f"日期 {date} 格式应为 YYYY-MM-DD"
        ) from None
    store = store_for(db)
    visit_id = visits.record_visit(
        store,
        _keys(key_file),
        _viewer(store, db, author, worker, role),
        household_id,
        cadre=cadre,
        visited_on=on,
        notes=(asked, done, follow_up),
    )
    note(say(f"已记录走访 {visit_id}", f"visit {visit_id} recorded"))


@households_app.command("purge")
def households_purge(
    household_id: Annotated[str, typer.Argument(help="户编号 household id")],
    reason: Annotated[str, typer.Option(help="原因（如迁出）why (e.g. moved away)")],
    db: DbOption = DEFAULT_DB,
    worker: WorkerOption = None,
    role: RoleOption = "admin",
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """删除住户 Remove a household and its residents everywhere (records, cadre, visits, review)."""
    store = store_for(db)
    removed = access.purge(
        store, _viewer(store, db, author, worker, role), household_id, reason=reason
    )
    report(
        table(say(f"已删除 {household_id}", f"purged {household_id}"), list(removed.items())),
        removed,
        as_json=as_json,
    )


@households_app.command("review")
def households_review(
    db: DbOption = DEFAULT_DB,
    role: RoleOption = "admin",
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """待核对 The rows that matched no building, with the reason (no personal field)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    frame = access.review_list(store, _viewer(store, db, author, None, role))
    columns = ["household_id", "source", "line", "reason", "place"]
    shown = rows_table(
        say(f"{len(frame)} 行待核对", f"{len(frame)} rows to review"),
        columns,
        frame[columns].itertuples(index=False),
    )
    report(shown, json_records(frame[columns]), as_json=as_json)


@households_app.command("export")
def households_export(
    target: Annotated[Path, typer.Argument(help="输出 .csv 或 .xlsx")],
    db: DbOption = DEFAULT_DB,
    level: Annotated[str, typer.Option(help="grid | building")] = "grid",
    include_personal: Annotated[
        bool, typer.Option(help="含个人信息（仅管理员，需 --reason，写入审计）admin only, audited")
    ] = False,
    reason: Annotated[str, typer.Option(help="导出个人信息的原因 why personal fields leave")] = "",
    role: RoleOption = "admin",
    key_file: KeyFileOption = None,
    author: AuthorOption = "",
) -> None:
    """导出 Occupancy per grid or building (aggregates); with --include-personal the records."""
    from geo.errors import InputError
    from geo.exchange.csvsafe import csv_safe_frame
    from geo.exchange.xlsx import write_xlsx

    store = store_for(db)
    if include_personal:
        frame = access.personal_export(
            store, _keys(key_file), _viewer(store, db, author, None, role), reason=reason
        )
    elif level in ("grid", "building"):
        found = (
            occupancy.grid_occupancy(store)
            if level == "grid"
            else occupancy.building_occupancy(store)
        )
        frame = found.reset_index()
    else:
        raise InputError(f"--level is grid or building, not {level!r}")
    with output_file(target, db=db) as path:
        if target.suffix.lower() == ".xlsx":
            write_xlsx(path, {"households": frame})
        else:
            csv_safe_frame(frame).to_csv(path, index=False, encoding="utf-8-sig")
    note(say(f"已写入 {target}（{len(frame)} 行）", f"wrote {target} ({len(frame)} rows)"))


@households_app.command("stats")
def households_stats(
    db: DbOption = DEFAULT_DB,
    level: Annotated[str, typer.Option(help="grid | building")] = "grid",
    as_json: JsonOption = False,
) -> None:
    """以房管人 Occupancy per grid or building: households by type, rented, floating share."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    found = (
        occupancy.grid_occupancy(store) if level == "grid" else occupancy.building_occupancy(store)
    )
    frame = found.reset_index()
    shown = rows_table(
        say("住户统计", "Occupancy"), list(frame.columns), frame.itertuples(index=False)
    )
    report(shown, json_records(frame), as_json=as_json)
