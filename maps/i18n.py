"""Every user-facing string of the maps, in one place: zh-CN (default) and English.

Examples
--------
>>> strings("en")["grid"]
'Grid'
>>> strings("zh")["grid"]
'网格'
"""

from __future__ import annotations

from geo.errors import InputError
from geo.incidents import catalogue

__all__ = ["LANGUAGES", "STRINGS", "incident_classes", "language", "strings"]


def incident_classes() -> tuple[str, ...]:
    """The incident classes the maps draw: the shipped catalogue's (data/incident_categories.csv).

    Their names come from the catalogue too (:func:`strings` adds them as ``class_<code>``); this
    table only gives each a map symbol, ``class_<code>_symbol``.
    """
    return tuple(catalogue.incident_classes())


STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        # layers and base maps
        "layer_grids": "网格",
        "layer_labels": "网格编码",
        "layer_buildings": "建筑",
        "layer_communities": "社区边界",
        "layer_incidents": "事件",
        "layer_heatmap": "事件热力图",
        "layer_choropleth_open": "各网格未结事件数",
        "layer_choropleth_overdue": "各网格超期事件数",
        "layer_diff_before": "调整前网格",
        "layer_occupancy": "以房管人：流动人口占比",
        "residents": "居住人口",
        "rented_units": "出租户",
        "floating_residents": "流动人口",
        "floating_share": "流动人口占比",
        "by_type": "户类型",
        "type_registered": "户籍",
        "type_resident": "常住",
        "type_floating": "流动",
        "type_rented": "出租",
        "type_vacant": "空置",
        "legend_no_records": "无住户档案",
        "basemap_osm": "OpenStreetMap 地图",
        "basemap_tianditu_vec": "天地图 矢量",
        "basemap_tianditu_img": "天地图 影像",
        "basemap_tianditu_labels": "天地图 注记",
        "basemap_amap": "高德地图",
        "basemap_tiles": "本地底图",
        "attribution_tiles": "底图：本单位瓦片",
        "layer_roads": "道路（参考）",
        "attribution_osm_tiles": '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> 贡献者',
        "attribution_tianditu": "&copy; 天地图 国家地理信息公共服务平台",
        "attribution_amap": "&copy; 高德地图 AutoNavi",
        "osm_credit_html": '建筑数据 &copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> 贡献者 (ODbL)',
        # popups
        "grid": "网格",
        "building": "建筑",
        "incident": "事件",
        "community": "社区",
        "worker": "网格员",
        "no_worker": "未配备",
        "worker_phone": "联系电话",
        "n_buildings": "建筑数",
        "households": "户数",
        "open_incidents": "未结事件",
        "overdue_incidents": "超期事件",
        "status": "状态",
        "reason": "原因",
        "name": "名称",
        "address": "地址",
        "category": "类别",
        "incident_class": "大类",
        "reported_at": "上报时间",
        "deadline": "处置时限",
        "overdue": "超期",
        "description": "描述",
        "yes": "是",
        "no": "否",
        "diff_changed": "有调整",
        # grid flags
        "status_ok": "正常",
        "status_undersized": "建筑数偏少",
        "status_oversized": "建筑数偏多",
        "status_non_contiguous": "不连片",
        # incident classes and workflow
        "class_other": "未分类",
        "class_06_symbol": "容",
        "class_07_symbol": "广",
        "class_08_symbol": "施",
        "class_09_symbol": "街",
        "class_10_symbol": "他",
        "class_other_symbol": "?",
        "incident_status_reported": "上报",
        "incident_status_registered": "立案",
        "incident_status_dispatched": "派遣",
        "incident_status_handled": "处置",
        "incident_status_verified": "核查",
        "incident_status_closed": "结案",
        "incident_status_sent_back": "退回",
        # legend
        "legend_title": "图例",
        "title_map": "网格图",
        "title_plan": "方案",
        "scale": "比例尺",
        "north": "北",
        "legend_grids": "网格（相邻网格颜色不同）",
        "legend_flagged": "需复核的网格",
        "legend_communities": "社区边界",
        "legend_buildings": "建筑",
        "legend_incidents": "事件（按大类）",
        "legend_overdue": "超期事件",
        "legend_changed": "调整的网格",
        "legend_unchanged": "未调整的网格",
        "legend_buildings_omitted": "建筑过多，放大后按范围加载",
        "buildings_failed": "建筑加载失败",
        # controls
        "search_placeholder": "搜索网格编码或地址",
        "search_none": "未找到",
        "fullscreen": "全屏",
        "fullscreen_exit": "退出全屏",
        "locate": "显示我的位置",
        "locate_outside": "您似乎不在地图范围内",
        "locate_popup": "您在此点 {distance} {unit} 范围内",
        "locate_meters": "米",
        "locate_feet": "英尺",
        "locate_error": "无法获取位置",
    },
    "en": {
        "layer_grids": "Grids",
        "layer_labels": "Grid codes",
        "layer_buildings": "Buildings",
        "layer_communities": "Community boundaries",
        "layer_incidents": "Incidents",
        "layer_heatmap": "Incident heatmap",
        "layer_choropleth_open": "Open incidents per grid",
        "layer_choropleth_overdue": "Overdue incidents per grid",
        "layer_diff_before": "Grids before the change",
        "layer_occupancy": "Occupancy: floating residents' share",
        "residents": "Residents",
        "rented_units": "Rented units",
        "floating_residents": "Floating residents",
        "floating_share": "Floating share",
        "by_type": "Households by type",
        "type_registered": "registered",
        "type_resident": "resident",
        "type_floating": "floating",
        "type_rented": "rented",
        "type_vacant": "vacant",
        "legend_no_records": "no household records",
        "basemap_osm": "OpenStreetMap",
        "basemap_tianditu_vec": "Tianditu map",
        "basemap_tianditu_img": "Tianditu imagery",
        "basemap_tianditu_labels": "Tianditu labels",
        "basemap_amap": "Amap",
        "basemap_tiles": "Local basemap",
        "attribution_tiles": "Basemap: local tiles",
        "layer_roads": "Roads (reference)",
        "attribution_osm_tiles": '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        "attribution_tianditu": "&copy; Tianditu (National Platform for Common GeoSpatial Information Services)",
        "attribution_amap": "&copy; Amap AutoNavi",
        "osm_credit_html": 'Building data &copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors (ODbL)',
        "grid": "Grid",
        "building": "Building",
        "incident": "Incident",
        "community": "Community",
        "worker": "Worker",
        "no_worker": "none assigned",
        "worker_phone": "Phone",
        "n_buildings": "Buildings",
        "households": "Households",
        "open_incidents": "Open incidents",
        "overdue_incidents": "Overdue incidents",
        "status": "Status",
        "reason": "Reason",
        "name": "Name",
        "address": "Address",
        "category": "Category",
        "incident_class": "Class",
        "reported_at": "Reported",
        "deadline": "Deadline",
        "overdue": "Overdue",
        "description": "Description",
        "yes": "yes",
        "no": "no",
        "diff_changed": "Changed",
        "status_ok": "ok",
        "status_undersized": "too few buildings",
        "status_oversized": "too many buildings",
        "status_non_contiguous": "not contiguous",
        "class_other": "Unclassified",
        "class_06_symbol": "E",
        "class_07_symbol": "A",
        "class_08_symbol": "C",
        "class_09_symbol": "S",
        "class_10_symbol": "O",
        "class_other_symbol": "?",
        "incident_status_reported": "reported",
        "incident_status_registered": "registered",
        "incident_status_dispatched": "dispatched",
        "incident_status_handled": "handled",
        "incident_status_verified": "verified",
        "incident_status_closed": "closed",
        "incident_status_sent_back": "sent back",
        "legend_title": "Legend",
        "title_map": "grid map",
        "title_plan": "Plan",
        "scale": "Scale",
        "north": "N",
        "legend_grids": "Grids (neighbours differ in colour)",
        "legend_flagged": "Grid to review",
        "legend_communities": "Community boundary",
        "legend_buildings": "Buildings",
        "legend_incidents": "Incidents (by class)",
        "legend_overdue": "Overdue incident",
        "legend_changed": "Changed grid",
        "legend_unchanged": "Unchanged grid",
        "legend_buildings_omitted": "Too many buildings: zoom in to load them",
        "buildings_failed": "Buildings could not be loaded",
        "search_placeholder": "Search grid code or address",
        "search_none": "Nothing found",
        "fullscreen": "Full screen",
        "fullscreen_exit": "Exit full screen",
        "locate": "Show my location",
        "locate_outside": "You seem to be outside the map",
        "locate_popup": "You are within {distance} {unit} of this point",
        "locate_meters": "metres",
        "locate_feet": "feet",
        "locate_error": "Could not find your location",
    },
}

#: Accepted ``lang`` values and the table each one uses.
LANGUAGES = {"zh": "zh", "zh-cn": "zh", "zh_cn": "zh", "en": "en", "en-us": "en", "en-gb": "en"}


def strings(lang: str = "zh") -> dict[str, str]:
    """The user-facing strings for ``lang`` (``"zh"``/``"zh-CN"`` or ``"en"``).

    Parameters
    ----------
    lang : str
        Language tag, case-insensitive.

    Returns
    -------
    dict
        A copy of the string table, keyed like :data:`STRINGS`.

    Raises
    ------
    InputError
        For a language without a table.

    Examples
    --------
    >>> strings("zh-CN")["worker"]
    '网格员'
    """
    key = language(lang)
    names = {f"class_{code}": name[key] for code, name in catalogue.incident_classes().items()}
    return {**STRINGS[key], **names}


def language(lang: str = "zh") -> str:
    """The table ``lang`` maps to: ``"zh"`` or ``"en"``.

    Examples
    --------
    >>> language("EN-gb")
    'en'
    """
    key = LANGUAGES.get(str(lang).strip().lower())
    if key is None:
        raise InputError(f"unknown map language {lang!r}", hint="use 'zh' or 'en'")
    return key
