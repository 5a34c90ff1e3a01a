"""Tests of manifres.stability.saved_activation_bytes against hand-counted saved tensors."""

import torch
from torch import nn

from manifres.nn import DenseBlock, Residual
from manifres.stability import saved_activation_bytes


def test_hand_counted_primitives(dtype):
    """mm saves the operand the other's gradient needs; exp and tanh save their outputs."""
    size = torch.finfo(dtype).bits // 8
    w = torch.randn(4, 5, dtype=dtype, requires_grad=True)
    x = torch.randn(3, 4, dtype=dtype)
    assert saved_activation_bytes(lambda z: torch.exp(z @ w), x) == (3 * 4 + 3 * 5) * size
    # exp's output is saved twice (by exp, then by the product) and counts once; the product
    # also saves its other operand w.sum(0)
    assert saved_activation_bytes(lambda z: torch.exp(z @ w) * w.sum(0), x) == (3 * 4 + 3 * 5 + 5) * size
    assert saved_activation_bytes(lambda z: torch.exp(z), x) == 0  # nothing requires grad


def test_parameters_are_not_activations(dtype):
    size = torch.finfo(dtype).bits // 8
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh()).to(dtype)
    x = torch.randn(3, 4, dtype=dtype, requires_grad=True)  # the weight is saved too: excluded
    assert saved_activation_bytes(model, x) == (3 * 4 + 3 * 6) * size


def test_concatenation_saves_every_concatenation():
    """A dense block's layer l reads relu([x, y_1 .. y_{l-1}]): relu saves its output, which is
    the linear map's input, so L tensors of growing width d + (l - 1) k are saved."""
    d, k, L, b = 4, 3, 3, 2
    block = DenseBlock(d, growth=k, layers=L)
    x = torch.randn(b, d)
    widths = [d + l * k for l in range(L)]
    # relu saves its output (the linear map's input): one tensor a layer; the concatenations
    # themselves are not saved (cat's backward only slices)
    assert saved_activation_bytes(block, x) == sum(b * w * 4 for w in widths)
    # a residual block saves relu's output and its step (cast to float32: not the buffer itself)
    res = nn.Sequential(*[Residual(nn.Sequential(nn.ReLU(), nn.Linear(d, d))) for _ in range(L)])
    assert saved_activation_bytes(res, x) == L * (b * d + 1) * 4
