"""The division hierarchy: 省 - 市 - 县(区) - 街道(乡镇) - 社区(村), read from the national codes.

One database serves a province's streets, and a token, a statistic or a map may be about any level
of it. The level of a division is in its code, so the hierarchy needs no table of its own:

- GB/T 2260 gives the province (``32``), city (``3205``) and county (``320581``) codes, printed as
  six digits with trailing zeros (``320000``, ``320500``);
- the statistical division codes extend a county by 3 digits for a street (``320581104``) and 3
  more for a community (``320581104001``).

A division covers another when its code is a prefix of the other's: Changshu (``320581``) covers
its street ``320581104``, and a token scoped to ``320581`` reads every street that starts so. This
module is that one rule; it knows nothing of stores or roles.

Examples
--------
>>> parse_division("320500").level
'city'
>>> parse_division(" 320581104 ").parent
'320581'
>>> parse_division("３２０５８１１０４").code  # typed with full-width digits
'320581104'
>>> covers("320581", "320581104"), covers("320581104", "320582101")
(True, False)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from geo.errors import InputError

Level = Literal["province", "city", "county", "street", "community"]
#: each level and the length of its (short) code
LEVELS: tuple[tuple[Level, int], ...] = (
    ("province", 2),
    ("city", 4),
    ("county", 6),
    ("street", 9),
    ("community", 12),
)
LEVEL_NAMES_ZH = {
    "province": "省",
    "city": "市",
    "county": "县(区)",
    "street": "街道",
    "community": "社区",
}
_LEVEL_OF_LENGTH = {length: level for level, length in LEVELS}
_LENGTH_OF_LEVEL = dict(LEVELS)
#: The division code of a project that has set none. No county has it, so a grid code made from
#: it (000000000001003) can never pass for a real place's; ``gridmap plan recode`` renumbers
#: such grids once the real code is set.
PLACEHOLDER_DIVISION_CODE = "000000000"
#: GB/T 2260 province-level prefixes (two digits)
PROVINCES = frozenset(
    {*map(str, range(11, 16)), *map(str, range(21, 24)), *map(str, range(31, 38))}
    | {*map(str, range(41, 47)), *map(str, range(50, 55)), *map(str, range(61, 66))}
    | {"71", "81", "82"}
)


@dataclass(frozen=True)
class Division:
    """A division by its short code: ``32`` (Jiangsu), ``3205``, ``320581``, ``320581104`` ..."""

    code: str
    level: Level

    @property
    def parent(self) -> str | None:
        """The code of the division one level up (None for a province)."""
        index = [level for level, _ in LEVELS].index(self.level)
        return None if index == 0 else self.code[: LEVELS[index - 1][1]]

    @property
    def ancestors(self) -> list[str]:
        """Every code above this one, province first."""
        return [self.code[:length] for _, length in LEVELS if length < len(self.code)]


def parse_division(text: str | int) -> Division:
    """Read a division code of any level; the GB/T 2260 six-digit forms of a province
    (``320000``) and a city (``320500``) are read as ``32`` and ``3205``.

    Raises :class:`~geo.errors.InputError` naming what is wrong.
    """
    code = unicodedata.normalize("NFKC", str(text)).strip()  # full-width digits as typed
    if len(code) == 6 and code.isdigit():
        code = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
    level = _LEVEL_OF_LENGTH.get(len(code))
    if level is None or not (code.isascii() and code.isdigit()):
        raise InputError(
            f"division code {code[:40]!r} must be 2, 4, 6, 9 or 12 digits "
            "(province, city, county, street, community), e.g. 320581104",
            zh=f"区划代码 {code[:40]!r} 应为 2、4、6、9 或 12 位数字（省、市、县、街道、社区），例如 320581104",
        )
    if code[:2] not in PROVINCES:
        raise InputError(
            f"division code {code}: {code[:2]} is not a GB/T 2260 province code",
            zh=f"区划代码 {code}：{code[:2]} 不是 GB/T 2260 省级代码",
        )
    return Division(code=code, level=level)


def parse_street(text: str | int) -> Division:
    """A division code that must name one street (9 digits): one street is one project."""
    division = parse_division(text)
    if division.level != "street":
        raise InputError(
            f"{division.code} is a {division.level}; this works on one street: give its 9-digit "
            f"code (e.g. {division.code.ljust(6, '0')[:6]}104)",
            zh=f"{division.code} 是{LEVEL_NAMES_ZH[division.level]}级区划；此操作针对单个街道，"
            "请给出 9 位街道代码",
        )
    return division


def covers(scope: str | None, code: str) -> bool:
    """Whether the division ``scope`` is ``code`` or above it (None: the whole database)."""
    return scope is None or code.startswith(scope)


def rollup_code(code: str, level: Level) -> str:
    """The code of ``code``'s division at ``level`` (``320581104`` at county: ``320581``)."""
    length = _LENGTH_OF_LEVEL[level]
    if len(code) < length:
        raise InputError(
            f"{code} is above the {level} level; it cannot be rolled up by {level}",
            zh=f"{code} 高于{LEVEL_NAMES_ZH[level]}级，无法按此级汇总",
        )
    return code[:length]
