"""DVC's plots page with Vega, Vega-Lite and vega-embed inside it, so ``dvc plots show`` works offline.

DVC's own page loads those three libraries from a CDN: without internet every Vega plot stays blank.
``make install`` installs them from npm at the versions package-lock.json pins (``npm ci``) and runs
``python -m pipeline.plots_page``, which writes the page template that ``.dvc/config`` names
(``plots.html_template``); ``dvc plots show`` and ``dvc plots diff`` then fill it. The template has
DVC's ``{plot_divs}`` placeholder but not ``{scripts}``, where DVC would put its CDN ``<script src>``
tags; each library is inlined from the browser build its package publishes.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pipeline.io import atomic_write_text

LIBRARIES = ("vega", "vega-lite", "vega-embed")  # load order: vega-lite needs vega, vega-embed needs both
DVC_PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")  # DVC str.replace()s these in the page
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)

# DVC calls vegaEmbed(el, spec) without options; leave out the menu entry that opens the online Vega Editor.
_EMBED_DEFAULTS = """<script>
window.vegaEmbed = (function (embed) {
  return function (el, spec, opt) {
    return embed(el, spec, Object.assign({actions: {export: true, source: true, compiled: false, editor: false}}, opt));
  };
})(window.vegaEmbed);
</script>"""

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC plots (offline)</title>
<!-- Built by `python -m pipeline.plots_page` from npm packages {versions}; loads nothing from the network. -->
<style>
  body {{ font-family: sans-serif; margin: 16px; }}
  body > div {{ margin-bottom: 32px; }}
  img {{ max-width: 100%; }}
</style>
{libraries}
{embed_defaults}
</head>
<body>
{plot_divs}
</body>
</html>
"""


class PlotsPageError(RuntimeError):
    """The npm packages are missing, of other versions than the lock file pins, or not inlinable."""


def _locked_versions(lock_file: Path) -> dict[str, str]:
    packages = json.loads(lock_file.read_text())["packages"]
    entries = {name: packages.get(f"node_modules/{name}") for name in LIBRARIES}
    return {name: entry["version"] for name, entry in entries.items() if entry}


def inline_script(package_dir: Path) -> tuple[str, str]:
    """One package's browser build as an inline ``<script>``, plus its ``name@version``.

    The build is the file the package names for CDNs (``jsdelivr`` / ``unpkg``): a UMD bundle that
    sets a global (``vega``, ``vegaLite``, ``vegaEmbed``). ``</script`` inside it is escaped so the
    HTML parser does not end the element early; DVC's placeholders must not occur in it at all.
    """
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        raise PlotsPageError(f"{package_dir}: npm package not installed; run `make install` (it runs `npm ci`)")
    meta = json.loads(manifest.read_text())
    build = meta.get("jsdelivr") or meta.get("unpkg")
    if not build:
        raise PlotsPageError(f"{manifest}: names no browser build (jsdelivr/unpkg)")
    code = _SOURCE_MAP.sub("", (package_dir / build).read_text(encoding="utf-8"))
    found = [p for p in DVC_PLACEHOLDERS if p in code]
    if found:
        raise PlotsPageError(f"{package_dir / build} contains DVC's placeholders {found}; DVC would rewrite them")
    code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
    label = f"{meta['name']}@{meta['version']}"
    return f'<script data-package="{label}">\n{code}\n</script>', label


def build_page(node_modules: Path, lock_file: Path | None = None) -> str:
    """The page template with the three libraries inlined.

    Args:
        node_modules: where ``npm ci`` installed the packages.
        lock_file: package-lock.json; when given, installed versions must equal the locked ones.
    Returns:
        HTML with DVC's ``{plot_divs}`` and ``{refresh_tag}`` placeholders and no ``{scripts}``.
    """
    scripts, labels = zip(*(inline_script(node_modules / name) for name in LIBRARIES), strict=True)
    if lock_file is not None:
        locked = _locked_versions(lock_file)
        stale = [label for name, label in zip(LIBRARIES, labels, strict=True) if label != f"{name}@{locked.get(name)}"]
        if stale:
            raise PlotsPageError(f"installed {stale} differ from {lock_file} ({locked}); run `npm ci` (make install)")
    return _PAGE.format(
        refresh_tag="{refresh_tag}",
        plot_divs="{plot_divs}",
        versions=", ".join(labels),
        libraries="\n".join(scripts),
        embed_defaults=_EMBED_DEFAULTS,
    )


def configured_page(repo_root: Path) -> Path:
    """Where DVC looks for the page: ``plots.html_template``, relative to the ``.dvc`` directory."""
    from dvc.config import Config

    dvc_dir = Path(repo_root, ".dvc")
    configured = Config(dvc_dir=str(dvc_dir)).get("plots", {}).get("html_template")
    if not configured:
        raise PlotsPageError(f"{dvc_dir / 'config'} sets no plots.html_template")
    return Path(dvc_dir, configured).resolve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository whose page to write")
    parser.add_argument("--node-modules", type=Path, help="default: <repo>/node_modules")
    args = parser.parse_args(argv)
    node_modules = args.node_modules or args.repo / "node_modules"
    lock_file = node_modules.parent / "package-lock.json"
    try:
        page = build_page(node_modules, lock_file if lock_file.is_file() else None)
        out = configured_page(args.repo)
    except PlotsPageError as err:
        raise SystemExit(str(err)) from None
    atomic_write_text(out, page)
    print(f"plots page: {out} ({len(page) // 1024} KiB, {page.count('<script data-package=')} libraries inlined)")


if __name__ == "__main__":
    main()
