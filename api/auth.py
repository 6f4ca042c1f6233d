"""Bearer tokens with roles: create (shown once), verify, revoke, list.

Only the SHA-256 of a token is stored (``tokens`` table of the project file): a copy of the file
does not give access. Roles are ordered ``viewer < staff < planner < admin``; each includes the
ones before it.

Examples
--------
>>> outranks("planner", "staff")
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from api.roles import ROLES
from geo.errors import Conflict, InputError, NotFound, Unauthorized
from geo.storage.store import Store, now_iso, tokens

PREFIX = "gm_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role (``public`` for the public map mode)."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return outranks(self.role, role)


def outranks(role: str, needed: str) -> bool:
    """Whether ``role`` includes ``needed``."""
    return ROLES.index(role) >= ROLES.index(needed)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(
            f"unknown role {role!r}; roles: {', '.join(ROLES)}",
            zh=f"未知角色 {role}；可选：{', '.join(ROLES)}",
        )
    return role


def create_token(store: Store, name: str, role: str, *, actor: str = "") -> str:
    """A new token for ``name`` with ``role``; the caller shows it once, it is not kept."""
    check_role(role)
    name = name.strip()
    if not name or len(name) > 100:
        raise InputError(
            "a token needs a name of 1 to 100 characters", zh="令牌名称应为 1-100 个字符"
        )
    token = PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as conn:
        taken = conn.execute(sa.select(tokens.c.revoked_at).where(tokens.c.name == name)).first()
        if taken is not None and taken[0] is None:
            raise Conflict(
                f"a token named {name!r} exists; revoke it first or choose another name",
                zh=f"已有名为 {name} 的令牌，请先吊销或换一个名称",
            )
        if taken is not None:  # revoked: the name may be used again
            conn.execute(sa.delete(tokens).where(tokens.c.name == name))
        conn.execute(
            sa.insert(tokens).values(
                name=name, role=role, hash=token_hash(token), created_at=now_iso()
            )
        )
        store.log(conn, "token create", actor=actor, name=name, role=role)
    return token


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
    """Name, role, created and revoked times of every token (never the hashes)."""
    table = store.read_table(tokens)
    return table[["name", "role", "created_at", "revoked_at"]].sort_values("name")


def verify_token(store: Store, token: str) -> Principal:
    """The caller behind ``token``; :class:`~geo.errors.Unauthorized` when unknown or revoked."""
    with store.reading() as conn:
        row = conn.execute(
            sa.select(tokens.c.name, tokens.c.role, tokens.c.revoked_at).where(
                tokens.c.hash == token_hash(token)
            )
        ).first()
    if row is None:
        raise Unauthorized("unknown token", zh="令牌无效")
    if row.revoked_at is not None:
        raise Unauthorized(f"the token {row.name!r} was revoked", zh="令牌已被吊销")
    return Principal(name=row.name, role=row.role)
