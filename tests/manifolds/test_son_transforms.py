"""SO(n) kernels under torch.func (grad, vjp, jvp, jacrev, jacfwd, vmap, hessian) and
torch.autograd.forward_ad, compared with eager autograd (1e-12, float64) and with finite
differences (gradcheck / gradgradcheck), at a small batch and at a batch of >= 2**16 elements."""

from __future__ import annotations

import math

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

from manifres import SpecialOrthogonal

DT = torch.float64
TOL = dict(rtol=1e-12, atol=1e-12)
OPS = ("log", "dist", "polar", "proj_point", "exp")
NS = (2, 3, 4)


def _setup(n: int, op: str, batch: int, seed: int = 0):
    """The manifold, a single-argument function f(Z) of a (batch, n, n) input, and the input."""
    G = SpecialOrthogonal(n)
    g = torch.Generator().manual_seed(seed + 10 * n)
    x0 = G.random(dtype=DT, generator=g)
    y = G.random(batch, dtype=DT, generator=g)
    # keep y away from the cut locus: y = x0 exp(0.5 * (log-sized step))
    v = G.proj(x0, torch.randn(batch, n, n, dtype=DT, generator=g))
    v = v / (torch.linalg.matrix_norm(v)[..., None, None] + 1e-3) * 1.2
    y = G.exp(x0.expand_as(v), v)
    if op == "log":
        return G, (lambda Z: G.log(x0, Z)), y
    if op == "dist":
        return G, (lambda Z: G.dist(x0, Z)), y
    if op == "polar":
        return G, (lambda Z: G.retract(x0, Z, "polar")), v
    if op == "exp":
        return G, (lambda Z: G.exp(x0, Z)), v
    Z = torch.randn(batch, n, n, dtype=DT, generator=g) * 0.3 + y  # well-conditioned, det > 0
    return G, G.proj_point, Z


def _eager_grad(f, Z, gout):
    Z = Z.detach().requires_grad_(True)
    (gz,) = torch.autograd.grad(f(Z), Z, gout)
    return gz


def _eager_jvp(f, Z, dZ):
    with fwAD.dual_level():
        out = f(fwAD.make_dual(Z, dZ))
        return fwAD.unpack_dual(out).tangent


def _eager_jacobian(f, Z):
    return torch.autograd.functional.jacobian(f, Z)


def _check_all(n: int, op: str, batch: int, full_jacobian: bool) -> None:
    G, f, Z = _setup(n, op, batch)
    g = torch.Generator().manual_seed(123)
    out = f(Z)
    gout = torch.randn(out.shape, dtype=DT, generator=g)
    dZ = torch.randn(Z.shape, dtype=DT, generator=g)

    # reverse mode: grad of a scalar, vjp
    ref_g = _eager_grad(f, Z, gout)
    torch.testing.assert_close(grad(lambda Z: (f(Z) * gout).sum())(Z), ref_g, **TOL)
    o, pull = vjp(f, Z)
    torch.testing.assert_close(o, out, **TOL)
    torch.testing.assert_close(pull(gout)[0], ref_g, **TOL)

    # forward mode: torch.func.jvp, torch.autograd.forward_ad, and their duality with vjp
    ref_t = _eager_jvp(f, Z, dZ)
    o, t = jvp(f, (Z,), (dZ,))
    torch.testing.assert_close(o, out, **TOL)
    torch.testing.assert_close(t, ref_t, **TOL)
    lhs, rhs = (ref_t * gout).sum(), (ref_g * dZ).sum()
    assert abs(float(lhs - rhs)) <= 1e-11 * max(1.0, abs(float(lhs)))

    # vmap over the batch (per-sample calls) equals the batched call
    torch.testing.assert_close(vmap(lambda z: f(z[None])[0])(Z), out, **TOL)

    # per-sample Jacobians: vmap(jacrev), vmap(jacfwd) against eager autograd (one backward
    # of the summed output per output entry; samples are independent)
    fs = lambda z: f(z[None])[0]  # noqa: E731
    Jr = vmap(jacrev(fs))(Z)
    Jf = vmap(jacfwd(fs))(Z)
    torch.testing.assert_close(Jr, Jf, **TOL)
    Zr = Z.detach().requires_grad_(True)
    o = f(Zr)
    flat = o.reshape(batch, -1)
    rows = [torch.autograd.grad(flat[:, k].sum(), Zr, retain_graph=True)[0] for k in range(flat.shape[1])]
    Je = torch.stack(rows, 1).reshape(Jr.shape)
    torch.testing.assert_close(Jr, Je, **TOL)

    if full_jacobian:  # whole-batch jacrev / jacfwd against torch.autograd.functional
        Jfull = _eager_jacobian(f, Z)
        torch.testing.assert_close(jacrev(f)(Z), Jfull, **TOL)
        torch.testing.assert_close(jacfwd(f)(Z), Jfull, **TOL)
        # hessian of a scalar: forward-over-reverse against reverse-over-reverse
        s = lambda Z: (f(Z) * gout).sum()  # noqa: E731
        H = hessian(s)(Z)
        He = torch.autograd.functional.hessian(s, Z)
        torch.testing.assert_close(H, He, rtol=1e-10, atol=1e-10)
        m = Z.numel()
        torch.testing.assert_close(H.reshape(m, m), H.reshape(m, m).T, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("n", NS)
def test_transforms_small_batch(n, op):
    _check_all(n, op, batch=2, full_jacobian=True)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("n", NS)
def test_eager_against_finite_differences(n, op):
    _, f, Z = _setup(n, op, 1, seed=1)
    Z = Z.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (Z,), check_forward_ad=True, check_backward_ad=True)
    assert torch.autograd.gradgradcheck(f, (Z,))


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("n", NS)
def test_transforms_large_batch(n, op):
    batch = math.ceil(2**16 / (n * n))  # >= 2**16 input elements
    _check_all(n, op, batch=batch, full_jacobian=False)


def test_transforms_large_batch_default_case():
    """One >= 2**16-element case in the default run (SO(3) log, the closed-form path)."""
    _check_all(3, "log", batch=math.ceil(2**16 / 9), full_jacobian=False)


def test_issue_examples():
    """The two calls of the issue: torch.func through the n >= 4 log and the SVD polar."""
    X = SpecialOrthogonal(4).random(3, dtype=DT)
    J = jacrev(lambda X: SpecialOrthogonal(4).log(X[0:1], X))(X)
    assert J.shape == (3, 4, 4, 3, 4, 4) and bool(torch.isfinite(J).all())
    Y = torch.randn(3, 3, dtype=DT)
    proj = SpecialOrthogonal(3).proj_point
    torch.testing.assert_close(jacrev(proj)(Y), torch.autograd.functional.jacobian(proj, Y), **TOL)
