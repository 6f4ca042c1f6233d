"""Case reads against the number of stored cases: a page, a case by id, an OGC page, statistics.

Run: ``.venv/bin/python bench/cases.py`` (Kunming's footprints, staffed, with 1,000 / 10,000 /
30,000 generated cases imported through the store) or ``--counts 30000``. Each route is asked
through FastAPI's TestClient in-process (no network), once to warm up and then ``--repeat``
times; the median is reported. A page or a case should cost the same at every size; statistics
grow with the cases they count. Writes the ``cases`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from api_support import _build, bearer  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth import create_token  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench._report import write_section  # noqa: E402
from geo.incidents.cases import CaseImport  # noqa: E402
from geo.incidents.feeds import IncidentMapping  # noqa: E402
from geo.storage.store import open_store  # noqa: E402
from geo.usecases.incidents import import_records  # noqa: E402

KUNMING = ROOT.parent / "shared" / "data" / "kunming_buildings.geojson"
MAPPING = IncidentMapping(
    id_col="id", lon_col="lon", lat_col="lat", category_col="category", time_col="reported_at"
)


def add_cases(db: Path, count: int) -> None:
    """``count`` cases over the district and 60 days, imported like a feed."""
    store = open_store(db)
    west, south, east, north = store.read_layer("buildings").to_crs(4326).total_bounds
    rng = np.random.default_rng(count)
    start = pd.Timestamp("2026-01-01", tz="Asia/Shanghai")
    records = pd.DataFrame(
        {
            "id": [f"B{i:06d}" for i in range(count)],
            "lon": rng.uniform(west, east, count),
            "lat": rng.uniform(south, north, count),
            "category": rng.choice(["06001", "07002", "08003", "10001"], count),
            "reported_at": (
                start + pd.to_timedelta(rng.integers(0, 60 * 86_400, count), unit="s")
            ).strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    import_records(store, records, CaseImport(mapping=MAPPING, source="bench"))
    store.engine.dispose()


def median_ms(client: TestClient, url: str, repeat: int) -> float:
    assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


ROUTES = {
    "GET /incidents?limit=1": "/incidents?limit=1",
    "GET /incidents?status=reported&limit=50&offset=500": (
        "/incidents?status=reported&limit=50&offset=500"
    ),
    "GET /incidents/{id}": "/incidents/bench:B000500",
    "GET /ogc/.../incidents/items?limit=100": "/ogc/collections/incidents/items?limit=100",
    "GET /ogc/.../incidents/items/{id}": "/ogc/collections/incidents/items/bench:B000500",
    "GET /stats/incidents?by=worker": "/stats/incidents?by=worker",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1_000, 10_000, 30_000])
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-cases-") as folder:
        base = Path(folder) / "base.gpkg"
        _build(base, KUNMING, "community")
        rows = {name: [] for name in ROUTES}
        for count in options.counts:
            db = Path(folder) / f"cases-{count}.gpkg"
            shutil.copyfile(base, db)
            add_cases(db, count)
            token = create_token(open_store(db), "bench", "staff")
            with TestClient(create_app(Settings(db=db)), headers=bearer(token)) as client:
                for name, url in ROUTES.items():
                    rows[name].append(median_ms(client, url, options.repeat))
                    print(f"{count:>7,} {name}: {rows[name][-1]:.1f} ms", flush=True)
    header = "| request | " + " | ".join(f"{c:,} cases" for c in options.counts) + " |"
    lines = [header, "|---" * (len(options.counts) + 1) + "|"]
    lines += [
        f"| `{name}` | " + " | ".join(f"{ms:.0f} ms" for ms in values) + " |"
        for name, values in rows.items()
    ]
    text = (
        f"`bench/cases.py`: median of {options.repeat} in-process requests, Kunming staffed, "
        f"on {platform.processor() or platform.machine()} (shared 2-core machine).\n\n"
        + "\n".join(lines)
        + "\n\nBefore (issue #13): with 30,636 cases `GET /incidents?limit=1` took 0.57 s, one OGC"
        " case 0.63 s and\n`/stats/incidents?by=worker` 0.99 s, each reading the whole layer; a"
        " page now costs the same at every size."
    )
    write_section("cases", text)
    print(text)


if __name__ == "__main__":
    main()
