"""Model-inversion attacks behind one interface (see ``base``) and one registry.

Importing the package imports every implementation, so ``list_attacks()`` is always complete.
"""

from pipeline.attacks import brep, gmi, kedmi, pixel, plgmi  # noqa: F401  (registration side effects)
from pipeline.attacks.base import (
    Access,
    Attack,
    AttackBudget,
    AttackResult,
    LabelOnlyTarget,
    WhiteBoxTarget,
)
from pipeline.attacks.bpda import BPDATanh, with_bpda_tanh
from pipeline.attacks.brep import BREPAttack
from pipeline.attacks.gmi import GMIAttack
from pipeline.attacks.kedmi import KEDMIAttack
from pipeline.attacks.losses import create_identity_loss, list_identity_losses
from pipeline.attacks.pixel import PixelAttack
from pipeline.attacks.plgmi import PLGMIAttack
from pipeline.attacks.registry import (
    attack_defaults,
    create_attack,
    list_attacks,
    recommended_budget,
    register_attack,
)

__all__ = [
    "Access",
    "Attack",
    "AttackBudget",
    "AttackResult",
    "BPDATanh",
    "BREPAttack",
    "GMIAttack",
    "KEDMIAttack",
    "LabelOnlyTarget",
    "PLGMIAttack",
    "PixelAttack",
    "WhiteBoxTarget",
    "attack_defaults",
    "create_attack",
    "create_identity_loss",
    "list_attacks",
    "list_identity_losses",
    "recommended_budget",
    "register_attack",
    "with_bpda_tanh",
]
