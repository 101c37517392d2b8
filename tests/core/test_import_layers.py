"""Import layering: no cycle among pipeline modules, a config base that imports no feature, flat stages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.import_graph import cycles, import_graph, imported_names, module_files

REPO = Path(__file__).resolve().parents[2]
PRINT_LOADED = "import sys, pipeline.config; print(*sorted(m for m in sys.modules if m.startswith('pipeline')))"


def test_no_import_cycle_among_pipeline_modules():
    found = cycles(import_graph(REPO, "pipeline"))
    assert found == [], "import cycles (module- or function-level imports):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def test_the_cycle_check_sees_function_level_and_package_init_imports(tmp_path):
    """The check itself: a lazy import inside a function, and a package __init__ pulled in by a submodule import."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text("def f():\n    from pkg.feature import g\n    return g\n")
    (pkg / "feature.py").write_text("from pkg.base import f\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import impl\n")
    (pkg / "sub" / "impl.py").write_text("")
    (pkg / "sub" / "helper.py").write_text("")
    (pkg / "user.py").write_text("from pkg.sub.helper import x\n")
    (pkg / "sub" / "impl2.py").write_text("import pkg.user\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import impl, impl2\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.user"] == {"pkg.sub.helper", "pkg.sub"}  # the package __init__ runs first
    assert graph["pkg.sub.impl2"] == {"pkg.user"}  # its own package is already being imported
    assert sorted(map(sorted, (set(c) for c in cycles(graph)))) == [
        ["pkg.base", "pkg.feature"],
        ["pkg.sub", "pkg.sub.impl2", "pkg.user"],
    ]


# The base layer: pipeline.config and the two leaf helpers it is built on (strict types, a YAML loader
# that rejects repeated keys). None of them imports a feature module.
BASE_LAYER = {"pipeline.config", "pipeline.param_types", "pipeline.yaml_strict"}


def _is_module(name: str) -> bool:
    """``pipeline.x`` names a module or package (not ``pipeline.x.some_function``)."""
    path = REPO / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_config_base_imports_no_feature_module():
    for module in BASE_LAYER:
        path = REPO / (module.replace(".", "/") + ".py")
        names = {n for n in imported_names(module, path) if n.split(".")[0] == "pipeline" and _is_module(n)}
        allowed = BASE_LAYER - {module} if module == "pipeline.config" else set()
        assert names <= allowed, (module, names)
    run = subprocess.run([sys.executable, "-c", PRINT_LOADED], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert set(run.stdout.split()) == {"pipeline"} | BASE_LAYER


def test_no_stage_imports_another_stage():
    """Stages share code through the library (pipeline/), never through each other."""
    stage_modules = module_files(REPO, "stages")
    offenders = {
        stage: sorted(n for n in imported_names(stage, path) if n == "stages" or n.startswith("stages."))
        for stage, path in stage_modules.items()
    }
    assert {stage: names for stage, names in offenders.items() if names} == {}
