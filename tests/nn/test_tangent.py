"""Tangent residual layers and stacks: the formula, exactness on geodesics, deep stacks in
float32 (HOSTILE_INPUTS A16, A17, A23), learnable steps, times, and bad input."""

import copy
import math
import pickle

import pytest
import torch
from torch import nn

import manifres
from manifres.errors import DTypeError, ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import (
    AmbientMLPField,
    ConstantField,
    LieAlgebraField,
    LinearField,
    TangentResidual,
    TangentResidualStack,
    tangent_step,
)
from manifres.testing import tol

SO = manifres.SpecialOrthogonal
EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def skew3(w):
    z = torch.zeros((), dtype=w.dtype)
    return torch.stack(
        [torch.stack([z, -w[2], w[1]]), torch.stack([w[2], z, -w[0]]), torch.stack([-w[1], w[0], z])]
    )


def rotations(batch, dtype, seed=0):
    """Random rotations from a sign-corrected QR in float64 (independent of manifres)."""
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, dtype=torch.float64, generator=gen(seed)))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q[..., 0] *= torch.sign(torch.linalg.det(q)).unsqueeze(-1)
    return q.to(dtype)


class Recorder(nn.Module):
    """A time-dependent zero field that records the times it is called with."""

    def __init__(self):
        super().__init__()
        self.times = []

    def forward(self, x, t):
        self.times.append(float(t))
        return torch.zeros_like(x)


# ----------------------------------------------------------------------------- the formula
@pytest.mark.parametrize("retraction", ["exp", "projective"])
def test_layer_is_retraction_of_projected_field(dtype, retraction):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = nn.Linear(3, 3).to(dtype)  # ambient, not tangent
    x = S.random(6, dtype=dtype, generator=gen())
    h = 0.3
    u = F(x)
    v = u - (x * u).sum(-1, keepdim=True) * x
    if retraction == "exp":
        n = v.norm(dim=-1, keepdim=True)
        ref = torch.cos(h * n) * x + torch.sin(h * n) / n * v
    else:
        ref = (x + h * v) / (x + h * v).norm(dim=-1, keepdim=True)
    layer = TangentResidual(S, F, step=h, retraction=retraction)
    out = layer(x)
    assert out.dtype == dtype
    assert torch.allclose(out, ref, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    assert torch.equal(manifres.flows.get_stepper(S, "euler", retraction)(F, x, 0.0, h), out)
    with pytest.warns(DeprecationWarning, match="tangent_step"):
        assert torch.equal(tangent_step(S, F, x, h, retraction=retraction), out)


def test_layer_on_euclidean_is_the_residual_block(dtype):
    torch.manual_seed(0)
    E = manifres.Euclidean(4)
    F = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).to(dtype)
    x = torch.randn(3, 4, dtype=dtype, generator=gen())
    assert torch.equal(TangentResidual(E, F, step=0.25)(x), x + 0.25 * F(x))


def test_exp_step_along_geodesic_field_is_exact(dtype):
    """With a geodesic field (unit speed on the great circle) one exp step moves by angle h."""
    S = manifres.Sphere(2)
    G = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=dtype)
    phi = torch.linspace(0, 6, 7, dtype=torch.float64)
    x = torch.stack([torch.cos(phi), torch.sin(phi), torch.zeros_like(phi)], -1)
    h = 1.1
    ref = torch.stack([torch.cos(phi + h), torch.sin(phi + h), torch.zeros_like(phi)], -1)
    out = TangentResidual(S, LinearField(G), step=h)(x.to(dtype))
    assert (out.double() - ref).abs().max() <= 4 * EPS[dtype]


@pytest.mark.parametrize("retraction", ["exp", "cayley", "qr", "polar"])
def test_layer_on_so3_every_retraction(dtype, retraction):
    torch.manual_seed(0)
    M = SO(3)
    F = LieAlgebraField(3, hidden=8, depth=1).to(dtype)
    R = rotations(5, dtype)
    out = TangentResidual(M, F, step=0.2, retraction=retraction)(R)
    assert out.shape == R.shape and out.dtype == dtype
    eye = torch.eye(3, dtype=dtype)
    assert (out.mT @ out - eye).abs().max() <= tol(dtype, 1e-5, 1e-13)
    ref = M.retract(R, 0.2 * F(R), retraction)
    assert torch.allclose(out, ref, atol=tol(dtype, 1e-6, 1e-14), rtol=0)


def test_layer_broadcasts_batches_and_empty_batch(dtype):
    S = manifres.Sphere(2)
    layer = TangentResidual(S, ConstantField(torch.tensor([0.0, 0.0, 1.0])), step=0.1)
    x = S.random(2, 3, 4, dtype=dtype, generator=gen())
    y = layer(x)
    assert y.shape == (2, 3, 4, 3)
    for idx in [(0, 0, 0), (1, 2, 3)]:  # batched equals one point at a time, and moves it
        torch.testing.assert_close(y[idx], layer(x[idx]), atol=tol(dtype, 1e-7, 1e-15), rtol=0)
    assert bool((S.dist(y, x) > 1e-3).any())
    assert layer(S.random(0, dtype=dtype)).shape == (0, 3)


# ----------------------------------------------------------------------------- bad input
def test_bad_step_retraction_and_manifold_at_construction():
    S = manifres.Sphere(2)
    F = ConstantField(torch.zeros(3))
    for bad in (math.inf, -math.inf, math.nan, torch.tensor(math.nan)):
        with pytest.raises(ParameterError, match="finite"):
            TangentResidual(S, F, step=bad)
    for bad in ("0.1", True, None, torch.ones(2)):
        with pytest.raises(ParameterError, match="real number"):
            TangentResidual(S, F, step=bad)
    with pytest.raises(UnknownChoiceError, match="exp, projective"):
        TangentResidual(S, F, retraction="cayley")
    with pytest.raises(TypeError, match="Manifold"):
        TangentResidual("S2", F)
    with pytest.raises(TypeError, match="callable"):
        TangentResidual(S, 3.0)
    with pytest.raises(ParameterError, match="finite"):
        TangentResidualStack(S, F, step=math.nan, depth=3)
    with pytest.raises(UnknownChoiceError, match="valid names"):
        TangentResidualStack(S, F, step=0.1, depth=3, retraction="qr")


def test_bad_shapes_and_dtypes_at_call(dtype):
    S = manifres.Sphere(2)
    layer = TangentResidual(S, lambda x: torch.zeros(*x.shape[:-1], 4, dtype=x.dtype), step=0.1)
    x = S.random(5, dtype=dtype)
    with pytest.raises(ShapeError, match=r"returned \(5, 4\) for an input of shape \(5, 3\)"):
        layer(x)
    good = TangentResidual(S, ConstantField(torch.zeros(3)), step=0.1)
    with pytest.raises(ShapeError, match=r"x must have shape \(\.\.\., 3\), got \(5, 4\)"):
        good(torch.zeros(5, 4, dtype=dtype))
    with pytest.raises(DTypeError, match="int64"):
        good(torch.zeros(5, 3, dtype=torch.int64))
    mlp = TangentResidual(S, AmbientMLPField(S, hidden=4, depth=1).to(dtype), step=0.1)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    with pytest.raises(DTypeError, match="parameters of dtype"):
        mlp(x.to(other))
    stack = TangentResidualStack(S, [ConstantField(torch.zeros(3)), nn.Linear(3, 4)], step=0.1)
    with pytest.raises(ShapeError, match="Linear returned"):
        stack(x.float())


def test_stack_depth_errors():
    S = manifres.Sphere(2)
    F = ConstantField(torch.zeros(3))
    with pytest.raises(ValueError, match="needs depth"):
        TangentResidualStack(S, F, step=0.1)
    with pytest.raises(ValueError, match="depth must be"):
        TangentResidualStack(S, F, step=0.1, depth=0)
    with pytest.raises(ValueError, match="depth=3 but 2 fields"):
        TangentResidualStack(S, [F, F], step=0.1, depth=3)
    with pytest.raises(ValueError, match="empty"):
        TangentResidualStack(S, [], step=0.1)


# ----------------------------------------------------------------------------- stacks
def test_stack_trajectory_per_layer_fields_and_repr(dtype):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    fields = [AmbientMLPField(S, hidden=4, depth=1).to(dtype) for _ in range(3)]
    x = S.random(5, dtype=dtype, generator=gen())
    net = TangentResidualStack(S, fields, step=0.2, return_trajectory=True)
    traj = net(x)
    assert traj.shape == (4, 5, 3)
    assert torch.equal(traj[0], x) and bool((S.dist(traj[-1], x) > 1e-3).all())
    y = x
    for k, f in enumerate(fields):
        y = TangentResidual(S, f, step=0.2)(y)
        assert torch.equal(traj[k + 1], y)
    assert len(list(net.parameters())) == 3 * 4
    text = repr(net)
    assert "step=0.2" in text and "retraction='exp'" in text and "depth=3 (per-layer field)" in text
    shared = TangentResidualStack(S, fields[0], step=0.2, depth=7, learn_step=True)
    assert "step=learned" in repr(shared) and "depth=7 (shared field)" in repr(shared)


def test_stack_passes_layer_times_to_time_dependent_fields():
    S = manifres.Sphere(2)
    rec = Recorder()
    TangentResidualStack(S, rec, step=0.25, depth=4, t0=1.0)(S.random(2))
    assert rec.times == [1.0, 1.25, 1.5, 1.75]
    rec2 = Recorder()
    TangentResidual(S, rec2, step=0.1)(S.random(2), t=0.7)
    assert rec2.times == [0.7]


def test_learned_step_gradient_matches_closed_form(dtype):
    """y = exp_x(h v) for a tangent constant field: dy/dh = -|v| sin(h|v|) x + cos(h|v|) v."""
    S = manifres.Sphere(2)
    x = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    v = torch.tensor([0.0, 0.6, 0.8], dtype=dtype)
    layer = TangentResidual(S, ConstantField(v), step=0.7, learn_step=True).to(dtype)
    assert isinstance(layer.step, nn.Parameter)
    w = torch.tensor([0.3, -1.0, 2.0], dtype=dtype)
    (layer(x) * w).sum().backward()
    h = float(layer.step.detach())  # 0.7 rounded to float32 at construction, then cast
    ref = (-math.sin(h) * x + math.cos(h) * v) @ w
    assert torch.allclose(layer.step.grad, ref, atol=tol(dtype, 1e-6, 1e-14), rtol=0)


def test_gradient_to_input_is_finite_at_zero_field(dtype):
    S = manifres.Sphere(2)
    x = S.random(4, dtype=dtype, generator=gen()).requires_grad_()
    net = TangentResidualStack(S, ConstantField(torch.zeros(3)), step=0.5, depth=5)
    net(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_layers_deepcopy_and_pickle():
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    net = TangentResidualStack(S, AmbientMLPField(S, hidden=4, depth=1), step=0.1, depth=3)
    x = S.random(2)
    assert not torch.allclose(net(x), x)  # a layer that moves: the copies must keep its weights
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert torch.equal(clone(x), net(x))


# ----------------------------------------------------------------------------- 1,000 layers
def _deep_run(manifold, field, x0, h, dtype, loss_dir):
    f = copy.deepcopy(field).to(dtype)
    net = TangentResidualStack(manifold, f, step=h, depth=1000)
    y = net(x0.to(dtype))
    loss = (y * loss_dir.to(dtype)).sum()
    grads = torch.autograd.grad(loss, list(f.parameters()))
    return y, torch.cat([g.flatten() for g in grads]).double()


@pytest.mark.parametrize("h", [0.05, 0.5])
def test_1000_layer_sphere_stack_float32_matches_float64(h):
    """A16/A17/A23: a non-tangent state-dependent ambient MLP field, projected by the layer;
    float32 stays on the sphere and its parameter gradients match float64."""
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    field = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 3))  # not tangent
    x0 = S.random(4, dtype=torch.float64, generator=gen())
    direction = torch.tensor([0.2, -0.5, 1.0], dtype=torch.float64)
    y32, g32 = _deep_run(S, field, x0, h, torch.float32, direction)
    y64, g64 = _deep_run(S, field, x0, h, torch.float64, direction)
    assert ((y32 * y32).sum(-1).sqrt() - 1).abs().max() <= 1e-5
    assert ((y64 * y64).sum(-1).sqrt() - 1).abs().max() <= 1e-13
    assert (g32 - g64).norm() / g64.norm() <= 1e-3


@pytest.mark.parametrize("h", [0.05, 0.5])
def test_1000_layer_so3_stack_float32_matches_float64(h):
    torch.manual_seed(0)
    M = SO(3)
    field = LieAlgebraField(3, hidden=6, depth=1)
    x0 = rotations(3, torch.float64)
    direction = torch.randn(3, 3, dtype=torch.float64, generator=gen(2))
    y32, g32 = _deep_run(M, field, x0, h, torch.float32, direction)
    y64, g64 = _deep_run(M, field, x0, h, torch.float64, direction)
    eye = torch.eye(3, dtype=torch.float64)
    assert (y32.double().mT @ y32.double() - eye).abs().max() <= 1e-5
    assert (y64.mT @ y64 - eye).abs().max() <= 1e-13
    assert (g32 - g64).norm() / g64.norm() <= 1e-3
