"""Tests of manifres.nn.multibranch: the ResNeXt block against C explicitly separate branches."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import MultiBranchResidual
from manifres.nn.protocol import is_residual_step
from manifres.stability import depth_profile, jacobian_spectrum, scale_sweep
from manifres.testing import tol


def _explicit_linear(block, x):
    """sum_k U_k relu(T_k relu(D_k x + d_k) + t_k) + u, with C separate slices of the weights."""
    reduce, _, transform, _, expand = block.branch
    b = block.width
    total = expand.bias.expand(x.shape[:-1] + (block.features,))
    for k in range(block.cardinality):
        s = slice(k * b, (k + 1) * b)
        h = torch.relu(x @ reduce.weight[s].T + reduce.bias[s])
        h = torch.relu(h @ transform.weight[k].T + transform.bias[s])
        total = total + h @ expand.weight[:, s].T
    return x + block.step.to(x.dtype) * total


def _explicit_conv(block, x, conv):
    reduce, _, transform, _, expand = block.branch
    b = block.width
    total = 0
    for k in range(block.cardinality):
        s = slice(k * b, (k + 1) * b)
        h = torch.relu(conv(x, reduce.weight[s], reduce.bias[s]))
        h = torch.relu(conv(h, transform.weight[s], transform.bias[s], padding="same"))
        total = total + conv(h, expand.weight[:, s])
    bias = expand.bias.reshape((1, -1) + (1,) * (x.dim() - 2))
    return x + block.step.to(x.dtype) * (total + bias)


@pytest.mark.parametrize("cardinality,width", [(1, 6), (4, 3), (8, 1)])
def test_linear_equals_explicit_sum_of_branches(dtype, cardinality, width):
    torch.manual_seed(0)
    block = MultiBranchResidual(5, cardinality, width, step=0.7).to(dtype)
    x = torch.randn(2, 3, 5, dtype=dtype)
    y = block(x)
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y, _explicit_linear(block, x), atol=tol(dtype), rtol=0)


@pytest.mark.parametrize(
    "kind,shape,conv", [("conv1d", (2, 6, 9), F.conv1d), ("conv2d", (2, 6, 5, 4), F.conv2d)]
)
def test_conv_equals_explicit_sum_of_branches(dtype, kind, shape, conv):
    torch.manual_seed(1)
    block = MultiBranchResidual(6, 3, 2, kind=kind, kernel_size=3, step=0.4).to(dtype)
    assert block.branch[2].groups == 3
    x = torch.randn(shape, dtype=dtype)
    torch.testing.assert_close(block(x), _explicit_conv(block, x, conv), atol=tol(dtype), rtol=0)
    assert block.sample_ndim == len(shape) - 1


@pytest.mark.parametrize(
    "kind,kernel_size", [("linear", 3), ("conv1d", 3), ("conv2d", 3), ("conv2d", 1), ("conv1d", 5)]
)
@pytest.mark.parametrize("bias", [True, False])
def test_count_parameters_matches_the_module(kind, kernel_size, bias):
    block = MultiBranchResidual(7, 4, 3, kind=kind, kernel_size=kernel_size, bias=bias)
    count = MultiBranchResidual.count_parameters(7, 4, 3, kind, kernel_size, bias)
    assert count == sum(p.numel() for p in block.parameters())


def test_protocol_and_step_gradient(dtype):
    """forward == forward_with_step(x, step); dL/dh = <dL/dy, F(x)> (the residual identity)."""
    torch.manual_seed(2)
    block = MultiBranchResidual(4, 2, 3, step=0.5, learn_step=True).to(dtype)
    assert is_residual_step(block) and block.manifold is None and block.sample_ndim == 1
    assert isinstance(block.step, nn.Parameter)
    x = torch.randn(6, 4, dtype=dtype)
    torch.testing.assert_close(block(x), block.forward_with_step(x, 0.5), atol=tol(dtype), rtol=0)
    g = torch.randn(6, 4, dtype=dtype)
    (gs,) = torch.autograd.grad((g * block(x)).sum(), block.step)
    expected = (g * (_explicit_linear(block, x) - x)).sum() / block.step.detach()
    torch.testing.assert_close(gs.to(dtype), expected, atol=tol(dtype) * 10, rtol=tol(dtype))


def test_step_zero_is_identity_and_reset():
    block = MultiBranchResidual(4, 2, 2, step=0.0)
    x = torch.randn(3, 4)
    assert torch.equal(block(x), x)
    w = block.branch[0].weight.detach().clone()
    block.reset_parameters()
    assert not torch.equal(block.branch[0].weight, w)
    assert "cardinality=2" in repr(block) and "step=0" in repr(block)


def test_jacobian_spectrum_is_identity_plus_step_branch():
    """The study's eigenvalues are those of I + h J_F, J_F by torch.autograd.functional."""
    torch.manual_seed(3)
    block = MultiBranchResidual(5, 3, 2, step=0.3, activation="tanh").double()
    x = torch.randn(5, dtype=torch.float64)
    jf = torch.autograd.functional.jacobian(block.branch, x)
    ref = torch.linalg.eigvals(torch.eye(5, dtype=torch.float64) + 0.3 * jf)
    got = jacobian_spectrum(block, x[None]).eigenvalues[0]
    key = lambda e: sorted(zip(e.real.tolist(), e.imag.tolist(), strict=True))  # noqa: E731
    torch.testing.assert_close(torch.tensor(key(got)), torch.tensor(key(ref)), atol=1e-10, rtol=0)


def test_conv_block_in_depth_profile_step_grads():
    """A stack of conv blocks: sample_ndim=2 is read from the layers; step grads equal autograd."""
    torch.manual_seed(4)
    stack = nn.Sequential(*[MultiBranchResidual(3, 2, 2, kind="conv1d", step=0.5) for _ in range(3)]).double()
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    prof = depth_profile(stack, x)
    assert prof.dim == 18 and bool(prof.bound_holds.all())
    steps = [nn.Parameter(torch.tensor(0.5, dtype=torch.float64)) for _ in stack]
    y = x
    for layer, p in zip(stack, steps, strict=True):
        y = layer.forward_with_step(y, p)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = torch.autograd.grad((g * y).sum() / y.shape[0], steps)
    torch.testing.assert_close(prof.step_grads, torch.stack(ref), atol=1e-12, rtol=1e-10)


def test_errors():
    with pytest.raises(ParameterError):
        MultiBranchResidual(4, 0, 2)
    with pytest.raises(ParameterError):
        MultiBranchResidual(4, 2, 2, step=torch.ones(4))
    with pytest.raises(UnknownChoiceError, match="kind"):
        MultiBranchResidual(4, 2, 2, kind="conv3d")
    with pytest.raises(ShapeError, match=r"\(\.\.\., 4\)"):
        MultiBranchResidual(4, 2, 2)(torch.randn(3, 5))
    with pytest.raises(ShapeError, match="N, 4, H, W"):
        MultiBranchResidual(4, 2, 2, kind="conv2d")(torch.randn(3, 4, 5))


def test_scale_sweep_residual_norm_is_linear_in_the_step():
    """One block at fixed inputs: ||J - I|| = h ||J_F(x)||, J_F independent of h."""
    torch.manual_seed(5)
    stack = nn.Sequential(MultiBranchResidual(4, 2, 3, activation="tanh")).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    sweep = scale_sweep(stack, x, [0.25, 0.5, 1.0])
    torch.testing.assert_close(sweep.max_residual_norm / sweep.steps, sweep.max_residual_norm[2].expand(3))
