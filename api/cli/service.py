"""``gridmap serve`` and ``gridmap token ...``: the HTTP service and its access tokens."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    console,
    current_division,
    is_server,
    lazy,
    out,
    report,
    rows_table,
    say,
    store_for,
)
from api.roles import ROLE_HELP, ROLES

if TYPE_CHECKING:
    from api import auth
    from geo.storage.store import Store
else:  # the project file's token table: imported by the commands that use it
    auth = lazy("api.auth")

token_app = typer.Typer(
    help="访问令牌 API tokens: create (shown once), list, revoke", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``gridmap`` app."""
    app.command("serve")(serve_command)
    app.add_typer(token_app, name="token")


def serve_command(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="监听地址 address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="端口 port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="进程数 worker processes (one per core)")] = 1,
    public_maps: Annotated[
        bool,
        typer.Option(help="无需令牌即可查看地图（只读，不含电话）serve /maps/* without a token"),
    ] = False,
) -> None:
    """启动 HTTP 服务 Serve the API (docs at /docs, OGC API - Features at /ogc)."""
    import uvicorn

    store_for(db)  # a missing or foreign file is reported here, not by every worker
    os.environ["GRIDMAP_DB"] = str(db)
    if current_division():  # one street of a database of many; without it, every street
        os.environ["GRIDMAP_DIVISION"] = current_division() or ""
    elif is_server(db):
        console.print(
            say(
                f"各街道：http://{host}:{port}/divisions/<街道代码>/ （列表：/divisions）",
                f"streets: http://{host}:{port}/divisions/<code>/ (list: /divisions)",
            ),
            markup=False,
        )
    if public_maps:
        os.environ["GRIDMAP_PUBLIC_MAPS"] = "1"
    console.print(
        say(
            f"服务地址 http://{host}:{port}/docs ；QGIS 连接 http://{host}:{port}/ogc",
            f"serving http://{host}:{port}/docs ; QGIS: http://{host}:{port}/ogc",
        ),
        markup=False,
    )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=" | ".join(f"{r}: {ROLE_HELP[r]}" for r in ROLES))],
    name: Annotated[str, typer.Option(help="令牌名称（人或系统）who or what uses it")],
    db: DbOption = DEFAULT_DB,
    worker: Annotated[
        str | None,
        typer.Option(help="绑定网格员（工号或姓名）bind the token to a grid worker (id or name)"),
    ] = None,
) -> None:
    """创建令牌 Create a token; it is printed once and only its hash is kept.

    With ``--division`` of a county, city or province (PostGIS), the token reads (its role)
    every street under it; it is kept by the database's own project.
    """
    store, scope = _token_store(db)
    token = auth.create_token(
        store, name, role, worker=worker, division=scope, actor=os.environ.get("GRIDMAP_USER", "")
    )
    console.print(
        say(
            f"令牌 {name}（{role}）已创建，仅显示这一次：",
            f"token {name} ({role}) created; it is shown this once:",
        ),
        markup=False,
    )
    out.print(token, markup=False, highlight=False)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="令牌名称 token name")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """吊销令牌 Revoke a token (it stops working at once)."""
    auth.revoke_token(_token_store(db)[0], name, actor=os.environ.get("GRIDMAP_USER", ""))
    console.print(say(f"令牌 {name} 已吊销", f"token {name} revoked"), markup=False)


@token_app.command("list")
def token_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """列出令牌 List tokens (names and roles; never the tokens)."""
    from geo.jsonvalue import json_records

    columns = ("name", "role", "worker", "division", "created_at", "revoked_at")
    store, scope = _token_store(db)
    listed = auth.list_tokens(store)
    if scope is not None:  # a county's: the tokens scoped to it
        listed = listed[listed["division"] == scope]
    records = json_records(listed[list(columns)])
    report(
        rows_table(
            say("访问令牌", "Tokens"),
            columns,
            ([record[c] or "" for c in columns] for record in records),
        ),
        records,
        as_json=as_json,
    )


def _token_store(db: str) -> tuple[Store, str | None]:
    """Where the tokens of ``--division`` are kept: a street's in its project (``store_for``);
    a county's, city's or province's in the database's own project, with the division's code."""
    from geo.people.tokens import token_scope
    from geo.storage.store import open_store

    scope = token_scope(current_division(), server=is_server(db))
    return (store_for(db), None) if scope is None else (open_store(db), scope)
