import torch

from pipeline.seeding import seeded_rng


def test_seeded_rng_draws_depend_only_on_the_seed():
    draws = []
    for history in (0, 1):
        torch.manual_seed(history)  # whatever ran before in the process
        with seeded_rng(7):
            draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])


def test_seeded_rng_leaves_the_callers_stream_where_it_was():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    with seeded_rng(7):
        torch.rand(100)
    assert torch.equal(torch.rand(4), expected)
