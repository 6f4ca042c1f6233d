"""No personal field leaves through a map, an OGC response, an export or a log line (issue #20).

Kunming with 500 synthetic households (generated names, ID numbers, phones; never real people):
every map route, every OGC collection and its items, the household occupancy route, and the
command line's map, layer exports, grid ledger and household exports and statistics are
rendered after the import, and all of it, with every log record and the audit log, is searched
for the generated ID numbers, phones and names. A name counts only if the same outputs did not
already show it before the import (workers' names are drawn from the same characters). The
occupancy counts themselves do arrive: the ledger, the maps' data block and the stats.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from api_support import bearer, role_tokens
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from geo.people import access
from geo.people.importing import import_households
from geo.people.privacy import KEY_ENV, KEY_FILE_ENV, Keyring
from geo.people.synthetic import synthetic_households
from geo.storage.store import audit_log, open_store

SECRET = bytes(range(64, 96))


def _api_outputs(client: TestClient, token: str) -> list[bytes]:
    """Every map, OGC and household-count answer a client can ask for, as bytes."""
    headers = bearer(token)
    grids = client.get("/ogc/collections/grids/items", params={"limit": 10_000}, headers=headers)
    features = grids.json()["features"]
    community = features[0]["properties"]["community"]
    code = features[0]["properties"]["grid_code"]
    paths = [
        "/maps/district.html",
        f"/maps/communities/{urllib.parse.quote(community)}.html",
        f"/maps/grids/{code}.html",
        "/maps/buildings.geojson?bbox=-180,-90,180,90",
        "/ogc/collections",
        "/households/occupancy",
        "/households/occupancy?level=building",
    ]
    collections = client.get("/ogc/collections", headers=headers).json()["collections"]
    paths += [f"/ogc/collections/{c['id']}/items?limit=10000" for c in collections]
    answers = [grids.content]
    for path in paths:
        answer = client.get(path, headers=headers)
        assert answer.status_code in (200, 404), (path, answer.text[:200])
        answers.append(answer.content)
    return answers


def _cli_outputs(db: Path, folder: Path) -> list[bytes]:
    """The command line's maps, layer exports, ledger and household exports, as bytes."""
    from api.cli import app

    folder.mkdir(parents=True, exist_ok=True)
    runs = [
        ["map", str(folder / "map.html"), "--basemap", "none"],
        ["ledger", str(folder / "台账.xlsx")],
        ["households", "export", str(folder / "grid.csv")],
        ["households", "export", str(folder / "building.xlsx"), "--level", "building"],
        ["households", "stats", "--json"],
        ["households", "stats", "--level", "building", "--json"],
    ]
    for layer in ("buildings", "grids", "communities"):  # Kunming has no cases
        runs += [
            ["export", str(folder / f"{layer}.csv"), "--layer", layer],
            ["export", str(folder / f"{layer}.geojson"), "--layer", layer],
            ["export", str(folder / "all.gpkg"), "--layer", layer],
        ]
    printed = []
    for args in runs:
        result = CliRunner().invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 0, (args, result.output)
        printed.append(result.output.encode())
    written = [_contents(path) for path in sorted(folder.iterdir()) if path.is_file()]
    return printed + written


def _contents(path: Path) -> bytes:
    """A file's bytes; a workbook's XML parts unzipped (its text is compressed on disk)."""
    if path.suffix != ".xlsx":
        return path.read_bytes()
    with zipfile.ZipFile(path) as book:
        return b"\n".join(book.read(name) for name in book.namelist())


@pytest.fixture(scope="module")
def rendered(api_db, tmp_path_factory):
    """The outputs before and after the import, the log text, and the generated list."""
    tokens = role_tokens(api_db)
    folder = tmp_path_factory.mktemp("hh-privacy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, base64.b64encode(SECRET).decode())
        patch.delenv(KEY_FILE_ENV, raising=False)
        before = _everything(api_db, tokens, folder / "before")
        store = open_store(api_db)
        rows = synthetic_households(store.read_layer("buildings"), households=500, seed=23)
        listing = folder / "住户.csv"
        rows.drop(columns="_expected").to_csv(listing, index=False, encoding="gbk")
        records = _LogCollector()
        logging.getLogger().addHandler(records)
        try:
            import_households(store, listing, Keyring(SECRET), actor="importer")
            _personal_reads(store)
            after = _everything(api_db, tokens, folder / "after")
        finally:
            logging.getLogger().removeHandler(records)
        audit = store.read_table(audit_log).astype(str).to_csv(index=False).encode()
        store.engine.dispose()
    return before, after, records.text.encode() + audit, rows


def _everything(db: Path, tokens: dict[str, str], folder: Path) -> bytes:
    with TestClient(create_app(Settings(db=db))) as client:
        answers = _api_outputs(client, tokens["admin"]) + _api_outputs(client, tokens["viewer"])
    return b"\n".join(answers + _cli_outputs(db, folder))


def _personal_reads(store) -> None:
    """A find and a purge, so the log and the audit log have household work to show."""
    admin = access.Viewer("admin", "auditor")
    found = access.find(
        store, Keyring(SECRET), admin, access.Query(id_tail="0000"), purpose="核查", limit=50
    )
    homes = store.read_table(access.hh.households)["household_id"]
    access.purge(store, admin, homes.iloc[-1], reason="迁出")
    assert isinstance(found, list)


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _personal(rows: pd.DataFrame, before: bytes) -> dict[str, set[str]]:
    names = {n for n in rows["姓名"] if n and not _shown(n, before)}
    return {
        "id": {i for i in rows["身份证号"] if i},
        "phone": {p for p in rows["联系电话"] if p and not _shown(p, before)},
        "name": names,
    }


def test_no_map_ogc_export_or_log_line_carries_a_name_id_number_or_phone(rendered):
    before, after, logs, rows = rendered
    personal = _personal(rows, before)
    assert len(personal["id"]) > 500
    assert len(personal["name"]) > 100
    for kind, values in personal.items():
        leaked = sorted(v for v in values if _shown(v, after))
        assert not leaked, f"{kind} in an output: {leaked[:5]}"
        logged = sorted(v for v in values if _shown(v, logs))
        assert not logged, f"{kind} in a log line or the audit log: {logged[:5]}"


def _shown(value: str, text: bytes) -> bool:
    """``value`` in ``text`` as UTF-8, GBK or a JSON \\u escape."""
    escaped = json.dumps(value)[1:-1].encode()
    return any(form in text for form in (value.encode(), value.encode("gbk"), escaped))


def test_the_occupancy_counts_do_arrive(rendered):
    before, after, _, _ = rendered
    for text in (b'"floating_pct":[', b'"occupancy":{', "近30天走访".encode()):
        assert text not in before
        assert text in after
