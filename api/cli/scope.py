"""Commands run with a token: ``GRIDMAP_TOKEN`` bounds the CLI as it bounds the API (issue #18 §4).

On a shared server a county's clerk or a street's planner may run ``gridmap`` against the province
database. With ``GRIDMAP_TOKEN`` set, every command that opens a project first asks who the token
is there (:func:`geo.people.tokens.holder_in`, the rule the API applies): a street the token does
not reach answers exactly as a street the database does not hold, and a command above the
token's role is refused (exit 5). Rollups over a county or city cover only the streets the token
reaches. The token is read from the environment only: a command line shows in ``ps`` and the
shell's history. Without ``GRIDMAP_TOKEN`` the CLI is the administrator's tool, as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from typer._click.globals import get_current_context

from geo.defaults import is_server_url
from geo.errors import Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from geo.people.tokens import TokenHolder
    from geo.storage.store import Store

TOKEN_ENV = "GRIDMAP_TOKEN"
#: the least role each command needs under a token (as its API route does); unlisted: admin
COMMAND_ROLES: dict[str, str] = {
    **dict.fromkeys(
        (
            "divisions list",
            "incidents categories list",
            "incidents stats",
            "map",
            "plan diff",
            "plan history",
            "plan list",
            "plan show",
            "print",
            "settings show",
            "households stats",
        ),
        "viewer",
    ),
    **dict.fromkeys(
        (
            "export",
            "incidents import",
            "incidents list",
            "incidents update",
            "ledger",
            "locate",
            # as their API routes: a staff token reads its own grids' households only
            "households find",
            "households due",
            "households assign",
            "households visit",
        ),
        "staff",
    ),
    **dict.fromkeys(
        (
            "import",
            "partition",
            "incidents relocate",
            "incidents categories load",
            *(
                f"plan {step}"
                for step in [
                    "assign-worker",
                    "copy",
                    "lock",
                    "merge",
                    "move",
                    "publish",
                    "recode",
                    "redo",
                    "repartition",
                    "split",
                    "swap",
                    "undo",
                    "unlock",
                ]
            ),
        ),
        "planner",
    ),
}


def token() -> str | None:
    """The token the command runs with, if any."""
    return os.environ.get(TOKEN_ENV, "").strip() or None


def command_role() -> str:
    """The least role the running command needs (``gridmap plan move``: planner)."""
    context = get_current_context(silent=True)
    words = context.command_path.split()[1:] if context is not None else []
    return COMMAND_ROLES.get(" ".join(words), "admin")


def check_store(store: Store, db: Path | str) -> None:
    """Refuse the command when the token does not reach ``store`` or lacks the command's role."""
    given = token()
    if given is None:
        return
    holder = _holder(store, db, given)
    _check_role(holder)


def holder(store: Store, db: Path | str) -> TokenHolder | None:
    """Who the command's token is in ``store`` (None without ``GRIDMAP_TOKEN``): what a command
    that reads as someone (``gridmap households find``) reads as."""
    given = token()
    return None if given is None else _holder(store, db, given)


def check_new_street(db: Path | str, street: str) -> None:
    """Before a command adds ``street`` to a database: only a token from above that covers it
    (a county's planner importing a new street of the county) may."""
    given = token()
    if given is None:
        return
    from geo.divisions import covers
    from geo.people.tokens import verify_token
    from geo.storage.postgis import no_such_street, registered_divisions, shown_url
    from geo.storage.store import open_store

    if street in set(registered_divisions(str(db))["code"]):
        return  # the street's own check follows when it is opened
    try:
        holder = verify_token(open_store(db), given)
    except Unauthorized:
        raise no_such_street(shown_url(str(db)), street) from None
    if holder.division is None or not covers(holder.division, street):
        raise no_such_street(shown_url(str(db)), street)
    _check_role(holder)


def rollup_under(db: Path | str, asked: str | None) -> str | None:
    """The division a rollup may cover under the token: the asked one, narrowed to the token's
    (a county token asking for the province gets its county); NotFound when they are apart."""
    given = token()
    if given is None:
        return asked
    from geo.divisions import covers
    from geo.people.tokens import verify_token
    from geo.storage.store import open_store

    if not is_server_url(db):
        check_store(open_store(db), db)  # a GeoPackage is one street: its own tokens
        return asked
    try:
        holder = verify_token(open_store(db), given)
    except Unauthorized:
        holder = None
    if holder is None or holder.division is None:
        raise NotFound(
            "this token reads one street; rollups need a county's, city's or province's token",
            zh="此令牌只能访问一个街道；汇总需要县、市或省级令牌",
        )
    _check_role(holder)
    if asked is None or covers(asked, holder.division):
        return holder.division
    if covers(holder.division, asked):
        return asked
    raise NotFound(f"no division {asked} here", zh=f"没有区划 {asked}")


def _holder(store: Store, db: Path | str, given: str) -> TokenHolder:
    from geo.people.tokens import holder_in, verify_token
    from geo.storage.postgis import no_such_street, shown_url
    from geo.storage.store import open_store

    street = store.division
    above = None if street is None else (lambda: verify_token(open_store(db), given))
    try:
        return holder_in(street, lambda: verify_token(store, given), above)
    except Unauthorized:
        if street is None:
            raise
        raise no_such_street(shown_url(str(db)), street) from None  # as a street not there


def _check_role(holder: TokenHolder) -> None:
    from geo.people.roles import outranks

    needed = command_role()
    if not outranks(holder.role, needed):
        raise Forbidden(
            f"the token {holder.name!r} has the role {holder.role}; this command needs {needed}",
            zh=f"令牌角色为 {holder.role}，此命令需要 {needed} 及以上",
        )
