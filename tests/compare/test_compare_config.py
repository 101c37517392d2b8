"""The compare/autoharden params: settings are harden sections, seeds shift, overrides parse."""

from pathlib import Path

import pytest
import yaml

from pipeline.compare.config import SEED_STRIDE, CompareSection, parse_overrides, reseed
from pipeline.config import load_section

REPO = Path(__file__).resolve().parents[2]


def compare_params(tmp_path, settings) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["compare"]["settings"] = settings
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_default_comparison_covers_the_issue():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)
    assert len(compare.seeds) >= 3
    defenses = {s.harden["defense"] for s in compare.settings.values()}
    assert {"calor", "mid", "bido", "negls", "tldmi", "dpsgd", "plain_finetune"} <= defenses
    calor = {name: s.harden_section().defense_settings() for name, s in compare.settings.items()
             if s.harden["defense"] == "calor"}  # fmt: skip
    shapes = {(c.low_rank.enabled, c.low_rank.activation if c.low_rank.enabled else None,
               c.confidence_adaptation.enabled) for c in calor.values()}  # fmt: skip
    assert shapes == {(True, "tanh", True), (False, None, True), (True, "tanh", False), (True, "none", False)}


def test_every_setting_gets_the_same_epoch_budget():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)

    def epochs(tree):
        if isinstance(tree, dict):
            own = tree["epochs"] if "epochs" in tree and tree.get("enabled", True) else 0
            return own + sum(epochs(v) for k, v in tree.items() if isinstance(v, dict) and v.get("enabled", True))
        return 0

    budgets = {name: epochs(s.harden_section().model_dump()) for name, s in compare.settings.items()}
    assert set(budgets.values()) == {compare.finetune.epochs}, budgets


def test_reseed_shifts_every_seed_and_copies():
    raw = {"calor": {"low_rank": {"train": {"seed": 2, "epochs": 3}}}, "noise_seed": 1, "other": [{"seed": 5}]}
    out = reseed(raw, 2)
    assert out["calor"]["low_rank"]["train"] == {"seed": 2 + 2 * SEED_STRIDE, "epochs": 3}
    assert out["noise_seed"] == 1 + 2 * SEED_STRIDE and out["other"][0]["seed"] == 5 + 2 * SEED_STRIDE
    assert raw["calor"]["low_rank"]["train"]["seed"] == 2  # the input is untouched
    assert reseed(raw, 0) == raw


def test_seeds_give_different_training_seeds():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)
    seeds = {compare.settings["calor"].harden_section(s).defense_settings().low_rank.train.seed for s in (0, 1, 2)}
    assert len(seeds) == 3


def test_overrides_parse_as_yaml_and_nest():
    assert parse_overrides(["calor.low_rank.rank=5", "calor.confidence_adaptation.b=8.0"]) == {
        "calor": {"low_rank": {"rank": 5}, "confidence_adaptation": {"b": 8.0}}
    }
    with pytest.raises(ValueError, match="dotted.key=value"):
        parse_overrides(["calor.low_rank.rank"])


def test_override_reaches_the_defense_settings():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)
    section = compare.settings["calor"].harden_section(0, parse_overrides(["calor.low_rank.rank=3"]))
    assert section.defense_settings().low_rank.rank == 3


def test_baseline_is_a_reserved_setting_name(tmp_path):
    path = compare_params(tmp_path, {"baseline": {"label": "x", "harden": {"defense": "plain_finetune"}}})
    with pytest.raises(ValueError, match="baseline.*reserved"):
        load_section("compare", path, CompareSection)


def test_bad_setting_names_the_setting_and_key(tmp_path):
    bad = {"label": "bad", "harden": {"defense": "mid", "mid": {"beta": -1, "train": {"epochs": 1}}}}
    path = compare_params(tmp_path, {"weird": bad})
    with pytest.raises(ValueError, match=r"settings\.weird\.harden(.|\n)*harden\.mid\.beta"):
        load_section("compare", path, CompareSection)


def test_unknown_defense_is_named(tmp_path):
    path = compare_params(tmp_path, {"x": {"label": "x", "harden": {"defense": "magic"}}})
    with pytest.raises(ValueError, match="magic"):
        load_section("compare", path, CompareSection)


def test_attack_overlay_and_single_seed():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)
    attack = yaml.safe_load((REPO / "params.yaml").read_text())["attack"]
    raw = compare.attack_raw(attack, 2)
    assert raw["seeds"] == [2]
    assert raw["budget"]["restarts"] == compare.attack["budget"]["restarts"]
    assert raw["budget"]["steps"] == attack["budget"]["steps"] and raw["suite"] == attack["suite"]


def test_override_of_another_defense_is_refused():
    compare = load_section("compare", REPO / "params.yaml", CompareSection)
    with pytest.raises(ValueError, match=r"\['calor'\] does not apply.*'mid'"):
        compare.settings["mid"].harden_section(0, parse_overrides(["calor.low_rank.rank=3"]))


def test_the_compare_overlay_gives_every_suite_entry_a_runnable_budget():
    """A budget is checked only when an attack starts; an overlay that breaks one entry must fail here,
    not after a row's GANs have trained."""
    from pipeline.attacks.base import AttackBudget
    from pipeline.config import read_params
    from pipeline.suite import AttackSection
    from pipeline.target_gan import TargetGANSection

    params = read_params(REPO / "params.yaml")
    compare = CompareSection.model_validate(params["compare"])
    attack = AttackSection.model_validate(compare.attack_raw(params["attack"], 0))
    for name in attack.suite:
        AttackBudget(**attack.entry_budget(name).model_dump())  # raises on e.g. samples > candidates
    gans = TargetGANSection.model_validate(compare.target_gan_raw(params["target_gan"]))
    assert gans.plgmi.iterations == params["compare"]["target_gan"]["plgmi"]["iterations"]
    assert gans.plgmi.top_k == params["target_gan"]["plgmi"]["top_k"]  # the overlay keeps what it does not set
