"""Tests of manifres.nn.hybrid: Hybrid (baseline + correction)."""

import pytest
import torch
from torch import nn

from manifres.errors import ShapeError
from manifres.nn import Hybrid
from manifres.testing import tol


@pytest.fixture(autouse=True)
def _one_thread():
    """Small-model training: one intra-op thread (two threads on a loaded 2-core machine
    spin in OpenMP barriers and run 10-50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _x0(dtype):
    return torch.tensor([[0.99, 0.01, 0.0], [0.7, 0.1, 0.2]], dtype=dtype)


class _Decay(nn.Module):
    """A known model with a time argument: ``x -> exp(-rate t) x`` (rate a buffer)."""

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("rate", torch.tensor(rate))

    def forward(self, x, t=None):
        t = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device) if t is None else t
        return torch.exp(-self.rate.to(x.dtype) * t).unsqueeze(-1) * x


# ---------------------------------------------------------------------------- Hybrid
def test_hybrid_is_baseline_plus_correction(dtype):
    torch.manual_seed(0)
    base, corr = _Decay(), nn.Linear(3, 3)
    model = Hybrid(base, corr).to(dtype)
    x = _x0(dtype)
    torch.testing.assert_close(model(x), base(x) + corr(x), atol=tol(dtype), rtol=0)
    assert model(x).dtype == dtype
    assert "freeze_baseline=True" in repr(model)


def test_frozen_baseline_has_no_gradient_but_passes_input_gradient():
    base = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    model = Hybrid(base, nn.Linear(3, 3))
    model.train()
    assert not base.training and model.correction.training
    assert all(not p.requires_grad for p in base.parameters())
    x = torch.randn(4, 3, requires_grad=True)
    stats = base[1].running_mean.clone()
    model(x).sum().backward()
    assert torch.equal(base[1].running_mean, stats)  # eval mode: no statistics update
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is None for p in base.parameters())


def test_unfrozen_baseline_trains_with_the_correction(dtype):
    """freeze_baseline=False: the baseline's parameters get gradients and are in train()."""
    base = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).to(dtype)
    model = Hybrid(base, nn.Linear(3, 3).to(dtype), freeze_baseline=False)
    model.train()
    assert base.training and all(p.requires_grad for p in base.parameters())
    model(_x0(dtype)).sum().backward()
    assert all(p.grad is not None for p in base.parameters())


class _Conditioned(nn.Module):
    def forward(self, x, b, t=None):
        return 0.5 * b - x + (0.0 if t is None else t.unsqueeze(-1))


def test_pass_baseline_and_extra_arguments(dtype):
    model = Hybrid(_Decay(), _Conditioned(), pass_baseline=True)
    x = _x0(dtype)
    t = torch.tensor([1.0, 2.0], dtype=dtype)
    b = model.baseline(x, t)
    torch.testing.assert_close(model(x, t), 1.5 * b - x + t[:, None], atol=tol(dtype), rtol=0)


def test_hybrid_shape_mismatch_and_types():
    model = Hybrid(_Decay(), nn.Linear(3, 4))
    with pytest.raises(ShapeError, match=r"\(2, 4\).*\(2, 3\)"):
        model(_x0(torch.float32))
    with pytest.raises(TypeError, match="nn.Module"):
        Hybrid(_Decay(), torch.tanh)


@pytest.mark.cuda
def test_hybrid_on_cuda(dtype):
    model = Hybrid(_Decay(), nn.Linear(3, 3)).to(dtype)
    x = _x0(dtype)
    t = torch.tensor([0.5, 1.5], dtype=dtype)
    y = model(x, t)
    y_cuda = model.to("cuda")(x.cuda(), t.cuda())
    assert y_cuda.device.type == "cuda" and y_cuda.dtype == dtype
    torch.testing.assert_close(y_cuda.cpu(), y, atol=tol(dtype, 1e-6, 1e-13), rtol=0)
