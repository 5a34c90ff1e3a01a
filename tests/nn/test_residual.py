"""Tests of manifres.nn.residual: Euclidean residual blocks, dead zone, stacks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import manifres
from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import (
    BottleneckResidual,
    DeadZoneResidual,
    LinearShortcut,
    PostActResidual,
    PreActResidual,
    Residual,
    ReZero,
    plain_mlp,
    residual_mlp,
    soft_threshold,
)
from manifres.testing import tol


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- Residual
def test_exported():
    for name in ["Residual", "ReZero", "DeadZoneResidual", "residual_mlp", "plain_mlp"]:
        assert name in manifres.nn.__all__


def test_residual_formula_and_attributes(dtype):
    torch.manual_seed(0)
    fn = nn.Linear(4, 4)
    block = Residual(fn, step=0.25).to(dtype)
    x = torch.randn(5, 4, dtype=dtype)
    y = block(x)
    assert y.dtype == dtype
    assert block.branch is fn and isinstance(block.shortcut, nn.Identity)
    assert "step" in dict(block.named_buffers()) and not isinstance(block.step, nn.Parameter)
    torch.testing.assert_close(y, x + 0.25 * fn(x), atol=tol(dtype), rtol=0)
    torch.testing.assert_close(block.branch(x), fn(x), atol=0, rtol=0)


def test_learn_scale_is_parameter():
    block = Residual(nn.Linear(2, 2), step=0.5, learn_step=True)
    assert isinstance(block.step, nn.Parameter)
    assert any(p is block.step for p in block.parameters())
    assert "step=0.5" in repr(block) and "learn_step=True" in repr(block)


def test_scale_float32_buffer_keeps_input_dtype():
    """A 0-d float32 scale does not promote float64 activations (and vice versa)."""
    block = Residual(nn.Identity(), step=0.25)
    x = torch.randn(3, dtype=torch.float64)
    assert block(x).dtype == torch.float64
    assert torch.equal(block(x), x + 0.25 * x)


_SHAPES = [
    ("vector", (7,), lambda: nn.Tanh()),
    ("batch", (3, 5), lambda: nn.Sequential(nn.Linear(5, 5), nn.Tanh())),
    ("batch3", (2, 3, 4), lambda: nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))),
    ("nchw", (2, 3, 4, 4), lambda: nn.Conv2d(3, 3, 3, padding=1)),
]


@pytest.mark.parametrize("case", _SHAPES, ids=[c[0] for c in _SHAPES])
def test_scale_gradient_is_inner_product(dtype, case):
    """dL/da = <dL/dy, F(x)> for a learnable scalar scale (against autograd)."""
    _, shape, make = case
    torch.manual_seed(1)
    block = Residual(make(), step=0.7, learn_step=True).to(dtype)
    x = torch.randn(shape, dtype=dtype)
    w = torch.randn(shape, dtype=dtype)
    y = block(x)
    y.retain_grad()
    loss = (w * torch.sin(y)).sum() + (y**2).mean()
    loss.backward()
    expected = (y.grad * block.branch(x)).sum()
    torch.testing.assert_close(block.step.grad, expected.detach(), atol=tol(dtype, 1e-5, 1e-12), rtol=1e-5)


def test_per_channel_scale_gradient(dtype):
    torch.manual_seed(2)
    a = torch.tensor([0.1, 0.2, 0.3], dtype=dtype)
    block = Residual(nn.Linear(3, 3), step=a, learn_step=True).to(dtype)
    x = torch.randn(6, 3, dtype=dtype)
    y = block(x)
    y.retain_grad()
    (y**3).sum().backward()
    expected = (y.grad * block.branch(x)).sum(0)
    torch.testing.assert_close(block.step.grad, expected.detach(), atol=tol(dtype, 1e-5), rtol=1e-5)
    assert "Tensor(3,)" in repr(block)


def test_linear_shortcut_when_features_change(dtype):
    torch.manual_seed(3)
    fn = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
    block = Residual(fn, shortcut="linear").to(dtype)
    assert isinstance(block.shortcut, LinearShortcut)
    x = torch.randn(2, 5, 4, dtype=dtype)
    y = block(x)
    assert y.shape == (2, 5, 6)
    W = block.shortcut.linear.weight
    torch.testing.assert_close(y, x @ W.T + fn(x), atol=tol(dtype, 1e-5), rtol=0)
    # same features: the identity
    assert isinstance(Residual(nn.Linear(4, 4), shortcut="linear").shortcut, nn.Identity)


def test_linear_shortcut_nchw_is_1x1_conv(dtype):
    torch.manual_seed(4)
    fn = nn.Conv2d(3, 5, 3, padding=1)
    block = Residual(fn, shortcut="linear", feature_dim=1).to(dtype)
    x = torch.randn(2, 3, 6, 6, dtype=dtype)
    W = block.shortcut.linear.weight  # (5, 3)
    expected = F.conv2d(x, W[:, :, None, None]) + fn(x)
    torch.testing.assert_close(block(x), expected, atol=tol(dtype, 1e-5), rtol=1e-5)


def test_explicit_features_and_module_shortcut():
    fn = nn.Sequential(nn.Tanh(), nn.Tanh())  # no declared features
    block = Residual(fn, shortcut="linear", features=(3, 3))
    assert isinstance(block.shortcut, nn.Identity)
    proj = nn.Linear(3, 2, bias=False)
    block = Residual(nn.Linear(3, 2), shortcut=proj)
    assert block.shortcut is proj and block(torch.randn(4, 3)).shape == (4, 2)


def test_shape_error_names_shapes():
    block = Residual(nn.Linear(4, 6))
    with pytest.raises(ShapeError, match=r"\(2, 6\).*\(2, 4\).*shortcut='linear'"):
        block(torch.randn(2, 4))
    with pytest.raises(ShapeError, match="features"):
        Residual(nn.Tanh(), shortcut="linear")
    with pytest.raises(ShapeError, match="size 3"):
        LinearShortcut(3, 4)(torch.randn(2, 5))


def test_scale_not_broadcastable_raises():
    for scale in [torch.ones(2, 3), torch.ones(4)]:
        block = Residual(nn.Linear(3, 3), step=scale)
        with pytest.raises(ShapeError, match="broadcast"):
            block(torch.randn(3))
    with pytest.raises(ShapeError, match="axis 1"):
        LinearShortcut(3, 4, dim=1)(torch.randn(3))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, torch.tensor([1.0, math.nan])])
def test_non_finite_scale_raises(bad):
    with pytest.raises(ParameterError, match="finite"):
        Residual(nn.Identity(), step=bad)


def test_bad_arguments():
    with pytest.raises(UnknownChoiceError, match="identity, linear"):
        Residual(nn.Identity(), shortcut="conv")
    with pytest.raises(ParameterError, match="number"):
        Residual(nn.Identity(), step="big")
    with pytest.raises(TypeError, match="nn.Module"):
        Residual(torch.tanh)


def test_reset_parameters_restores_scale():
    torch.manual_seed(5)
    block = Residual(nn.Linear(3, 3), step=0.5, learn_step=True)
    w0 = block.branch.weight.detach().clone()
    with torch.no_grad():
        block.step.fill_(3.0)
    block.reset_parameters()
    assert float(block.step.detach()) == 0.5
    assert not torch.equal(block.branch.weight, w0)


# ---------------------------------------------------------------------------- variants
def test_rezero_starts_as_identity_and_learns(dtype):
    torch.manual_seed(6)
    block = ReZero(nn.Sequential(nn.Linear(4, 4), nn.Tanh())).to(dtype)
    x = torch.randn(8, 4, dtype=dtype)
    x[0, 0] = -0.0
    y = block(x)
    assert torch.equal(y.view(-1).abs(), x.view(-1).abs())
    (y - 1.0).pow(2).sum().backward()
    assert block.step.grad is not None and float(block.step.grad.abs()) > 0
    assert block.branch[0].weight.grad.abs().sum() == 0  # a = 0: no gradient to F yet


def test_preact_ordering_and_identity_at_zero_scale(dtype):
    torch.manual_seed(7)
    block = PreActResidual(6, hidden=10, step=0.0).to(dtype)
    names = [type(m).__name__ for m in block.branch]
    assert names == ["LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    x = torch.randn(3, 6, dtype=dtype)
    assert torch.equal(block(x), x)
    block.step.fill_(0.5)  # and with a step, x + h F(x) (not the identity)
    torch.testing.assert_close(block(x), x + 0.5 * block.branch(x), atol=tol(dtype), rtol=0)
    assert not torch.allclose(block(x), x)


def test_postact_ordering(dtype):
    torch.manual_seed(8)
    block = PostActResidual(5, norm="none", activation="tanh").to(dtype)
    names = [type(m).__name__ for m in block.branch]
    assert names == ["Linear", "Identity", "Tanh", "Linear", "Identity"]
    x = torch.randn(4, 5, dtype=dtype)
    torch.testing.assert_close(block(x), torch.tanh(x + block.branch(x)), atol=tol(dtype), rtol=0)


def test_bottleneck_and_projection(dtype):
    torch.manual_seed(9)
    block = BottleneckResidual(16, 4, out_features=8, norm="batch").to(dtype)
    lin = [m for m in block.branch if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(16, 4), (4, 4), (4, 8)]
    x = torch.randn(3, 5, 16, dtype=dtype)  # BatchNorm pools the two leading axes
    assert block(x).shape == (3, 5, 8)
    assert isinstance(block.shortcut, LinearShortcut)
    block.eval()  # the block is the projection plus the branch, not the projection alone
    torch.testing.assert_close(block(x), block.shortcut(x) + block.branch(x), atol=tol(dtype), rtol=0)
    assert float(block.branch(x).detach().abs().max()) > 1e-3


def test_unknown_norm_and_activation():
    with pytest.raises(UnknownChoiceError, match="layer, batch, none"):
        PreActResidual(4, norm="group")
    with pytest.raises(UnknownChoiceError, match="relu"):
        PostActResidual(4, activation="swish2")


# ---------------------------------------------------------------------------- dead zone
def test_soft_threshold_matches_numpy(dtype):
    g = _gen(10)
    u = torch.randn(50, 3, generator=g, dtype=torch.float64) * 2
    ref = np.sign(u.numpy()) * np.maximum(np.abs(u.numpy()) - 0.7, 0.0)
    out = soft_threshold(u.to(dtype), 0.7)
    torch.testing.assert_close(out, torch.from_numpy(ref).to(dtype), atol=tol(dtype), rtol=0)
    n = np.linalg.norm(u.numpy(), axis=-1, keepdims=True)
    ref = np.maximum(1 - 1.5 / n, 0.0) * u.numpy()
    out = soft_threshold(u.to(dtype), 1.5, mode="norm")
    torch.testing.assert_close(out, torch.from_numpy(ref).to(dtype), atol=tol(dtype, 1e-6), rtol=0)


def test_soft_threshold_just_below_and_above(dtype):
    tau = 0.5
    e = torch.finfo(dtype).eps
    u = torch.tensor([tau, tau * (1 + 4 * e), -tau, -tau * (1 + 4 * e)], dtype=dtype)
    out = soft_threshold(u, tau)
    assert out[0] == 0 and out[2] == 0
    assert out[1] > 0 and out[3] < 0


class _Const(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value.to(x.dtype).expand_as(x)


@pytest.mark.parametrize("mode", ["elementwise", "norm"])
def test_dead_zone_is_bitwise_identity(dtype, mode):
    g = _gen(11)
    x = torch.randn(64, 5, generator=g).to(dtype) * 1e3
    x[0, :] = -0.0
    x[1, 0] = 1e-30
    fn = nn.Sequential(nn.Linear(5, 5), nn.Tanh())  # |F| <= 1 <= tau (norm: sqrt(5) <= tau)
    block = DeadZoneResidual(fn, threshold=3.0, mode=mode, step=2.0).to(dtype)
    y = block(x)
    iy = y.view(torch.int32 if dtype == torch.float32 else torch.int64)
    ix = x.view(torch.int32 if dtype == torch.float32 else torch.int64)
    assert torch.equal(iy, ix)


def test_dead_zone_elementwise_formula(dtype):
    v = torch.tensor([0.2, -0.4, 1.0, -2.0])
    block = DeadZoneResidual(_Const(v), threshold=0.5, step=2.0)
    x = torch.arange(4, dtype=dtype)
    y = block(x)
    expected = x + 2.0 * torch.tensor([0.0, 0.0, 0.5, -1.5], dtype=dtype)
    torch.testing.assert_close(y, expected, atol=tol(dtype), rtol=0)
    assert torch.equal(y[:2], x[:2])


def test_dead_zone_norm_mode_keeps_direction(dtype):
    v = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    block = DeadZoneResidual(_Const(v), threshold=1.0, mode="norm")
    x = torch.zeros(2, 2, dtype=dtype)
    y = block(x)
    torch.testing.assert_close(y[0], torch.tensor([2.4, 3.2], dtype=dtype), atol=tol(dtype), rtol=0)
    assert torch.equal(y[1], x[1])


def test_dead_zone_gradients(dtype):
    # inside the zone the branch gets no gradient; at F(x) = 0 in norm mode gradients are finite
    fn = nn.Linear(3, 3)
    nn.init.zeros_(fn.weight)
    nn.init.zeros_(fn.bias)
    for mode, tau in [("elementwise", 0.1), ("norm", 0.1), ("norm", 0.0)]:
        block = DeadZoneResidual(fn, threshold=tau, mode=mode, learn_step=True).to(dtype)
        x = torch.randn(4, 3, dtype=dtype, requires_grad=True)
        block(x).sum().backward()
        for t in [x.grad, fn.weight.grad, fn.bias.grad, block.step.grad]:
            assert torch.isfinite(t).all()
        assert fn.weight.grad.abs().sum() == 0
        torch.testing.assert_close(x.grad, torch.ones_like(x))
        fn.zero_grad()


@pytest.mark.parametrize("mode", ["elementwise", "norm"])
def test_dead_zone_nan_is_not_silenced(mode):
    block = DeadZoneResidual(_Const(torch.tensor([math.nan, 0.0])), threshold=1.0, mode=mode)
    y = block(torch.zeros(2))
    assert torch.isnan(y[0])


def test_dead_zone_bad_arguments():
    for bad in [-0.1, math.inf, math.nan]:
        with pytest.raises(ParameterError, match="threshold"):
            DeadZoneResidual(nn.Identity(), threshold=bad)
    with pytest.raises(UnknownChoiceError, match="elementwise, norm"):
        DeadZoneResidual(nn.Identity(), threshold=0.1, mode="hard")
    with pytest.raises(UnknownChoiceError):
        soft_threshold(torch.zeros(2), 0.1, mode="hard")
    with pytest.raises(ShapeError, match="scalar"):
        DeadZoneResidual(nn.Identity(), threshold=torch.ones(2))
    r = repr(DeadZoneResidual(nn.Identity(), threshold=0.5, mode="norm"))
    assert "threshold=0.5" in r and "mode='norm'" in r


# ---------------------------------------------------------------------------- stacks
@pytest.mark.parametrize("hidden", [None, 12])
def test_residual_and_plain_mlp_share_init(hidden):
    torch.manual_seed(12)
    res = residual_mlp(6, 5, step=0.2, hidden=hidden, in_features=2, out_features=3)
    torch.manual_seed(12)
    plain = plain_mlp(6, 5, hidden=hidden, in_features=2, out_features=3)
    rp = [p for n, p in res.named_parameters()]
    pp = list(plain.parameters())
    assert len(rp) == len(pp)
    assert all(torch.equal(a, b) for a, b in zip(rp, pp, strict=True))
    blocks = [m for m in res if isinstance(m, Residual)]
    assert len(blocks) == 5 and all(float(b.step) == pytest.approx(0.2) for b in blocks)
    assert res(torch.randn(4, 2)).shape == plain(torch.randn(4, 2)).shape == (4, 3)


def test_residual_mlp_is_euler_solver(dtype):
    """x_{k+1} = x_k + a tanh(W_k x_k + b_k), unrolled by hand."""
    torch.manual_seed(13)
    net = residual_mlp(4, 3, step=0.125).to(dtype)
    x = torch.randn(2, 4, dtype=dtype)
    z = x
    for block in net:
        lin = block.branch[0]
        z = z + 0.125 * torch.tanh(z @ lin.weight.T + lin.bias)
    torch.testing.assert_close(net(x), z, atol=tol(dtype), rtol=0)


def test_stack_zero_scale_is_identity_and_bad_depth():
    net = residual_mlp(3, 4, step=0.0)
    x = torch.randn(5, 3)
    assert torch.equal(net(x), x)
    assert len(residual_mlp(3, 0)) == 0
    with pytest.raises(ParameterError, match="depth"):
        plain_mlp(3, -1)


@pytest.mark.cuda
def test_cuda_matches_cpu(dtype):
    torch.manual_seed(14)
    blocks = [
        Residual(nn.Linear(4, 6), step=0.5, learn_step=True, shortcut="linear"),
        DeadZoneResidual(nn.Linear(4, 4), threshold=0.3, mode="norm"),
        PreActResidual(4, hidden=8),
    ]
    x = torch.randn(5, 4, dtype=dtype)
    for block in blocks:
        block = block.to(dtype)
        y = block(x)
        y_cuda = block.to("cuda")(x.to("cuda"))
        assert y_cuda.device.type == "cuda" and y_cuda.dtype == dtype
        torch.testing.assert_close(y_cuda.cpu(), y, atol=tol(dtype, 1e-5, 1e-12), rtol=0)


@pytest.mark.slow
def test_compiles_without_graph_breaks():
    torch.manual_seed(15)
    net = nn.Sequential(
        residual_mlp(4, 3, step=0.5, learn_step=True),
        DeadZoneResidual(nn.Linear(4, 4), threshold=0.2, mode="norm"),
        Residual(nn.Linear(4, 6), shortcut="linear"),
    )
    x = torch.randn(8, 4)
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), net(x))
