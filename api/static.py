"""The service's own copies of Leaflet, its plugins and Swagger UI, and the ``/docs`` page on them.

gridmap runs on government intranets without internet, so no page the service serves may fetch
anything from a CDN: the map pages and the editor link the vendored files under
:data:`ASSETS_URL` (see :func:`maps.render.render_html`), and ``/docs`` is FastAPI's Swagger UI
page pointed at the same folder. The folder is ``maps/assets/vendor``, built from pinned npm
packages by ``python maps/assets/vendor.py`` and shipped inside the wheel.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from maps.offline import VENDOR_DIR

__all__ = ["ASSETS_URL", "DOCS_URL", "install"]

#: where the vendored assets are served (one folder per npm package, as in maps/assets/vendor)
ASSETS_URL = "/static/vendor"
DOCS_URL = "/docs"
_SWAGGER = f"{ASSETS_URL}/swagger-ui-dist"


class VendoredFiles(StaticFiles):
    """The vendor folder, revalidated by ETag on each use (``no-cache``) instead of the service's
    default ``no-store``: Swagger UI alone is 1.7 MB, and a rebuilt folder must show at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install(app: FastAPI) -> None:
    """Serve the vendored assets and a ``/docs`` page that needs nothing else.

    Build the app with ``docs_url=None, redoc_url=None`` (FastAPI's own pages use a CDN).
    """
    # check_dir=False: a checkout that never ran vendor.py still serves the API; the pages say
    # which command builds the assets (maps.offline.vendored_file).
    app.mount(ASSETS_URL, VendoredFiles(directory=VENDOR_DIR, check_dir=False), name="vendor")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # under /divisions/{code}/ the street's own schema, whose servers carry the prefix
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} API",
            swagger_js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER}/favicon-32x32.png",
            # the validator badge would load an image from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
