import math

import pytest
import torch
from torch import nn

from manifres.errors import DTypeError, ShapeError
from manifres.stability import depth_profile, lyapunov_exponents, stack_layers

from ._models import Res, tanh_stack


def _direct(stack, x, seed=0):
    """Reference: one autograd pass with the default loss <g, y>/B."""
    g = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    xs = x.detach().requires_grad_(True)
    hs = [xs]
    for layer in stack:
        hs.append(layer(hs[-1]))
        hs[-1].retain_grad()
    loss = (g * hs[-1]).sum() / x.shape[0]
    params = [list(layer.parameters()) for layer in stack]
    grads = torch.autograd.grad(loss, [p for ps in params for p in ps] + hs, allow_unused=True)
    return grads, params, hs


def test_scale_gradient_formula_matches_autograd(dtype):
    # dL/da_l = <dL/dy_l, F_l(x_l)>
    stack = tanh_stack(5, 4, 0.6, dtype, learn=True)
    x = torch.randn(7, 5, dtype=dtype, generator=torch.Generator().manual_seed(1))
    prof = depth_profile(stack, x)
    g = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    loss = (g * stack(x)).sum() / 7
    ref = torch.stack(torch.autograd.grad(loss, [b.step for b in stack]))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(prof.step_grads, ref.detach(), atol=tol, rtol=tol)
    assert all(p.grad is None for p in stack.parameters())  # nothing written to .grad


def test_gradient_norms_match_direct_autograd(dtype):
    stack = tanh_stack(6, 5, 0.8, dtype)
    x = torch.randn(4, 6, dtype=dtype, generator=torch.Generator().manual_seed(2))
    prof = depth_profile(stack, x)
    grads, params, hs = _direct(stack, x)
    k = 0
    ref_norms, ref_flat = [], []
    for ps in params:
        gs = grads[k : k + len(ps)]
        k += len(ps)
        flat = torch.cat([gg.reshape(-1) for gg in gs])
        ref_flat.append(flat)
        ref_norms.append(torch.linalg.vector_norm(flat))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(prof.grad_norms, torch.stack(ref_norms), atol=0, rtol=tol * 10)
    torch.testing.assert_close(
        prof.log10_grad_norms, torch.log10(torch.stack(ref_norms)), atol=tol * 10, rtol=0
    )
    act = torch.stack([torch.linalg.vector_norm(gg) for gg in grads[k:]])
    torch.testing.assert_close(prof.activation_grad_norms, act, atol=0, rtol=tol * 10)
    cos = torch.stack(
        [torch.dot(ref_flat[i], ref_flat[i + 1]) / (ref_norms[i] * ref_norms[i + 1]) for i in range(4)]
    )
    torch.testing.assert_close(prof.grad_cosines, cos, atol=tol * 10, rtol=0)
    assert prof.activation_norms.shape == (6,) and prof.forward_gain.shape == (5,)


def test_zero_initialised_linear_residual_stack_has_identical_gradients(dtype):
    # y = prod(I + W_l) x with W_l = 0: every block gets dL/dW_l = g x^T / B
    d, depth = 4, 6
    stack = nn.Sequential(*[Res(nn.Linear(d, d, bias=False, dtype=dtype), 1.0) for _ in range(depth)])
    for b in stack:
        nn.init.zeros_(b.branch.weight)
    x = torch.randn(3, d, dtype=dtype, generator=torch.Generator().manual_seed(3))
    prof = depth_profile(stack, x)
    grads, _, _ = _direct(stack, x)
    for gg in grads[:depth]:
        torch.testing.assert_close(gg, grads[0], atol=0, rtol=0)
    assert torch.allclose(prof.grad_norms, prof.grad_norms[0].expand(depth))
    torch.testing.assert_close(prof.grad_cosines, torch.ones(depth - 1, dtype=dtype), atol=1e-6, rtol=0)
    # the Jacobian of every block is exactly I: bounds are equalities
    assert torch.equal(prof.residual_norms, torch.zeros(depth, dtype=dtype))
    torch.testing.assert_close(prof.log_sigma_max, torch.zeros(3, dtype=dtype), atol=1e-6, rtol=0)
    assert prof.bound_holds.all()


def test_product_bound_and_end_to_end_singular_values(dtype):
    stack = tanh_stack(5, 6, 0.5, torch.float64, seed=4)
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    prof = depth_profile(stack.to(dtype), x.to(dtype))
    stack.double()
    assert prof.bound_holds.all()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for b in range(3):
        j = torch.autograd.functional.jacobian(stack, x[b])
        sv = torch.linalg.svdvals(j)
        assert abs(float(prof.log_sigma_max[b]) - math.log(sv[0])) <= tol
        assert abs(float(prof.log_sigma_min[b]) - math.log(sv[-1])) <= tol
        es = []
        h = x[b]
        for layer in stack:
            jl = torch.autograd.functional.jacobian(layer, h)
            es.append(float(torch.linalg.matrix_norm(jl - torch.eye(5, dtype=torch.float64), ord=2)))
            h = layer(h)
        assert abs(float(prof.log_upper_bound[b]) - sum(math.log1p(e) for e in es)) <= tol


def test_underflowing_plain_stack_keeps_finite_logs(dtype):
    # a plain tanh stack with small weights: the first-layer gradient underflows in float32
    g = torch.Generator().manual_seed(0)
    layers = []
    for _ in range(60):
        lin = nn.Linear(4, 4, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(0.05 * torch.randn(4, 4, generator=g, dtype=dtype))
            lin.bias.zero_()
        layers.append(nn.Sequential(lin, nn.Tanh()))
    x = torch.randn(2, 4, dtype=dtype, generator=g)
    prof = depth_profile(layers, x, spectra=False)
    assert torch.isfinite(prof.log10_grad_norms).all()
    assert float(prof.log10_grad_norms[0]) < -60
    if dtype == torch.float32:
        assert float(prof.grad_norms[0]) == 0.0
    assert torch.isnan(prof.log_sigma_max).all() and torch.isnan(prof.residual_norms).all()


def test_forward_gain_of_linear_layers(dtype):
    # two layers h -> 2 h then h -> 0.5 h: gains 2 and 0.5 exactly
    prof = depth_profile([lambda h: 2.0 * h, lambda h: 0.5 * h], torch.randn(3, 4, dtype=dtype))
    torch.testing.assert_close(prof.forward_gain, torch.tensor([2.0, 0.5], dtype=dtype))
    assert torch.isnan(prof.grad_norms).all()  # no parameters
    assert torch.isnan(prof.step_grads).all()  # no residual blocks


def test_shape_changing_layers_need_spectra_off(dtype):
    model = nn.Sequential(nn.Linear(4, 3, dtype=dtype), nn.Tanh(), nn.Linear(3, 2, dtype=dtype))
    x = torch.randn(5, 4, dtype=dtype)
    with pytest.raises(ShapeError, match="spectra=False"):
        depth_profile(model, x)
    prof = depth_profile(model, x, spectra=False)
    assert prof.depth == 3 and torch.isfinite(prof.log10_grad_norms[[0, 2]]).all()
    assert torch.isnan(prof.grad_cosines).all()  # different parameter shapes


def test_lyapunov_exponents_of_a_constant_diagonal_stack(dtype):
    d = torch.tensor([3.0, 1.5, 0.5, 0.1], dtype=dtype)
    # the QR method converges like 1/L from a random start frame
    stack = [lambda h: h * d] * 150
    lyap = lyapunov_exponents(stack, torch.randn(2, 4, dtype=dtype))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(lyap.exponents, torch.log(d), atol=0.02, rtol=0)
    # the sum of exponents is the mean log |det| per layer, exactly
    assert abs(float(lyap.exponents.sum()) - float(torch.log(d).sum())) <= 100 * tol
    assert lyap.cumulative.shape == (150, 4) and lyap.depth == 150


def test_lyapunov_sum_equals_log_det(dtype):
    stack = tanh_stack(4, 5, 0.7, torch.float64, seed=9)
    x = torch.randn(1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    lyap = lyapunov_exponents(stack.to(dtype), x.to(dtype))
    stack.double()
    j = torch.autograd.functional.jacobian(stack, x[0])
    ref = float(torch.linalg.slogdet(j).logabsdet) / 5
    tol = 1e-5 if dtype == torch.float32 else 1e-11
    assert abs(float(lyap.exponents.sum()) - ref) <= tol
    top = lyapunov_exponents(stack.to(dtype), x.to(dtype), k=1)
    assert top.exponents.shape == (1,)


def test_depth_errors():
    with pytest.raises(DTypeError):
        depth_profile(nn.Tanh(), torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ShapeError):
        lyapunov_exponents(nn.Tanh(), torch.zeros(2, 3), k=4)
    with pytest.raises(ShapeError, match="keep the shape"):
        lyapunov_exponents(nn.Linear(3, 2), torch.zeros(2, 3))
    assert len(stack_layers(nn.ModuleList([nn.Tanh()] * 3))) == 3

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Tanh(), nn.Tanh()])

    assert len(stack_layers(Holder())) == 2


def test_layer_ignoring_its_input_keeps_parameter_gradients(dtype):
    class Const(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.ones(3, dtype=dtype))

        def forward(self, h):
            return self.b.expand_as(h)

    prof = depth_profile([Const()], torch.randn(2, 3, dtype=dtype))
    assert torch.isfinite(prof.log10_grad_norms).all()
    assert float(prof.activation_grad_norms[0]) == 0.0
