"""The fused sphere path (large batches) equals the plain path, with correct first and second derivatives."""

import pytest
import torch

import manifres
from manifres.manifolds import _fused
from manifres.testing import tol


@pytest.fixture
def fused(monkeypatch):
    monkeypatch.setattr(_fused, "SMALL", 0)
    monkeypatch.setattr(_fused, "NARROW", 0)


OPS = {
    "proj": lambda S, x, v: S.proj(x, v),
    "exp": lambda S, x, v: S.exp(x, v),
    "projective": lambda S, x, v: S.retract(x, v, "projective"),
    "log": lambda S, x, v: S.log(x, S.exp(x, v)),
    "transport": lambda S, x, v: S.transport(x, S.exp(x, 0.5 * v), v),
}


@pytest.mark.parametrize("op", list(OPS))
def test_fused_equals_plain(dtype, op, monkeypatch):
    S = manifres.Sphere(4)
    g = torch.Generator().manual_seed(0)
    x = S.random(64, dtype=dtype, generator=g)
    v = torch.randn(64, 5, dtype=dtype, generator=g)
    v = 0.4 * S.proj(x, v) + 0.05 * x  # |v| < 2, slightly non-tangent on purpose
    plain = OPS[op](S, x, v)
    gy = torch.randn_like(plain)
    xp, vp = x.clone().requires_grad_(True), v.clone().requires_grad_(True)
    (OPS[op](S, xp, vp) * gy).sum().backward()
    monkeypatch.setattr(_fused, "SMALL", 0)
    monkeypatch.setattr(_fused, "NARROW", 0)
    xf, vf = x.clone().requires_grad_(True), v.clone().requires_grad_(True)
    out = OPS[op](S, xf, vf)
    (out * gy).sum().backward()
    t = tol(dtype, 2e-6, 1e-13)
    assert torch.allclose(out, plain, atol=t)
    assert torch.allclose(xf.grad, xp.grad, atol=10 * t)
    assert torch.allclose(vf.grad, vp.grad, atol=10 * t)


@pytest.mark.parametrize("op", ["proj", "exp", "projective"])
def test_fused_gradcheck_and_gradgradcheck(fused, op):
    S = manifres.Sphere(3)
    g = torch.Generator().manual_seed(1)
    x = S.random(4, dtype=torch.float64, generator=g)
    v = 0.7 * S.random_tangent(x, generator=g)
    f = lambda x, v: OPS[op](S, x, v)  # noqa: E731
    args = (x.requires_grad_(True), v.requires_grad_(True))
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)
    # only one input requiring a gradient
    assert torch.autograd.gradcheck(lambda v: f(x.detach(), v), (v,))


def test_fused_broadcasting(fused, dtype):
    S = manifres.Sphere(2)
    x = S.random(dtype=dtype)
    v = 0.3 * torch.randn(10, 3, dtype=dtype)
    v.requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    out = S.exp(xr, v)
    assert out.shape == (10, 3)
    out.sum().backward()
    assert xr.grad.shape == (3,) and v.grad.shape == (10, 3)
    assert torch.allclose(out[3], S.exp(x, v[3].detach()), atol=tol(dtype, 1e-6, 1e-14))
