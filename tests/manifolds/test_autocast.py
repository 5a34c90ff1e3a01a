"""Manifold kernels under torch.autocast and with float16/bfloat16 inputs: they compute in
the dtype of their float32 inputs (autocast off inside), or raise a DTypeError that names the
user's argument; a residual layer whose field runs under autocast steps in float32."""

from __future__ import annotations

import re

import pytest
import torch

from manifres import SpecialOrthogonal, so3
from manifres.errors import DTypeError
from manifres.manifolds import Euclidean, Sphere
from manifres.nn import AmbientMLPField, TangentResidualStack


def _calls(n: int, dtype: torch.dtype = torch.float32):
    G = SpecialOrthogonal(n)
    g = torch.Generator().manual_seed(n)
    X = G.random(5, generator=g)
    Y = G.random(5, generator=g)
    V = G.proj(X, torch.randn(5, n, n, generator=g))
    X, Y, V = X.to(dtype), Y.to(dtype), V.to(dtype)
    calls = {
        "exp": lambda: G.exp(X, V),
        "log": lambda: G.log(X, Y),
        "dist": lambda: G.dist(X, Y),
        "angle": lambda: G.angle(X, Y),
        "proj": lambda: G.proj(X, V),
        "proj_point": lambda: G.proj_point(Y + 0.1 * V),
        "transport": lambda: G.transport(X, Y, V),
    }
    for m in G.retractions:
        calls[f"retract_{m}"] = lambda m=m: G.retract(X, V, m)
    return calls


@pytest.mark.parametrize("n", [2, 3, 4])
def test_autocast_bfloat16_computes_in_float32(n):
    calls = _calls(n)
    ref = {k: c() for k, c in calls.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for k, c in calls.items():
            out = c()
            assert out.dtype == torch.float32, k
            torch.testing.assert_close(out, ref[k], rtol=0, atol=0, msg=k)


def test_so3_functions_under_autocast():
    v = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    R = so3.exp(v)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert so3.exp(v).dtype == torch.float32
        torch.testing.assert_close(so3.log(so3.exp(v)), so3.log(R), rtol=0, atol=0)
        assert so3.to_quaternion(R).dtype == torch.float32


_USER_ARGS = {"x", "y", "v", "u"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("autocast", [False, True])
def test_half_inputs_raise_a_named_dtype_error(n, dtype, autocast):
    calls = _calls(n, dtype)
    for k, c in calls.items():
        on = torch.autocast("cpu", dtype=torch.bfloat16)
        ctx = on if autocast else torch.autocast("cpu", enabled=False)
        with ctx, pytest.raises(DTypeError) as info:
            c()
        msg = str(info.value)
        named = re.match(r"(\w+) has dtype", msg)
        assert named is not None and named.group(1) in _USER_ARGS, (k, msg)
        assert "float32" in msg


@pytest.mark.parametrize("M", [Sphere(3), Euclidean(4)], ids=repr)
def test_sphere_and_euclidean_under_autocast(M):
    g = torch.Generator().manual_seed(1)
    x = M.random(6, generator=g)
    y = M.random(6, generator=g)
    v = M.random_tangent(x, generator=g)
    calls = {
        "exp": lambda: M.exp(x, v),
        "log": lambda: M.log(x, y),
        "dist": lambda: M.dist(x, y),
        "transport": lambda: M.transport(x, y, v),
        "inner": lambda: M.inner(x, v, v),
    }
    ref = {k: c() for k, c in calls.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for k, c in calls.items():
            out = c()
            assert out.dtype == torch.float32, k
            torch.testing.assert_close(out, ref[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("M", [Sphere(4), SpecialOrthogonal(3)], ids=repr)
def test_residual_layer_with_an_autocast_field_steps_in_float32(M):
    torch.manual_seed(0)
    layer = TangentResidualStack(M, [AmbientMLPField(M, hidden=16) for _ in range(4)], step=0.3)
    x = M.random(8)
    ref = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)  # the MLP's matmuls in bfloat16, the steps in float32
    assert out.dtype == torch.float32
    assert bool(M.is_point(out, atol=1e-5).all())
    torch.testing.assert_close(out, ref, rtol=0, atol=0.05)
    out.sum().backward()
