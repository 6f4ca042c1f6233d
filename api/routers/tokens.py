"""``/tokens``: create, list and revoke access tokens (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth import create_token, list_tokens, revoke_token
from api.deps import Admin, StateDep
from api.models import TokenCreated, TokenIn, TokenInfo, records
from api.routers._frames import problem_responses
from api.state import ProjectState
from geo.defaults import is_server_url
from geo.errors import InputError
from geo.people.tokens import token_scope

router = APIRouter(prefix="/tokens", tags=["tokens"])
ERRORS = problem_responses(401, 403, 404, 409, 422)


@router.get("", response_model=list[TokenInfo], responses=ERRORS, summary="List tokens")
def get_tokens(state: StateDep, _: Admin) -> list[TokenInfo]:
    return [TokenInfo(**row) for row in records(list_tokens(state.store))]


@router.post(
    "",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    summary="Create a token (shown once)",
)
def post_token(state: StateDep, principal: Admin, new: TokenIn) -> TokenCreated:
    scope = _scope(state, new.division)
    token = create_token(
        state.store, new.name, new.role, worker=new.worker, division=scope, actor=principal.name
    )
    return TokenCreated(name=new.name.strip(), role=new.role, token=token)


def _scope(state: ProjectState, division: str | None) -> str | None:
    """The county, city or province a new token reads under; only the database's own project
    (the service's root) keeps such tokens, and a street's tokens are made in the street."""
    scope = token_scope(division, server=is_server_url(state.settings.db))
    if division is not None and (scope is None or state.division is not None):
        raise InputError(
            "'division' names a county, city or province, and such tokens are made at the "
            "service's root (POST /tokens); a street's own tokens under /divisions/{code}/tokens",
            zh="division 应为县、市或省代码，此类令牌在服务根路径 POST /tokens 创建；"
            "街道自己的令牌在 /divisions/{代码}/tokens 创建",
        )
    return scope


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS, summary="Revoke a token"
)
def delete_token(state: StateDep, principal: Admin, name: str = Path(max_length=100)) -> None:
    revoke_token(state.store, name, actor=principal.name)
