"""integrate(), the one-step schemes and their layers: bad input, shapes, dtypes, staying on the
manifold, reduction to classical Runge-Kutta on R^n, gradients, and the test problems checked
against scipy."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import manifres
from manifres.errors import DTypeError, ParameterError, ShapeError, UnknownChoiceError
from manifres.flows import (
    METHODS,
    get_stepper,
    integrate,
    problems,
)
from manifres.manifolds.base import Manifold
from manifres.nn import (
    AmbientMLPField,
    LieAlgebraField,
    LinearField,
    TangentResidual,
    TangentResidualStack,
    evaluate_field,
)
from manifres.testing import tol

SO = manifres.SpecialOrthogonal
LIE = [m for m in METHODS if m != "euler"]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rotations(batch, dtype, seed=0):
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, dtype=torch.float64, generator=gen(seed)))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q[..., 0] *= torch.sign(torch.linalg.det(q)).unsqueeze(-1)
    return q.to(dtype)


def _delegate(name):
    def method(self, *args, **kwargs):
        return getattr(self.inner, name)(*args, **kwargs)

    return method


class WrappedSphere(Manifold):
    """A manifold class unknown to the schemes (it delegates to a Sphere)."""

    retractions = ("exp", "projective")

    def __init__(self, n=2):
        super().__init__()
        self.inner = manifres.Sphere(n)

    def _params(self):
        return (self.inner.n,)

    point_shape = property(lambda self: self.inner.point_shape)
    dim = property(lambda self: self.inner.dim)
    for _name in (
        "proj",
        "proj_point",
        "exp",
        "log",
        "dist",
        "transport",
        "random",
        "_point_residual",
        "_tangent_residual",
        "retract_projective",
    ):
        locals()[_name] = _delegate(_name)
    del _name


class SphereWithAction(WrappedSphere):
    def lie_action(self):
        return self.inner.lie_action()


# ----------------------------------------------------------------------------- bad input
def test_unknown_method_and_retraction_errors():
    S = manifres.Sphere(2)
    F = LinearField(torch.zeros(3, 3))
    x = S.random(2)
    with pytest.raises(UnknownChoiceError, match="euler, rkmk2, rkmk4, cg2, cf4"):
        integrate(S, F, x, 1.0, 4, method="rk4")
    with pytest.raises(UnknownChoiceError, match="exp, projective"):
        integrate(S, F, x, 1.0, 4, retraction="cayley")
    with pytest.raises(UnknownChoiceError, match="method='euler' only"):
        integrate(S, F, x, 1.0, 4, method="rkmk4", retraction="projective")
    with pytest.raises(UnknownChoiceError, match="has no Lie-group action"):
        integrate(WrappedSphere(), F, x, 1.0, 4, method="rkmk2")
    with pytest.raises(UnknownChoiceError, match="euler"):
        TangentResidual(WrappedSphere(), F, 0.1, method="cf4")
    with pytest.raises(UnknownChoiceError, match="valid orders: 2, 4"), pytest.warns(DeprecationWarning):
        manifres.flows.RKMKLayer(S, F, 0.1, order=3)
    with pytest.raises(TypeError, match="Manifold"):
        integrate(None, F, x, 1.0, 4)


def test_bad_times_steps_and_shapes(dtype):
    S = manifres.Sphere(2)
    F = LinearField(torch.zeros(3, 3, dtype=dtype))
    x = S.random(2, dtype=dtype)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            integrate(S, F, x, 1.0, bad)
    with pytest.raises(ParameterError, match="finite"):
        integrate(S, F, x, math.inf, 4)
    with pytest.raises(ParameterError, match="finite"):
        integrate(S, F, x, 1.0, 4, t0=math.nan)
    with pytest.raises(ShapeError, match=r"x0 must have shape \(\.\.\., 3\), got \(2, 4\)"):
        integrate(S, F, torch.zeros(2, 4, dtype=dtype), 1.0, 4)
    with pytest.raises(ShapeError, match="returned"):
        integrate(S, lambda x: x[..., :2], x, 1.0, 4, method="rkmk4")
    with pytest.raises(ParameterError, match="finite"):
        TangentResidual(S, F, math.inf, method="rkmk4")
    other = torch.float64 if dtype == torch.float32 else torch.float32
    with pytest.raises(DTypeError):
        integrate(S, AmbientMLPField(S).to(other), x, 1.0, 2, method="cf4")


# ----------------------------------------------------------------------------- basic behaviour
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_dtype_shape_and_manifold_sphere(dtype, method):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=8, depth=1, time_dependent=True).to(dtype)
    x0 = S.random(2, 3, dtype=dtype, generator=gen())
    traj = integrate(S, F, x0, 15.0, 50, method=method, return_trajectory=True)
    assert traj.shape == (51, 2, 3, 3) and traj.dtype == dtype
    assert torch.equal(traj[0], x0)
    assert ((traj * traj).sum(-1).sqrt() - 1).abs().max() <= tol(dtype, 1e-6, 1e-14)
    assert torch.equal(traj[-1], integrate(S, F, x0, 15.0, 50, method=method))
    assert integrate(S, F, S.random(0, dtype=dtype), 1.0, 3, method=method).shape == (0, 3)


@pytest.mark.parametrize("method", LIE)
def test_lie_methods_on_higher_spheres(dtype, method):
    """S^3 uses so(4) matrices and matrix_exp; compare with the exact rotation flow."""
    S = manifres.Sphere(3)
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[0, 1], A[2, 3], A[0, 3] = 1.0, 0.5, -0.3
    A = A - A.mT
    x0 = S.random(5, dtype=torch.float64, generator=gen())
    exact = x0 @ torch.linalg.matrix_exp(A).mT
    x1 = integrate(S, LinearField(A.to(dtype)), x0.to(dtype), 1.0, 16, method=method)
    order = METHODS[method]
    assert (x1.double() - exact).abs().max() <= max(5.0 * (1 / 16) ** order, tol(dtype, 2e-6, 0))
    assert ((x1 * x1).sum(-1).sqrt() - 1).abs().max() <= tol(dtype, 1e-6, 1e-14)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_so3_orthogonal(dtype, method):
    torch.manual_seed(0)
    M = SO(3)
    F = LieAlgebraField(3, hidden=8, depth=1, time_dependent=True).to(dtype)
    R0 = rotations(4, dtype)
    R1 = integrate(M, F, R0, 15.0, 50, method=method)
    assert R1.shape == R0.shape and R1.dtype == dtype
    eye = torch.eye(3, dtype=dtype)
    assert (R1.mT @ R1 - eye).abs().max() <= tol(dtype, 1e-5, 1e-13)
    assert (torch.linalg.det(R1) - 1).abs().max() <= tol(dtype, 1e-5, 1e-13)


@pytest.mark.parametrize("method", LIE)
def test_lie_methods_on_so4(dtype, method):
    M = SO(4)
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[0, 1], A[1, 2], A[0, 3] = 0.9, 0.5, -0.4
    A = A - A.mT
    R0 = torch.linalg.matrix_exp(torch.randn(4, 4, dtype=torch.float64, generator=gen()).tril(-1))
    R0 = torch.linalg.qr(R0)[0]
    R0 = R0 * torch.sign(torch.linalg.det(R0))
    exact = R0 @ torch.linalg.matrix_exp(A)
    R1 = integrate(M, LinearField(A.to(dtype), side="right"), R0.to(dtype), 1.0, 8, method=method)
    assert (R1.double() - exact).abs().max() <= tol(dtype, 1e-5, 1e-12)  # left-invariant: exact


def test_euclidean_rkmk4_and_cf4_are_classical_rk4(dtype):
    """On R^n the group is the translations, brackets vanish: both 4th-order schemes are RK4."""
    torch.manual_seed(0)
    E = manifres.Euclidean(3)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)

    def f(x, t):
        return net(torch.cat([x, torch.full_like(x[..., :1], t)], -1))

    x = torch.randn(5, 3, dtype=dtype, generator=gen())
    h, t = 0.3, 0.2
    k1 = f(x, t)
    k2 = f(x + h / 2 * k1, t + h / 2)
    k3 = f(x + h / 2 * k2, t + h / 2)
    k4 = f(x + h * k3, t + h)
    rk4 = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    heun = x + h / 2 * (k1 + f(x + h * k1, t + h))
    atol = tol(dtype, 1e-6, 1e-14)
    for m, ref in (("rkmk4", rk4), ("cf4", rk4), ("rkmk2", heun), ("cg2", heun)):
        out = get_stepper(E, m)(f, x, t, h)
        assert torch.allclose(out, ref, atol=atol, rtol=0), m
    assert torch.allclose(get_stepper(E, "euler")(f, x, t, h), x + h * k1, atol=atol, rtol=0)


def test_custom_manifold_with_lie_action(dtype):
    F = LinearField(torch.tensor([[0.0, -1.0, 0.2], [1.0, 0.0, 0.0], [-0.2, 0.0, 0.0]], dtype=dtype))
    x = manifres.Sphere(2).random(3, dtype=dtype, generator=gen())
    ours = integrate(SphereWithAction(), F, x, 1.0, 5, method="rkmk4")
    ref = integrate(manifres.Sphere(2), F, x, 1.0, 5, method="rkmk4")
    assert torch.equal(ours, ref)


def test_time_dependent_fields_see_stage_times():
    S = manifres.Sphere(2)
    seen = []

    def f(x, t):
        seen.append(round(float(t), 12))
        return torch.zeros_like(x)

    integrate(S, f, S.random(1), 1.5, 2, method="rkmk4", t0=0.5)
    assert seen == [0.5, 0.75, 0.75, 1.0, 1.0, 1.25, 1.25, 1.5]
    seen.clear()
    integrate(S, f, S.random(1), 1.0, 1, method="cf4")
    assert seen == [0.0, 0.5, 0.5, 1.0]


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("method", list(METHODS))
def test_flow_layers_match_integrate(dtype, method):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1, time_dependent=True).to(dtype)
    x0 = S.random(3, dtype=dtype, generator=gen())
    ref = integrate(S, F, x0, 0.6, 3, method=method, return_trajectory=True)
    step = TangentResidual(S, F, 0.2, method=method)
    y = x0
    for k in range(3):
        y = step(y, t=0.2 * k)
        assert torch.allclose(y, ref[k + 1], atol=tol(dtype, 1e-7, 1e-15), rtol=0)
    stack = TangentResidualStack(S, F, 0.2, method=method, depth=3, return_trajectory=True)
    assert torch.allclose(stack(x0), ref, atol=tol(dtype, 1e-7, 1e-15), rtol=0)
    per_layer = TangentResidualStack(S, [F, F, F], 0.2, method=method)
    assert torch.allclose(per_layer(x0), ref[-1], atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_euler_stack_equals_integrate_with_retraction(dtype):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1).to(dtype)
    x0 = S.random(3, dtype=dtype, generator=gen())
    ref = integrate(S, F, x0, 1.0, 5, retraction="projective")
    out = TangentResidualStack(S, F, 0.2, depth=5, retraction="projective")(x0)
    assert torch.allclose(out, ref, atol=tol(dtype, 1e-7, 1e-15), rtol=0)
    assert "retraction='projective'" in repr(TangentResidual(S, F, 0.2, retraction="projective"))


def test_flow_layer_repr_pickle_and_learned_step():
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1)
    layer = TangentResidual(S, F, 0.25, learn_step=True, method="rkmk2")
    assert "method='rkmk2'" in repr(layer) and "step=learned" in repr(layer)
    x = S.random(4)
    layer(x).sum().backward()
    assert layer.step.grad is not None and torch.isfinite(layer.step.grad)
    stack = TangentResidualStack(S, F, 0.1, method="cf4", depth=2)
    assert "method='cf4'" in repr(stack) and "step=0.1" in repr(stack)
    for clone in (copy.deepcopy(stack), pickle.loads(pickle.dumps(stack))):
        assert torch.equal(clone(x), stack(x))


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("method", ["rkmk4", "cf4", "cg2"])
def test_gradcheck_through_lie_steps_sphere(method):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1, time_dependent=True).double()
    x0 = S.random(2, dtype=torch.float64, generator=gen()).requires_grad_()
    w = F.net[0].weight
    assert torch.autograd.gradcheck(lambda x: integrate(S, F, x, 0.5, 2, method=method), (x0,))
    # parameters: compare autograd with a central difference on one weight entry
    loss = integrate(S, F, x0.detach(), 0.5, 2, method=method)[..., 0].sum()
    (g,) = torch.autograd.grad(loss, [w])
    e = 1e-6
    with torch.no_grad():
        w[0, 0] += e
        up = integrate(S, F, x0.detach(), 0.5, 2, method=method)[..., 0].sum()
        w[0, 0] -= 2 * e
        down = integrate(S, F, x0.detach(), 0.5, 2, method=method)[..., 0].sum()
        w[0, 0] += e
    assert abs(float(g[0, 0]) - float(up - down) / (2 * e)) <= 1e-7


@pytest.mark.parametrize("method", ["rkmk4", "cf4"])
def test_gradcheck_through_lie_steps_so3(method):
    torch.manual_seed(0)
    M = SO(3)
    F = LieAlgebraField(3, hidden=4, depth=1).double()
    R0 = rotations(2, torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda R: integrate(M, F, R, 0.5, 2, method=method), (R0,))


# ----------------------------------------------------------------------------- problems vs scipy
@pytest.mark.parametrize(
    "name", ["sphere_small_circle", "sphere_time_dependent", "so3_constant", "so3_time_dependent"]
)
def test_problem_solutions_solve_their_odes(name):
    """The closed forms of manifres.flows.problems against scipy's DOP853 in the ambient space."""
    integrate_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    p = problems.get_problem(name)
    shape = p.x0.shape

    def rhs(t, y):
        x = torch.from_numpy(y).reshape(shape)
        with torch.no_grad():
            return evaluate_field(p.field, x, t).reshape(-1).numpy()

    sol = integrate_ivp(rhs, (p.t0, p.t1), p.x0.reshape(-1).numpy(), method="DOP853", rtol=1e-12, atol=1e-12)
    ref = sol.y[:, -1].reshape(shape)
    assert np.abs(ref - p.exact(p.t1).numpy()).max() <= 1e-10


@pytest.mark.cuda
@pytest.mark.parametrize("method", list(METHODS))
def test_cuda_matches_cpu(method):
    torch.manual_seed(0)
    for M, F in (
        (manifres.Sphere(2), AmbientMLPField(manifres.Sphere(2), hidden=4, depth=1)),
        (SO(3), LieAlgebraField(3, hidden=4, depth=1, time_dependent=True)),
    ):
        F = F.double()
        x0 = M.random(3, dtype=torch.float64, generator=gen())
        cpu = integrate(M, F, x0, 1.0, 10, method=method)
        gpu = integrate(M, copy.deepcopy(F).cuda(), x0.cuda(), 1.0, 10, method=method)
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-12, rtol=0)


def test_deprecated_flow_layer_names_warn_and_build_tangent_layers():
    S = manifres.Sphere(2)
    F = AmbientMLPField(S, hidden=4, depth=1)
    x = S.random(3)
    with pytest.warns(DeprecationWarning, match="FlowStep"):
        old = manifres.flows.FlowStep(S, F, 0.2, method="cf4")
    assert isinstance(old, TangentResidual) and old.method == "cf4"
    assert torch.equal(old(x), TangentResidual(S, F, 0.2, method="cf4")(x))
    with pytest.warns(DeprecationWarning, match="FlowStack"):
        stack = manifres.flows.FlowStack(S, F, 0.2, method="rkmk2", depth=2)
    assert isinstance(stack, TangentResidualStack) and len(stack.layers) == 2
    with pytest.warns(DeprecationWarning, match="RKMKLayer"):
        assert manifres.flows.RKMKLayer(S, F, 0.2, order=4).method == "rkmk4"
    with pytest.warns(DeprecationWarning, match="lie_action"):
        assert type(manifres.flows.lie_action(S)) is type(S.lie_action())
