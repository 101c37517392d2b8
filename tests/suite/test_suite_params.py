"""The attack section of params.yaml: bad values are refused with the key's name."""

from pathlib import Path

import pytest
import yaml

from pipeline.config import load_section
from pipeline.defenses import DefenseKnowledge
from pipeline.defenses.calor import AUTHORS_TARGET_CONFIDENCE
from pipeline.suite import AttackSection, SuiteEntry, build_attack, run_suite

REPO = Path(__file__).resolve().parents[2]


def attack_params(tmp_path, **changes) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["attack"].update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_default_attack_section_is_valid():
    cfg = load_section("attack", REPO / "params.yaml", AttackSection)
    assert len(cfg.seeds) >= 3
    assert {"generic", "plgmi", "kedmi"} <= cfg.prior_kinds()  # prior-free and prior-based attacks together
    assert {"pixel", "deepinversion"} <= {entry.attack for entry in cfg.suite.values()}


def test_unknown_attack_is_named(tmp_path):
    path = attack_params(tmp_path, suite={"x": {"attack": "telepathy"}})
    with pytest.raises(ValueError, match=r"attack\.suite\.x\.attack: .*unknown attack 'telepathy'"):
        load_section("attack", path, AttackSection)


def test_zero_budget_is_named(tmp_path):
    path = attack_params(tmp_path, budget={"steps": 0, "restarts": 8, "samples_per_class": 4})
    with pytest.raises(ValueError, match=r"attack\.budget\.steps"):
        load_section("attack", path, AttackSection)


def test_an_entry_budget_the_attacks_refuse_is_named_when_params_load(tmp_path):
    suite = {"ok": {"attack": "pixel"}, "x": {"attack": "pixel", "budget": {"samples_per_class": 30}}}
    path = attack_params(tmp_path, suite=suite)  # the suite's 20 restarts cannot keep 30 samples
    with pytest.raises(ValueError, match=r"suite\.x: invalid AttackBudget: samples_per_class \(30\) must be <="):
        load_section("attack", path, AttackSection)


def test_bad_attack_params_are_refused_when_params_load(tmp_path):
    path = attack_params(tmp_path, suite={"x": {"attack": "gmi", "params": {"lr": -1.0}}})
    with pytest.raises(ValueError, match=r"attack\.suite\.x: .*params: .*lr must be > 0"):
        load_section("attack", path, AttackSection)


def test_unknown_loss_is_named_when_the_entry_loads():
    with pytest.raises(ValueError, match="identity_loss"):
        SuiteEntry(attack="gmi", params={"identity_loss": "hinge"})


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("gmi", "target_confidence is only used by identity_loss='confidence_aware'"),  # logit loss
        ("brep", r"has no parameter\(s\) \['target_confidence'\]"),  # label-only, nothing to aim at
    ],
)
def test_an_adaptive_entry_that_cannot_take_what_a_defense_declares_is_refused_at_load(tmp_path, attack, message):
    """Against CALoR it would fail mid-suite, after the attacks before it ran; against the baseline never."""
    path = attack_params(tmp_path, suite={"x": {"attack": attack, "adapt_to_defense": True}})
    with pytest.raises(ValueError, match=rf"attack\.suite\.x: .*adapt_to_defense is true.*{message}"):
        load_section("attack", path, AttackSection)


def test_only_adaptive_entries_get_what_the_defense_declares():
    knowledge = DefenseKnowledge(target_confidence=0.7)
    adaptive = SuiteEntry(attack="gmi_confidence", adapt_to_defense=True)
    fixed = SuiteEntry(attack="gmi_confidence")
    assert build_attack(adaptive, knowledge).target_confidence == 0.7
    assert build_attack(fixed, knowledge).target_confidence == AUTHORS_TARGET_CONFIDENCE
    assert build_attack(adaptive, DefenseKnowledge()).target_confidence == AUTHORS_TARGET_CONFIDENCE


def test_class_outside_the_private_set_is_named(tmp_path):
    from pipeline.models import ModelConfig, create_model

    cfg = load_section("attack", attack_params(tmp_path, classes=[3, 12]), AttackSection)
    model = create_model(ModelConfig(arch="convnet", num_classes=10, width=8))
    with pytest.raises(ValueError, match=r"attack\.classes: \[12\]"):
        run_suite(model, model, {}, None, None, cfg, DefenseKnowledge())


def test_the_smoke_profile_runs_every_suite_entry_at_the_smoke_budget():
    """Entries with their own budget in params.yaml must be overridden too, or the e2e test runs full attacks."""
    from pipeline.config import deep_merge, read_params

    merged = deep_merge(read_params(REPO / "params.yaml"), read_params(REPO / "profiles" / "smoke.yaml"))
    cfg = AttackSection.model_validate(merged["attack"])
    limit = cfg.budget.steps * cfg.budget.restarts * cfg.budget.samples_per_class
    budgets = {name: cfg.entry_budget(name) for name in cfg.suite}
    too_big = [name for name, b in budgets.items() if b.steps * b.restarts * b.samples_per_class > limit]
    assert too_big == []


def test_an_entry_budget_replaces_only_the_fields_it_sets(tmp_path):
    """PLG-MI's own step count must not shield it from an overlay of the suite's restarts (compare)."""
    raw = {
        "seeds": [0], "budget": {"steps": 60, "restarts": 12, "samples_per_class": 10},
        "suite": {"plgmi": {"attack": "plgmi", "budget": {"steps": 120}}, "pixel": {"attack": "pixel"}},
    }  # fmt: skip
    cfg = AttackSection.model_validate(raw)
    assert cfg.entry_budget("plgmi").model_dump() == {"steps": 120, "restarts": 12, "samples_per_class": 10}
    assert cfg.entry_budget("pixel") == cfg.budget


@pytest.mark.parametrize(
    ("classes", "expected"), [(None, [0, 1, 2, 3, 4]), (3, [0, 1, 2]), ([4, 1], [4, 1]), (5, [0, 1, 2, 3, 4])]
)
def test_attacked_classes_every_a_count_or_a_list(tmp_path, classes, expected):
    cfg = load_section("attack", attack_params(tmp_path, classes=classes), AttackSection)
    assert cfg.attacked_classes(5) == expected


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (6, r"attack.classes: 6 classes asked for, the target has 5"),
        ([1, 7], r"attack.classes: \[7\] are not private classes of the target \(0..4\)"),
    ],
)
def test_attacked_classes_outside_the_target_are_named(tmp_path, classes, message):
    cfg = load_section("attack", attack_params(tmp_path, classes=classes), AttackSection)
    with pytest.raises(ValueError, match=message):
        cfg.attacked_classes(5)


@pytest.mark.parametrize("classes", [0, True, "300"])
def test_a_class_count_must_be_a_positive_integer(tmp_path, classes):
    with pytest.raises(ValueError, match=r"attack\.classes"):
        load_section("attack", attack_params(tmp_path, classes=classes), AttackSection)


def test_work_sharing_is_runs_by_default_and_an_unknown_mode_is_named(tmp_path):
    assert load_section("attack", REPO / "params.yaml", AttackSection).shard == "runs"
    assert load_section("attack", attack_params(tmp_path, shard="classes"), AttackSection).shard == "classes"
    with pytest.raises(ValueError, match=r"attack\.shard: .*'runs' or 'classes'"):
        load_section("attack", attack_params(tmp_path, shard="identities"), AttackSection)
