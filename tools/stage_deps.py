"""Every DVC stage's code deps, derived from the modules its command imports.

``python -m tools.stage_deps --write`` rewrites the code part (``stages/…``, ``pipeline/…``) of
each stage's ``deps`` in every pipeline file, keeping data deps and comments where they are;
``--check`` (what the test runs) exits 1 and names each stage whose listed deps do not cover
what it imports. The closure is static (``tools.import_graph``): every import statement anywhere
in a module counts, and so does a string that names a module (a lazy import table), because a
stage runs whatever its imports run. A folder is listed instead of its files when the stage
imports every module in it. An empty file (a bare package ``__init__.py``) runs nothing and is left
out (DVC warns about empty deps); the day it gets code, the check asks for it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.import_graph import import_graph, module_files

REPO = Path(__file__).resolve().parents[1]
PIPELINE_FILES = ("dvc.yaml", "compare/dvc.yaml", "autoharden/dvc.yaml", "release/dvc.yaml")
CODE_PACKAGES = ("stages", "pipeline")
_MODULE_IN_CMD = re.compile(r"python\s+-m\s+([\w.]+)")


@dataclass(frozen=True)
class StageDeps:
    """One stage's listed deps and the code files its command imports."""

    pipeline_file: str
    stage: str
    module: str
    listed: tuple[str, ...]
    imported_files: tuple[str, ...]

    def uncovered(self) -> list[str]:
        """Imported files that no listed dep (the file itself or a folder above it) covers."""
        return [f for f in self.imported_files if not any(_covers(dep, f) for dep in self.listed)]


def _covers(dep: str, path: str) -> bool:
    dep = dep.rstrip("/")
    return path == dep or path.startswith(dep + "/")


def _is_code(dep: str) -> bool:
    return any(_covers(package, dep) for package in CODE_PACKAGES)


class CodeGraph:
    """The repository's code packages: module files and the transitive imports of a module."""

    def __init__(self, root: Path = REPO) -> None:
        self.root = root
        self.files = {
            m: p.relative_to(root).as_posix() for pkg in CODE_PACKAGES for m, p in module_files(root, pkg).items()
        }
        self.graph = import_graph(root, *CODE_PACKAGES, string_references=True)
        self.nonempty = {f for f in self.files.values() if (root / f).stat().st_size > 0}

    def closure(self, module: str) -> set[str]:
        """``module``, its packages' ``__init__`` files and what they import, transitively; empty files left out."""
        if module not in self.files:
            raise ValueError(f"no module {module!r} under {', '.join(CODE_PACKAGES)} in {self.root}")
        parts = module.split(".")
        todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        seen: set[str] = set()
        while todo:
            current = todo.pop()
            if current in seen or current not in self.files:
                continue
            seen.add(current)
            todo.extend(self.graph.get(current, ()))
        return {self.files[m] for m in seen} & self.nonempty

    def minimal_deps(self, files: Iterable[str]) -> list[str]:
        """The files, with each folder whose every module is among them listed as the folder."""
        files = set(files)
        deps: set[str] = set()
        for path in files:
            folder = path
            chosen = path
            while "/" in folder:
                folder = folder.rsplit("/", 1)[0]
                if folder in CODE_PACKAGES:  # a whole package root is never one dep
                    break
                if {f for f in self.nonempty if _covers(folder, f)} <= files:
                    chosen = folder
            deps.add(chosen)
        return sorted(deps, key=lambda d: (not d.startswith("stages"), d))


def _stage_bodies(pipeline: dict) -> Iterable[tuple[str, dict]]:
    for name, stage in pipeline.get("stages", {}).items():
        yield name, stage.get("do", stage)


def stage_deps(pipeline_file: str, code: CodeGraph, pipelines_root: Path | None = None) -> list[StageDeps]:
    """Every stage of ``pipeline_file`` (under ``pipelines_root``, default the code's root) that runs our code."""
    path = (pipelines_root or code.root) / pipeline_file
    try:
        pipeline = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    found = []
    for name, body in _stage_bodies(pipeline):
        match = _MODULE_IN_CMD.search(str(body.get("cmd", "")))
        if not match or match.group(1).split(".")[0] not in CODE_PACKAGES:
            continue
        listed = tuple(str(d) for d in body.get("deps", []) or [])
        found.append(
            StageDeps(pipeline_file, name, match.group(1), listed, tuple(sorted(code.closure(match.group(1)))))
        )
    return found


def rewrite_code_deps(text: str, wanted: dict[str, list[str]]) -> str:
    """``text`` with each named stage's code deps replaced by ``wanted[stage]``, all else kept.

    Line-based, so comments and layout survive: the wanted list opens the stage's ``deps:``
    list, the old code dep lines go, data deps and comments stay where they were.
    """
    out: list[str] = []
    stage = None
    in_stages = False
    deps_indent = None
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if stripped and not stripped.startswith("#"):
            if indent == 0:
                in_stages, stage = stripped == "stages:", None
            elif in_stages and indent == 2 and stripped.endswith(":"):
                stage = stripped[:-1]
            if deps_indent is not None and (
                indent < deps_indent or indent == deps_indent and not stripped.startswith("- ")
            ):
                deps_indent = None
            if stage in wanted and stripped == "deps:":
                deps_indent = indent + 2
                out.append(line)
                out.extend(f"{' ' * deps_indent}- {dep}\n" for dep in wanted[stage])
                continue
            if deps_indent is not None and stripped.startswith("- ") and _is_code(stripped[2:].strip()):
                continue
        out.append(line)
    return "".join(out)


def check(code: CodeGraph, pipelines_root: Path | None = None) -> list[str]:
    """One line per stage whose deps miss a file it imports (empty: every stage is covered)."""
    problems = []
    for pipeline_file in PIPELINE_FILES:
        for entry in stage_deps(pipeline_file, code, pipelines_root):
            missing = entry.uncovered()
            if missing:
                problems.append(f"{pipeline_file}: stage {entry.stage!r} ({entry.module}) imports {', '.join(missing)}")
    return problems


def written(pipeline_file: str, code: CodeGraph) -> tuple[str, str]:
    """``pipeline_file``'s text now and with its code deps rewritten."""
    wanted = {e.stage: code.minimal_deps(e.imported_files) for e in stage_deps(pipeline_file, code)}
    text = (code.root / pipeline_file).read_text(encoding="utf-8")
    return text, rewrite_code_deps(text, wanted)


def write(code: CodeGraph) -> list[str]:
    """Rewrite every pipeline file's code deps; the files that changed."""
    changed = []
    for pipeline_file in PIPELINE_FILES:
        path = code.root / pipeline_file
        text, new = written(pipeline_file, code)
        if new != text:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(path)
            changed.append(pipeline_file)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a stage's deps miss a module it imports")
    mode.add_argument("--write", action="store_true", help="rewrite the code deps of every stage")
    args = parser.parse_args(argv)
    code = CodeGraph()
    if args.write:
        for changed in write(code):
            print(f"rewrote {changed}")
    problems = check(code)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
