"""Tests of manifres.stability.patches against the closed forms of linear patches."""

import json

import pytest
import torch
from torch import nn

from manifres.errors import ShapeError
from manifres.nn import Residual
from manifres.stability import PatchInteraction, depth_profile, patch_interaction, patch_stack
from manifres.testing import tol


def _matrices(n, m, dtype, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(n, n, generator=g, dtype=dtype) for _ in range(m)]


def _linear(a):
    return lambda z: z @ a.T


def test_two_linear_patches_commutator(dtype):
    """(I + A2)(I + A1) = I + A1 + A2 + A2 A1; reversing gives the commutator [A1, A2] x."""
    a1, a2 = _matrices(4, 2, dtype)
    x = torch.randn(5, 4, dtype=dtype)
    r = patch_interaction([_linear(a1), _linear(a2)], x)
    t = tol(dtype)
    torch.testing.assert_close(r.identity, x, atol=0, rtol=0)
    torch.testing.assert_close(r.first_order, x @ (a1 + a2).T, atol=t, rtol=0)
    torch.testing.assert_close(r.interaction, x @ (a2 @ a1).T, atol=t, rtol=0)
    torch.testing.assert_close(r.total, x @ (torch.eye(4, dtype=dtype) + a1 + a2 + a2 @ a1).T, atol=t, rtol=0)
    torch.testing.assert_close(r.order_dependence, x @ (a1 @ a2 - a2 @ a1).T, atol=t, rtol=0)
    torch.testing.assert_close(r.total, r.identity + r.first_order + r.interaction, atol=t, rtol=0)


def test_three_linear_patches_all_products_in_order(dtype):
    a1, a2, a3 = _matrices(3, 3, dtype, seed=1)
    x = torch.randn(2, 3, dtype=dtype)
    r = patch_interaction([_linear(a1), _linear(a2), _linear(a3)], x)
    inter = a2 @ a1 + a3 @ a1 + a3 @ a2 + a3 @ a2 @ a1
    rev = a2 @ a3 + a1 @ a3 + a1 @ a2 + a1 @ a2 @ a3
    torch.testing.assert_close(r.interaction, x @ inter.T, atol=tol(dtype), rtol=0)
    torch.testing.assert_close(r.order_dependence, x @ (rev - inter).T, atol=tol(dtype), rtol=0)


def test_commuting_patches_do_not_depend_on_the_order():
    d1 = torch.diag(torch.tensor([0.1, -0.2], dtype=torch.float64))
    d2 = torch.diag(torch.tensor([0.3, 0.05], dtype=torch.float64))
    r = patch_interaction([_linear(d1), _linear(d2)], torch.randn(4, 2, dtype=torch.float64))
    assert float(r.order_dependence.abs().max()) < 1e-15
    assert float(r.interaction.abs().max()) > 1e-3


def test_nonlinear_two_patches(dtype):
    """In general the interaction of two patches is p2(x + p1(x)) - p2(x)."""
    torch.manual_seed(2)
    p1 = nn.Sequential(nn.Linear(3, 3), nn.Tanh()).to(dtype)
    p2 = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid()).to(dtype)
    x = torch.randn(6, 3, dtype=dtype)
    r = patch_interaction([p1, p2], x)
    with torch.no_grad():
        torch.testing.assert_close(r.interaction, p2(x + p1(x)) - p2(x), atol=tol(dtype), rtol=0)
        torch.testing.assert_close(r.reversed_total, x + p2(x) + p1(x + p2(x)), atol=tol(dtype), rtol=0)
    assert not r.total.requires_grad


def test_interaction_is_second_order_in_the_patch_size():
    a1, a2 = _matrices(4, 2, torch.float64, scale=1.0, seed=3)
    x = torch.randn(8, 4, dtype=torch.float64)

    def sizes(eps):
        r = patch_interaction([lambda z: torch.tanh(eps * z @ a1.T), lambda z: torch.sin(eps * z @ a2.T)], x)
        return r.relative_interaction, r.relative_order_dependence

    (i1, o1), (i2, o2) = sizes(1e-2), sizes(5e-3)
    assert i1 / i2 == pytest.approx(2.0, rel=0.02)  # relative size O(eps): absolute O(eps^2)
    assert o1 / o2 == pytest.approx(2.0, rel=0.05)


def test_residual_stack_is_read_as_its_updates(dtype):
    a1, a2 = _matrices(3, 2, dtype, seed=4)
    x = torch.randn(2, 3, dtype=dtype)
    ps = [_linear(a1), _linear(a2)]
    direct = patch_interaction(ps, x)
    stack = patch_stack(ps)
    assert all(isinstance(layer, Residual) for layer in stack)
    via_stack = patch_interaction(stack, x)
    mixed = patch_interaction([stack[0], ps[1]], x)
    for r in (via_stack, mixed):
        torch.testing.assert_close(r.interaction, direct.interaction, atol=tol(dtype), rtol=0)
        torch.testing.assert_close(r.total, direct.total, atol=tol(dtype), rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(stack(x), direct.total, atol=tol(dtype), rtol=0)


def test_patch_stack_step_and_step_grads():
    """x <- x + h p_i(x); depth_profile's step grads are <dL/dx_i, p_i(x_{i-1})> (by hand)."""
    a1, a2, a3 = _matrices(3, 3, torch.float64, seed=5)
    lin = [nn.Linear(3, 3, bias=False).double() for _ in range(3)]
    with torch.no_grad():
        for layer, a in zip(lin, (a1, a2, a3), strict=True):
            layer.weight.copy_(a)
    stack = patch_stack(lin, step=0.5)
    x = torch.randn(4, 3, dtype=torch.float64)
    prof = depth_profile(stack, x)
    xs = [x]
    for a in (a1, a2, a3):
        xs.append(xs[-1] + 0.5 * xs[-1] @ a.T)
    g = torch.randn(xs[-1].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) / 4
    cots = [g]
    for a in (a3, a2, a1):
        cots.append(cots[-1] @ (torch.eye(3, dtype=torch.float64) + 0.5 * a))
    cots = cots[::-1]  # cots[i] = dL/dx_i
    ref = torch.stack([(cots[i + 1] * (xs[i] @ a.T)).sum() for i, a in enumerate((a1, a2, a3))])
    torch.testing.assert_close(prof.step_grads, ref, atol=1e-12, rtol=1e-10)


def test_record_and_errors():
    r = patch_interaction([torch.sin, torch.tanh], torch.linspace(-1, 1, 5, dtype=torch.float64))
    assert isinstance(r, PatchInteraction)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert set(d) == {"identity", "first_order", "interaction", "total", "reversed_total", "order_dependence"}
    empty = patch_interaction([], torch.ones(3))
    assert (
        torch.equal(empty.total, torch.ones(3)) and empty.relative_interaction != empty.relative_interaction
    )
    with pytest.raises(TypeError, match="residual-step protocol"):
        patch_interaction(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.ones(2))
    with pytest.raises(TypeError, match="list or tuple"):
        patch_interaction(torch.sin, torch.ones(2))
    with pytest.raises(TypeError, match="not callable"):
        patch_interaction([torch.sin, 3], torch.ones(2))
    with pytest.raises(ShapeError, match="patch 1"):
        patch_interaction([torch.sin, lambda z: z[:1]], torch.ones(2))
    with pytest.raises(TypeError):
        patch_stack(torch.sin)
