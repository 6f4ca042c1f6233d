"""Leaflet and plugin assets: pinned CDN links, links to the service, or inlined vendored files.

The versions are pinned once, in ``maps/assets/package.json``; ``maps/assets/vendor.py`` copies
the files of those npm packages into ``maps/assets/vendor/`` at build time (the wheel ships them).
Maps are built with the same files linked on jsDelivr; :func:`serve_assets_from` points those
links at the copies a gridmap service serves itself (its pages must work on an intranet without
internet), :func:`inline_assets` swaps every link for the vendored file (CSS images become
``data:`` URIs) and :func:`check_offline` refuses a page that would still fetch anything.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from functools import cache
from pathlib import Path

from geo.errors import InternalError

__all__ = [
    "ASSETS_DIR",
    "VENDOR_COMMAND",
    "OfflineAssetError",
    "check_offline",
    "inline_assets",
    "plugin_css",
    "plugin_js",
    "serve_assets_from",
    "vendored_file",
]

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
VENDOR_DIR = ASSETS_DIR / "vendor"
VENDOR_COMMAND = "python maps/assets/vendor.py"
CDN = "https://cdn.jsdelivr.net/npm"

# plugin -> (npm package, JS files, CSS files) inside that package
PLUGINS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "leaflet": ("leaflet", ("dist/leaflet.js",), ("dist/leaflet.css",)),
    "markercluster": (
        "leaflet.markercluster",
        ("dist/leaflet.markercluster.js",),
        ("dist/MarkerCluster.css", "dist/MarkerCluster.Default.css"),
    ),
    "heat": ("leaflet.heat", ("dist/leaflet-heat.js",), ()),
    "fullscreen": ("leaflet.fullscreen", ("Control.FullScreen.js",), ("Control.FullScreen.css",)),
    "measure": (
        "leaflet-measure",
        ("dist/leaflet-measure.min.js",),
        ("dist/leaflet-measure.css",),
    ),
    "locate": (
        "leaflet.locatecontrol",
        ("dist/L.Control.Locate.min.js",),
        ("dist/L.Control.Locate.min.css",),
    ),
}


class OfflineAssetError(InternalError):
    """An offline map cannot be made self-contained (assets not vendored, or a URL left)."""


@cache
def _pinned() -> dict[str, str]:
    package = json.loads((ASSETS_DIR / "package.json").read_text(encoding="utf-8"))
    return dict(package["dependencies"])


def _url(package: str, file: str) -> str:
    return f"{CDN}/{package}@{_pinned()[package]}/{file}"


def plugin_js(plugin: str) -> list[tuple[str, str]]:
    """``(name, url)`` pairs of the plugin's scripts, in folium's ``default_js`` form."""
    package, scripts, _ = PLUGINS[plugin]
    return [(f"{plugin}:{file}", _url(package, file)) for file in scripts]


def plugin_css(plugin: str) -> list[tuple[str, str]]:
    """``(name, url)`` pairs of the plugin's stylesheets, in folium's ``default_css`` form."""
    package, _, sheets = PLUGINS[plugin]
    return [(f"{plugin}:{file}", _url(package, file)) for file in sheets]


def _url_to_file() -> dict[str, str]:
    return {
        _url(package, file): f"{package}/{file}"
        for package, scripts, sheets in PLUGINS.values()
        for file in (*scripts, *sheets)
    }


def vendored_file(url: str) -> Path:
    """The vendored copy of a pinned CDN ``url`` (also used by the browser tests)."""
    relative = _url_to_file().get(url)
    if relative is None:
        raise OfflineAssetError(f"no vendored copy of {url} for an offline map")
    path = VENDOR_DIR / relative
    if not path.exists():
        raise OfflineAssetError(
            f"vendored map assets are missing ({path})",
            hint=f"run `{VENDOR_COMMAND}` (make assets) once, with npm available",
        )
    return path


def serve_assets_from(html: str, base_url: str) -> str:
    """Point every pinned CDN link of ``html`` at ``{base_url}/<package>/<file>``.

    ``base_url`` is where a service serves the vendor folder (``/static/vendor``); tile
    basemaps stay as they are.

    Raises
    ------
    OfflineAssetError
        If a linked file was never vendored (the service could not serve it).
    """
    base = base_url.rstrip("/")
    for url, relative in _url_to_file().items():
        if url in html:
            vendored_file(url)  # refuse a page whose assets the service lacks
            html = html.replace(url, f"{base}/{relative}")
    check_offline(html)
    return html


_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?!data:|#|https?:)([^'\")]+)\1\s*\)")


def _inline_css(path: Path) -> str:
    css = path.read_text(encoding="utf-8")

    def data_uri(match: re.Match[str]) -> str:
        target = (path.parent / match.group(2)).resolve()
        if not target.is_file():
            raise OfflineAssetError(
                f"{path.name} refers to {match.group(2)}, which was not vendored"
            )
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        encoded = base64.b64encode(target.read_bytes()).decode("ascii")
        return f'url("data:{mime};base64,{encoded}")'

    return _safe_in_element(_CSS_URL.sub(data_uri, css), "style")


def _safe_in_element(text: str, tag: str) -> str:
    # The only way out of a raw-text element is its end tag; none of the vendored files holds
    # one, but a library update must not silently break the page.
    return re.sub(rf"</({tag})", r"<\\/\1", text, flags=re.IGNORECASE)


_SCRIPT_LINK = re.compile(r"<script\s+src=\"(https?://[^\"]+)\"\s*>\s*</script>", re.IGNORECASE)
_CSS_LINK = re.compile(
    r"<link\s+rel=\"stylesheet\"\s+href=\"(https?://[^\"]+)\"\s*/?>", re.IGNORECASE
)


def inline_assets(html: str) -> str:
    """Replace each CDN ``<script src>``/``<link rel=stylesheet>`` by the vendored file's text.

    Raises
    ------
    OfflineAssetError
        If a linked file has no vendored copy, or the vendor folder was never built.
    """
    html = _SCRIPT_LINK.sub(
        lambda m: (
            "<script>"
            + _safe_in_element(vendored_file(m.group(1)).read_text("utf-8"), "script")
            + "</script>"
        ),
        html,
    )
    html = _CSS_LINK.sub(
        lambda m: "<style>" + _inline_css(vendored_file(m.group(1))) + "</style>", html
    )
    check_offline(html)
    return html


_REMOTE = [
    re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(
        r"<(?:img|iframe|source|video|audio|embed|object)\b[^>]*\b(?:src|data)\s*=\s*[\"']?\s*(?:https?:)?//",
        re.IGNORECASE,
    ),
    re.compile(r"@import\s+(?:url\()?\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE),
]


_DATA_BLOCK = re.compile(
    r"<script type=\"application/json\"[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL
)


def check_offline(html: str) -> None:
    """Raise :class:`OfflineAssetError` if ``html`` would load a script, style or image remotely.

    The JSON data blocks are inert text (an incident may well quote a URL), so they are skipped.
    """
    html = _DATA_BLOCK.sub("", html)
    for pattern in _REMOTE:
        match = pattern.search(html)
        if match:
            snippet = html[match.start() : match.start() + 120].replace("\n", " ")
            raise OfflineAssetError(f"offline map still loads from the network: {snippet!r}")
