"""Printed grid maps and signboards (issue #21), read back with poppler's pdftotext and pdftoppm.

``gridmap print`` renders the same page as the screen in Debian's chromium at A4 or A3: the test
reads the PDF's text (title, plan, grid codes, the metric scale, north, attribution) and has
pdftoppm draw it, to be sure it is a real, printable PDF of the right size.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from geo.people import roster as rosters
from geo.plans import store as plans
from geo.storage.store import open_store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def district(tmp_path_factory, shared_data) -> Path:
    """Kunming, partitioned, with a roster and a district name for the title."""
    from api_support import project_copy

    db = project_copy(
        tmp_path_factory,
        shared_data / "kunming_buildings.geojson",
        name="print",
        community_field="community",
    )
    assert run("settings", "set", "district_name", "盘龙示范区", "--db", str(db)).exit_code == 0
    return db


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def page_size_mm(path: Path) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    width, height = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups()
    return round(float(width) * 25.4 / 72), round(float(height) * 25.4 / 72)


def codes_of(db: Path) -> list[str]:
    store = open_store(db)
    try:
        return [str(code) for code in plans.load_plan(store).grids.index]
    finally:
        store.engine.dispose()


def test_an_a3_landscape_district_map_carries_title_codes_scale_north_and_credit(
    district, tmp_path
):
    out = tmp_path / "district.pdf"
    result = run("print", str(out), "--db", str(district), "--paper", "A3", "--landscape")
    assert result.exit_code == 0, result.output
    assert page_size_mm(out) == (420, 297)
    text = pdf_text(out)
    assert "盘龙示范区 网格图" in text
    published = plans.published_plan_id(open_store(district))
    assert re.search(rf"方案 {published} · \d{{4}}-\d{{2}}-\d{{2}}", text)
    shown = set(re.findall(r"\b\d{3}-\d{3}\b", text))
    short = {f"{c[9:12]}-{c[12:]}" for c in codes_of(district)}
    assert len(shown & short) >= 0.8 * len(short)  # the grid codes are written, as text
    assert re.search(r"\b\d+ k?m\b", text)  # the metric scale bar
    assert " ft" not in text
    assert "北" in text
    assert "图例" in text
    assert "Leaflet" in text
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(out), str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 5_000


def word_boxes(path: Path, pattern: str) -> list[tuple[float, float, float, float]]:
    """The boxes (points) of the PDF's words that match ``pattern``, as poppler lays them out."""
    html = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    found = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html,
    )
    return [tuple(map(float, f[:4])) for f in found if re.fullmatch(pattern, f[4])]


def test_a_dense_district_on_a3_keeps_its_grid_codes_apart(suzhou_project_base, tmp_path):
    out = tmp_path / "suzhou.pdf"
    result = run(
        "print", str(out), "--db", str(suzhou_project_base), "--paper", "A3", "--landscape"
    )
    assert result.exit_code == 0, result.output
    boxes = word_boxes(out, r"\d{3}-\d{3}")
    assert len(boxes) > 150  # of 1,800 grids: the codes that fit, largest grids first
    overlapping = [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5
    ]
    assert not overlapping, overlapping[:3]


def test_a_community_prints_to_a4_portrait_png(district, tmp_path):
    out = tmp_path / "community.png"
    result = run("print", str(out), "--db", str(district), "--community", "北泰花园")
    assert result.exit_code == 0, result.output
    header = out.read_bytes()[:24]
    assert header.startswith(b"\x89PNG")
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (2 * 794, 2 * 1123)  # A4 at 96 dpi, drawn at twice the density


def test_signboards_are_one_page_per_grid_with_the_worker_and_the_phone_only_when_asked(
    district, tmp_path
):
    store = open_store(district)
    plan = plans.load_plan(store)
    grids = plan.grids[plan.grids["community"] == "北泰花园"]
    roster = rosters.roster(store).set_index("worker_id")
    store.engine.dispose()
    out = tmp_path / "signs.pdf"
    result = run("print", str(out), "--db", str(district), "--community", "北泰花园", "--signboard")
    assert result.exit_code == 0, result.output
    pages = pdf_text(out).split("\f")[: len(grids)]
    assert len(pdf_text(out).rstrip("\f").split("\f")) == len(grids)
    for (code, row), page in zip(grids.iterrows(), pages, strict=True):
        assert f"网格 {code}" in page
        assert row["worker"] in page
        assert roster.loc[row["worker_id"], "phone"] not in page
    with_phones = tmp_path / "signs-phones.pdf"
    args = ("--community", "北泰花园", "--signboard", "--with-contacts", "--paper", "A3")
    assert run("print", str(with_phones), "--db", str(district), *args).exit_code == 0
    assert roster.loc[grids.iloc[0]["worker_id"], "phone"] in pdf_text(with_phones)
    assert page_size_mm(with_phones) == (297, 420)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("out.html",), ".pdf or .png"),
        (("out.png", "--signboard"), "give a .pdf"),
        (("out.pdf", "--paper", "B5"), "B5"),
        (("out.pdf", "--basemap", "osm"), "without internet"),
        (("out.pdf", "--grid", "999"), "999"),
    ],
)
def test_bad_print_requests_are_one_clear_line(district, tmp_path, monkeypatch, args, words):
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    monkeypatch.chdir(tmp_path)
    result = run("print", *args, "--db", str(district))
    assert result.exit_code != 0
    assert words in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / args[0]).exists()


def test_a_missing_chromium_is_one_clear_line(district, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDMAP_LANG", "en")
    monkeypatch.setenv("GRIDMAP_CHROMIUM", str(tmp_path / "no-chromium"))
    result = run("print", str(tmp_path / "x.pdf"), "--db", str(district))
    assert result.exit_code == 2
    assert "printing needs chromium" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.pdf").exists()


def test_a_district_name_with_markup_prints_as_text(district, tmp_path):
    db = tmp_path / "hostile.gpkg"
    db.write_bytes(district.read_bytes())
    name = "{{ 7*7 }}<b>x</b>"
    assert run("settings", "set", "district_name", name, "--db", str(db)).exit_code == 0
    out = tmp_path / "hostile.pdf"
    assert run("print", str(out), "--db", str(db), "--community", "北泰花园").exit_code == 0
    text = " ".join(pdf_text(out).split())
    assert f"{name} 北泰花园" in text  # the title, exactly as typed
    assert "49" not in text.split("网格图")[0]
