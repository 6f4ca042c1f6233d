"""``/locate``: which building, grid, community and worker a point falls in (like ``gridmap locate``).

``GET`` answers one point from the published plan's cached :class:`~geo.locate.engine.GridIndex`
through its single-point path (a refused coordinate is a 422 saying why); ``POST`` takes a batch as JSON or CSV (bounded) and answers like
``gridmap locate`` on a file: every row kept, invalid ones with ``status`` ``invalid`` and a
``reason``.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError

from api.deps import BodyDep, Staff, StateDep, check_batch, project_of
from api.models import LocateBatch, LocateBatchResult, LocateResult, PointIn, plain
from api.routers._frames import problem_responses
from geo.errors import InputError
from geo.exchange.csvsafe import csv_safe_frame

router = APIRouter(tags=["locate"])
ERRORS = problem_responses(401, 403, 404, 413, 422)
MAX_DISTANCE_KM = 50.0
_BATCH = TypeAdapter(LocateBatch | list[PointIn])
CrsQuery = Annotated[
    str,
    Query(
        max_length=40,
        description="wgs84 (GPS), gcj02 (Amap/Tencent), bd09 (Baidu), cgcs2000, EPSG:n",
    ),
]


@router.get(
    "/locate",
    response_model=LocateResult,
    response_class=JSONResponse,
    responses=ERRORS,
    summary="Locate one point",
)
async def locate_point(
    request: Request,
    _: Staff,
    lon: Annotated[float, Query(description="longitude (or x in metres for an EPSG crs)")],
    lat: Annotated[float, Query(description="latitude (or y)")],
    crs: CrsQuery = "wgs84",
) -> JSONResponse:
    # the hot path: the answer is plain JSON built here, without FastAPI validating the
    # response model again (the model documents it; the tests hold the two to each other)
    locator = project_of(request).locator()
    found = locator.index.locate_lonlat_point(lon, lat, crs=crs, max_distance_km=MAX_DISTANCE_KM)
    body = {k: plain(v) for k, v in found.items()}
    body.update(reason="", id=None, plan_id=locator.plan_id)
    return JSONResponse(body)


@router.post(
    "/locate",
    response_model=LocateBatchResult,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
    summary="Locate a batch of points (JSON or CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/LocateBatch"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/PointIn"}},
                        ]
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def locate_batch(
    request: Request,
    state: StateDep,
    _: Staff,
    body: BodyDep,
    crs: CrsQuery = "wgs84",
    lon_col: Annotated[str, Query(max_length=100, description="CSV: longitude column")] = "lon",
    lat_col: Annotated[str, Query(max_length=100, description="CSV: latitude column")] = "lat",
) -> Any:
    """JSON in, JSON out; CSV in, CSV out (the input columns and the locate columns)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    locator = state.locator()
    if kind in ("text/csv", "application/csv", "text/plain"):
        return _locate_csv(locator, body, crs=crs, lon_col=lon_col, lat_col=lat_col, state=state)
    if kind != "application/json":
        raise InputError(
            f"send the points as application/json or text/csv, not {kind}",
            zh="请以 application/json 或 text/csv 发送坐标",
        )
    try:
        parsed = _BATCH.validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InputError(
            f"the points cannot be read: {where}: {first.get('msg')}",
            zh="坐标数据格式有误",
            hint='send {"crs": "wgs84", "points": [{"lon": 102.7, "lat": 25.04}]} or a list of points',
        ) from None
    batch = parsed if isinstance(parsed, LocateBatch) else LocateBatch(crs=crs, points=parsed)
    check_batch(len(batch.points), state.settings, "points")
    located = locator.index.locate_lonlat(
        np.array([p.lon for p in batch.points], dtype=object),
        np.array([p.lat for p in batch.points], dtype=object),
        crs=batch.crs,
        max_distance_km=MAX_DISTANCE_KM,
    )
    rows = [
        {k: plain(v) for k, v in row.items()} for row in located.astype(object).to_dict("records")
    ]
    for row, point in zip(rows, batch.points, strict=True):
        row["id"] = None if point.id is None else str(point.id)
        row["plan_id"] = locator.plan_id
        row["reason"] = row["reason"] or ""
    counts = {str(k): int(v) for k, v in located["status"].value_counts().items() if v}
    return LocateBatchResult(plan_id=locator.plan_id, counts=counts, results=rows)


def _read_csv(body: bytes) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise InputError("the CSV is neither UTF-8 nor GBK text")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise InputError(f"the CSV cannot be read: {error}", zh="CSV 无法读取") from None


def _locate_csv(locator, body: bytes, *, crs: str, lon_col: str, lat_col: str, state) -> Response:
    table = _read_csv(body)
    missing = [c for c in (lon_col, lat_col) if c not in table.columns]
    if missing:
        raise InputError(
            f"the CSV has no column(s) {', '.join(missing)}",
            hint=f"its columns are {', '.join(map(str, table.columns[:20]))}; "
            "name them with lon_col= and lat_col=",
            zh=f"CSV 缺少列 {', '.join(missing)}",
        )
    check_batch(len(table), state.settings, "rows")
    located = locator.index.locate_lonlat(
        table[lon_col].to_numpy(),
        table[lat_col].to_numpy(),
        crs=crs,
        max_distance_km=MAX_DISTANCE_KM,
    )
    located.index = table.index
    out = pd.concat(
        [table.drop(columns=[c for c in located.columns if c in table.columns]), located], axis=1
    )
    counts = {str(k): int(v) for k, v in located["status"].value_counts().items() if v}
    return Response(
        csv_safe_frame(out).to_csv(index=False),
        media_type="text/csv; charset=utf-8",
        headers={"X-Gridmap-Counts": json.dumps(counts), "X-Gridmap-Plan": str(locator.plan_id)},
    )


EXTRA_SCHEMAS = (LocateBatch, PointIn)
