"""The names of the occupancy counts (以房管人), importable without the store.

:mod:`geo.people.occupancy` computes them from the household records; maps/ draws whichever of
them geo gave (popups, the floating-share layer) and must not keep a list of its own
(``tests/test_layering.py``), nor pull the store in to learn the names.
"""

from __future__ import annotations

#: a household type (户类型) -> the column counting the households of that type
TYPE_COLUMNS = {
    "户籍": "registered",
    "常住": "resident",
    "流动": "floating",
    "出租": "rented",
    "空置": "vacant",
}
#: the columns of an occupancy row per building or grid (after its key): counts and one share
COLUMNS = (
    "households",
    *TYPE_COLUMNS.values(),
    "residents",
    "rented_units",
    "floating_residents",
    "floating_share",
    "contact_households",
    "visits_30d",
)
