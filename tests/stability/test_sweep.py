import math

import pytest
import torch
from torch import nn

from manifres.errors import ShapeError, StabilityError, UnknownChoiceError
from manifres.stability import compare_plain_residual, scale_sweep
from manifres.stability._models import make_layers, plain_stack, residual_stack

from ._models import LinearRes, tanh_stack


def test_scale_sweep_restores_and_is_linear_for_linear_blocks(dtype):
    w = 0.5 * torch.randn(4, 4, dtype=dtype, generator=torch.Generator().manual_seed(0))
    stack = nn.Sequential(LinearRes(w, 0.3), LinearRes(w.mT.contiguous(), 0.3))
    x = torch.randn(3, 4, dtype=dtype)
    scales = [0.1, 0.5, 2.0]
    sweep = scale_sweep(stack, x, scales)
    assert [b.step for b in stack] == [0.3, 0.3]
    e = float(torch.linalg.matrix_norm(w.double(), ord=2))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(
        sweep.max_residual_norm.double(), torch.tensor(scales, dtype=torch.float64) * e, atol=tol * 10, rtol=0
    )
    torch.testing.assert_close(
        sweep.log_upper_bound.double(),
        2 * torch.log1p(torch.tensor(scales, dtype=torch.float64) * e),
        atol=tol * 10,
        rtol=0,
    )
    assert len(sweep.profiles) == 3 and sweep.steps.dtype == dtype


def test_scale_sweep_restores_tensor_scales_even_on_error():
    stack = tanh_stack(3, 2, 0.25, torch.float64, learn=True)
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ShapeError):
        scale_sweep(stack, x, [1.0], dense_limit=2)
    assert all(float(b.step.detach()) == 0.25 for b in stack)


def test_scale_sweep_with_a_factory_and_the_transition(dtype):
    def build(a):
        return tanh_stack(6, 8, a, dtype, seed=1)

    x = torch.randn(8, 6, dtype=dtype, generator=torch.Generator().manual_seed(1))
    sweep = scale_sweep(build, x, torch.logspace(-2, 1, 4))
    assert sweep.steps.shape == (4,)
    # small a: the end-to-end map is near the identity and gradients are aligned
    assert abs(float(sweep.log_sigma_max[0])) < 0.2
    assert float(sweep.mean_grad_cosine[0]) > 0.5
    assert float(sweep.anti_aligned_fraction[0]) == 0.0
    # growth with a, always below the Weyl product bound
    assert float(sweep.log_sigma_max[-1]) > float(sweep.log_sigma_max[0])
    assert (sweep.log_sigma_max <= sweep.log_upper_bound + 1e-6).all()
    assert float(sweep.mean_grad_cosine[-1]) < float(sweep.mean_grad_cosine[0])


def test_scale_sweep_errors():
    with pytest.raises(StabilityError, match="no layer of the residual-step protocol"):
        scale_sweep(nn.Sequential(nn.Tanh()), torch.zeros(2, 3), [1.0])
    with pytest.raises(ShapeError, match="empty"):
        scale_sweep(nn.Sequential(nn.Tanh()), torch.zeros(2, 3), [])


def test_compare_plain_residual_matches_direct_autograd(dtype):
    depths = (1, 3, 12)
    cmp = compare_plain_residual(depths, width=5, batch=3, dtype=dtype, seed=2)
    layers = make_layers(5, 12, "tanh", dtype, None, 2)
    x = torch.randn(3, 5, dtype=dtype, generator=torch.Generator().manual_seed(2 + 12345))
    g = torch.randn(3, 5, dtype=dtype, generator=torch.Generator().manual_seed(2))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for i, depth in enumerate(depths):
        for stack, got in (
            (plain_stack(layers[:depth]), cmp.plain_grad_norm[i]),
            (residual_stack(layers[:depth], 1.0), cmp.residual_grad_norm[i]),
        ):
            loss = (g * stack(x)).sum() / 3
            grads = torch.autograd.grad(loss, list(layers[0].parameters()))
            ref = torch.sqrt(sum((gg * gg).sum() for gg in grads))
            torch.testing.assert_close(got, ref.detach(), atol=0, rtol=tol * 10)
    assert cmp.depths == [1, 3, 12] and cmp.width == 5
    assert (cmp.plain_grad_norm[1:] < cmp.plain_grad_norm[:-1]).all()
    torch.testing.assert_close(
        cmp.plain_log10_grad_norm, torch.log10(cmp.plain_grad_norm), atol=tol * 10, rtol=0
    )


def test_compare_plain_residual_vanishing_at_depth():
    cmp = compare_plain_residual((10, 200), width=8, batch=4)
    assert float(cmp.plain_log10_grad_norm[1]) < -20
    assert float(cmp.residual_log10_grad_norm[1]) > -1
    assert all(math.isfinite(float(v)) for v in cmp.residual_log10_grad_norm)


def test_compare_plain_residual_errors():
    with pytest.raises(ShapeError):
        compare_plain_residual((), width=4)
    with pytest.raises(ShapeError):
        compare_plain_residual((0, 2), width=4)
    with pytest.raises(UnknownChoiceError, match="tanh"):
        compare_plain_residual((2,), width=4, activation="nonsense")
