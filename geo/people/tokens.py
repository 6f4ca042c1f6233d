"""Bearer tokens with roles: create (shown once), verify, revoke, list.

Only the SHA-256 of a token is stored (the ``tokens`` table of the project): a copy of the file
does not give access. Roles are ordered (:mod:`geo.people.roles`). A token may also be bound to
one grid worker (``worker``, their ``worker_id``), so that staff can be kept to their own grids;
tokens made before the binding existed hold none and work as before.

A database of many streets (issue #18) keeps each street's tokens in the street's own project;
a token for a division above a street (a county's viewer, a province's admin) is a token of the
database's own project with a ``division``: the code of the subtree it reads and writes
(:func:`geo.divisions.covers`). Such a token is never bound to a worker: workers are a street's.

Examples
--------
>>> len(token_hash("gm_x"))
64
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.divisions import covers, parse_division
from geo.errors import Conflict, InputError, NotFound, Unauthorized
from geo.people.roles import ROLES
from geo.storage.store import Store, now_iso, tokens, workers

PREFIX = "gm_"
#: what :func:`list_tokens` shows of each token (never the hash)
LISTED = ["name", "role", "worker", "division", "created_at", "revoked_at"]
#: the column binding a token to a worker (older projects gain it on opening:
#: geo.storage.store.ensure_columns)
WORKER = "worker"


@dataclass(frozen=True)
class TokenHolder:
    """Who a token belongs to: its name, its role, the worker it is bound to, if any, and the
    division it is scoped to (None: the project's own token)."""

    name: str
    role: str
    worker: str | None = None
    division: str | None = None


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of ``token``: what the project keeps of it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`~geo.people.roles.ROLES`, else :class:`InputError`."""
    if role not in ROLES:
        raise InputError(
            f"unknown role {role!r}; roles: {', '.join(ROLES)}",
            zh=f"未知角色 {role}；可选：{', '.join(ROLES)}",
        )
    return role


def create_token(
    store: Store,
    name: str,
    role: str,
    *,
    worker: str | None = None,
    division: str | None = None,
    actor: str = "",
) -> str:
    """A new token for ``name`` with ``role``; the caller shows it once, it is not kept.

    ``worker``: bind the token to the roster's worker with this ``worker_id`` or, when no id
    matches, this name (one worker only); the binding holds their ``worker_id``.
    ``division``: the code (county, city or province, as parsed by
    :func:`geo.divisions.parse_division`) of the streets a token of the database's own project
    reads and writes; never with ``worker``.
    """
    check_role(role)
    name = _checked_name(name)
    if division is not None and worker is not None:
        raise InputError(
            "a token bound to a worker belongs to the worker's street: create it with the "
            "street's code, without a county or city scope",
            zh="绑定网格员的令牌属于该网格员所在街道，请用街道代码创建，不能指定县、市范围",
        )
    token = PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as conn:
        bound = None if worker is None else _worker_id(conn, worker)
        _free_name(conn, name)
        conn.execute(
            sa.insert(tokens).values(
                name=name,
                role=role,
                hash=token_hash(token),
                created_at=now_iso(),
                worker=bound,
                division=division,
            )
        )
        details = {"worker": bound} if bound is not None else {}
        details |= {"division": division} if division is not None else {}
        store.log(conn, "token create", actor=actor, name=name, role=role, **details)
    return token


def token_scope(division: str | None, *, server: bool) -> str | None:
    """The division a new token is scoped to: the code of a county, city or province (kept by
    the database's own project), or None for a street's own token (kept by the street's
    project). Raises :class:`~geo.errors.InputError` for a bad code, or for a scope above a
    street outside a PostGIS database of many streets (``server`` False)."""
    if division is None:
        return None
    parsed = parse_division(division)
    if parsed.level in ("street", "community"):
        return None
    if not server:
        raise InputError(
            f"a token for {parsed.code} (above a street) is kept by a PostGIS database of many "
            "streets; a GeoPackage is one street",
            zh=f"区划 {parsed.code} 的令牌只能保存在多街道的 PostGIS 数据库中；GeoPackage 只有一个街道",
        )
    return parsed.code


def revoke_token(store: Store, name: str, *, actor: str = "") -> None:
    """Revoke the token called ``name`` (it stops working at once)."""
    with store.transaction() as conn:
        done = conn.execute(
            sa.update(tokens)
            .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now_iso())
        ).rowcount
        if not done:
            raise NotFound(f"no active token named {name!r}", zh=f"没有名为 {name} 的有效令牌")
        store.log(conn, "token revoke", actor=actor, name=name)


def list_tokens(store: Store) -> pd.DataFrame:
    """Name, role, bound worker, division, created and revoked times of every token (never the
    hashes)."""
    return store.read_table(tokens)[LISTED].sort_values("name")


def verify_token(store: Store, token: str) -> TokenHolder:
    """The holder of ``token``; :class:`~geo.errors.Unauthorized` when unknown or revoked."""
    with store.reading() as conn:
        row = conn.execute(sa.select(tokens).where(tokens.c.hash == token_hash(token))).first()
    if row is None:
        raise Unauthorized("unknown token", zh="令牌无效")
    if row.revoked_at is not None:
        raise Unauthorized(f"the token {row.name!r} was revoked", zh="令牌已被吊销")
    return TokenHolder(name=row.name, role=row.role, worker=row.worker, division=row.division)


Holder = TypeVar("Holder", bound=TokenHolder)


def holder_in(
    division: str | None,
    own: Callable[[], Holder],
    above: Callable[[], Holder] | None,
) -> Holder:
    """Who a token is in a project: the one rule the API and the CLI apply.

    ``own`` looks the token up in the project's own table, ``above`` (a street of a database of
    many) in the database's own project. A token of the street's own table is the street's; a
    token from above counts only with a ``division`` that covers the street; a token scoped to a
    division is refused by a project that is not a street under it. Raises
    :class:`~geo.errors.Unauthorized`.
    """
    try:
        found = own()
    except Unauthorized as refused:
        if above is None or division is None:
            raise
        try:
            found = above()
        except Unauthorized:
            raise refused from None
        if found.division is None:
            raise refused from None
    if found.division is not None and not (
        division is not None and covers(found.division, division)
    ):
        raise Unauthorized("unknown token", zh="令牌无效")
    return found


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise InputError(
            "a token needs a name of 1 to 100 characters", zh="令牌名称应为 1-100 个字符"
        )
    return name


def _free_name(conn: Connection, name: str) -> None:
    """Refuse a name an active token holds; forget a revoked one's (the name may be used again)."""
    taken = conn.execute(sa.select(tokens.c.revoked_at).where(tokens.c.name == name)).first()
    if taken is not None and taken[0] is None:
        raise Conflict(
            f"a token named {name!r} exists; revoke it first or choose another name",
            zh=f"已有名为 {name} 的令牌，请先吊销或换一个名称",
        )
    if taken is not None:
        conn.execute(sa.delete(tokens).where(tokens.c.name == name))


def _worker_id(conn: Connection, worker: str) -> str:
    """The ``worker_id`` of the roster's worker ``worker`` names (an id, else a unique name)."""
    worker = worker.strip()
    by_id = conn.execute(
        sa.select(workers.c.worker_id).where(workers.c.worker_id == worker)
    ).scalar()
    if by_id is not None:
        return str(by_id)
    named = conn.execute(sa.select(workers.c.worker_id).where(workers.c.name == worker)).all()
    if len(named) == 1:
        return str(named[0][0])
    if named:
        raise InputError(
            f"{len(named)} workers are called {worker!r}; give their worker id",
            zh=f"有 {len(named)} 名网格员叫 {worker}，请给出工号",
        )
    raise InputError(
        f"no worker {worker!r} in the roster (a worker id or name)",
        hint="gridmap workers import",
        zh=f"名册中没有网格员 {worker}（工号或姓名）",
    )


def streets_holding(store: Store, token: str, streets: Iterable[str]) -> list[str]:
    """The streets among ``streets`` whose own tokens table holds ``token`` unrevoked, by code.

    ``store`` is the database's own project of a PostGIS database of many streets (one schema
    each, :func:`geo.storage.postgis.schema_of`); one query asks every street's table.
    """
    from geo.storage.postgis import schema_of

    digest = token_hash(token)
    asked = [
        sa.select(sa.literal(code).label("code"))
        .select_from(_street_tokens(schema_of(code)))
        .where(sa.column("hash") == digest, sa.column("revoked_at").is_(None))
        for code in sorted(set(streets))
    ]
    if not asked:
        return []
    with store.reading() as conn:
        return sorted(str(row[0]) for row in conn.execute(sa.union_all(*asked)))


def _street_tokens(schema: str) -> sa.TableClause:
    return sa.table("tokens", sa.column("hash"), sa.column("revoked_at"), schema=schema)
