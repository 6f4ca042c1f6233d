"""Vendor Leaflet, its plugins and Swagger UI (run at build time, never at run time).

Installs the npm packages pinned in ``package.json``/``package-lock.json`` with ``npm ci`` in a
temporary folder and copies the files listed in ``manifest.json`` into ``vendor/<package>/``,
with ``vendor/VERSIONS.json`` recording what was copied. The service serves them (the intranet
has no internet), ``maps.offline`` inlines them into offline maps, and the wheel ships them: run
this before building it (``make assets`` and ``make wheel`` do).

Usage: ``python maps/assets/vendor.py`` (needs node and npm).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"


def main() -> int:
    pinned = json.loads((HERE / "package.json").read_text(encoding="utf-8"))["dependencies"]
    manifest = {
        name: files
        for name, files in json.loads((HERE / "manifest.json").read_text(encoding="utf-8")).items()
        if not name.startswith("_")
    }
    npm = shutil.which("npm")
    if npm is None:
        print("vendor.py: npm not found; install nodejs and npm", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="gridmap-vendor-") as tmp:
        work = Path(tmp)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(HERE / name, work / name)
        # --ignore-scripts: the packages ship built dist files; no install hook needs to run.
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=work,
            check=True,
        )
        staging = work / "vendor"
        versions = {}
        for package, files in manifest.items():
            root = work / "node_modules" / package
            installed = json.loads((root / "package.json").read_text(encoding="utf-8"))["version"]
            if installed != pinned[package]:
                print(f"vendor.py: {package} is {installed}, pinned {pinned[package]}", file=sys.stderr)
                return 1
            versions[package] = installed
            for file in files:
                target = staging / package / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / file, target)
        (staging / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")
        if VENDOR.exists():
            shutil.rmtree(VENDOR)
        shutil.copytree(staging, VENDOR)
    print(f"vendored {len(manifest)} packages into {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
