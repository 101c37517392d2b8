"""torch.distributed on CPUs (gloo): N processes train and attack as one would.

The multi-process tests spawn two real gloo ranks with ``torch.multiprocessing`` and compare what
they compute with a single process on the same data and seeds.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import pipeline.distributed as distributed
from pipeline.config import TrainConfig
from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.bido import BidoConfig
from pipeline.defenses.dpsgd import DpsgdConfig
from pipeline.distributed import (
    CrossRankBatchNorm,
    augment_rows,
    average_gradients,
    batch_mean,
    batchnorm_across_ranks,
    gather_rows,
    global_mean,
    row_counts,
    shard,
    shard_items,
    weighted_for_averaging,
)
from pipeline.models import ModelConfig, create_model
from pipeline.prior import PriorConfig, train_prior
from pipeline.seeding import seed_everything
from pipeline.target_gan import KEDMISection, PLGMISection, train_kedmi, train_plgmi
from pipeline.target_gan.plgmi import generator_rows, plgmi_augmentation
from pipeline.train import fit
from tests.attacks import toy
from tests.defenses.tiny import tiny_train
from tests.fixtures_models import tiny_data

WORLD = 2


def _as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)


@pytest.mark.parametrize("n, world", [(10, 2), (7, 3), (2, 4), (0, 2)])
def test_shards_partition_the_rows_in_order(monkeypatch, n, world):
    rows = []
    for r in range(world):
        _as_rank(monkeypatch, r, world)
        rows += list(range(n))[shard(n)]
    assert rows == list(range(n))
    sizes = [len(range(n)[shard(n)]) for r in range(world) if not _as_rank(monkeypatch, r, world)]
    assert max(sizes) - min(sizes) <= 1


def test_work_items_are_shared_round_robin_and_cover_every_item_once(monkeypatch):
    items = list("abcdefg")
    taken = []
    for r in range(3):
        _as_rank(monkeypatch, r, 3)
        taken += shard_items(items)
    assert sorted(taken) == items
    _as_rank(monkeypatch, 1, 3)
    assert shard_items(items) == ["b", "e"]


def test_single_process_is_untouched():
    """World size 1: no process group, the model's batch norms stay the plain torch ones."""
    model = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))
    before = [type(m) for m in model.modules()]
    with batchnorm_across_ranks(model, torch.device("cpu")) as same:
        assert same is model and [type(m) for m in model.modules()] == before
    assert distributed.gather_to_primary({"x": 1}) == [{"x": 1}]
    assert distributed.is_primary()


def _spawn(fn, tmp_path, *args) -> None:
    mp.spawn(fn, args=(str(tmp_path / "rendezvous"), *args), nprocs=WORLD, join=True)


def _join(rank: int, rendezvous: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)


def _batchnorm_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)
    torch.manual_seed(0)
    x = torch.randn(10, 3, 4, 4)
    mine = x[shard(len(x))].clone().requires_grad_()
    norm = nn.BatchNorm2d(3)
    with batchnorm_across_ranks(nn.Sequential(norm), torch.device("cpu")) as wrapped:
        assert isinstance(wrapped[0], CrossRankBatchNorm)
        y = wrapped(mine)
        (y * torch.arange(y.numel()).view_as(y)[: len(y)].float()).sum().backward()
    grads = [None] * WORLD
    dist.all_gather_object(grads, mine.grad)
    if rank == 0:
        torch.save({"y": y.detach(), "grad": torch.cat(grads), "mean": norm.running_mean, "var": norm.running_var}, out)
    dist.destroy_process_group()


@pytest.mark.parametrize("affine", [True, False])
def test_a_shared_batchnorm_is_the_same_layer_in_eval_mode(affine):
    """PLG-MI's conditional norms are affine=False: their None weight must survive the swap both ways."""
    old = nn.BatchNorm1d(4, affine=affine)
    old.running_mean.fill_(0.5)
    crossed = distributed._sharing(CrossRankBatchNorm, old.eval())
    back = distributed._sharing(nn.BatchNorm1d, crossed)
    x = torch.randn(6, 4)
    for layer in (crossed, back):
        assert not layer.training and layer.affine == affine
        torch.testing.assert_close(layer(x), old(x))
        assert layer.running_mean is old.running_mean  # shared, not copied
    assert back.state_dict().keys() == old.state_dict().keys()


def test_cross_rank_batchnorm_is_the_whole_batch_batchnorm(tmp_path):
    out = tmp_path / "bn.pt"
    _spawn(_batchnorm_worker, tmp_path, str(out))
    got = torch.load(out, weights_only=True)
    torch.manual_seed(0)
    x = torch.randn(10, 3, 4, 4).requires_grad_()
    norm = nn.BatchNorm2d(3)
    y = norm(x)
    weights = torch.cat([torch.arange(5 * 48).view(5, 3, 4, 4)] * 2).float()
    (y * weights).sum().backward()
    torch.testing.assert_close(got["y"], y[:5].detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got["grad"], x.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got["mean"], norm.running_mean)
    torch.testing.assert_close(got["var"], norm.running_var)


def _model() -> nn.Module:
    seed_everything(0)
    return create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))


CFG = dict(epochs=2, batch_size=20, lr=0.01, seed=0, augment="flip_shift")  # 64 rows: a ragged last batch


def _fit_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)
    model = _model()
    data = tiny_data()
    history = fit(model, data, TrainConfig(**CFG), eval_data=data, progress=False)
    if rank == 0:
        kinds = sorted({type(m).__name__ for m in model.modules() if "Norm" in type(m).__name__})
        torch.save({"state": model.state_dict(), "history": history, "norms": kinds}, out)
    dist.destroy_process_group()


def test_two_ranks_train_the_model_one_process_trains(tmp_path):
    out = tmp_path / "fit.pt"
    _spawn(_fit_worker, tmp_path, str(out))
    got = torch.load(out, weights_only=True)
    model, data = _model(), tiny_data()
    history = fit(model, data, TrainConfig(**CFG), eval_data=data, progress=False)
    assert got["norms"] == ["BatchNorm1d", "BatchNorm2d"]  # the trained model is the plain model again
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(got["state"][name], tensor, rtol=1e-3, atol=1e-4, msg=name)
    for ours, single in zip(got["history"], history, strict=True):
        assert ours.keys() == single.keys()
        for key in single:
            assert ours[key] == pytest.approx(single[key], rel=1e-3, abs=1e-4), key


# Batches of 15 (shares of 8 and 7) and a ragged last one of 4: the defenses whose losses couple rows.
# BiDO's solve (ridge 1e-5·m) amplifies float order: one process on 1 and on 2 threads already differs
# by up to 1e-4 in its weights (as much as two ranks do), hence its looser (rtol, atol).
COUPLED_DEFENSES = {
    "bido": (lambda: BidoConfig(train=tiny_train(batch_size=15)), (1e-3, 1e-4)),
    "dpsgd": (lambda: DpsgdConfig(train=tiny_train(optimizer="sgd", lr=0.1, batch_size=15)), (1e-4, 1e-6)),
}


def _defense_run(name: str) -> dict:
    data = tiny_data()
    result = get_defense(name).apply(_model(), COUPLED_DEFENSES[name][0](), DefenseData(data, data))
    return {"state": result.model.state_dict(), "history": result.history[name]}


def _defense_worker(rank: int, rendezvous: str, out: str, name: str) -> None:
    _join(rank, rendezvous)
    torch.save(_defense_run(name), f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.parametrize("name", COUPLED_DEFENSES)
def test_two_ranks_fine_tune_the_coupled_loss_defenses_as_one_process(tmp_path, name):
    """BiDO's HSIC (kernels of the whole batch) and DP-SGD's noise (one draw per batch) over 2 ranks.

    Weights, the HSIC terms, grad norms and clipped fraction match one process; the ranks end
    bit-identical (the same HSIC terms, the same noise draws on every rank).
    """
    out = tmp_path / "defense.pt"
    _spawn(_defense_worker, tmp_path, str(out), name)
    ranks = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(WORLD)]
    single = _defense_run(name)
    rtol, atol = COUPLED_DEFENSES[name][1]
    for key, tensor in single["state"].items():
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key]), f"{key} differs between ranks"
        torch.testing.assert_close(ranks[0]["state"][key], tensor, rtol=rtol, atol=atol, msg=key)
    assert ranks[0]["history"] == ranks[1]["history"]
    for ours, one in zip(ranks[0]["history"], single["history"], strict=True):
        assert ours.keys() == one.keys()
        for key in one:
            assert ours[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key


# --- the weighting every data-parallel loop uses, and the GANs trained on two ranks ------------------


def test_weighted_means_average_to_the_whole_batch_mean(monkeypatch):
    """Unequal shares (4 + 3 rows): the ranks' weighted means, averaged as gradients are, give the whole mean."""
    values = torch.arange(7.0) ** 2
    parts = []
    for r in range(2):
        _as_rank(monkeypatch, r, 2)
        mine = values[shard(len(values))]
        parts.append(weighted_for_averaging(mine.mean(), len(mine), len(values)))
    assert [len(values[shard(7)]) for r in range(2) if not _as_rank(monkeypatch, r, 2)] == [4, 3]
    assert (sum(parts) / 2).item() == pytest.approx(values.mean().item())
    assert parts[0].item() != pytest.approx(parts[1].item())  # a plain average of the two means would be wrong


def _loss_of_a_batch(model: nn.Module, x: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(this rank's objective, the whole batch's loss): a per-row mean plus a term coupling the rows."""
    features = model(x)
    per_row = (features**2).sum(1).mean()
    coupled = (batch_mean(features, total) - 1).abs().mean()  # like KED-MI's feature matching
    rows = gather_rows(features, row_counts(features))
    coupled = coupled + (rows @ rows.T).tanh().mean()  # every pair of rows, like BiDO's kernels
    return weighted_for_averaging(per_row, len(x), total) + coupled, global_mean(per_row, len(x), total) + coupled


def _gradient_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2), nn.ModuleList([nn.Linear(2, 2)]))


def _forward(model: nn.Module) -> nn.Module:
    return model[:3]  # the last layer is never used: it must keep no gradient


def _gradient_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)
    model = _gradient_model()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    with batchnorm_across_ranks(model, torch.device("cpu")):
        objective, whole = _loss_of_a_batch(_forward(model), x[shard(len(x))], len(x))
        objective.backward()
    average_gradients(model.parameters())
    grads = {name: p.grad for name, p in model.named_parameters()}
    torch.save({"grads": grads, "loss": whole.detach()}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_averaged_gradients_are_the_gradients_of_the_whole_batch_loss(tmp_path):
    """Weighted row means, a row-coupling term and cross-rank batch norm together, shares 4 + 3."""
    out = tmp_path / "grads.pt"
    _spawn(_gradient_worker, tmp_path, str(out))
    model = _gradient_model()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    objective, whole = _loss_of_a_batch(_forward(model), x, len(x))
    objective.backward()
    for rank in range(WORLD):
        got = torch.load(f"{out}.{rank}", weights_only=True)
        torch.testing.assert_close(got["loss"], whole.detach())
        for name, param in model.named_parameters():
            if param.grad is None:
                assert got["grads"][name] is None, name
            else:
                torch.testing.assert_close(got["grads"][name], param.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert model[3][0].weight.grad is None


def test_augmenting_a_slice_draws_and_applies_the_whole_batchs_parameters():
    augment = plgmi_augmentation(12, 0.6, 20.0)
    x = torch.rand(9, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    whole = augment(x)
    after_whole = torch.rand(3)
    parts = []
    for rows in (slice(0, 5), slice(5, 9), slice(9, 9)):
        torch.manual_seed(5)
        parts.append(augment_rows(augment, x[rows], rows, len(x)))
        torch.testing.assert_close(torch.rand(3), after_whole)  # the same random stream on every rank
    torch.testing.assert_close(torch.cat(parts), whole)


def test_the_targets_rows_are_shared_evenly(monkeypatch):
    taken, scored = [], []
    for r in range(2):
        _as_rank(monkeypatch, r, 2)
        rows, mine = generator_rows(15, 9)
        taken.append(rows.tolist())
        scored.append(rows[: mine.stop - mine.start].tolist())
    assert scored == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    assert sorted(taken[0] + taken[1]) == list(range(15)) and [len(t) for t in taken] == [8, 7]


def test_a_gan_batch_with_fewer_rows_than_ranks_is_refused(monkeypatch):
    _as_rank(monkeypatch, 0, 4)
    images = torch.zeros(8, 1, 12, 12, dtype=torch.uint8).numpy()
    cfg = PriorConfig(image_size=12, latent_dim=8, gen_width=4, disc_width=4, epochs=1, batch_size=3)
    with pytest.raises(ValueError, match="batch_size 3 gives some of the 4 ranks no rows"):
        train_prior(images, cfg, progress=False)


GAN_BATCH = 15  # shares of 8 and 7 rows: a wrong weighting does not cancel out
# At lr 1e-2 KED-MI's first Adam steps blow float-order noise up: one process on 1 and on 2 threads
# already differs by 5 % in G's gradients after one step. At 3e-3 those two runs agree well within the
# tolerance below (so do one process and two ranks).
TARGET_GAN = dict(batch_size=GAN_BATCH, latent_dim=16, gen_width=8, disc_width=8, iterations=5, n_dis=2,
                  lr_g=3e-3, lr_d=3e-3, ema_decay=0.5)  # fmt: skip


def _record_batch_sizes() -> dict[str, set[int]]:
    """Batch sizes each network class is called with in this process (how the ranks split the rows)."""
    sizes: dict[str, set[int]] = {}

    def hook(module: nn.Module, args: tuple) -> None:
        name = type(module).__name__
        if name in ("Generator", "ConditionalGenerator", "Discriminator", "ProjectionDiscriminator", "Classifier"):
            sizes.setdefault(name, set()).add(len(args[0]))

    torch.nn.modules.module.register_module_forward_pre_hook(hook)
    return sizes


def _prior_run() -> dict:
    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 30, (60, 1, 12, 12), generator=rng, dtype=torch.uint8)
    images[:, :, 4:8, 2:-2] = 230
    cfg = PriorConfig(image_size=12, latent_dim=8, gen_width=4, disc_width=4, epochs=2, batch_size=GAN_BATCH,
                      lr=1e-2, ema_decay=0.5)  # fmt: skip
    result = train_prior(images.numpy(), cfg, progress=False)
    return {"generator": result.generator.state_dict(), "discriminator": result.discriminator.state_dict(),
            "history": {"d_loss": result.d_loss, "g_loss": result.g_loss}}  # fmt: skip


def _target_gan_run(kind: str) -> dict:
    images, _ = toy.toy_images(30, seed=0)
    target, generic = toy.tiny_classifier("convnet", seed=3, low_rank=False), toy.untrained_prior(seed=0)
    if kind == "plgmi":
        cfg = PLGMISection(**TARGET_GAN, inv_batch_size=9, top_k=20)
        result = train_plgmi(target, images, cfg, generic, progress=False)
    else:
        result = train_kedmi(target, images, KEDMISection(**TARGET_GAN), generic, progress=False)
    return {"generator": result.prior.generator.state_dict(), "discriminator": result.prior.discriminator.state_dict(),
            "history": result.history}  # fmt: skip


RUNS = {"prior": _prior_run, "plgmi": lambda: _target_gan_run("plgmi"), "kedmi": lambda: _target_gan_run("kedmi")}


def _gan_worker(rank: int, rendezvous: str, out: str, kind: str) -> None:
    _join(rank, rendezvous)
    sizes = _record_batch_sizes()
    run = RUNS[kind]()
    torch.save({**run, "sizes": {name: sorted(s) for name, s in sizes.items()}}, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.parametrize("kind", RUNS)
def test_two_ranks_train_the_gan_one_process_trains(tmp_path, kind):
    """Generator (EMA, BN statistics), discriminator (spectral-norm u, v included) and history match one process.

    The ranks also end bit-identical to each other, and each called the networks on its own rows
    only (8 and 7 of 15): a rank that trained on the whole batch would pass the comparison alone.
    """
    out = tmp_path / "gan.pt"
    _spawn(_gan_worker, tmp_path, str(out), kind)
    ranks = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(WORLD)]
    single = RUNS[kind]()
    for net in ("generator", "discriminator"):
        assert ranks[0][net].keys() == single[net].keys()
        for name, tensor in single[net].items():
            assert torch.equal(ranks[0][net][name], ranks[1][net][name]), f"{net}.{name} differs between ranks"
            torch.testing.assert_close(ranks[0][net][name], tensor, rtol=1e-3, atol=1e-5, msg=f"{net}.{name}")
    assert ranks[0]["history"] == ranks[1]["history"]
    for name, values in single["history"].items():
        assert ranks[0]["history"][name] == pytest.approx(values, rel=1e-3, abs=1e-5), name
    generator = "ConditionalGenerator" if kind == "plgmi" else "Generator"
    for rank, rows in enumerate((8, 7)):
        sizes = ranks[rank]["sizes"]
        assert sizes[generator] == [rows, GAN_BATCH]  # its rows in training; whole batches to recalibrate BN
        if kind != "kedmi":  # (KED-MI calls its discriminator's parts, not forward)
            assert sizes["ProjectionDiscriminator" if kind == "plgmi" else "Discriminator"] == [rows]
        if kind == "plgmi":  # the target scores 5 and 4 of the 9 scored rows (and pseudo-labels all 120 images)
            assert sizes["Classifier"] == [(5, 4)[rank], 120]
