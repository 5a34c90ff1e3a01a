"""Vector fields: calling convention, tangency, shapes, dtypes and bad input."""

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
    evaluate_field,
    is_time_dependent,
)
from manifres.testing import tol

SO = manifres.SpecialOrthogonal


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def random_rotations(batch, dtype, seed=0):
    w = torch.randn(batch, 3, 3, dtype=torch.float64, generator=gen(seed))
    q, r = torch.linalg.qr(w)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q[..., 0] *= torch.sign(torch.linalg.det(q)).unsqueeze(-1)
    return q.to(dtype)


# ----------------------------------------------------------------------------- convention
class _Auto(nn.Module):
    def forward(self, x):
        return x


class _Timed(nn.Module):
    def forward(self, x, t):
        return t * x


class _Flagged(nn.Module):
    time_dependent = False

    def forward(self, x, t=0.0):
        return x


def test_is_time_dependent_from_signature_and_flag():
    assert not is_time_dependent(_Auto())
    assert is_time_dependent(_Timed())
    assert not is_time_dependent(_Flagged())  # the flag wins over the signature
    assert is_time_dependent(lambda x, t: x)
    assert not is_time_dependent(lambda x: x)
    assert not is_time_dependent(lambda *args: args[0])
    assert not is_time_dependent(nn.Linear(3, 3))
    assert not is_time_dependent(torch.sin)  # builtins may not expose a signature


def test_evaluate_field_passes_time_only_to_time_dependent_fields(dtype):
    x = torch.ones(2, 3, dtype=dtype)
    assert torch.equal(evaluate_field(_Timed(), x, 2.0), 2 * x)
    assert torch.equal(evaluate_field(_Timed(), x), 0 * x)  # t=None means 0
    assert torch.equal(evaluate_field(_Auto(), x, 2.0), x)


def test_evaluate_field_rejects_wrong_shape_and_dtype(dtype):
    x = torch.ones(2, 3, dtype=dtype)
    with pytest.raises(ShapeError, match=r"returned \(2, 4\) for an input of shape \(2, 3\)"):
        evaluate_field(lambda x: torch.ones(2, 4, dtype=dtype), x)
    with pytest.raises(ShapeError, match="returned tuple"):
        evaluate_field(lambda x: (x,), x)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    with pytest.raises(DTypeError, match="returned dtype"):
        evaluate_field(lambda x: x.to(other), x)


# ----------------------------------------------------------------------------- AmbientMLPField
def test_ambient_mlp_field_is_tangent_on_the_sphere(dtype):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=8, depth=2).to(dtype)
    x = S.random(7, 5, dtype=dtype, generator=gen())
    v = F(x)
    assert v.shape == x.shape and v.dtype == dtype
    assert (x * v).sum(-1).abs().max() <= tol(dtype, 1e-6, 1e-14)
    u = F.net(x)  # the field is the projected MLP, not just any tangent vector (such as 0)
    torch.testing.assert_close(v, u - (x * u).sum(-1, keepdim=True) * x, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    assert bool((v.detach().norm(dim=-1) > 1e-3).all())
    assert F(S.random(0, dtype=dtype)).shape == (0, 3)  # empty batch


def test_ambient_mlp_field_time_and_zero_init(dtype):
    torch.manual_seed(0)
    S = manifres.Sphere(3)
    F = AmbientMLPField(S, hidden=8, depth=1, time_dependent=True).to(dtype)
    assert is_time_dependent(F)
    x = S.random(4, dtype=dtype, generator=gen())
    assert not torch.allclose(F(x, 0.0), F(x, 1.0))
    assert torch.allclose(F(x, torch.tensor(1.0, dtype=dtype)), F(x, 1.0))
    Z = AmbientMLPField(S, hidden=8, depth=1, zero_init=True).to(dtype)
    assert torch.equal(Z(x), torch.zeros_like(x))


def test_ambient_mlp_field_on_matrix_points(dtype):
    """Manifold axes (n, n) are flattened for the MLP and restored, batch axes untouched."""
    torch.manual_seed(0)
    M = SO(3)
    F = AmbientMLPField(M, hidden=8, depth=1).to(dtype)
    R = random_rotations(6, dtype).reshape(2, 3, 3, 3)
    V = F(R)
    assert V.shape == R.shape
    Om = R.mT @ V
    assert (Om + Om.mT).abs().max() <= tol(dtype, 1e-5, 1e-13)
    U = F.net(R.flatten(-2)).unflatten(-1, (3, 3))  # the projected MLP of the flattened point
    torch.testing.assert_close(V, M.proj(R, U), atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    assert float(V.detach().abs().max()) > 1e-3


def test_ambient_mlp_field_errors():
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1)
    with pytest.raises(DTypeError, match="float32.*float64"):
        F(S.random(3, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        F(torch.zeros(3, 4))
    with pytest.raises(UnknownChoiceError, match="tanh"):
        AmbientMLPField(S, activation="sigmoidish")
    with pytest.raises(TypeError, match="Manifold"):
        AmbientMLPField("sphere")
    with pytest.raises(ValueError, match="hidden"):
        AmbientMLPField(S, hidden=0)


# ----------------------------------------------------------------------------- LieAlgebraField
def test_lie_algebra_field_outputs_R_times_skew(dtype):
    torch.manual_seed(1)
    F = LieAlgebraField(3, hidden=8, depth=2, time_dependent=True).to(dtype)
    R = random_rotations(5, dtype)
    W = F.algebra(R, 0.3)
    assert W.shape == (5, 3, 3)
    assert torch.equal(W, -W.mT)  # exactly skew by construction
    assert torch.allclose(F(R, 0.3), R @ W)
    assert not torch.allclose(F.algebra(R, 0.0), W)
    F4 = LieAlgebraField(4, hidden=4, depth=1).to(dtype)
    W4 = F4.algebra(torch.eye(4, dtype=dtype).expand(2, 3, 4, 4))
    assert W4.shape == (2, 3, 4, 4) and torch.equal(W4, -W4.mT)
    # the n(n-1)/2 outputs fill the upper triangle row by row
    lin = F4.net[-1]
    assert lin.out_features == 6


def test_lie_algebra_field_errors():
    F = LieAlgebraField(3, hidden=4, depth=1)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3, 3\)"):
        F(torch.eye(4))
    with pytest.raises(DTypeError):
        F(torch.eye(3, dtype=torch.float64))
    with pytest.raises(ParameterError, match="n must be >= 2"):
        LieAlgebraField(1)
    with pytest.raises(ShapeError, match="square"):
        LieAlgebraField(manifres.Sphere(2))
    assert LieAlgebraField(SO(4), hidden=2, depth=0).n == 4


# ----------------------------------------------------------------------------- helpers
def test_constant_field(dtype):
    c = torch.tensor([0.0, 0.0, 2.0])
    F = ConstantField(c)
    x = torch.zeros(4, 3, dtype=dtype)
    assert torch.equal(F(x), c.to(dtype).expand(4, 3))
    assert F(x).dtype == dtype
    L = ConstantField(c, learnable=True)
    assert isinstance(L.value, nn.Parameter)
    L(x.float()).sum().backward()
    assert torch.equal(L.value.grad, torch.full((3,), 4.0))
    with pytest.raises(ShapeError, match="does not broadcast"):
        F(torch.zeros(4, 2, dtype=dtype))


def test_linear_field_sides_and_rate(dtype):
    A = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=dtype)
    B = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=dtype)
    x = torch.randn(5, 3, dtype=dtype, generator=gen())
    assert torch.allclose(LinearField(A)(x), x @ A.mT)
    F = LinearField(A, rate=B)
    assert is_time_dependent(F) and not is_time_dependent(LinearField(A))
    assert torch.allclose(F(x, 0.5), x @ (A + 0.5 * B).mT)
    X = torch.randn(2, 3, 3, dtype=dtype, generator=gen(1))
    assert torch.allclose(LinearField(A, side="left")(X), A @ X)
    assert torch.allclose(LinearField(A, side="right")(X), X @ A)
    P = LinearField(A, rate=B, learnable=True)
    assert {n for n, _ in P.named_parameters()} == {"A", "rate"}


def test_linear_field_errors():
    with pytest.raises(ShapeError, match="square"):
        LinearField(torch.zeros(2, 3))
    with pytest.raises(ShapeError, match="rate"):
        LinearField(torch.zeros(3, 3), rate=torch.zeros(2, 2))
    with pytest.raises(UnknownChoiceError, match="left"):
        LinearField(torch.zeros(3, 3), side="up")
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        LinearField(torch.zeros(3, 3))(torch.zeros(4))
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3, 3\)"):
        LinearField(torch.zeros(3, 3), side="right")(torch.zeros(3))
