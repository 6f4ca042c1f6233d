"""Open a page in Debian's chromium through Playwright: shared by the browser tests and benches.

Playwright's own browser download does not work here, so this drives ``/usr/bin/chromium``
(``GRIDMAP_CHROMIUM`` overrides it)::

    with open_page(path, block_network=True) as opened:
        opened.page.wait_for_function("window.__gridmapReady === true")
        assert not opened.errors and not opened.network_requests()
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, Route, sync_playwright

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "OpenedPage", "launch", "open_page", "serve_vendored"]

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class OpenedPage:
    """A loaded page with what happened while it loaded and ran."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages

    def network_requests(self) -> list[str]:
        """Requests other than the page itself and inline ``data:``/``blob:`` resources."""
        return [
            url
            for url in self.requests
            if url != self.url and not url.startswith(("data:", "blob:"))
        ]


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless chromium, closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(
    path_or_url: str | Path,
    *,
    block_network: bool = False,
    route: Callable[[Route], None] | None = None,
    init_script: str | None = None,
    browser: Browser | None = None,
    viewport: tuple[int, int] = (1280, 800),
    wait_until: str = "load",
    timeout_ms: int = 60_000,
) -> Iterator[OpenedPage]:
    """Open ``path_or_url`` (a file path or URL) and yield an :class:`OpenedPage`.

    Parameters
    ----------
    block_network : bool
        Abort every request except the page itself (an offline intranet without internet).
    route : callable, optional
        Handles every request other than the page itself instead (fulfil, abort or continue).
    init_script : str, optional
        JavaScript run in the page before any of its own scripts.
    browser : Browser, optional
        Reuse a browser from :func:`launch`; otherwise one is started and closed here.
    """
    url = (
        str(path_or_url)
        if str(path_or_url).startswith(("http://", "https://", "file:"))
        else Path(path_or_url).resolve().as_uri()
    )
    if browser is None:
        with (
            launch() as own,
            open_page(
                url,
                block_network=block_network,
                route=route,
                init_script=init_script,
                browser=own,
                viewport=viewport,
                wait_until=wait_until,
                timeout_ms=timeout_ms,
            ) as opened,
        ):
            yield opened
        return
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    if init_script:
        page.add_init_script(init_script)
    opened = _watched(page, url)
    if block_network or route is not None:
        context.route("**/*", _page_only(url, block_network=block_network, route=route))
    try:
        page.goto(url, wait_until=wait_until)
        yield opened
    finally:
        context.close()


def _watched(page, url: str) -> OpenedPage:
    """An OpenedPage that collects the page's errors, console errors, requests and dialogs."""
    opened = OpenedPage(page=page, url=url)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            opened.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("request", lambda request: opened.requests.append(request.url))

    def on_dialog(dialog) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return opened


def _page_only(
    url: str, *, block_network: bool, route: Callable[[Route], None] | None
) -> Callable[[Route], None]:
    """A route handler that lets the page itself through and hands the rest to ``route``."""

    def only_the_page(request_route: Route) -> None:
        request_url = request_route.request.url
        if request_url == url or (block_network and request_url.startswith("file:")):
            # Local files are not the network; the offline test still sees them in requests.
            request_route.continue_()
        elif route is not None:
            route(request_route)
        else:
            request_route.abort()

    return only_the_page


def serve_vendored(route: Route) -> bool:
    """Answer a pinned CDN request from the vendored copy (no internet here); False if not one."""
    from maps import offline

    url = route.request.url
    if not url.startswith(offline.CDN):
        return False
    # https://cdn.jsdelivr.net/npm/<package>@<version>/<file> -> vendor/<package>/<file>
    package_version, _, file = url[len(offline.CDN) + 1 :].partition("/")
    package, _, version = package_version.rpartition("@")
    pinned = json.loads((offline.VENDOR_DIR / "VERSIONS.json").read_text(encoding="utf-8"))
    assert version == pinned[package], (package, version)
    route.fulfill(path=offline.VENDOR_DIR / package / file)
    return True
