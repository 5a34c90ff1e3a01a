"""Tests of manifres.nn.adapters: residual adapters in both modes."""

import pytest
import torch
from torch import nn

from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import AdapterNetwork, Residual, ResidualAdapter


@pytest.fixture(autouse=True)
def _one_thread():
    """Small-model training: one intra-op thread (two threads on a loaded 2-core machine
    spin in OpenMP barriers and run 10-50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _backbone(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)


@pytest.mark.parametrize("bottleneck", [None, 3])
def test_adapter_starts_as_identity_and_is_residual(dtype, bottleneck):
    a = ResidualAdapter(6, bottleneck).to(dtype)
    assert isinstance(a, Residual)
    x = torch.randn(5, 6, dtype=dtype)
    assert torch.equal(a(x), x)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    assert not torch.equal(a(x), x)
    a.reset_parameters()
    assert torch.equal(a(x), x)


def test_network_starts_as_backbone_and_freezes_it(dtype):
    bb = _backbone(dtype)
    net = AdapterNetwork(bb, [None, 8, None, 8, None], n_tasks=3).to(dtype)
    x = torch.randn(7, 4, dtype=dtype)
    for task in range(3):
        assert torch.equal(net(x, task), bb(x))
    assert all(not p.requires_grad for p in net.backbone.parameters())
    net.train()
    assert not net.backbone.training
    assert len(net.adapters) == 3 and set(net.adapters[0].keys()) == {"1", "3"}
    shared = AdapterNetwork(bb, [None, 8, None, 8, None], n_tasks=3, mode="shared")
    assert len(shared.adapters) == 1
    assert "mode='shared'" in repr(shared)


def test_per_task_training_touches_only_that_task(dtype):
    net = AdapterNetwork(_backbone(dtype), [None, 8, None, 8, None], n_tasks=2).to(dtype)
    x = torch.randn(16, 4, dtype=dtype)
    before = net(x, 0).detach().clone()
    opt = torch.optim.SGD(net.task_parameters(1), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        (net(x, 1) - 1.0).pow(2).mean().backward()
        opt.step()
    assert torch.equal(net(x, 0), before)
    assert not torch.equal(net(x, 1), before)
    assert all(p.grad is None for p in net.adapters[0].parameters())


def test_bad_input():
    bb = _backbone()
    with pytest.raises(UnknownChoiceError, match="shared, per_task"):
        AdapterNetwork(bb, [None] * 5, 2, mode="replay")
    with pytest.raises(ShapeError, match="one entry per backbone layer"):
        AdapterNetwork(bb, [None, 8], 2)
    with pytest.raises(ParameterError, match="n_tasks"):
        AdapterNetwork(bb, [None] * 5, 0)
    net = AdapterNetwork(bb, [None, 8, None, 8, None], 2)
    for task in [2, -1, 1.0, True]:
        with pytest.raises(UnknownChoiceError, match="0 .. 1"):
            net(torch.randn(1, 4), task)
