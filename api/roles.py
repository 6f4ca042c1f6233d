"""The roles a token carries, in rank order, and what each may do.

Kept apart from :mod:`api.auth` (which needs the project file, so sqlalchemy and pandas) because
``gridmap token create --help`` lists them, and help must not wait for those imports.
"""

from __future__ import annotations

ROLES = ("viewer", "staff", "planner", "admin")
#: what each role may do, for the docs and ``gridmap token create --help``
ROLE_HELP = {
    "viewer": "maps, grids, buildings, communities, OGC reads (no phone numbers)",
    "staff": "+ locate, incidents, workers' phone numbers",
    "planner": "+ imports, partitions, plan edits",
    "admin": "+ tokens, workers",
}
