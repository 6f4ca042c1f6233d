"""The demo's 一户一档: synthetic households and residents, imported as a street office's list is.

``gridmap demo`` calls :func:`seed_demo_households` once its district is partitioned and staffed:
a household list over the buildings of its first communities (generated names, ID numbers with
valid check characters, phones; never real people) is written beside the project as the demo's
input, sealed with a new demo key written beside the project file (never inside it), and
imported like any list. A few households get a contact cadre and visits, so that the occupancy
layer, the grid ledger's occupancy columns, ``gridmap households due`` and ``find`` have
something to show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo.people import access, visits
from geo.people import households as hh
from geo.people.importing import import_households
from geo.people.privacy import Keyring, load_keyring, new_key_text
from geo.people.synthetic import synthetic_households
from geo.storage.store import Store

#: how many households the demo's list holds at most (its import takes a few seconds)
DEMO_HOUSEHOLDS = 2_000
DEMO_ADMIN = access.Viewer("admin", "demo")


@dataclass
class DemoHouseholds:
    """What seeding did: the import's outcome, contact households, visits, the key's path."""

    outcome: hh.ImportOutcome
    contacts: int
    visits: int
    key_file: Path


def seed_demo_households(
    store: Store, *, key_file: Path, list_file: Path, seed: int = 2026
) -> DemoHouseholds:
    """Write a demo key and a synthetic household list, import it, assign cadres, visit some.

    Parameters
    ----------
    store
        The demo project, partitioned and published (households land on its buildings).
    key_file
        Where the demo's household key goes (a new one; beside the project file, never in it).
    list_file
        Where the synthetic list goes (CSV, UTF-8 with BOM, Chinese headers).
    seed
        The generator's seed: the same demo every time.
    """
    buildings = store.read_layer("buildings")
    chosen = _first_communities(buildings)
    bare = pd.to_numeric(chosen.get("households"), errors="coerce")
    count = min(DEMO_HOUSEHOLDS, int(bare.sum())) if bare is not None and bare.sum() > 0 else 0
    rows = synthetic_households(
        chosen, households=count or DEMO_HOUSEHOLDS, unmatched=0.02, seed=seed
    )
    list_file.parent.mkdir(parents=True, exist_ok=True)
    rows.drop(columns="_expected").to_csv(list_file, index=False, encoding="utf-8-sig")
    key_file.write_text(new_key_text() + "\n", encoding="ascii")
    key_file.chmod(0o600)
    keys = load_keyring(key_file)
    outcome = import_households(store, list_file, keys, actor="demo")
    contacts, visited = _contacts_and_visits(store, keys, seed=seed)
    return DemoHouseholds(outcome, contacts=contacts, visits=visited, key_file=key_file)


def _first_communities(buildings: pd.DataFrame) -> pd.DataFrame:
    """The buildings of the first communities, in name order, up to about the demo's size."""
    if "community" not in buildings.columns:
        return buildings
    names = sorted(buildings["community"].dropna().unique())
    bare = pd.to_numeric(buildings.get("households"), errors="coerce").fillna(1)
    per_community = bare.groupby(buildings["community"]).sum()
    keep, total = [], 0.0
    for name in names:
        keep.append(name)
        total += float(per_community.get(name, 0))
        if total >= DEMO_HOUSEHOLDS:
            break
    return buildings[buildings["community"].isin(keep)]


def _contacts_and_visits(store: Store, keys: Keyring, *, seed: int) -> tuple[int, int]:
    """Two or three contact households per cadre (the tagged ones first) and visits to most."""
    homes = store.read_table(hh.households)
    if homes.empty:
        return 0, 0
    rng = np.random.default_rng(seed)
    tagged = homes[homes["tags"] != ""].sort_values("household_id")
    picked = list(tagged["household_id"][:24])
    cadres = [f"联系干部{i + 1:02d}" for i in range((len(picked) + 2) // 3)]
    for k, cadre in enumerate(cadres):
        mine = picked[k * 3 : k * 3 + 3]
        visits.assign(store, DEMO_ADMIN, mine, cadre)
    visited = 0
    today = dt.date.today()
    for k, household in enumerate(picked):
        if rng.random() < 0.7:
            visits.record_visit(
                store,
                keys,
                DEMO_ADMIN,
                household,
                cadre=cadres[k // 3],
                visited_on=today - dt.timedelta(days=int(rng.integers(1, 60))),
                notes=("了解近况", "已登记诉求", "下月回访"),
            )
            visited += 1
    return len(picked), visited
