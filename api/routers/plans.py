"""``/plans``: plan versions, a planner's edits with live validation, undo/redo, publish, diff, editor.

Reads need a viewer token; copies, edits, undo/redo and publishing need the ``planner`` role, and
so does the editor page, which also takes the token as ``?token=`` because a browser navigation
cannot send a header (the page's script keeps it in local storage and sends it as a bearer token).
Every edit names the plan ``revision`` it was made on; a stale one answers 409 with ``changes``:
the steps made since (see :mod:`geo.plans.editing`).
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from api.deps import PagePlanner, PageViewer, Planner, RootPathDep, StoreDep, Viewer
from api.routers._frames import problem_responses
from geo.jsonvalue import json_records, json_value
from geo.plans import editing
from geo.plans import publish as publishing
from geo.plans import store as plans
from geo.plans.diff import diff_plans
from geo.storage.store import Store

router = APIRouter(tags=["plans"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
PlanId = Annotated[int, Path(ge=1, le=2**53, description="plan id")]
Against = Annotated[
    int | None, Query(ge=1, le=2**53, description="the plan to compare with (default: parent)")
]
Display = Annotated[
    str, Query(pattern="^(wgs84|gcj02)$", description="datum of the returned GeoJSON")
]
PageLang = Annotated[str, Query(pattern="^(zh|en)$")]
PageBasemap = Annotated[
    str,
    Query(
        pattern="^(osm|amap|tianditu|tiles|none)$",
        description="background tiles (tiles: the project's basemap_tiles setting)",
    ),
]


# -- bodies -----------------------------------------------------------------------------------------


class EditBody(BaseModel):
    """One edit: the operation, the revision it was made on, its arguments."""

    op: str = Field(max_length=40, description=", ".join(editing.OPERATIONS))
    revision: int = Field(ge=0, le=2**53, description="the plan revision the edit was made on")
    args: dict[str, Any] = Field(default_factory=dict)


class StepBody(BaseModel):
    """Undo or redo: the revision it was made on."""

    revision: int = Field(ge=0, le=2**53)


class PublishBody(BaseModel):
    """Publishing the revision the planner reviewed; an override reason when it breaks rules."""

    revision: int = Field(
        ge=0, le=2**53, description="the plan revision reviewed (409 when the plan moved on)"
    )
    override_reason: str | None = Field(default=None, max_length=2000)


class CopyBody(BaseModel):
    """A copy's note."""

    note: str = Field(default="", max_length=1000)


# -- reads ------------------------------------------------------------------------------------------


@router.get("/plans", responses=ERRORS)
def list_plans(store: StoreDep, _: Viewer) -> list[dict[str, Any]]:
    """Every plan version: status, parent, revision, grids and flagged grids."""
    return json_records(plans.list_plans(store))


@router.get("/plans/{plan_id}", responses=ERRORS)
def show_plan(plan_id: PlanId, store: StoreDep, _: Viewer) -> dict[str, Any]:
    """A plan with its grids (no geometry) and the rules they break."""
    plan = editing.plan_state(store, plan_id)
    row = plans.plan_row(store, plan_id)
    grids = pd.DataFrame(plan.grids.drop(columns="geometry")).reset_index(names="grid_code")
    return {
        **json_value(dict(row)),
        "grids": json_records(grids),
        "violations": json_records(publishing.violations(plan)),
    }


@router.get("/plans/{plan_id}/history", responses=ERRORS)
def plan_history(plan_id: PlanId, store: StoreDep, _: Viewer) -> list[dict[str, Any]]:
    """The plan's steps, oldest first."""
    return json_records(editing.history(store, plan_id))


@router.get("/plans/{plan_id}/diff", responses=ERRORS)
def plan_diff(
    plan_id: PlanId,
    store: StoreDep,
    _: Viewer,
    against: Against = None,
) -> dict[str, Any]:
    """What changed from plan ``against`` (default: the parent) to this plan."""
    changes = diff_plans(
        editing.plan_state(store, _against(store, plan_id, against)),
        editing.plan_state(store, plan_id),
    )
    return json_value(changes)


@router.get("/plans/{plan_id}/diff/map", response_class=HTMLResponse, responses=ERRORS)
def plan_diff_map(
    plan_id: PlanId,
    store: StoreDep,
    _: PageViewer,
    against: Against = None,
    lang: PageLang = "zh",
    basemap: PageBasemap = "osm",
) -> HTMLResponse:
    """This plan on a map with the grids that differ from plan ``against`` highlighted."""
    from api.mapping import plan_diff_map as diff_map
    from api.mapping import resolve_basemap
    from api.static import ASSETS_URL
    from maps.render import render_html

    offline = basemap == "none"
    m = diff_map(
        store,
        _against(store, plan_id, against),
        plan_id,
        lang=lang,
        basemap=resolve_basemap(store, basemap, served=True),
        offline=offline,
    )
    return HTMLResponse(render_html(m, offline=offline, assets_url=ASSETS_URL))


# -- writes -----------------------------------------------------------------------------------------


@router.post("/plans/{plan_id}/copy", status_code=201, responses=ERRORS)
def copy_plan(
    plan_id: PlanId, store: StoreDep, principal: Planner, body: CopyBody | None = None
) -> dict:
    """A new draft from this plan (the parent is recorded)."""
    new_id = editing.copy_plan(
        store, plan_id, author=principal.name, note=(body.note if body else "")
    )
    return {"plan_id": new_id, "parent_id": plan_id}


@router.post("/plans/{plan_id}/edits", responses=ERRORS)
def post_edit(
    plan_id: PlanId,
    body: EditBody,
    store: StoreDep,
    principal: Planner,
    display: Display = "wgs84",
) -> JSONResponse:
    """Apply one edit; answers the touched grids (with GeoJSON) and the rules they now break."""
    return _stepped(
        lambda: editing.apply_edit(
            store, plan_id, body.op, body.args, revision=body.revision, author=principal.name
        ),
        display,
    )


@router.post("/plans/{plan_id}/undo", responses=ERRORS)
def post_undo(
    plan_id: PlanId,
    body: StepBody,
    store: StoreDep,
    principal: Planner,
    display: Display = "wgs84",
) -> JSONResponse:
    """Undo the latest step not undone (a new step in the history)."""
    return _stepped(
        lambda: editing.undo(store, plan_id, revision=body.revision, author=principal.name), display
    )


@router.post("/plans/{plan_id}/redo", responses=ERRORS)
def post_redo(
    plan_id: PlanId,
    body: StepBody,
    store: StoreDep,
    principal: Planner,
    display: Display = "wgs84",
) -> JSONResponse:
    """Redo the step undone last."""
    return _stepped(
        lambda: editing.redo(store, plan_id, revision=body.revision, author=principal.name), display
    )


@router.post("/plans/{plan_id}/publish", responses=ERRORS)
def publish(plan_id: PlanId, body: PublishBody, store: StoreDep, principal: Planner) -> dict:
    """Publish the revision reviewed; with violations only with an ``override_reason`` (recorded).

    Status, revision and violations are checked in the publishing transaction: of two publishes
    of one plan one succeeds, and an edit made after the review answers 409 here.
    """
    return json_value(
        publishing.publish_plan(
            store,
            plan_id,
            author=principal.name,
            override_reason=body.override_reason,
            revision=body.revision,
        )
    )


# -- the editor page --------------------------------------------------------------------------------


@router.get("/plans/{plan_id}/edit", response_class=HTMLResponse, responses=ERRORS)
def editor_page(
    plan_id: PlanId,
    store: StoreDep,
    _: PagePlanner,
    root: RootPathDep,
    lang: PageLang = "zh",
    basemap: PageBasemap = "osm",
) -> HTMLResponse:
    """The grid editor: the plan's map, a side panel, edits through this API."""
    from api.editor.page import editor_html  # maps and folium only load for the page

    return HTMLResponse(editor_html(store, plan_id, lang=lang, basemap=basemap, api=root))


# -- helpers ----------------------------------------------------------------------------------------


def _against(store: Store, plan_id: int, against: int | None) -> int:
    # a diff compares with the plan asked for, else the parent, else the plan itself (no changes)
    if against is not None:
        return against
    parent = plans.plan_row(store, plan_id)["parent_id"]
    return int(parent) if parent is not None else plan_id


def _stepped(step, display: str) -> JSONResponse:
    # a stale revision raises editing.StaleRevision: api.errors answers 409 with its changes
    result = step()
    body = result.to_dict()
    body["geojson"] = _geojson(result, display)
    return JSONResponse(body)


def _geojson(result: editing.EditResult, display: str) -> dict[str, Any]:
    from maps.prepare import to_display

    touched = result.touched
    shapes = to_display(touched.geometry, crs=display)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": str(code),
                "properties": {"grid_code": str(code)},
                "geometry": shape.__geo_interface__,
            }
            for code, shape in zip(touched.index, shapes.values, strict=True)
        ],
    }
