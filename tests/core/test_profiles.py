"""Profiles are `dvc exp run --set-param` overrides: params.yaml keeps its comments, the result is the deep merge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import deep_merge, read_params
from pipeline.driver import main_command
from pipeline.profiles import apply_overlay, profile_overlay, set_param_args, set_param_overrides

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))


def comments(text: str) -> list[str]:
    return [line[line.index("#") :].strip() for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize(
    "names",
    [[name] for name in PROFILES] + [["smoke", "smoke_release"], ["celeba64", "faces_smoke"], ["celeba64", "facescrub"]],
    ids=str,
)
def test_overrides_give_defaults_deep_merged_with_the_profile_and_keep_comments(tmp_path, names):
    out = tmp_path / "params.yaml"
    before = (REPO / "params.yaml").read_text()
    overrides = apply_overlay(REPO / "params.yaml", profile_overlay(names, REPO / "profiles"), out=out)
    assert (REPO / "params.yaml").read_text() == before  # the defaults are never rewritten
    expected = read_params(REPO / "params.yaml")
    for name in names:
        expected = deep_merge(expected, yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text()))
    assert read_params(out) == expected
    assert comments(out.read_text()) == comments(before)
    assert all(o.count("=") >= 1 and not o.startswith("-") for o in overrides)


def test_overrides_list_only_changed_leaves_and_mark_new_keys():
    base = {"a": {"x": 1, "y": [1, 2], "z": "adam"}, "b": None}
    overlay = {"a": {"x": 1, "y": [3], "z": "none", "w": {"k": "1"}}, "b": {"c": True}}
    assert set_param_overrides(overlay, base) == ["a.y=[3]", "a.z=none", "+a.w.k='1'", "b={c:true}"]


def test_override_values_that_hydra_would_misread_are_quoted(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("mlflow:\n  experiment: x   # kept\n")
    for value in ("null", "1e-3", "true", "a: b", "it's", "MID / VIB (β=0.003)", "${x}", "a\\b", "end\\", "\\'"):
        overlay = {"mlflow": {"experiment": value}}
        out = tmp_path / "out.yaml"
        apply_overlay(params, overlay, out=out)
        assert read_params(out)["mlflow"]["experiment"] == value
        assert "# kept" in out.read_text()


def test_an_unknown_profile_or_an_invalid_result_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no such profile.*smoke"):
        profile_overlay(["smoek"], REPO / "profiles")
    with pytest.raises(ValueError, match=r"params\.yaml with the overrides: invalid params\n  baseline\.train\.epochs"):
        apply_overlay(REPO / "params.yaml", {"baseline": {"train": {"epochs": 0}}})
    with pytest.raises(ValueError, match="DVC refuses the overrides"):
        apply_overlay(REPO / "params.yaml", {"baseline": {"train": {"epochs": {"a]b": 1}}}})


def test_driver_runs_dvc_repro_without_profiles_and_names_the_experiment_with_them(tmp_path, monkeypatch):
    assert main_command([], None, ["-f"]) == ["dvc", "repro", "-f"]
    with pytest.raises(SystemExit, match="--name"):
        main_command([], "x", [])
    work = project(tmp_path)
    monkeypatch.chdir(work)
    command = main_command(["smoke"], None, [])
    assert command[:4] == ["dvc", "exp", "run", "--name"] and command[4].startswith("smoke-")
    assert command[5:] == set_param_args(["smoke"])
    (work / "params.yaml").write_text((work / "params.yaml").read_text() + "\n# an edit\n")
    with pytest.raises(SystemExit, match="differs from HEAD"):
        main_command(["smoke"], None, [])
    subprocess.run(["git", "checkout", "params.yaml"], cwd=work, check=True)
    with pytest.raises(SystemExit, match="no such profile"):
        main_command(["smoek"], None, [])


def project(tmp_path: Path) -> Path:
    """A git + DVC repo with our params.yaml and profiles and one stage that copies two sections out."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(REPO / "params.yaml", work)
    shutil.copytree(REPO / "profiles", work / "profiles")
    script = (
        "import json, yaml; p = yaml.safe_load(open('params.yaml')); "
        "json.dump([p['split'], p['attack']], open('out.json', 'w'))"
    )
    stage = {"cmd": f'python -c "{script}"', "params": ["split", "attack"], "outs": ["out.json"]}
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"copy": stage}}))
    for cmd in ("git init -q", "dvc init -q", "git add -A", "git commit -qm defaults"):
        subprocess.run(cmd.split(), cwd=work, env=git_env(), check=True, capture_output=True)
    return work


def git_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}  # fmt: skip


def test_dvc_exp_run_applies_the_profile_as_a_named_experiment(tmp_path, monkeypatch):
    work = project(tmp_path)
    monkeypatch.chdir(work)
    command = main_command(["smoke", "smoke_release"], "smoke-release", [])
    defaults = (work / "params.yaml").read_text()
    subprocess.run(command, cwd=work, env=git_env(), check=True, capture_output=True)
    expected = profile_overlay(["smoke", "smoke_release"])
    expected = deep_merge(yaml.safe_load(defaults), expected)
    assert yaml.safe_load((work / "out.json").read_text()) == [expected["split"], expected["attack"]]
    assert comments((work / "params.yaml").read_text()) == comments(defaults)
    shown = subprocess.run(["dvc", "exp", "list", "--name-only"], cwd=work, env=git_env(), check=True,
                           capture_output=True, text=True)  # fmt: skip
    assert shown.stdout.split() == ["smoke-release"]
    committed = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=work, capture_output=True, text=True)
    assert committed.stdout == defaults  # the defaults stay what HEAD holds
