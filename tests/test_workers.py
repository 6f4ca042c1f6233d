"""Worker rosters (Chinese offices' GBK CSVs too), one worker per grid, fairness, privacy."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.errors import InputError
from geo.grids import boundaries
from geo.people import workers


@pytest.fixture(scope="module")
def kunming_grids(shared_data):
    """Kunming's compounds cut into runs of 4-5 buildings, with real grid polygons."""
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    buildings = buildings.to_crs(buildings.estimate_utm_crs())
    labels = pd.Series(index=buildings.index, dtype=object)
    for name, part in buildings.groupby("community"):
        order = part.geometry.hilbert_distance().sort_values(kind="stable").index.to_numpy()
        for number, chunk in enumerate(np.array_split(order, max(1, round(len(order) / 4.5)))):
            labels[chunk] = f"{name}/{number:03d}"
    cells = boundaries.building_cells(buildings)
    return boundaries.grid_polygons(cells, labels, community=buildings["community"])


def write_roster(path, rows, *, header=("工号", "姓名", "手机号", "社区"), encoding="gbk"):
    lines = [",".join(header), *(",".join(row) for row in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


ROWS = [
    ("0001", "张伟", "138 0000 0001", "北泰花园"),
    ("0002", "王芳", "+86 139-0000-0002", "北泰花园"),
    ("0003", "李娜", "0871-6312 3456", "同德广场"),
    ("0004", "刘洋", "", "滨江俊园"),
    ("0005", "陈静", "13700000005", "滨江俊园"),
    ("0006", "杨磊", "13600000006", "滨江俊园"),
]


def test_reads_a_gbk_roster_with_chinese_headers(tmp_path, kunming_grids):
    path = write_roster(tmp_path / "花名册.csv", ROWS)
    roster = workers.read_roster(path, communities=kunming_grids["community"].unique())
    assert roster.columns.tolist() == ["worker_id", "name", "phone", "community"]
    assert roster["worker_id"].tolist() == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
        "0006",
    ]  # zeros kept
    assert roster["name"].iloc[0] == "张伟"
    assert roster["phone"].tolist() == [
        "13800000001",
        "13900000002",
        "087163123456",
        "",
        "13700000005",
        "13600000006",
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_reads_english_headers_in_any_common_encoding(tmp_path, encoding):
    path = write_roster(
        tmp_path / "roster.csv",
        ROWS,
        header=("Worker ID", "Name", "Phone", "Community"),
        encoding=encoding,
    )
    roster = workers.read_roster(path)
    assert roster["community"].tolist()[:3] == ["北泰花园", "北泰花园", "同德广场"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([*ROWS, ("0001", "赵敏", "13500000009", "北泰花园")], "used twice: 0001"),
        (
            [*ROWS, ("0009", "赵敏", "13500000009", "不存在社区")],
            "not in this district: 不存在社区",
        ),
        ([*ROWS, ("0009", "赵敏", "12345", "北泰花园")], r"line\(s\) 8"),
        ([*ROWS, ("0009", "", "13500000009", "北泰花园")], "empty name"),
    ],
)
def test_bad_rosters_name_the_problem(tmp_path, kunming_grids, rows, message):
    path = write_roster(tmp_path / "roster.csv", rows)
    with pytest.raises(InputError, match=message):
        workers.read_roster(path, communities=kunming_grids["community"].unique())


def test_missing_column_and_binary_file(tmp_path):
    with pytest.raises(InputError, match="no column for community"):
        workers.read_roster(
            write_roster(tmp_path / "a.csv", [r[:3] for r in ROWS], header=("工号", "姓名", "电话"))
        )
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError):
        workers.read_roster(binary)


def test_every_staffed_grid_gets_one_worker_of_its_community(tmp_path, kunming_grids):
    roster = workers.read_roster(write_roster(tmp_path / "r.csv", ROWS))
    assignment = workers.assign_workers(kunming_grids, roster)
    assert assignment.index.equals(kunming_grids.index)
    home = roster.set_index("worker_id")["community"]
    given = assignment.dropna()
    assert (given.map(home) == kunming_grids.loc[given.index, "community"]).all()
    staffed = kunming_grids["community"].isin(roster["community"])
    assert assignment[staffed].notna().all()
    # fair: inside a community the loads differ by at most one grid
    load = workers.worker_load(assignment, roster)
    for _, ids in roster.groupby("community")["worker_id"]:
        assert load[ids].max() - load[ids].min() <= 1
    # deterministic
    assert workers.assign_workers(kunming_grids, roster).equals(assignment)


def test_unassigned_grids_are_reported_with_a_reason(tmp_path, kunming_grids):
    roster = workers.read_roster(write_roster(tmp_path / "r.csv", ROWS))
    assignment = workers.assign_workers(kunming_grids, roster)
    report = workers.unassigned_grids(kunming_grids, assignment, roster)
    unstaffed = kunming_grids.index[~kunming_grids["community"].isin(roster["community"])]
    assert set(report.index) == set(unstaffed)
    assert (report["reason"] == workers.NO_WORKER).all()
    assert len(report) > 0


def test_existing_assignments_are_kept_and_the_rest_balanced(tmp_path, kunming_grids):
    roster = workers.read_roster(write_roster(tmp_path / "r.csv", ROWS))
    jiang = kunming_grids.index[kunming_grids["community"] == "滨江俊园"]
    beitai = kunming_grids.index[kunming_grids["community"] == "北泰花园"]
    assert len(jiang) == 5
    # 0006 already holds two grids; 0003 (同德广场) was wrongly put on a grid of 北泰花园
    current = {jiang[0]: "0006", jiang[1]: "0006", beitai[0]: "0003"}
    assignment = workers.assign_workers(kunming_grids, roster, current=current)
    assert assignment[jiang[:2]].tolist() == ["0006", "0006"]
    assert assignment[jiang[2:]].tolist() == ["0004", "0005", "0004"]  # the idle ones first
    assert assignment[beitai[0]] in {"0001", "0002"}


def test_phones_stay_private_unless_asked(tmp_path):
    roster = workers.read_roster(write_roster(tmp_path / "r.csv", ROWS))
    public = workers.public_worker_columns(roster)
    assert "phone" not in public
    assert public.columns.tolist() == ["worker_id", "name", "community"]
    assert "phone" in workers.public_worker_columns(roster, include_contacts=True)
