"""End to end: a copy of the repo, small IDX files, the smoke profile, the real `dvc repro` + MLflow.

This is the only test that runs DVC and the stages as subprocesses, exactly as `make repro` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.smoke_repo import build_smoke_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work, env = build_smoke_repo(tmp_path_factory.mktemp("e2e"), ["smoke"])
    run([sys.executable, "-m", "pipeline.driver"], work, env)
    return work, env


def expected_stages(work: Path) -> set[str]:
    """dvc.yaml's stages with foreach groups expanded to ``name@key``."""
    names = set()
    for name, stage in yaml.safe_load((work / "dvc.yaml").read_text())["stages"].items():
        names |= {f"{name}@{key}" for key in stage["foreach"]} if "foreach" in stage else {name}
    return names


def test_every_stage_ran_and_is_locked(smoke_repo):
    work, _ = smoke_repo
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    assert set(lock["stages"]) == expected_stages(work)


def test_outputs_and_metrics(smoke_repo):
    work, _ = smoke_repo
    manifest = json.loads((work / "data/prepared/manifest.json").read_text())
    assert manifest["mode"] == "class_disjoint"
    assert {k: v["count"] for k, v in manifest["parts"].items()} == {
        "private_train": 150, "private_test": 50, "public": 150, "judge_train": 400, "judge_test": 100,
    }  # fmt: skip
    for name, classes in (("train_baseline", 5), ("train_judge", 10), ("harden", 5), ("floor", 5)):
        report = json.loads((work / "reports" / f"{name}.json").read_text())
        assert 0.0 <= report["natural_accuracy"] <= 1.0
        assert len(report["per_class_accuracy"]) == classes
    harden = json.loads((work / "reports/harden.json").read_text())
    for key in ("natural_accuracy", "baseline_natural_accuracy", "train_mean_true_class_prob", "ece"):
        assert key in harden
    assert harden["phases"] == ["low_rank", "confidence_adaptation"]
    assert (work / "models/harden/model.pt").is_file()
    curve = json.loads((work / "reports/plots/harden.json").read_text())
    assert {row["phase"] for row in curve} == {"low_rank", "confidence_adaptation"}


def test_mlflow_has_one_child_run_per_stage_under_the_parent(smoke_repo):
    import mlflow

    work, _ = smoke_repo
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["calor-pipeline"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("mlflow.runName") == "pipeline"]
    assert len(parents) == 1
    verdict = json.loads((work / "reports/gate.json").read_text())["verdict"]
    assert parents[0].data.tags["gate.verdict"] == verdict
    assert parents[0].data.tags["release"] == ("done" if verdict == "approved" else "blocked")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(expected_stages(work))
    baseline = next(r for r in children if r.info.run_name == "train_baseline")
    assert {"git.commit", "dvc.stage", "params.hash"} <= set(baseline.data.tags)
    assert "natural_accuracy" in baseline.data.metrics
    history = mlflow.MlflowClient().get_metric_history(baseline.info.run_id, "train_baseline.train_loss")
    assert len(history) == 1  # one epoch in the smoke profile


def test_second_repro_skips_everything(smoke_repo):
    work, env = smoke_repo
    result = run(["dvc", "repro"], work, env)
    assert "Running stage" not in result.stdout
    run(["dvc", "status", "dvc.yaml", "-q"], work, env)  # exit 0 = nothing changed (release/ runs only if approved)


def test_attack_reports_grids_and_gate(smoke_repo):
    work, _ = smoke_repo
    params = yaml.safe_load((work / "params.yaml").read_text())
    suite = set(params["attack"]["suite"])
    for model in ("baseline", "hardened", "floor"):
        report = json.loads((work / "reports/attack" / f"{model}.json").read_text())
        assert set(report["attacks"]) == suite
        for row in report["attacks"].values():
            assert row["acc1"]["n"] == len(params["attack"]["seeds"])
            assert 0.0 <= row["acc1"]["mean"] <= 1.0 and row["knn_distance"]["mean"] >= 0.0
            pooled = row["acc1_pooled"]
            assert pooled["n"] == row["reconstructions_per_seed"] * len(params["attack"]["seeds"])
            assert pooled["correct"] / pooled["n"] == pytest.approx(row["acc1"]["mean"])
        grids = sorted(p.stem for p in (work / "reports/attack/grids" / model).glob("*.png"))
        assert grids == sorted(suite)
        gans = json.loads((work / "reports/target_gan" / f"{model}.json").read_text())["gans"]
        assert set(gans) == {"plgmi", "kedmi"}  # each attacked model gets its own target-specific GANs
    hardened = json.loads((work / "reports/attack/hardened.json").read_text())
    assert "target_confidence" in hardened["defense_knowledge"]  # adaptive attacks know CA's p*
    gate = json.loads((work / "reports/gate.json").read_text())
    assert gate["verdict"] in {"approved", "rejected", "inconclusive"}
    assert {c["name"] for c in gate["checks"]} >= {"baseline_leaks", "leakage_ratio", "worst_case_attack_acc1"}
    assert set(gate["attacks"]) == suite
    for row in gate["attacks"].values():  # every attack: Acc@1, its floor and the leakage, with bounds
        for stat in (row["floor_acc1"], row["hardened"]["acc1"], row["hardened"]["leakage"]):
            assert stat["lower"] <= stat["value"] <= stat["upper"]
    from pipeline.io import sha256_file

    assert gate["checkpoint_sha256"] == sha256_file(work / "models/harden/model.pt")
    assert gate["deciding_attack"] in suite


@pytest.fixture(scope="module")
def compared_repo(smoke_repo) -> tuple[Path, dict[str, str]]:
    """The comparison and the auto-harden sweep on the smoke repo: the floor and two settings (the
    public-only reference is skipped on class_disjoint), two seeds; two (r, b) grid points × two seeds."""
    work, env = smoke_repo
    params = yaml.safe_load((work / "params.yaml").read_text())
    compare = params["compare"]
    compare["seeds"] = [0, 1]
    compare["settings"] = {name: compare["settings"][name] for name in ("plain_finetune", "calor")}
    compare["settings"]["plain_finetune"]["harden"]["plain_finetune"]["train"].update(epochs=2, batch_size=64)
    for phase in ("low_rank", "confidence_adaptation"):
        compare["settings"]["calor"]["harden"]["calor"][phase]["train"].update(epochs=1, batch_size=64)
    params["autoharden"].update(ranks=[2], exponents=[2.0, 4.0], seeds=[0, 1])
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro", "compare/dvc.yaml"], work, env)
    run(["dvc", "repro", "autoharden/dvc.yaml"], work, env)
    return work, env


def test_comparison_report_matches_the_runs(compared_repo):
    work, env = compared_repo
    table = json.loads((work / "reports/comparison.json").read_text())
    assert [r["setting"] for r in table["rows"]] == ["baseline", "floor", "plain_finetune", "calor"]
    for row in table["rows"]:
        assert row["seeds"] == [0, 1] and row["natural_accuracy"]["n"] == 2
        per_setting = json.loads((work / "reports/compare" / f"{row['setting']}.json").read_text())
        assert row["worst_case_acc1"] == per_setting["summary"]["worst_case_acc1"]
        if row["kind"] not in ("baseline", "floor"):
            assert sum(row["gate_verdicts"].values()) == 2
    calor = json.loads((work / "reports/compare/calor.json").read_text())
    assert calor["seeds"][0]["attacker_knowledge"]["target_confidence"] > 0  # the adaptive attack is armed
    assert calor["seeds"][0]["defense_report"]["phases"] == ["low_rank", "confidence_adaptation"]
    markdown = (work / "reports/comparison.md").read_text()
    assert all(f"| **{name}**" in markdown for name in ("baseline", "floor", "plain_finetune", "calor"))
    for figure in table["figures"].values():
        assert (work / "reports" / figure).read_bytes()[:4] == b"\x89PNG"
    second = run(["dvc", "repro", "compare/dvc.yaml"], work, env)
    assert "Running stage" not in second.stdout


def test_dvc_plots_renders_the_tradeoff(compared_repo):
    work, env = compared_repo
    shown = json.loads(run(["dvc", "plots", "show", "--json"], work, env).stdout)["data"]
    tradeoff = [k for k in shown if k.endswith("tradeoff.json")]
    assert tradeoff, sorted(shown)
    points = shown[tradeoff[0]][0]["content"]["data"]["values"]
    assert {p["setting"] for p in points} == {"baseline", "floor", "plain_finetune", "calor"}


def test_autoharden_picks_a_grid_point_with_evidence(compared_repo):
    work, _ = compared_repo
    result = json.loads((work / "reports/autoharden.json").read_text())
    assert sorted((p["rank"], p["b"]) for p in result["grid"]) == [(2, 2.0), (2, 4.0)]
    for point in result["grid"]:
        assert point["seeds"] == [0, 1]
    if result["chosen"] is not None:
        within = [p for p in result["grid"] if p["natural_accuracy_drop"]["mean"] <= 0.03]
        assert result["chosen"]["worst_case_acc1"]["mean"] == min(p["worst_case_acc1"]["mean"] for p in within)
    assert (work / "reports/autoharden/sweep.png").is_file() and (work / "reports/autoharden.md").is_file()
