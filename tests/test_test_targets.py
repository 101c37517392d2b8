"""`make test` runs every test (what CI runs); `make test-fast` skips the end-to-end pipelines and load tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW_MODULES = [
    "tests/e2e/test_pipeline_e2e.py",
    "tests/e2e/test_release_e2e.py",
    "tests/serve/test_liveness_under_load.py",
]
SLOW_TESTS = {"tests/serve/test_server_e2e.py": ["test_loopback_load_16_clients_200_requests_each"]}


def recipe(target: str) -> str:
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match, f"Makefile has no {target!r} target"
    return match.group(1)


def test_make_test_runs_everything_and_make_test_fast_skips_slow():
    assert "-m pytest -q;" in recipe("test")  # no marker filter: slow tests included
    assert recipe("test-fast").rstrip().endswith('-m pytest -q -m "not slow"')


def _is_slow_mark(node: ast.expr) -> bool:
    return ast.unparse(node) == "pytest.mark.slow"


def test_end_to_end_and_load_modules_are_marked_slow():
    for path in SLOW_MODULES:
        tree = ast.parse((ROOT / path).read_text())
        marks = [n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "pytestmark"]
        assert any(_is_slow_mark(mark) for mark in marks), f"{path} lacks pytestmark = pytest.mark.slow"


def test_the_big_load_test_is_marked_slow():
    for path, names in SLOW_TESTS.items():
        tree = ast.parse((ROOT / path).read_text())
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        for name in names:
            assert any(_is_slow_mark(d) for d in functions[name].decorator_list), f"{path}::{name} is not slow"
