"""Copy the pre-built front-end files from node_modules into bot/static/vendor.

Run after ``npm ci`` (the Makefile does this)::

    .venv/bin/python scripts/vendor_frontend.py

Only the standard library is used. What is copied:

* ``govuk-frontend.min.css`` (rewritten so its font and image URLs point at the
  copied ``assets/`` folder next to it, instead of the site root ``/assets/``);
* ``assets/`` (fonts, favicons, images, manifests).

The web chat does not use GOV.UK Frontend's JavaScript, so no JS of it is
copied. For the supervisors' dashboard, Chart.js's self-contained UMD build
(``chart.umd.min.js``, with its licence) goes to ``bot/static/vendor/chartjs``.
The destinations are gitignored and replaced wholesale on every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIST = Path("node_modules") / "govuk-frontend" / "dist" / "govuk"
DESTINATION = Path("bot") / "static" / "vendor" / "govuk"
CSS_FILE = "govuk-frontend.min.css"
ASSETS_DIR = "assets"

# The pre-built stylesheet refers to url(/assets/...). The CSS is served from
# /static/vendor/govuk/, so make those references relative to the stylesheet.
ROOT_ASSET_URL = "url(/assets/"
RELATIVE_ASSET_URL = "url(assets/"

CHARTJS_PACKAGE = Path("node_modules") / "chart.js"
CHARTJS_DESTINATION = Path("bot") / "static" / "vendor" / "chartjs"
CHARTJS_FILES = (Path("dist") / "chart.umd.min.js", Path("LICENSE.md"))


def read_version(dist: Path) -> str:
    """The installed govuk-frontend version, from its package.json (best effort)."""
    return package_version(dist.parent.parent)


def package_version(package: Path) -> str:
    """An installed npm package's version, from its package.json (best effort)."""
    package_json = package / "package.json"
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    version = data.get("version")
    return version if isinstance(version, str) else "unknown"


def vendor(root: Path) -> Path:
    """Copy the files; returns the destination folder. Raises FileNotFoundError."""
    dist = root / PACKAGE_DIST
    css_source = dist / CSS_FILE
    assets_source = dist / ASSETS_DIR
    if not dist.is_dir():
        raise FileNotFoundError(
            f"{dist} does not exist. Install the front-end packages first: run `npm ci` in {root}."
        )
    for needed in (css_source, assets_source):
        if not needed.exists():
            raise FileNotFoundError(
                f"{needed} is missing: the installed govuk-frontend package looks "
                "incomplete. Run `npm ci` again."
            )

    destination = root / DESTINATION
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)

    css = css_source.read_text(encoding="utf-8")
    css = css.replace(ROOT_ASSET_URL, RELATIVE_ASSET_URL)
    # Drop the source map comment: the map itself is not copied.
    css = "\n".join(
        line for line in css.splitlines() if not line.startswith("/*# sourceMappingURL=")
    )
    (destination / CSS_FILE).write_text(css + "\n", encoding="utf-8")

    shutil.copytree(assets_source, destination / ASSETS_DIR)
    return destination


def vendor_chartjs(root: Path) -> Path:
    """Copy Chart.js's UMD build and licence; returns the destination folder."""
    package = root / CHARTJS_PACKAGE
    sources = [package / name for name in CHARTJS_FILES]
    for needed in sources:
        if not needed.exists():
            raise FileNotFoundError(
                f"{needed} is missing. Install the front-end packages first: "
                f"run `npm ci` in {root}."
            )
    destination = root / CHARTJS_DESTINATION
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for source in sources:
        text = source.read_text(encoding="utf-8")
        # Drop the source map comment: the map itself is not copied.
        text = "\n".join(
            line for line in text.splitlines() if not line.startswith("//# sourceMappingURL=")
        )
        (destination / source.name).write_text(text + "\n", encoding="utf-8")
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="repository root holding node_modules/ and bot/ (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        destination = vendor(root)
        charts = vendor_chartjs(root)
    except FileNotFoundError as error:
        print(f"vendor_frontend: error: {error}", file=sys.stderr)
        return 1
    version = read_version(root / PACKAGE_DIST)
    print(f"vendor_frontend: copied govuk-frontend {version} to {destination.relative_to(root)}")
    chart_version = package_version(root / CHARTJS_PACKAGE)
    print(f"vendor_frontend: copied chart.js {chart_version} to {charts.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
