"""The grid editor page: the plan's Folium map plus a side panel driven by ``editor.js``.

The page is the map of :func:`maps.project.project_map` for the plan, with ``editor.css`` and
``editor.js`` inlined and a JSON configuration block (plan, revision, strings, grids, violations,
workers) written with :func:`maps.escape.json_for_html`. Every string from data reaches the page
through ``textContent``. The script calls the ``/plans`` API with ``fetch`` and the bearer token
(from ``?token=``, which the map runtime takes out of the address bar; then this tab's
session storage; or typed into the panel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from api.mapping import project_map, resolve_basemap
from api.static import ASSETS_URL
from geo.people import roster as rosters
from geo.plans import editing
from geo.plans import publish as publishing
from geo.storage.store import Store
from maps.basemaps import display_crs
from maps.escape import json_for_html
from maps.project import MapRequest
from maps.render import render_html

HERE = Path(__file__).resolve().parent

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "网格编辑",
        "plan": "方案",
        "revision": "版本",
        "draft": "草稿",
        "published": "已发布",
        "archived": "已归档",
        "building": "楼栋",
        "grid": "网格",
        "community": "社区",
        "move_to": "移到网格",
        "new_grid": "（新建网格）",
        "neighbour": "相邻",
        "move": "移动",
        "selected_grids": "已选网格",
        "merge": "合并",
        "split": "自动拆分",
        "lock": "锁定",
        "unlock": "解锁",
        "worker": "网格员",
        "assign": "指定",
        "clear": "清空选择",
        "undo": "撤销",
        "redo": "重做",
        "save": "保存",
        "publish": "发布",
        "override": "带违规发布的理由",
        "touched": "本次涉及的网格",
        "buildings": "楼栋数",
        "households": "户数",
        "status": "状态",
        "violations": "违规",
        "violations_total": "全方案违规",
        "no_violations": "无违规",
        "token": "访问令牌",
        "token_save": "使用令牌",
        "saved": "已保存，版本",
        "stale": "方案已被他人修改，请刷新页面",
        "reload": "刷新",
        "published_ok": "方案已发布",
        "need_reason": "方案有违规，请填写发布理由",
        "click_building": "点击楼栋查看其网格并移动（可多选后移入新网格即拆出）；点击网格选择以合并、拆分或锁定。",
        "locked": "已锁定",
        "not_draft": "此方案不是草稿，只能查看；请先复制。",
        "ok": "正常",
        "undersized": "楼栋过少",
        "oversized": "楼栋过多",
        "non_contiguous": "不连片",
        "households_over_cap": "户数超限",
        "no_worker": "无网格员",
        "unavoidable": "无法避免，不影响发布",
        "error": "错误",
        "diff_map": "与上一方案对比地图",
        "multi": "多选楼栋（也可按住 Shift 点击）",
        "collapse": "收起",
        "expand": "展开",
        "add_part": "所选楼栋记为拆分的一部分",
        "split_parts": "按所列部分拆分网格",
        "clear_parts": "清除所列部分",
        "repartition": "重新划分所选网格",
        "repartition_community": "重新划分社区",
        "show_on_map": "在地图上显示此网格",
    },
    "en": {
        "title": "Grid editor",
        "plan": "Plan",
        "revision": "revision",
        "draft": "draft",
        "published": "published",
        "archived": "archived",
        "building": "Building",
        "grid": "Grid",
        "community": "Community",
        "move_to": "Move to grid",
        "new_grid": "(new grid)",
        "neighbour": "near",
        "move": "Move",
        "selected_grids": "Selected grids",
        "merge": "Merge",
        "split": "Split automatically",
        "lock": "Lock",
        "unlock": "Unlock",
        "worker": "Worker",
        "assign": "Assign",
        "clear": "Clear selection",
        "undo": "Undo",
        "redo": "Redo",
        "save": "Save",
        "publish": "Publish",
        "override": "Reason to publish despite violations",
        "touched": "Grids touched by the last step",
        "buildings": "buildings",
        "households": "households",
        "status": "status",
        "violations": "Violations",
        "violations_total": "violations in the plan",
        "no_violations": "no violations",
        "token": "Access token",
        "token_save": "Use token",
        "saved": "Saved, revision",
        "stale": "Someone else changed this plan; reload the page",
        "reload": "Reload",
        "published_ok": "Plan published",
        "need_reason": "The plan breaks rules: give a reason to publish",
        "click_building": "Click a building to see its grid and move it (pick several and move them to a new grid to split them off); click grids to merge, split or lock them.",
        "locked": "locked",
        "not_draft": "This plan is not a draft and can only be viewed; copy it first.",
        "ok": "ok",
        "undersized": "too few buildings",
        "oversized": "too many buildings",
        "non_contiguous": "not contiguous",
        "households_over_cap": "households over cap",
        "no_worker": "no worker",
        "unavoidable": "unavoidable, does not block publishing",
        "error": "Error",
        "diff_map": "Map of changes against the parent plan",
        "multi": "select several buildings (or shift-click)",
        "collapse": "Hide",
        "expand": "Show",
        "add_part": "Make the selected buildings a part",
        "split_parts": "Split into the parts listed: grid",
        "clear_parts": "Clear the parts",
        "repartition": "Re-partition the selected grids",
        "repartition_community": "Re-partition community",
        "show_on_map": "Show this grid on the map",
    },
}


def editor_config(
    store: Store, plan_id: int, *, lang: str, basemap: str = "osm", api: str = ""
) -> dict[str, Any]:
    """What the editor script starts from (plain JSON); ``api``: where the API the script calls
    is mounted (a street's ``/divisions/{code}``)."""
    display = display_crs(basemap)
    plan = editing.plan_state(store, plan_id)
    grids = plan.grids
    team = rosters.roster(store)
    return {
        "plan_id": plan.plan_id,
        "revision": plan.revision,
        "status": plan.status,
        "lang": lang,
        "display": display,
        "basemap": basemap,
        "api": api,
        "strings": STRINGS[lang],
        "grids": {
            str(code): {
                "community": str(row["community"]),
                "n_buildings": _int(row["n_buildings"]),
                "households": _int(row["households"]),
                "status": str(row["status"]),
                "locked": bool(row["locked"] is True),
                "worker_id": None if pd.isna(row["worker_id"]) else str(row["worker_id"]),
            }
            for code, row in grids.iterrows()
        },
        "labels": {str(b): str(c) for b, c in plan.labels.items()},
        "violations": [
            {
                k: bool(v) if k == "unavoidable" else (None if pd.isna(v) else str(v))
                for k, v in record.items()
            }
            for record in publishing.violations(plan).to_dict("records")
        ],
        "workers": [
            {"worker_id": str(w.worker_id), "name": str(w.name), "community": str(w.community)}
            for w in team.itertuples()
        ],
    }


def editor_html(
    store: Store, plan_id: int, *, lang: str = "zh", basemap: str = "osm", api: str = ""
) -> str:
    """The editor page for plan ``plan_id`` (``basemap="none"`` gives a fully offline page;
    ``"tiles"`` the project's own tiles, served by ``gridmap serve``)."""
    offline = basemap == "none"
    basemap = resolve_basemap(store, basemap, served=True)
    config = editor_config(store, plan_id, lang=lang, basemap=basemap, api=api)
    m = project_map(store, MapRequest(plan_id=plan_id, lang=lang, basemap=basemap, offline=offline))
    page = render_html(m, offline=offline, assets_url=ASSETS_URL)
    css = (HERE / "editor.css").read_text(encoding="utf-8")
    js = (HERE / "editor.js").read_text(encoding="utf-8")
    title = STRINGS[lang]["title"]
    head = (
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{title} {int(plan_id)}</title><style>{css}</style>"
    )
    body = (
        '<aside id="gm-editor" aria-live="polite"></aside>'
        f'<script type="application/json" id="gm-editor-config">{json_for_html(config)}</script>'
        f"<script>{js}</script>"
    )
    page = page.replace("</head>", head + "</head>", 1)
    page = page.replace("<html>", f'<html lang="{"zh-CN" if lang == "zh" else "en"}">', 1)
    index = page.rfind("</body>")
    return page[:index] + body + page[index:]


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)
