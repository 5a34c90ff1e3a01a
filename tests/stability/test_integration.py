"""The stability tools on manifres' own layers (skipped while those are missing)."""

import pytest
import torch

import manifres
import manifres.nn as mnn
from manifres.stability import depth_profile, jacobian_spectrum, scale_sweep


def _need(*names):
    missing = [n for n in names if not hasattr(mnn, n)]
    if missing:
        pytest.skip(f"manifres.nn lacks {missing}")


def test_residual_block_closed_form(dtype):
    _need("Residual")
    lin = torch.nn.Linear(4, 4, bias=False, dtype=dtype)
    block = mnn.Residual(lin, step=0.3).to(dtype)
    x = torch.randn(3, 4, dtype=dtype)
    spec = jacobian_spectrum(block, x)
    ref = torch.linalg.svdvals(torch.eye(4, dtype=torch.float64) + 0.3 * lin.weight.detach().double())
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(spec.singular_values[0].double(), ref, atol=tol, rtol=0)


def test_residual_mlp_profile_and_sweep(dtype):
    _need("residual_mlp", "Residual")
    torch.manual_seed(0)
    model = mnn.residual_mlp(6, 3).to(dtype)
    x = torch.randn(4, 6, dtype=dtype)
    prof = depth_profile(model, x)
    assert prof.depth == 3 and torch.isfinite(prof.step_grads).all() and prof.bound_holds.all()
    before = [b.step.detach().clone() for b in model]
    sweep = scale_sweep(model, x, [0.1, 1.0])
    assert all(torch.equal(b.step, s) for b, s in zip(model, before, strict=True))
    assert float(sweep.max_residual_norm[1]) > float(sweep.max_residual_norm[0])


def test_tangent_residual_on_the_sphere(dtype):
    _need("TangentResidual", "LinearField")
    S = manifres.Sphere(2)
    a = torch.randn(3, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    layer = mnn.TangentResidual(S, mnn.LinearField(a), step=0.2)
    x = S.random(4, dtype=dtype, generator=torch.Generator().manual_seed(1))
    spec = jacobian_spectrum(layer, x)  # the manifold comes from layer.manifold
    assert spec.dim == 2 and spec.singular_values.shape == (4, 2)
    small = jacobian_spectrum(mnn.TangentResidual(S, mnn.LinearField(a), step=1e-3), x)
    assert float(small.residual_norm.max()) < 1e-2
