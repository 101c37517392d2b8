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
from pipeline.distributed import CrossRankBatchNorm, batchnorm_across_ranks, shard, shard_items
from pipeline.models import ModelConfig, create_model
from pipeline.seeding import seed_everything
from pipeline.train import fit
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


def _refusing_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)

    def batch_statistic(logits, y):
        return logits.var(0).sum()

    batch_statistic.rows_independent = False
    try:
        fit(_model(), tiny_data(), TrainConfig(**CFG), loss_fn=batch_statistic, progress=False)
        message = "no error"
    except ValueError as err:
        message = str(err)
    if rank == 0:
        with open(out, "w") as f:
            f.write(message)
    dist.destroy_process_group()


def test_a_loss_that_couples_rows_is_refused_across_ranks(tmp_path):
    out = tmp_path / "message.txt"
    _spawn(_refusing_worker, tmp_path, str(out))
    assert "cannot be split over 2 ranks" in out.read_text()
