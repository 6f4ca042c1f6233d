"""Household addresses as street offices write them, made comparable with the buildings'.

A household list says where a family lives as 小区 + 楼号 + 单元 + 室, typed by hand:
``碧溪花园３幢２单元３０１室``, ``碧溪花园 3栋 2-301``, ``碧溪花园3号楼``. The buildings carry a
name or an address such as ``碧溪花园3幢`` (the demo) or ``中山东一路20号``. Both sides are
normalised the same way (NFKC folds full-width digits and letters; 号楼/幢/栋/座/号 all mean
"building number"; spaces and punctuation go), so a building is found by (compound, number).

Examples
--------
>>> building_key("碧溪花园", "３幢")
'碧溪花园#3'
>>> parse_address("碧溪花园 3栋 2单元 301室")
('碧溪花园', '3', '2', '301')
>>> parse_address("李袁村一组5号")
('李袁村一组', '5', '', '')
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

_NOT_WORD = re.compile(r"[\s\W_]+", re.UNICODE)
#: what follows a building number: 号楼, 幢, 栋, 座, 号 (in this order: 号楼 before 号)
_BUILDING = r"(?P<number>[0-9A-Za-z]+)\s*(?:号楼|幢|栋|座|号|楼)"
_ADDRESS = re.compile(
    r"^(?P<compound>.*?)\s*" + _BUILDING + r"\s*"
    r"(?:(?P<unit>[0-9A-Za-z]+)\s*(?:单元|-|－)\s*)?"
    r"(?:(?P<room>[0-9A-Za-z]+)\s*(?:室|号)?)?\s*$"
)


def fold(text: object) -> str:
    """NFKC, lower case, without spaces and punctuation (``碧溪 花园（东）`` -> ``碧溪花园东``)."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", str(text)).casefold())


def building_number(text: object) -> str:
    """The number in ``３幢``, ``3号楼``, ``3栋``, ``3`` or ``A座`` (``""`` if none)."""
    folded = unicodedata.normalize("NFKC", str(text or "")).strip()
    match = re.fullmatch(r"(?:第)?([0-9A-Za-z]+)\s*(?:号楼|幢|栋|座|号|楼)?", folded)
    return match.group(1).lstrip("0").upper() or "0" if match else fold(folded).upper()


def building_key(compound: object, number: object) -> str:
    """The key a household and a building share: folded compound, ``#``, the bare number."""
    return f"{fold(compound)}#{building_number(number)}"


def unit_room(text: object) -> str:
    """A unit or room as compared: NFKC digits, without 单元/室 and leading zeros."""
    folded = unicodedata.normalize("NFKC", str(text or "")).strip()
    folded = re.sub(r"(单元|室|号)$", "", folded).strip()
    return folded.lstrip("0").upper() if folded.strip("0") else folded


def parse_address(text: object) -> tuple[str, str, str, str]:
    """(compound, building number, unit, room) of a one-line address; ``("", "", "", "")`` when
    it names no building number."""
    folded = unicodedata.normalize("NFKC", str(text or "")).strip()
    match = _ADDRESS.match(folded)
    if match is None:
        return "", "", "", ""
    return (
        match["compound"].strip(),
        building_number(match["number"]),
        unit_room(match["unit"] or ""),
        unit_room(match["room"] or ""),
    )


def building_keys(buildings: pd.DataFrame) -> dict[str, str]:
    """Every (compound, number) key the buildings' names and addresses give, to its building.

    A building named ``碧溪花园3幢`` gives ``碧溪花园#3``; one with only a number in its name
    (``3幢``, ``A``) gives ``community#3``. A key two buildings share is ambiguous and left out.
    """
    found: dict[str, set[str]] = {}
    columns = [c for c in ("name", "address") if c in buildings.columns]
    community = buildings.get("community", pd.Series("", index=buildings.index))
    for column in columns:
        for building_id, text, place in zip(
            buildings["building_id"], buildings[column], community, strict=True
        ):
            for key in _keys_of(text, place):
                found.setdefault(key, set()).add(str(building_id))
    return {key: ids.pop() for key, ids in found.items() if len(ids) == 1}


def _keys_of(text: object, community: object) -> list[str]:
    if text is None or (not isinstance(text, str) and pd.isna(text)) or not str(text).strip():
        return []
    keys = []
    for part in str(text).split():  # "碧溪街道碧溪路12号 碧溪花园3幢": each part on its own
        compound, number, _, _ = parse_address(part)
        if number:
            keys.append(building_key(compound or community, number))
    compound, number, _, _ = parse_address(text)
    if number:
        keys.append(building_key(compound or community, number))
    return keys
