"""Tests of manifres.nn.dense: the DenseNet block against the concatenations written out."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import DenseBlock
from manifres.nn.protocol import is_residual_step
from manifres.stability import depth_profile, jacobian_spectrum
from manifres.testing import tol


def _explicit(block, x, op, axis):
    """z_l = [z_{l-1}, W_l relu(z_{l-1}) + b_l], with the layers' weights read one by one."""
    z = x
    for layer in block.dense_layers:
        lin = layer[1]
        z = torch.cat([z, op(torch.relu(z), lin.weight, lin.bias)], dim=axis)
    if block.transition is not None:
        lin = block.transition[1]
        z = op(torch.relu(z), lin.weight, lin.bias)
    return z


@pytest.mark.parametrize("transition", [None, 3, 6])
def test_linear_equals_explicit_concatenation(dtype, transition):
    torch.manual_seed(0)
    block = DenseBlock(6, growth=4, layers=3, transition=transition).to(dtype)
    x = torch.randn(2, 5, 6, dtype=dtype)
    y = block(x)
    assert y.shape == (2, 5, block.out_features) and y.dtype == dtype
    assert block.out_features == (6 + 3 * 4 if transition is None else transition)
    torch.testing.assert_close(y, _explicit(block, x, F.linear, -1), atol=tol(dtype), rtol=0)
    if transition is None:
        assert torch.equal(y[..., :6], x)  # the input is carried unchanged


@pytest.mark.parametrize(
    "kind,shape,op",
    [
        ("conv1d", (2, 3, 7), lambda z, w, b: F.conv1d(z, w, b, padding="same")),
        ("conv2d", (2, 3, 4, 5), lambda z, w, b: F.conv2d(z, w, b, padding="same")),
    ],
)
def test_conv_equals_explicit_concatenation(dtype, kind, shape, op):
    torch.manual_seed(1)
    block = DenseBlock(3, growth=2, layers=3, kind=kind, transition=3).to(dtype)
    x = torch.randn(shape, dtype=dtype)
    torch.testing.assert_close(block(x), _explicit(block, x, op, 1), atol=tol(dtype), rtol=0)


def test_widths_and_parameters():
    block = DenseBlock(5, growth=3, layers=4)
    assert [layer[1].in_features for layer in block.dense_layers] == [5, 8, 11, 14]
    # sum_l (d + (l-1)k + 1) k
    assert sum(p.numel() for p in block.parameters()) == sum((5 + 3 * l + 1) * 3 for l in range(4))
    assert DenseBlock(5, 3, 0)(torch.ones(2, 5)).shape == (2, 5)
    assert not is_residual_step(block)
    assert "growth=3" in repr(block)


def test_reset_parameters_changes_weights():
    block = DenseBlock(3, 2, 2, transition=3)
    w = block.transition[1].weight.detach().clone()
    block.reset_parameters()
    assert not torch.equal(block.transition[1].weight, w)


def test_studies_of_dense_blocks():
    """Widening stacks: depth_profile with spectra=False; a square block: spectra apply."""
    torch.manual_seed(2)
    stack = nn.Sequential(DenseBlock(4, 2, 2), DenseBlock(8, 2, 2)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    prof = depth_profile(stack, x, spectra=False)
    assert torch.isfinite(prof.grad_norms).all() and prof.activation_norms.shape == (3,)
    with pytest.raises(ShapeError, match="spectra=False"):
        depth_profile(stack, x)
    square = DenseBlock(4, 2, 3, transition=4, activation="tanh").double()
    xs = torch.randn(4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(square, xs)
    spec = jacobian_spectrum(square, xs[None])
    torch.testing.assert_close(spec.sigma_max[0], torch.linalg.matrix_norm(jac, ord=2), atol=1e-12, rtol=0)


def test_errors():
    with pytest.raises(ParameterError):
        DenseBlock(4, 0, 2)
    with pytest.raises(ParameterError):
        DenseBlock(4, 2, -1)
    with pytest.raises(ParameterError):
        DenseBlock(4, 2, 2, transition=0)
    with pytest.raises(UnknownChoiceError):
        DenseBlock(4, 2, 2, kind="dense")
    with pytest.raises(ShapeError, match="N, 4, L"):
        DenseBlock(4, 2, 2, kind="conv1d")(torch.randn(2, 3, 5))
