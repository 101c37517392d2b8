"""Class sharding: two gloo ranks, each on its block of the classes, reconstruct what one process does.

Every registered attack family runs once in one process and once over two ranks (``ClassShard``);
the gathered images, scores, histories and info must match, each rank must have run the target on
its own rows only, and both ranks must hold the same whole result.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pipeline.attacks import AttackBudget, LabelOnlyTarget, WhiteBoxTarget, create_attack
from pipeline.attacks.base import Access
from pipeline.attacks.registry import ATTACKS
from pipeline.attacks.sharding import ClassShard
from tests.attacks import toy
from tests.target_gan import toy_gan

WORLD = 2
CLASSES = [0, 1, 2, 3]  # 2 classes per rank
BUDGET = AttackBudget(steps=6, restarts=3, samples_per_class=2)
# One per code path: pixel space, BN statistics across ranks, generic GAN (+ anchors, + BPDA), the two
# target-specific GANs (+ anchors), label-only.
ATTACKS_UNDER_TEST = ["pixel", "deepinversion", "gmi", "gmi_features", "gmi_bpda", "plgmi", "plgmi_features",
                      "kedmi", "kedmi_features", "brep"]  # fmt: skip


def _setup():
    images, labels = toy.toy_images(30, seed=0)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=True), images, labels, 30, seed=3)
    priors = {"generic": toy.untrained_prior(0), "plgmi": toy_gan.template_conditional_prior(),
              "kedmi": toy_gan.template_kedmi_prior()}  # fmt: skip
    return images, target, priors


def _attack(name: str, shard: ClassShard) -> dict:
    images, target, priors = _setup()
    cls = ATTACKS.get(name).cls
    access = WhiteBoxTarget if cls.requires is Access.WHITE_BOX else LabelOnlyTarget
    wrapped = access(target)
    target_rows: set[int] = set()  # the batch sizes the target (the wrapper's frozen copy) is called with
    handle = wrapped._model.register_forward_pre_hook(lambda _m, args: target_rows.add(len(args[0])))
    result = create_attack(name).run(
        wrapped, CLASSES, BUDGET, seed=5, generator=priors.get(cls.prior_kind), public_images=images, shard=shard
    )
    handle.remove()
    return {"images": result.images, "labels": result.labels, "scores": result.scores,
            "history": result.history, "info": result.info, "target_rows": sorted(target_rows)}  # fmt: skip


def _worker(rank: int, rendezvous: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    shard = ClassShard.across_ranks()
    torch.save({name: _attack(name, shard) for name in ATTACKS_UNDER_TEST}, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def sharded_and_single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shard")
    out = tmp / "attacks.pt"
    mp.spawn(_worker, args=(str(tmp / "rendezvous"), str(out)), nprocs=WORLD, join=True)
    ranks = [torch.load(f"{out}.{rank}", weights_only=False) for rank in range(WORLD)]
    single = {name: _attack(name, ClassShard()) for name in ATTACKS_UNDER_TEST}
    return ranks, single


def _close_info(got: dict, want: dict, name: str) -> None:
    assert got.keys() == want.keys(), name
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-5), f"{name}: info[{key}]"
        else:
            assert got[key] == value, f"{name}: info[{key}]"


@pytest.mark.parametrize("name", ATTACKS_UNDER_TEST)
def test_two_ranks_reconstruct_what_one_process_reconstructs(sharded_and_single, name):
    ranks, single = sharded_and_single
    want, got = single[name], ranks[0][name]
    assert torch.equal(got["labels"], want["labels"])  # class-major, all classes, in order
    torch.testing.assert_close(got["images"], want["images"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["scores"], want["scores"], rtol=1e-4, atol=1e-6)
    assert got["history"] == pytest.approx(want["history"], rel=1e-4, abs=1e-6)
    _close_info(got["info"], want["info"], name)
    other = ranks[1][name]
    for key in ("images", "labels", "scores"):  # every rank holds the whole result
        assert torch.equal(other[key], got[key]), key
    assert other["history"] == got["history"]


@pytest.mark.parametrize("name", ATTACKS_UNDER_TEST)
def test_each_rank_runs_the_target_on_its_own_rows(sharded_and_single, name):
    """The whole batch is 4 classes × 3 candidates = 12 rows; each rank optimises and scores 6 of them.

    BREP also labels its half of each round's shared candidates (``init_batch`` 256 → 128).
    """
    ranks, single = sharded_and_single
    whole = len(CLASSES) * BUDGET.restarts
    assert whole in single[name]["target_rows"]
    for rank in range(WORLD):
        rows = ranks[rank][name]["target_rows"]
        assert whole not in rows and whole // WORLD in rows, (rank, rows)


def test_blocks_partition_the_classes_in_order():
    blocks = [ClassShard(3, r).block(7, 4) for r in range(3)]
    assert [range(7)[b.classes] for b in blocks] == [range(0, 3), range(3, 5), range(5, 7)]
    assert [(b.rows.start, b.rows.stop) for b in blocks] == [(0, 12), (12, 20), (20, 28)]
    assert {b.total for b in blocks} == {28} and sum(b.count for b in blocks) == 28


def test_fewer_classes_than_ranks_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match=r"2 attacked classes give some of the 3 ranks none.*attack.shard: runs"):
        ClassShard(3, 0).block(2, 5)


def test_a_rank_draws_the_whole_batch_and_keeps_its_rows():
    """Its rows are the single process's, and its random stream goes on where the single process's does."""
    torch.manual_seed(0)
    whole, next_whole = torch.randn(12, 5), torch.randn(3)
    torch.manual_seed(0)
    mine, next_mine = ClassShard(2, 1).block(4, 3).randn(5), torch.randn(3)
    assert torch.equal(mine, whole[6:]) and torch.equal(next_mine, next_whole)


def test_alone_every_helper_is_the_single_process_computation():
    block = ClassShard().block(4, 3)
    x = torch.randn(12, 2)
    mean = x.mean()
    assert block.take(x) is x and block.part(mean) is mean
    assert block.mean(x) == float(x.mean()) and block.loss_value(x.sum()) == x.sum().item()
    assert ClassShard().everywhere(lambda rows: rows.sum(1), x).equal(x.sum(1))
