"""Which draft plan a command edits when it is not told: the newest one.

``gridmap plan move|split|undo|history ...`` without ``--plan`` act on :func:`newest_draft`.
"""

from __future__ import annotations

import sqlalchemy as sa

from geo.errors import NotFound
from geo.storage.store import Store, plans


def newest_draft(store: Store) -> int:
    """The id of the newest draft plan; :class:`~geo.errors.NotFound` when there is none."""
    with store.reading() as conn:
        plan_id = conn.execute(
            sa.select(sa.func.max(plans.c.plan_id)).where(plans.c.status == "draft")
        ).scalar()
    if plan_id is None:
        raise NotFound(
            "no draft plan; copy one first: gridmap plan copy <plan id>",
            zh="没有草稿方案，请先复制：gridmap plan copy <方案编号>",
        )
    return int(plan_id)
