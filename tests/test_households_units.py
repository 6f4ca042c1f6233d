"""The small pieces of 一户一档 (issue #20) that need no project file: addresses as typed by hand,
GB 11643 check digits, masks, the sealing keyring, the synthetic generator's promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.errors import InputError
from geo.people import addresses
from geo.people.households import household_tags, load_mapping
from geo.people.privacy import (
    Keyring,
    id_check_digit,
    mask_id,
    mask_name,
    mask_phone,
    normalise_phone,
    valid_id,
)
from geo.people.synthetic import synthetic_id, synthetic_name, synthetic_phone

FULL = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("碧溪花园３幢２单元３０１室", ("碧溪花园", "3", "2", "301")),
        ("碧溪花园 3栋 2-301", ("碧溪花园", "3", "2", "301")),
        ("碧溪花园3号楼", ("碧溪花园", "3", "", "")),
        ("碧溪花园03幢301室", ("碧溪花园", "3", "", "301")),
        ("李袁村一组5号", ("李袁村一组", "5", "", "")),
        ("金星广场A座1单元1202", ("金星广场", "A", "1", "1202")),
        ("没有楼号的地址", ("", "", "", "")),
    ],
)
def test_addresses_as_typed_by_hand(text, expected):
    assert addresses.parse_address(text) == expected


@given(
    number=st.integers(1, 199),
    word=st.sampled_from(["幢", "栋", "号楼", "号", "座"]),
    full=st.booleans(),
)
def test_every_way_of_writing_a_building_number_gives_one_key(number, word, full):
    written = f"{number}{word}"
    assert addresses.building_key("碧溪花园", written.translate(FULL) if full else written) == (
        f"碧溪花园#{number}"
    )


def test_a_key_two_buildings_share_names_neither():
    buildings = pd.DataFrame(
        {
            "building_id": ["a", "b", "c"],
            "community": ["东园", "东园", "东园"],
            "name": ["碧溪花园3幢", "碧溪花园3栋", "碧溪花园4幢"],
            "address": [None, None, "碧溪路12号 碧溪花园4幢"],
        }
    )
    keys = addresses.building_keys(buildings)
    assert "碧溪花园#3" not in keys
    assert keys["碧溪花园#4"] == "c"


@given(seed=st.integers(0, 2**32 - 1))
def test_synthetic_people_are_valid_and_masked_as_the_issue_shows(seed):
    rng = np.random.default_rng(seed)
    number, phone, name = synthetic_id(rng), synthetic_phone(rng), synthetic_name(rng)
    assert valid_id(number)
    assert mask_id(number) == number[:6] + "********" + number[-4:]
    assert mask_phone(phone) == phone[:3] + "****" + phone[-4:]
    assert mask_name(name)[0] == name[0]
    assert set(mask_name(name)[1:]) == {"*"}
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert not valid_id(wrong)


def test_check_digit_of_gb11643_and_phones_written_many_ways():
    assert id_check_digit("11010519491231002") == "X"
    assert normalise_phone("+86 138-1234-5678") == "13812345678"
    assert normalise_phone("１３８１２３４５６７８") == "13812345678"


def test_sealed_cells_are_bound_to_their_key_row_and_column():
    keys = Keyring(bytes(range(32)))
    sealed = keys.seal("张三", "residents", "R1", "name")
    assert keys.open(sealed, "residents", "R1", "name") == "张三"
    for table, record, column in (
        ("residents", "R1", "phone"),
        ("households", "R1", "name"),
        ("residents", "R2", "name"),
    ):
        with pytest.raises(InputError):
            keys.open(sealed, table, record, column)
    with pytest.raises(InputError):
        Keyring(bytes(32)).open(sealed, "residents", "R1", "name")
    assert keys.seal("张三", "residents", "R1", "name") != sealed  # a fresh nonce every time
    assert keys.digest("11010519491231002X") == keys.digest("11010519491231002X")
    assert Keyring(bytes(32)).digest("11010519491231002X") != keys.digest("11010519491231002X")


def test_tags_and_the_saved_mapping_are_shipped_data():
    tags = household_tags()
    assert {"低保", "困难", "独居老人", "残疾", "动迁", "上访", "种养殖"} <= set(tags["tag"])
    assert tags.set_index("tag").loc["上访", "contact_household"]
    mapping = load_mapping()
    assert "身份证号" in mapping["id_number"]
    with pytest.raises(InputError, match="no household mapping"):
        load_mapping("../secrets")


def test_keygen_writes_a_private_key_file_once(tmp_path):
    from typer.testing import CliRunner

    from api.cli import app
    from geo.people.privacy import load_keyring

    key_file = tmp_path / "household.key"
    env = {"GRIDMAP_LANG": "en"}
    args = ["households", "keygen", str(key_file), "--db", str(tmp_path / "p.gpkg")]
    made = CliRunner().invoke(app, args, env=env)
    assert made.exit_code == 0, made.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(load_keyring(key_file).check_value()) == 16
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 4  # a new key would orphan the records sealed with the old one
    assert "exists" in again.output
