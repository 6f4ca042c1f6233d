"""Printed grid maps (网格图) and signboards (网格员公示牌), rendered by Debian's chromium.

Street offices post grid maps on walls and keep them in files. A printed map is the same page as
the screen's, opened in chromium through Playwright at the paper's size and written with
``page.pdf`` (or ``page.screenshot`` for a PNG), so that print and screen agree. The page runs in
print mode: no buttons, the legend open, every grid code written, a north arrow, the title with
plan and date, the metric scale bar and the attribution. Nothing is fetched: the page is the
self-contained offline map (tiles only if the caller asks for a reachable tile source).

A signboard sheet per grid shows its map, code, community and worker (the phone only when asked):
each grid's map is drawn to an image, then the sheets are laid out as one HTML document and
printed to one PDF, one page per grid, with the text as text.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo.errors import InputError

from .escape import escape_html
from .i18n import strings

__all__ = ["PAPERS", "PrintUnavailable", "Sheet", "chromium_path", "print_pages", "signboards_html"]

#: Paper sizes in millimetres (portrait).
PAPERS = {"A4": (210, 297), "A3": (297, 420)}
_PX_PER_MM = 96 / 25.4
_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


class PrintUnavailable(InputError):
    """Printing needs chromium (and Playwright), which this machine lacks."""


@dataclass(frozen=True)
class Sheet:
    """One sheet of paper: ``A4`` or ``A3``, portrait or landscape."""

    paper: str = "A4"
    landscape: bool = False

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise InputError(
                f"paper {self.paper!r} is not one of {', '.join(PAPERS)}",
                zh=f"纸张 {self.paper} 不支持，可用：{', '.join(PAPERS)}",
            )

    @property
    def mm(self) -> tuple[int, int]:
        width, height = PAPERS[self.paper]
        return (height, width) if self.landscape else (width, height)

    @property
    def px(self) -> tuple[int, int]:
        return tuple(round(side * _PX_PER_MM) for side in self.mm)  # type: ignore[return-value]


def chromium_path() -> str:
    """Debian's chromium (``GRIDMAP_CHROMIUM`` overrides it); one clear line if it is missing."""
    path = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        raise PrintUnavailable(
            f"printing needs chromium at {path}: apt-get install chromium, or set GRIDMAP_CHROMIUM",
            zh=f"打印需要 chromium（{path} 不存在）：apt-get install chromium，或设置 GRIDMAP_CHROMIUM",
        )
    return path


@contextmanager
def _browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:  # pragma: no cover - playwright is a dependency
        raise PrintUnavailable(
            "printing needs the playwright package", zh="打印需要 playwright 软件包"
        ) from error
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _offline_only(route: Any) -> None:
    # The pages are self-contained: anything they ask of the network is refused.
    if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
        route.continue_()
    else:
        route.abort()


def _open(
    browser: Any, html: str, folder: Path, name: str, size: tuple[int, int], *, scale: float
) -> Any:
    path = folder / name
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, device_scale_factor=scale
    )
    context.route("**/*", _offline_only)
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page


def _wait_drawn(page: Any) -> None:
    page.wait_for_function("window.__gridmapReady === true")
    page.wait_for_timeout(100)  # the labels' last moveend


def print_pages(
    pages: list[str], out: Path, *, sheet: Sheet, signboard: list[dict[str, str]] | None = None
) -> Path:
    """Print map pages to ``out`` (``.pdf`` or ``.png``): one map, or signboard sheets.

    ``pages`` are the maps' HTML (print mode); with ``signboard`` (one dict per page: ``code``,
    ``community``, ``worker``, ``phone``, ``plan``, ``date``, ``lang``) each map becomes one sheet.
    """
    pdf = out.suffix.lower() == ".pdf"
    width, height = sheet.px
    with _browser() as browser, tempfile.TemporaryDirectory(prefix="gridmap-print-") as tmp:
        folder = Path(tmp)
        if signboard is None:
            page = _open(
                browser, pages[0], folder, "map.html", (width, height), scale=1 if pdf else 2
            )
            _wait_drawn(page)
            if pdf:
                page.pdf(
                    path=str(out),
                    width=f"{sheet.mm[0]}mm",
                    height=f"{sheet.mm[1]}mm",
                    print_background=True,
                    margin={"top": "0", "bottom": "0", "left": "0", "right": "0"},
                )
            else:
                page.screenshot(path=str(out))
            return out
        images = []
        map_size = (width - 60, round(height * 0.72))
        for k, html in enumerate(pages):
            page = _open(browser, html, folder, f"grid{k}.html", map_size, scale=2)
            _wait_drawn(page)
            images.append(base64.b64encode(page.screenshot(type="png")).decode("ascii"))
            page.context.close()
        document = signboards_html(signboard, images, sheet=sheet)
        page = _open(browser, document, folder, "sheets.html", (width, height), scale=1)
        page.pdf(
            path=str(out),
            width=f"{sheet.mm[0]}mm",
            height=f"{sheet.mm[1]}mm",
            print_background=True,
            margin={"top": "0", "bottom": "0", "left": "0", "right": "0"},
        )
    return out


_SHEET_CSS = """
@page { size: %(w)smm %(h)smm; margin: 0 }
body { margin: 0; font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; color: #263238 }
.sheet { width: %(w)smm; height: %(h)smm; box-sizing: border-box; padding: 8mm; overflow: hidden;
  page-break-after: always; break-after: page }
.code { font-size: 26pt; font-weight: 700 }
.who { font-size: 15pt; margin: 2mm 0 4mm }
img { display: block; width: 100%%; height: 72%%; object-fit: contain; border: 1px solid #90a4ae }
.foot { font-size: 9pt; margin-top: 3mm }
"""


def _sheet_rows(facts: dict[str, str], image: str) -> str:
    t = strings(facts.get("lang", "zh"))
    who = [
        f"{t['community']} {facts['community']}",
        f"{t['worker']} {facts['worker'] or t['no_worker']}",
    ]
    if facts.get("phone"):
        who.append(f"{t['worker_phone']} {facts['phone']}")
    foot = [f"{t['title_plan']} {facts['plan']}", facts["date"], facts["credit"]]
    return (
        f'<div class="code">{escape_html(t["grid"])} {escape_html(facts["code"])}</div>'
        f'<div class="who">{" · ".join(escape_html(part) for part in who)}</div>'
        f'<img src="data:image/png;base64,{image}" alt="">'
        f'<div class="foot">{" · ".join(escape_html(part) for part in foot if part)}</div>'
    )


def signboards_html(sheets: list[dict[str, str]], images: list[str], *, sheet: Sheet) -> str:
    """One page per grid: code, community, worker (and phone), the map, plan, date, credit.

    Every text is data and is HTML-escaped here; the images are PNG data URIs made above.
    """
    body = "".join(
        f'<section class="sheet">{_sheet_rows(facts, image)}</section>'
        for facts, image in zip(sheets, images, strict=True)
    )
    w, h = sheet.mm
    style = _SHEET_CSS % {"w": w, "h": h}
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<style>{style}</style></head><body>{body}</body></html>"
    )
