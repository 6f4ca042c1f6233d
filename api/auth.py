"""Who is calling: the :class:`Principal` a bearer token stands for.

The tokens themselves (create, verify, revoke, list; only their SHA-256 kept) are
:mod:`geo.people.tokens`, which the CLI and the API share; this module turns a verified token
into the principal the routes' guards (:mod:`api.deps`) check. The token functions are
re-exported here for the routes, the benchmarks and the tests that create tokens.

Examples
--------
>>> Principal(name="王工", role="planner").can("staff")
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from geo.people import tokens
from geo.people.roles import ROLES, outranks
from geo.people.tokens import (
    PREFIX,
    check_role,
    create_token,
    list_tokens,
    revoke_token,
    token_hash,
)

if TYPE_CHECKING:
    from geo.storage.store import Store

__all__ = [
    "PREFIX",
    "ROLES",
    "Principal",
    "check_role",
    "create_token",
    "list_tokens",
    "outranks",
    "revoke_token",
    "token_hash",
    "verify_token",
]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role (``public`` for the public map mode), the
    grid worker (``worker_id``) the token is bound to, if any, and the division a token of the
    database's own project is scoped to (a county's, a province's; None for a project's own)."""

    name: str
    role: str
    worker: str | None = None
    division: str | None = None

    def can(self, role: str) -> bool:
        return outranks(self.role, role)


def verify_token(store: Store, token: str) -> Principal:
    """The caller behind ``token``; :class:`~geo.errors.Unauthorized` when unknown or revoked."""
    holder = tokens.verify_token(store, token)
    return Principal(
        name=holder.name, role=holder.role, worker=holder.worker, division=holder.division
    )
