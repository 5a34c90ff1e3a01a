"""Tests of manifres.nn.policy: the closed loop f(x) - k B K (x - x*) written out."""

import pytest
import torch
from torch import nn

from manifres.errors import DTypeError, ParameterError, ShapeError
from manifres.nn import PolicyResidual
from manifres.nn.protocol import is_residual_step
from manifres.stability import jacobian_spectrum
from manifres.testing import tol


def _problem(dtype):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=g, dtype=dtype)
    b = torch.randn(3, 2, generator=g, dtype=dtype)
    k = torch.randn(2, 3, generator=g, dtype=dtype)
    x_star = torch.randn(3, generator=g, dtype=dtype)
    return a, b, k, x_star


@pytest.mark.parametrize("kind", ["matrix", "function", "module"])
def test_closed_loop_formula(dtype, kind):
    a, b, k, x_star = _problem(dtype)
    if kind == "matrix":
        base = a
    elif kind == "function":
        base = lambda x: torch.tanh(x @ a.T)  # noqa: E731
    else:
        base = nn.Linear(3, 3, dtype=dtype)
    layer = PolicyResidual(base, b, k, step=0.6, x_star=x_star)
    x = torch.randn(4, 3, dtype=dtype)
    f = {"matrix": lambda z: z @ a.T, "function": base, "module": base}[kind]
    expected = f(x) - 0.6 * ((x - x_star) @ k.T) @ b.T
    torch.testing.assert_close(layer(x), expected, atol=tol(dtype), rtol=0)
    torch.testing.assert_close(layer.forward_with_step(x, 0.0), f(x), atol=tol(dtype), rtol=0)


def test_protocol_default_gain_and_vectors():
    a = torch.diag(torch.tensor([1.2, 0.5], dtype=torch.float64))
    layer = PolicyResidual(
        a, torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 1.0]).double()
    )
    assert is_residual_step(layer) and layer.sample_ndim == 1 and layer.manifold is None
    assert float(layer.step) == 0.0 and layer.branch.B.shape == (2, 1) and layer.branch.K.shape == (1, 2)
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.equal(layer(x), x @ a.T)
    assert "n=2, m=1" in repr(layer)


def test_jacobian_is_J_minus_kBK():
    a, b, k, x_star = _problem(torch.float64)
    layer = PolicyResidual(a, b, k, step=0.8, x_star=x_star)
    spec = jacobian_spectrum(layer, x_star[None])
    ref = torch.linalg.eigvals(a - 0.8 * b @ k)
    torch.testing.assert_close(
        spec.eigenvalues[0].abs().sort().values, ref.abs().sort().values, atol=1e-12, rtol=0
    )


def test_learned_gain_gets_gradient():
    a, b, k, _ = _problem(torch.float64)
    layer = PolicyResidual(a, b, k, step=0.3, learn_step=True).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    (g,) = torch.autograd.grad(layer(x).sum(), layer.step)
    torch.testing.assert_close(g.double(), (-(x @ k.T) @ b.T).sum(), atol=1e-12, rtol=0)


def test_errors():
    a, b, k, _ = _problem(torch.float64)
    with pytest.raises(ShapeError, match="K must have shape"):
        PolicyResidual(a, b, k.T)
    with pytest.raises(ShapeError, match="x_star"):
        PolicyResidual(a, b, k, x_star=torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ShapeError, match="matrix baseline"):
        PolicyResidual(a[:2], b, k)
    with pytest.raises(DTypeError):
        PolicyResidual(a, b, k.float())
    with pytest.raises(ParameterError):
        PolicyResidual(a, b, k, step=float("inf"))
    with pytest.raises(TypeError):
        PolicyResidual(3, b, k)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        PolicyResidual(a, b, k)(torch.zeros(2, 2, dtype=torch.float64))
