"""Incidents: the national event catalogue, feed import, assignment to grids, the case loop
and its deadlines, and per-grid statistics (issue 6).

One module per concept: :mod:`.catalogue` (categories and matching), :mod:`.feeds` (reading
12345 / 数字城管 / 311 feeds), :mod:`.assign` (grid, community, worker), :mod:`.workflow`
(statuses, transitions, deadlines), :mod:`.stats` (rates, hotspots, trends).
"""

from geo.incidents.assign import assign_to_grids, reassign_open
from geo.incidents.catalogue import (
    CatalogueError,
    load_catalogue,
    load_legacy_map,
    match_category,
    parse_time_limit,
)
from geo.incidents.feeds import (
    FEED_COLUMNS,
    FeedError,
    IncidentMapping,
    flag_fallback_points,
    parse_timestamps,
    read_incident_feed,
    summarise_import,
)
from geo.incidents.stats import (
    case_timeline,
    category_counts,
    hotspot_labels,
    incident_stats,
    monthly_trend,
    repeat_hotspots,
)
from geo.incidents.workflow import (
    EVENT_COLUMNS,
    FINAL_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    IllegalTransition,
    UnknownStatusError,
    WorkCalendar,
    allowed_next,
    current_status,
    deadline,
    deadlines,
    is_open,
    is_overdue,
    is_sent_back,
    transition,
    validate_events,
)

__all__ = [
    "EVENT_COLUMNS",
    "FEED_COLUMNS",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "STATUSES",
    "CatalogueError",
    "FeedError",
    "IllegalTransition",
    "IncidentMapping",
    "UnknownStatusError",
    "WorkCalendar",
    "allowed_next",
    "assign_to_grids",
    "case_timeline",
    "category_counts",
    "current_status",
    "deadline",
    "deadlines",
    "flag_fallback_points",
    "hotspot_labels",
    "incident_stats",
    "is_open",
    "is_overdue",
    "is_sent_back",
    "load_catalogue",
    "load_legacy_map",
    "match_category",
    "monthly_trend",
    "parse_time_limit",
    "parse_timestamps",
    "read_incident_feed",
    "reassign_open",
    "repeat_hotspots",
    "summarise_import",
    "transition",
    "validate_events",
]
