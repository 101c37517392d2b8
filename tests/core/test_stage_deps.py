"""Every DVC stage lists the code it runs: deps derived from imports (tools/stage_deps.py), enforced here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.stage_deps import PIPELINE_FILES, CodeGraph, check, rewrite_code_deps, stage_deps, written

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def code() -> CodeGraph:
    return CodeGraph(REPO)


def test_every_stage_in_every_pipeline_file_covers_what_it_imports(code):
    assert check(code) == [], "run `make deps` (python -m tools.stage_deps --write)"


@pytest.mark.parametrize("pipeline_file", PIPELINE_FILES)
def test_the_checked_in_code_deps_are_what_the_tool_writes(code, pipeline_file):
    """Nothing stale either: a dep the stage no longer imports would re-run it for nothing."""
    text, new = written(pipeline_file, code)
    assert new == text, f"{pipeline_file}: code deps out of date; run `make deps`"


@pytest.mark.parametrize("pipeline_file", PIPELINE_FILES)
def test_removing_any_code_dep_of_any_stage_is_caught(code, tmp_path, pipeline_file):
    entries = stage_deps(pipeline_file, code)
    assert entries, f"{pipeline_file} has no stage that runs our code"
    original = (REPO / pipeline_file).read_text(encoding="utf-8")
    removed = 0
    for entry in entries:
        for dep in entry.listed:
            if not dep.startswith(("stages/", "pipeline/")):
                continue
            others = [d for d in code.minimal_deps(entry.imported_files) if d != dep]
            mutated = tmp_path / pipeline_file
            mutated.parent.mkdir(parents=True, exist_ok=True)
            mutated.write_text(rewrite_code_deps(original, {entry.stage: others}), encoding="utf-8")
            for other in PIPELINE_FILES:
                if other != pipeline_file:
                    (tmp_path / other).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / other, tmp_path / other)
            problems = check(code, tmp_path)
            assert len(problems) == 1 and f"stage {entry.stage!r}" in problems[0], (dep, problems)
            removed += 1
    assert removed >= len(entries)


def test_training_stages_depend_on_the_augmentation_they_run(code):
    """The review's probe: `pipeline/augment.py` was missing, so editing flip_shift re-ran nothing."""
    stages = {e.stage: e for e in stage_deps("dvc.yaml", code)}
    for name in ("train_baseline", "train_judge", "harden"):
        assert "pipeline/augment.py" in stages[name].imported_files
        assert "pipeline/augment.py" in stages[name].listed


def test_the_closure_follows_lazy_import_tables_and_package_inits(tmp_path):
    for package in ("stages", "pipeline"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "lazy").mkdir()
    (tmp_path / "pipeline" / "lazy" / "__init__.py").write_text(
        'import importlib\n_EXPORTS = {"thing": "pipeline.lazy.impl"}\n'
        "def __getattr__(name):\n    return getattr(importlib.import_module(_EXPORTS[name]), name)\n"
    )
    (tmp_path / "pipeline" / "lazy" / "impl.py").write_text("from pipeline import helper\nthing = 1\n")
    (tmp_path / "pipeline" / "helper.py").write_text('"""A docstring that says pipeline.unused is not an import."""\n')
    (tmp_path / "pipeline" / "unused.py").write_text("")
    (tmp_path / "stages" / "run.py").write_text("def main():\n    from pipeline.lazy import thing\n")
    graph = CodeGraph(tmp_path)
    assert graph.closure("stages.run") == {  # the empty package __init__ files run nothing: left out
        "stages/run.py", "pipeline/lazy/__init__.py", "pipeline/lazy/impl.py", "pipeline/helper.py",
    }  # fmt: skip
    assert graph.minimal_deps(graph.closure("stages.run")) == ["stages/run.py", "pipeline/helper.py", "pipeline/lazy"]
    (tmp_path / "pipeline" / "__init__.py").write_text('"""Now it has a docstring: a dep."""\n')
    assert "pipeline/__init__.py" in CodeGraph(tmp_path).closure("stages.run")


def test_rewriting_keeps_comments_data_deps_and_other_stages():
    text = (
        "# header\nstages:\n  a:\n    cmd: python -m stages.a\n    deps:\n      # code first\n"
        "      - stages/a.py\n      - pipeline/old.py\n      - data/prepared\n    outs:\n      - out\n"
        "  b:\n    foreach: [1, 2]\n    do:\n      cmd: python -m stages.b\n      deps:\n        - pipeline/x.py\n"
        "        - ${item}\n"
    )
    new = rewrite_code_deps(text, {"a": ["stages/a.py", "pipeline/new.py"], "b": ["stages/b.py"]})
    assert new.startswith("# header\n") and "# code first" in new
    parsed = yaml.safe_load(new)["stages"]
    assert parsed["a"]["deps"] == ["stages/a.py", "pipeline/new.py", "data/prepared"]
    assert parsed["a"]["outs"] == ["out"]
    assert parsed["b"]["do"]["deps"] == ["stages/b.py", "${item}"]
    assert rewrite_code_deps(new, {"a": ["stages/a.py", "pipeline/new.py"], "b": ["stages/b.py"]}) == new


def test_the_command_line_check_exits_nonzero_and_names_the_stage(tmp_path):
    """What a developer sees: ``python -m tools.stage_deps --check`` on a tree with a dep removed."""
    for part in ("pipeline", "stages", "tools"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    for pipeline_file in PIPELINE_FILES:
        (tmp_path / pipeline_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / pipeline_file, tmp_path / pipeline_file)
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("      - pipeline/augment.py\n", "", 1))
    run = subprocess.run(
        [sys.executable, "-m", "tools.stage_deps", "--check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "dvc.yaml: stage 'train_baseline'" in run.stderr and "pipeline/augment.py" in run.stderr
