"""Range safety of the norms every manifold shares: ``Manifold.norm`` and ``Euclidean.dist``
neither underflow nor overflow for finite inputs (issue 11: a plausible finite wrong value,
0 for |v| = 1e-23 or inf for 1e20 in float32, is never the answer)."""

from __future__ import annotations

import math

import pytest
import torch

from manifres.manifolds import Euclidean, SpecialOrthogonal, Sphere

MANIFOLDS = [Sphere(2), Sphere(9), Euclidean(4), SpecialOrthogonal(3), SpecialOrthogonal(4)]
SCALES = {torch.float32: (1e-40, 1e-23, 1.0, 1e20, 1e37), torch.float64: (1e-300, 1e-160, 1.0, 1e160, 1e300)}


@pytest.mark.parametrize("M", MANIFOLDS, ids=repr)
def test_norm_is_right_over_the_whole_float_range(M, dtype):
    g = torch.Generator().manual_seed(0)
    x = M.random(4, dtype=torch.float64, generator=g)
    v = M.random_tangent(x, generator=g)
    v = v / v.abs().amax(dim=tuple(range(-M.ndim, 0)), keepdim=True)  # max |v_i| = 1
    for s in SCALES[dtype]:
        vs = (s * v).to(dtype)  # subnormal inputs are themselves rounded: compare with them
        ref = (vs.double() / s).flatten(start_dim=v.dim() - M.ndim).norm(dim=-1) * s
        got = M.norm(x.to(dtype), vs)
        fi = torch.finfo(dtype)  # a subnormal result is itself rounded to the subnormal spacing
        torch.testing.assert_close(got.double(), ref, rtol=4 * fi.eps, atol=4 * fi.smallest_normal * fi.eps)


def test_euclidean_dist_is_right_over_the_whole_float_range(dtype):
    E = Euclidean(3)
    d = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)
    for s in SCALES[dtype]:
        x = torch.zeros(3, dtype=dtype)
        got = E.dist(x, (s * d).to(dtype)).double()
        assert math.isclose(got.item(), 5 * s, rel_tol=1e-5), s


@pytest.mark.parametrize("M", MANIFOLDS, ids=repr)
def test_norm_has_a_zero_gradient_at_zero_and_passes_gradcheck(M):
    x = M.random(3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z = torch.zeros_like(x, requires_grad=True)
    M.norm(x, z).sum().backward()
    assert torch.equal(z.grad, torch.zeros_like(x))
    v = M.random_tangent(x).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: M.norm(x, v), (v,))
    assert torch.autograd.gradgradcheck(lambda v: M.norm(x, v), (v,))


def test_norm_of_non_finite_tangents_is_nan():
    S = Sphere(2)
    x = torch.tensor([1.0, 0.0, 0.0])
    for bad in (math.inf, math.nan):
        assert S.norm(x, torch.tensor([0.0, bad, 1.0])).isnan()
