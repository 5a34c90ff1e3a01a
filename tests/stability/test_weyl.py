import json

import pytest
import torch

from manifres.errors import DTypeError, ShapeError
from manifres.stability import weyl_band

from ._models import LinearRes, tanh_stack


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_weyl_bound_never_violated_on_random_matrices(dtype, n):
    g = torch.Generator().manual_seed(n)
    count = 400
    base = torch.randn(count, n, n, dtype=torch.float64, generator=g)
    fams = [base, 0.5 * (base + base.mT), 0.5 * (base - base.mT), base[..., :, :1] @ base[..., :1, :]]
    w = torch.cat(fams)
    scales = torch.logspace(-6, 1, w.shape[0], dtype=torch.float64)
    w = w / torch.linalg.matrix_norm(w, ord=2).clamp(min=1e-300)[:, None, None] * scales[:, None, None]
    band = weyl_band(w.to(dtype))
    assert band.all_hold
    # independent reference in float64: e and the extreme singular values
    e = torch.linalg.matrix_norm(w, ord=2)
    sv = torch.linalg.svdvals(torch.eye(n, dtype=torch.float64) + w)
    assert (sv[:, -1] >= 1 - e - 1e-12).all() and (sv[:, 0] <= 1 + e + 1e-12).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(band.epsilon.double(), e, atol=tol * 10, rtol=tol)
    torch.testing.assert_close(band.sigma_max.double(), sv[:, 0], atol=tol * 10, rtol=tol)


def test_symmetric_matrices_attain_the_band(dtype):
    # W = diag(e, -e): sigma(I + W) = {1 + e, 1 - e}, both ends of the band
    w = torch.diag(torch.tensor([0.25, -0.25], dtype=dtype))
    band = weyl_band(w)
    assert float(band.sigma_max) == pytest.approx(1.25, abs=1e-6)
    assert float(band.sigma_min) == pytest.approx(0.75, abs=1e-6)
    assert band.all_hold
    assert band.holds.dtype == torch.bool and band.epsilon.shape == ()
    json.dumps(band.to_dict(), allow_nan=False)


def test_closed_form_for_a_nilpotent_residual(dtype):
    # I + [[0, t], [0, 0]] has singular values sqrt(1 + t^2/4) +- t/2; e = t
    t = 0.5
    band = weyl_band(torch.tensor([[0.0, t], [0.0, 0.0]], dtype=dtype))
    root = (1 + t * t / 4) ** 0.5
    assert float(band.sigma_max) == pytest.approx(root + t / 2, abs=1e-6)
    assert float(band.sigma_min) == pytest.approx(root - t / 2, abs=1e-6)
    assert float(band.epsilon) == pytest.approx(t, abs=1e-6)


def test_block_band_matches_the_matrix_band_for_linear_blocks(dtype):
    w = 0.2 * torch.randn(6, 6, dtype=dtype, generator=torch.Generator().manual_seed(0))
    a = 0.7
    x = torch.randn(3, 6, dtype=dtype)
    blk = weyl_band(LinearRes(w, a), x)
    mat = weyl_band(a * w)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert blk.epsilon.shape == (3,)
    torch.testing.assert_close(blk.epsilon, mat.epsilon.expand(3), atol=tol, rtol=0)
    torch.testing.assert_close(blk.sigma_min, mat.sigma_min.expand(3), atol=tol, rtol=0)
    free = weyl_band(LinearRes(w, a), x, method="matrix_free", steps=6)
    torch.testing.assert_close(free.sigma_max, mat.sigma_max.expand(3), atol=10 * tol, rtol=0)


def test_nonlinear_block_band_holds(dtype):
    stack = tanh_stack(8, 3, 1.5, dtype)
    x = torch.randn(16, 8, dtype=dtype, generator=torch.Generator().manual_seed(1))
    for block in stack:
        assert weyl_band(block, x).all_hold


def test_weyl_errors():
    with pytest.raises(ShapeError):
        weyl_band(torch.zeros(3, 4))
    with pytest.raises(ShapeError):
        weyl_band(torch.zeros(3))
    with pytest.raises(ShapeError, match="needs the points"):
        weyl_band(lambda z: z)
    with pytest.raises(ShapeError, match="only used with a block"):
        weyl_band(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(DTypeError):
        weyl_band(torch.zeros(2, 2, dtype=torch.int32))
