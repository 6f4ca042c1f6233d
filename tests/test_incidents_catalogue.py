"""The shipped event catalogue, the legacy code map, and matching raw categories to codes."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.errors import InputError
from geo.incidents.catalogue import (
    CATALOGUE_PATH,
    CatalogueError,
    load_catalogue,
    load_legacy_map,
    match_category,
    parse_time_limit,
)

# The codes and names the issue names; the rest of the catalogue is marked code_status=assumed.
NAMED = {
    "06001": "私搭乱建",
    "06010": "暴露垃圾",
    "06011": "积存垃圾渣土",
    "06012": "道路不洁",
    "06036": "乱堆杂物",
    "07001": "非法小广告",
    "08001": "施工扰民",
    "08004": "工地扬尘",
    "09001": "无照经营游商",
    "09005": "店外经营",
    "09006": "占道经营",
    "09009": "机动车乱停放",
}
BIXI = {
    "私搭乱建": "06001",
    "乱堆乱放": "06036",
    "占道经营": "09006",
    "脏乱差": "06012",
    "环卫": "06010",
}


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return load_catalogue()


def test_catalogue_codes_unique_and_well_formed(catalogue):
    assert catalogue["code"].is_unique
    assert catalogue["code"].str.fullmatch(r"\d{5}").all()
    assert (catalogue["code"].str[:2] == catalogue["class_code"]).all()
    assert catalogue["name_zh"].str.len().gt(0).all()
    assert catalogue["name_en"].str.len().gt(0).all()


def test_every_class_present_with_its_names(catalogue):
    classes = catalogue.drop_duplicates("class_code").set_index("class_code")["class_zh"]
    assert classes.to_dict() == {
        "06": "市容环境",
        "07": "宣传广告",
        "08": "施工管理",
        "09": "街面秩序",
        "10": "其他",
    }
    assert catalogue.groupby("class_zh")["class_code"].nunique().eq(1).all()


def test_named_codes_carry_the_named_chinese_names(catalogue):
    names = catalogue.set_index("code")["name_zh"]
    for code, name in NAMED.items():
        assert names[code] == name
    status = catalogue.set_index("code")["code_status"]
    assert (status[list(NAMED)] == "named").all()
    assert set(status) == {"named", "assumed"}


def test_exactly_one_fallback_in_class_other(catalogue):
    fallback = catalogue.loc[catalogue["fallback"]]
    assert len(fallback) == 1
    assert fallback["class_code"].iloc[0] == "10"
    assert fallback["name_zh"].iloc[0] == "其他事件"


def test_time_limits_parse_to_positive_amounts(catalogue):
    assert catalogue["limit_unit"].isin({"h", "wd", "d"}).all()
    assert catalogue["limit_value"].gt(0).all()
    # parked cars are moved faster than illegal structures are torn down
    limits = catalogue.set_index("code")
    assert limits.loc["09009", "time_limit"] == "1h"
    assert limits.loc["06001", "time_limit"] == "5wd"
    assert parse_time_limit(" 2.5 WD ") == (2.5, "wd")
    with pytest.raises(CatalogueError, match="not <number><unit>"):
        parse_time_limit("two days")


def test_legacy_map_complete(catalogue):
    legacy = load_legacy_map()
    assert legacy["code"].isin(catalogue["code"]).all()
    assert set(legacy["legacy_class"]) == {"01", "02", "03", "04", "05"}
    assert (legacy["legacy_code"].str[:2] == legacy["legacy_class"]).all()
    classes = legacy.drop_duplicates("legacy_class").set_index("legacy_class")["legacy_class_zh"]
    assert classes["01"] == "市容环境"
    assert classes["05"] == "街面秩序"
    # the old class goes to the new class of the same name (突发事件 has none: it goes to 其他)
    new_class = legacy["code"].str[:2]
    same_name = {"01": "06", "02": "07", "03": "08", "05": "09", "04": "10"}
    assert (new_class == legacy["legacy_class"].map(same_name)).all()
    # legacy items whose name survived map onto the item of the same name
    names = catalogue.set_index("code")["name_zh"]
    for legacy_name, code in zip(legacy["legacy_name_zh"], legacy["code"], strict=True):
        if legacy_name in set(names):
            assert names[code] == legacy_name


def test_match_codes_names_aliases_and_unknown(catalogue):
    raw = pd.Series(
        [
            "06001",  # code
            "0102",  # legacy 4-digit code -> 暴露垃圾
            "6036",  # a spreadsheet dropped the leading zero
            "9009.0",  # ... and made it a float
            "06-012",  # punctuation
            "占道经营",  # Chinese name
            "Construction dust",  # English name
            "CONSTRUCTION  DUST",  # case and spacing
            "乱堆乱放",  # Bixi's alias
            "脏乱差",
            "环卫",
            "小区门口私搭乱建",  # a name inside free text
            "井盖丢失",  # a part (部件), not an event: unknown
            "",  # empty: unknown
            "99999",  # not a code
        ],
        index=range(100, 115),
    )
    matched = match_category(raw, catalogue)
    assert list(matched.index) == list(raw.index)
    assert matched["code"].tolist() == [
        "06001",
        "06010",
        "06036",
        "09009",
        "06012",
        "09006",
        "08004",
        "08004",
        "06036",
        "06012",
        "06010",
        "06001",
        "10099",
        "10099",
        "10099",
    ]
    assert int((~matched["known"]).sum()) == 3
    assert matched["raw"].equals(raw)  # the raw text is kept unchanged


def test_match_every_name_and_alias_round_trips(catalogue):
    for row in catalogue.itertuples():
        keys = [row.code, row.name_zh, row.name_en, *filter(None, row.aliases.split("|"))]
        matched = match_category(pd.Series(keys), catalogue)
        assert matched["known"].all(), keys
        assert (matched["code"] == row.code).all(), keys


def test_bixi_names_all_match(catalogue):
    matched = match_category(pd.Series(list(BIXI)), catalogue)
    assert dict(zip(BIXI, matched["code"], strict=True)) == BIXI


def test_feed_category_map_wins_and_must_name_real_codes(catalogue):
    raw = pd.Series(["Parking Enforcement", "Needle Pickup"])
    matched = match_category(raw, catalogue, extra={"Parking Enforcement": "09009"})
    assert matched["code"].tolist() == ["09009", "10099"]
    with pytest.raises(CatalogueError, match="not in the catalogue"):
        match_category(raw, catalogue, extra={"Parking Enforcement": "09999"})


def test_city_catalogue_extends_the_national_one(tmp_path):
    table = pd.read_csv(CATALOGUE_PATH, dtype=str, keep_default_na=False)
    extra = table.iloc[[0]].assign(
        code="06101", name_zh="违规设置地锁", name_en="Illegal parking locks", aliases="地锁"
    )
    path = tmp_path / "city.csv"
    pd.concat([table, extra]).to_csv(path, index=False)
    city = load_catalogue(path)
    assert len(city) == len(table) + 1
    assert match_category(pd.Series(["地锁"]), city)["code"].tolist() == ["06101"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: pd.concat([t, t.iloc[[3]]]), "duplicate code"),
        (lambda t: t.assign(time_limit=t["time_limit"].where(t.index != 4, "soon")), "row 5"),
        (lambda t: t.assign(code=t["code"].where(t.index != 2, "6003")), "row 3"),
        (lambda t: t.assign(class_code=t["class_code"].where(t.index != 0, "07")), "row 1"),
        (lambda t: t.drop(columns="time_limit"), "lacks the column"),
        (lambda t: t[t["class_code"] != "10"].assign(fallback="0"), "no fallback"),
    ],
)
def test_bad_catalogue_is_refused_naming_the_row(tmp_path, change, message):
    table = pd.read_csv(CATALOGUE_PATH, dtype=str, keep_default_na=False)
    path = tmp_path / "bad.csv"
    change(table).to_csv(path, index=False)
    with pytest.raises(CatalogueError, match=message) as info:
        load_catalogue(path)
    assert isinstance(info.value, InputError)
