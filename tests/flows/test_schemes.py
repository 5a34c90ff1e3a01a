"""The low-rank Lie-group steps on S^n (issue 10 item 5): equal to the dense matrix_exp path,
never an (n+1) x (n+1) matrix, orders 2/4/2/4 on high-dimensional problems, gradients."""

import pytest
import torch
from torch import nn

import manifres
from manifres.flows import METHODS, get_stepper, integrate, problems
from manifres.manifolds.actions import SphereRotation, SphereSubspace
from manifres.testing import tol

LIE = ["rkmk2", "rkmk4", "cg2", "cf4"]


class _Dense(SphereRotation):
    """The implementation before 0.2.0: dense skew generators, one big matrix_exp each."""

    local = None


def _dense_stepper(S, method):
    step = get_stepper(S, method)
    step.action = _Dense()
    return step


def _skew(n, g, scale=1.0):
    a = torch.randn(n, n, dtype=torch.float64, generator=g) * scale
    return a - a.mT


class _TanhField(nn.Module):
    def __init__(self, n, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(n, n, dtype=torch.float64, generator=g) / n**0.5)
        self.b = nn.Parameter(torch.randn(n, dtype=torch.float64, generator=g))

    def forward(self, x, t):
        return torch.tanh(x @ self.W.mT.to(x.dtype) + torch.cos(torch.as_tensor(t)) * self.b.to(x.dtype))


class _ConjugatedRotation(nn.Module):
    r""":math:`F(x, t) = (A + e^{tA} B e^{-tA}) x`; exact flow :math:`e^{tA} e^{tB} x_0`."""

    time_dependent = True

    def __init__(self, A, B):
        super().__init__()
        self.register_buffer("A", A)
        self.register_buffer("B", B)

    def forward(self, x, t):
        E = torch.linalg.matrix_exp(torch.as_tensor(t, dtype=self.A.dtype) * self.A)
        G = (self.A + E @ self.B @ E.mT).to(x.dtype)
        return x @ G.mT


class _Lifted(nn.Module):
    """A field of S^2 carried to S^n by an isometric embedding ``P`` (shape (n+1, 3))."""

    def __init__(self, inner, P):
        super().__init__()
        self.inner = inner
        self.time_dependent = getattr(inner, "time_dependent", False)
        self.register_buffer("P", P)

    def forward(self, x, t=None):
        y = x @ self.P.to(x.dtype)
        v = self.inner(y, t) if self.time_dependent else self.inner(y)
        return v @ self.P.mT.to(x.dtype)


def _lift(p, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    P, _ = torch.linalg.qr(torch.randn(n + 1, 3, dtype=torch.float64, generator=g))
    return problems.Problem(
        p.name + f"_on_S{n}", manifres.Sphere(n), _Lifted(p.field, P), p.x0 @ P.mT, p.t0, p.t1,
        lambda t: p.exact(t) @ P.mT,
    )


def _conjugated(n, seed=3):
    g = torch.Generator().manual_seed(seed)
    A, B = _skew(n + 1, g, 0.4), _skew(n + 1, g, 0.4)
    S = manifres.Sphere(n)
    x0 = S.random(4, dtype=torch.float64, generator=g)

    def exact(t):
        return x0 @ (torch.linalg.matrix_exp(t * A) @ torch.linalg.matrix_exp(t * B)).mT

    return problems.Problem(f"conjugated_rotation_on_S{n}", S, _ConjugatedRotation(A, B), x0, 0.0, 1.5, exact)


@pytest.mark.parametrize("method", LIE)
@pytest.mark.parametrize("n", [3, 9, 60])
def test_low_rank_step_equals_dense_matrix_exp(method, n):
    S = manifres.Sphere(n)
    field = _TanhField(n + 1)
    x = S.random(5, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        for h in (1e-3, 0.1, 0.7):
            low = get_stepper(S, method)(field, x, 0.2, h)
            dense = _dense_stepper(S, method)(field, x, 0.2, h)
            assert (low - dense).abs().max() <= 1e-10


@pytest.mark.parametrize("method", LIE)
def test_low_rank_float32_follows_float64_and_stays_on_the_sphere(dtype, method):
    S = manifres.Sphere(99)
    field = _TanhField(100)
    x = S.random(8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = integrate(S, field, x.to(dtype), 1.0, 10, method=method)
        ref = integrate(S, field, x, 1.0, 10, method=method, t0=0.0)
        dense = _dense_stepper(S, method)(field, x, 0.0, 0.1)
    assert y.dtype == dtype and y.shape == x.shape
    assert ((y * y).sum(-1) - 1).abs().max() <= tol(dtype, 1e-6, 1e-14)
    assert (y.double() - ref).abs().max() <= tol(dtype, 1e-5, 1e-13)
    assert (get_stepper(S, method)(field, x, 0.0, 0.1) - dense).abs().max() <= 1e-10


@pytest.mark.parametrize("method", LIE)
def test_no_dense_generator_is_built(monkeypatch, method):
    shapes = []
    real = torch.linalg.matrix_exp
    monkeypatch.setattr(torch.linalg, "matrix_exp", lambda a: shapes.append(tuple(a.shape)) or real(a))
    S = manifres.Sphere(199)
    x = S.random(3, dtype=torch.float64)
    y = get_stepper(S, method)(_TanhField(200), x, 0.0, 0.1)
    size = {"rkmk2": 3, "cg2": 3, "rkmk4": 5, "cf4": 5}[method]
    assert shapes and all(s == (3, size, size) for s in shapes)
    assert ((y * y).sum(-1) - 1).abs().max() <= 1e-14


def test_subspace_basis_is_orthonormal_and_spans_the_stage_vectors():
    g = torch.Generator().manual_seed(0)
    x = manifres.Sphere(29).random(4, dtype=torch.float64, generator=g)
    loc = SphereRotation().local(x, 4)
    assert isinstance(loc, SphereSubspace)
    vs = [torch.randn(4, 30, dtype=torch.float64, generator=g) for _ in range(3)]
    c = loc.origin
    for v in vs:
        v = v - (v * x).sum(-1, keepdim=True) * x
        k = loc.algebra(c, v)
        assert k.shape == (4, 4, 4) and torch.allclose(k, -k.mT)
        Q = loc.basis()
        assert (Q.mT @ Q - torch.eye(Q.shape[-1], dtype=Q.dtype)).abs().max() <= 1e-14
        # the core is Q^T xi Q, with xi the dense generator of SphereRotation
        y = loc.ambient(c)
        K = Q.mT @ SphereRotation().algebra(y, v) @ Q
        assert (k[..., : Q.shape[-1], : Q.shape[-1]] - K).abs().max() <= 1e-13
        c = loc.act(0.3 * k, c)
    assert loc.basis().shape == (4, 30, 4)
    with pytest.raises(RuntimeError, match="algebra"):
        loc.algebra(c, vs[0])


def test_degenerate_stage_vectors_in_the_span():
    """A geodesic field: every v_i lies in span(x0, v_1); the extra columns are zero."""
    p = _lift(problems.sphere_geodesic(), 9)
    with torch.no_grad():
        for m in LIE:
            low = get_stepper(p.manifold, m)(p.field, p.x0, 0.0, 0.2)
            dense = _dense_stepper(p.manifold, m)(p.field, p.x0, 0.0, 0.2)
            assert torch.isfinite(low).all() and (low - dense).abs().max() <= 1e-12


def _slope(p, method):
    ns = problems.DEFAULT_STEPS[METHODS[method]]
    errs = [problems.global_error(p, method, n) for n in ns]
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False)), errs
    return problems._fit_slope([(p.t1 - p.t0) / n for n in ns], errs)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize(
    "make",
    [
        lambda: _lift(problems.sphere_small_circle(), 9),
        lambda: _lift(problems.sphere_time_dependent(), 9),
        lambda: _conjugated(9),
    ],
    ids=["small_circle_S9", "time_dependent_S9", "conjugated_S9"],
)
def test_measured_orders_on_higher_spheres(make, method):
    p = make()
    if method != "euler":
        assert type(p.manifold.lie_action()) is SphereRotation
    assert abs(_slope(p, method) - METHODS[method]) <= 0.2


def test_gradcheck_one_low_rank_stage():
    """d/d(x, v, h) of exp(h xi(x, v)) x through the subspace, float64."""
    g = torch.Generator().manual_seed(2)
    x = manifres.Sphere(6).random(3, dtype=torch.float64, generator=g).requires_grad_()
    v = torch.randn(3, 7, dtype=torch.float64, generator=g).requires_grad_()
    h = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

    def stage(x, v, h):
        loc = SphereRotation().local(x, 3)
        k1 = loc.algebra(loc.origin, v)
        y = loc.act(h * k1, loc.origin)
        k2 = loc.algebra(y, torch.sin(loc.ambient(y)))
        u = 0.5 * h * (k1 + k2) - h * h / 12 * loc.bracket(k1, k2)
        return loc.ambient(loc.act(u, loc.origin))

    assert torch.autograd.gradcheck(stage, (x, v, h))


@pytest.mark.parametrize("method", ["rkmk4", "cf4"])
def test_gradcheck_low_rank_step_parameters(method):
    S = manifres.Sphere(5)
    field = _TanhField(6, seed=4)
    x = S.random(2, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    step = get_stepper(S, method)

    def f(x, W, b):
        field.W.data, field.b.data = W, b
        return step(lambda y, t: torch.tanh(y @ W.mT + torch.cos(torch.as_tensor(t)) * b), x, 0.0, 0.3)

    W = field.W.detach().clone().requires_grad_()
    b = field.b.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (x, W, b))
    # and the gradient equals the dense path's
    dense = _dense_stepper(S, method)
    gl = torch.autograd.grad(step(field, x, 0.0, 0.3).sum(), (x, *field.parameters()))
    gd = torch.autograd.grad(dense(field, x, 0.0, 0.3).sum(), (x, *field.parameters()))
    for a, b_ in zip(gl, gd, strict=True):
        assert (a - b_).abs().max() <= 1e-10
