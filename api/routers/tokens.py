"""``/tokens``: create, list and revoke access tokens (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth import create_token, list_tokens, revoke_token
from api.deps import Admin, StateDep
from api.models import TokenCreated, TokenIn, TokenInfo, records
from api.routers._frames import problem_responses

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
    token = create_token(state.store, new.name, new.role, actor=principal.name)
    return TokenCreated(name=new.name.strip(), role=new.role, token=token)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS, summary="Revoke a token"
)
def delete_token(state: StateDep, principal: Admin, name: str = Path(max_length=100)) -> None:
    revoke_token(state.store, name, actor=principal.name)
