"""The roles a token carries, in rank order: ``viewer < staff < planner < admin``.

A module of its own with no imports, because ``gridmap token create --help`` lists the roles and
help must not wait for sqlalchemy and pandas (:mod:`geo.people.tokens` needs them).

Examples
--------
>>> outranks("planner", "staff")
True
"""

from __future__ import annotations

ROLES = ("viewer", "staff", "planner", "admin")


def outranks(role: str, needed: str) -> bool:
    """Whether ``role`` includes ``needed`` (each role includes the ones before it)."""
    return ROLES.index(role) >= ROLES.index(needed)
