"""The roles a token carries, in rank order, and what each may do.

Kept apart from :mod:`api.auth` (which needs the project file, so sqlalchemy and pandas) because
``gridmap token create --help`` lists them, and help must not wait for those imports. The roles
themselves are geo's (:mod:`geo.people.roles`), which checks them when a token is made.
"""

from __future__ import annotations

from geo.people.roles import ROLES

__all__ = ["ROLES", "ROLE_HELP"]

#: what each role may do, for the docs and ``gridmap token create --help``
ROLE_HELP = {
    "viewer": "maps, grids, buildings, communities, OGC reads (no phone numbers)",
    "staff": "+ locate, incidents, workers' phone numbers",
    "planner": "+ imports, partitions, plan edits",
    "admin": "+ tokens, workers",
}
