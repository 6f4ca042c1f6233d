"""What goes into gridmap's wheel beyond pyproject.toml: the reference tables and the vendored assets.

The reference tables (the incident catalogue, the legacy code map, the feed mappings) stay in the
top-level ``data/`` folder of the repository, as data and not code; the wheel ships them inside
``geo`` as ``geo/reference/`` (:mod:`geo.reference` finds them in either place). The map and
docs assets in ``maps/assets/vendor`` are built from pinned npm packages by
``python maps/assets/vendor.py``: a wheel built without them would give blank pages on an
intranet, so building one refuses until they are there (``make wheel`` vendors first).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
VENDORED = HERE / "maps" / "assets" / "vendor" / "VERSIONS.json"


class BuildWithAssets(build_py):
    """``build_py`` that refuses to build a wheel without the vendored assets."""

    def run(self) -> None:
        if not getattr(self, "editable_mode", False) and not VENDORED.exists():
            raise SystemExit(
                "gridmap: maps/assets/vendor is not built; run `python maps/assets/vendor.py` "
                "(needs npm) before building the wheel, or `make wheel`"
            )
        super().run()


setup(
    packages=[
        *find_packages(include=["geo", "geo.*", "maps", "maps.*", "api", "api.*"]),
        "geo.reference",
    ],
    package_dir={"geo.reference": "data"},
    cmdclass={"build_py": BuildWithAssets},
)
