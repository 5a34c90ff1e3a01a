"""Property-based tests (HOSTILE_INPUTS D9): random rotations concentrated near 0 and pi, vectors
with norms spanning 1e-30..1e8, graphs with isolated nodes. No NaN or Inf; invariants hold."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import manifres
from manifres.graph import laplacian

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
dtypes = st.sampled_from([torch.float32, torch.float64])
unit = st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=3).filter(
    lambda v: sum(a * a for a in v) > 1e-2
)


@SETTINGS
@given(dtype=dtypes, xs=unit, vs=unit, log_norm=st.floats(-30, 8))
def test_sphere_exp_any_norm_stays_on_the_sphere(dtype, xs, vs, log_norm):
    S = manifres.Sphere(2)
    x = S.proj_point(torch.tensor(xs, dtype=torch.float64)).to(dtype)
    v = S.proj(x, torch.tensor(vs, dtype=dtype))
    v = v / v.norm().clamp_min(1e-30) * 10.0**log_norm
    for y in (S.exp(x, v), S.retract(x, v, "projective")):
        assert torch.isfinite(y).all()
        assert abs(float(y.norm()) - 1) <= 4 * torch.finfo(dtype).eps


@SETTINGS
@given(dtype=dtypes, xs=unit, vs=unit, angle=st.floats(0, math.pi - 1e-2))
def test_sphere_log_exp_round_trip(dtype, xs, vs, angle):
    S = manifres.Sphere(2)
    x = S.proj_point(torch.tensor(xs, dtype=torch.float64))
    e = S.proj(x, torch.tensor(vs, dtype=torch.float64))
    if float(e.norm()) < 1e-3:
        return
    v = angle * e / e.norm()
    y = S.exp(x, v)
    out = S.log(x.to(dtype), y.to(dtype))
    assert torch.isfinite(out).all()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert torch.allclose(out.double(), v, atol=tol)


angles = st.one_of(st.floats(0, 1e-3), st.floats(math.pi - 1e-3, math.pi), st.floats(0, math.pi))


@SETTINGS
@given(dtype=dtypes, axis=unit, angle=angles)
def test_so3_log_exp_near_identity_and_pi(dtype, axis, angle):
    a = torch.tensor(axis, dtype=torch.float64)
    w = angle * a / a.norm()
    R = manifres.so3.exp(w).to(dtype)
    r = manifres.so3.log(R)
    assert torch.isfinite(r).all()
    assert float(r.norm()) <= math.pi + 4 * torch.finfo(dtype).eps
    back = manifres.so3.exp(r)
    tol = 2e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(back, R, atol=tol)
    SO = manifres.SpecialOrthogonal(3)
    assert bool(SO.is_point(back))


@SETTINGS
@given(
    dtype=dtypes,
    edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.floats(0, 10)), max_size=20),
    extra=st.integers(0, 3),
    normalization=st.sampled_from([None, "sym", "rw"]),
)
def test_laplacian_of_graphs_with_isolated_nodes(dtype, edges, extra, normalization):
    pairs = [(i, j, w) for i, j, w in edges if i != j]
    ei = torch.tensor(
        [
            [i for i, _, _ in pairs] + [j for _, j, _ in pairs],
            [j for _, j, _ in pairs] + [i for i, _, _ in pairs],
        ],
        dtype=torch.long,
    )
    ew = torch.tensor([w for *_, w in pairs] * 2, dtype=dtype)
    n = 8 + extra  # trailing isolated nodes
    L = laplacian(ei.reshape(2, -1), ew, num_nodes=n, normalization=normalization).to_dense()
    assert L.shape == (n, n) and torch.isfinite(L).all()
    if normalization != "rw":
        ev = torch.linalg.eigvalsh(L.double())
        assert float(ev.min()) >= -1e-5 * max(1.0, float(ev.abs().max()))
    if normalization is None:
        assert torch.allclose(
            L.sum(1), torch.zeros(n, dtype=dtype), atol=1e-4 if dtype == torch.float32 else 1e-10
        )


@pytest.mark.parametrize("n", [4, 5])
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0, 3.0))
def test_son_exp_log_round_trip(n, seed, t):
    M = manifres.SpecialOrthogonal(n)
    g = torch.Generator().manual_seed(seed)
    x = M.random(dtype=torch.float64, generator=g)
    v = M.random_tangent(x, generator=g)
    v = t * v / M.norm(x, v) * (2**0.5)  # largest plane angle <= t < pi
    y = M.exp(x, v)
    assert torch.isfinite(M.log(x, y)).all()
    assert torch.allclose(M.exp(x, M.log(x, y)), y, atol=1e-10)
