"""Sphere S^n: section A of HOSTILE_INPUTS.md (one test per row), gradchecks, references."""

import math

import mpmath
import numpy as np
import pytest
import torch

import manifres
from manifres.errors import (
    CutLocusError,
    DTypeError,
    ManifoldError,
    ParameterError,
    ShapeError,
    UnknownChoiceError,
)
from manifres.testing import assert_on_manifold, tol

EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}


def frame(dtype, n=2):
    """A point x and a unit tangent e at x, exactly representable."""
    x = torch.zeros(n + 1, dtype=dtype)
    x[0] = 1.0
    e = torch.zeros(n + 1, dtype=dtype)
    e[1] = 1.0
    return x, e


def oblique_frame(dtype, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = manifres.Sphere(n)
    x = S.random(dtype=torch.float64, generator=g)
    e = S.random_tangent(x, generator=g)
    e = e / e.norm()
    return x.to(dtype), e.to(dtype), x, e


def mp_exp(x, v):
    """exp_x(v) in 50-digit arithmetic (x, v float64 numpy arrays)."""
    mpmath.mp.dps = 50
    xs = [mpmath.mpf(float(a)) for a in x]
    vs = [mpmath.mpf(float(a)) for a in v]
    t = mpmath.sqrt(sum(a * a for a in vs))
    s = mpmath.sin(t) / t if t != 0 else mpmath.mpf(1)
    return np.array([float(mpmath.cos(t) * a + s * b) for a, b in zip(xs, vs, strict=True)])


# ----------------------------------------------------------------------------- A1
def test_a1_exp_at_zero_is_exact_with_projection_gradient(dtype):
    S = manifres.Sphere(2)
    x, _ = frame(dtype)
    g = torch.Generator().manual_seed(1)
    big = manifres.Sphere(50).random(1024, dtype=dtype, generator=g)  # the fused path
    for M, xx in ((S, x), (S, S.random(4096, dtype=dtype, generator=g)), (manifres.Sphere(50), big)):
        for r in M.retractions:
            assert torch.equal(M.retract(xx, torch.zeros_like(xx), r), xx), r
    xo, _, _, _ = oblique_frame(dtype)
    v = torch.zeros(3, dtype=dtype, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda v: S.exp(xo, v), v)
    P = torch.eye(3, dtype=dtype) - torch.outer(xo, xo)
    assert torch.allclose(jac, P, atol=tol(dtype, 1e-6, 1e-12))


# ----------------------------------------------------------------------------- A2, A3
SWEEP = torch.logspace(-30, 0, 1000, dtype=torch.float64)


def test_a2_exp_sweep_matches_closed_form(dtype):
    S = manifres.Sphere(2)
    x32, e32, x, e = oblique_frame(dtype)
    v = SWEEP[:, None] * e  # float64
    if dtype == torch.float32:
        ref = torch.cos(SWEEP)[:, None] * x.to(dtype).double() + (
            torch.sinc(SWEEP / math.pi)[:, None] * v.to(dtype).double()
        )
        out = S.exp(x32, v.to(dtype)).double()
        assert (out - ref).abs().max() <= 2e-7
    else:
        idx = torch.linspace(0, 999, 60).long()  # mpmath reference on a subsample
        ref = torch.tensor(np.stack([mp_exp(x.numpy(), v[i].numpy()) for i in idx]))
        out = S.exp(x, v[idx])
        assert (out - ref).abs().max() <= 4e-16


def test_a3_exp_gradient_sweep_matches_finite_differences(dtype):
    S = manifres.Sphere(2)
    x32, e32, x, e = oblique_frame(dtype)
    w = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    w = w - (w @ x) * x
    sweep = SWEEP[::25]
    v = (sweep[:, None] * e).to(dtype).requires_grad_(True)
    g = torch.randn(3, dtype=dtype, generator=torch.Generator().manual_seed(3))
    (S.exp(x32, v) * g).sum().backward()
    assert torch.isfinite(v.grad).all()
    auto = (v.grad.double() * w).sum(-1)
    # reference: central difference in float64 on the float64 op
    h = 1e-6
    vd = sweep[:, None] * e
    f = lambda vv: (S.exp(x, vv) * g.double()).sum(-1)  # noqa: E731
    fd = (f(vd + h * w) - f(vd - h * w)) / (2 * h)
    rel = (auto - fd).abs() / fd.abs().clamp_min(1e-3)
    assert rel.max() <= tol(dtype, 1e-3, 1e-7)


# ----------------------------------------------------------------------------- A4, A5
@pytest.mark.parametrize("angle", [math.pi, 2 * math.pi, 100.0])
def test_a4_exp_at_large_angles(dtype, angle):
    S = manifres.Sphere(2)
    x32, e32, x, e = oblique_frame(dtype)
    out = S.exp(x32, angle * e32)
    ref = torch.tensor(mp_exp(x32.double().numpy(), (angle * e32).double().numpy()))
    assert (out.double() - ref).abs().max() <= tol(dtype, 1e-6 * max(1, angle / 10), 1e-13)
    assert abs(float(out.norm()) - 1) <= 4 * EPS[dtype]
    if angle == math.pi:
        assert torch.allclose(out, -x32, atol=tol(dtype, 1e-6, 1e-13))


def test_a5_exp_at_huge_norm_stays_finite_and_unit(dtype):
    S = manifres.Sphere(2)
    x32, e32, _, _ = oblique_frame(dtype)
    out = S.exp(x32, 1e8 * e32)
    assert torch.isfinite(out).all()
    assert abs(float(out.norm()) - 1) <= 4 * EPS[dtype]


# ----------------------------------------------------------------------------- A6, A7
def test_a6_non_tangent_vector_is_projected_or_rejected(dtype):
    S = manifres.Sphere(2)
    x, _ = frame(dtype)
    v = torch.tensor([0.5, 0.3, 0.0], dtype=dtype)
    y = S.exp(x, v)
    assert abs(float(y.norm()) - 1) <= 4 * EPS[dtype]
    assert torch.allclose(y, S.exp(x, S.proj(x, v)), atol=4 * EPS[dtype])
    with pytest.raises(ManifoldError, match="not tangent"):
        manifres.Sphere(2, validate=True).exp(x, v)
    with manifres.validation(), pytest.raises(ManifoldError):
        S.exp(x, v)


@pytest.mark.parametrize("scale", [2.0, 1 + 1e-3])
def test_a7_base_point_off_manifold(dtype, scale):
    S = manifres.Sphere(2)
    x, e = frame(dtype)
    y = S.exp(scale * x, 0.3 * e)
    assert abs(float(y.norm()) - 1) <= 4 * EPS[dtype]
    assert abs(float(S.retract(scale * x, 0.3 * e, "projective").norm()) - 1) <= 4 * EPS[dtype]
    with pytest.raises(ManifoldError, match=r"\| \|x\| - 1 \| = "):
        manifres.Sphere(2, validate=True).exp(scale * x, 0.3 * e)


# ----------------------------------------------------------------------------- A8
def test_a8_log_at_coincident_points(dtype):
    S = manifres.Sphere(2)
    x32, *_ = oblique_frame(dtype)
    assert torch.equal(S.log(x32, x32), torch.zeros_like(x32))
    y = x32.clone().requires_grad_(True)
    jac = torch.autograd.functional.jacobian(lambda y: S.log(x32, y), y)
    P = torch.eye(3, dtype=dtype) - torch.outer(x32, x32)
    assert torch.isfinite(jac).all()
    assert torch.allclose(jac, P, atol=tol(dtype, 1e-5, 1e-12))


# ----------------------------------------------------------------------------- A9, A10
@pytest.mark.parametrize("angle", [1e-8, 1e-6, 1e-4, 0.5, 3.0])
def test_a9_dist_small_angles_relative_accuracy(dtype, angle):
    S = manifres.Sphere(2)
    _, _, x, e = oblique_frame(dtype)
    y = S.exp(x, angle * e)
    xs, ys = x.to(dtype), y.to(dtype)
    # reference: the angle between the rounded inputs, in 50 digits
    mpmath.mp.dps = 50
    a = [mpmath.mpf(float(t)) for t in xs.double()]
    b = [mpmath.mpf(float(t)) for t in ys.double()]
    na = mpmath.sqrt(sum(t * t for t in a))
    nb = mpmath.sqrt(sum(t * t for t in b))
    d = mpmath.sqrt(sum((p / na - q / nb) ** 2 for p, q in zip(a, b, strict=True)))
    ref = float(2 * mpmath.asin(d / 2))
    got = float(S.dist(xs, ys))
    assert S.dist(xs, xs) == 0
    # float32 points carry |x| - 1 ~ 6e-8 of rounding, which limits any chord formula to a
    # relative error of about (6e-8 / angle)^2: 1e-5 needs angle >= 2e-5 (documented in dist)
    if dtype == torch.float64 or angle >= 1e-4:
        assert abs(got - ref) <= tol(dtype, 1e-5, 1e-12) * ref + 4 * EPS[dtype] * ref


def test_a10_dist_gradient_at_coincident_points_is_zero(dtype):
    S = manifres.Sphere(2)
    x32, *_ = oblique_frame(dtype)
    x = x32.clone().requires_grad_(True)
    y = x32.clone().requires_grad_(True)
    S.dist(x, y).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.equal(y.grad, torch.zeros_like(y))


# ----------------------------------------------------------------------------- A11, A12
def test_a11_log_of_antipodal_points(dtype):
    x32, *_ = oblique_frame(dtype)
    with pytest.raises(CutLocusError, match="antipodal"):
        manifres.Sphere(2).log(x32, -x32)
    with pytest.raises(CutLocusError):
        manifres.Sphere(2).transport(x32, -x32, torch.zeros_like(x32))
    out = manifres.Sphere(2, cut_locus="nan").log(x32, -x32)
    assert torch.isnan(out).all()
    D = manifres.Sphere(2, cut_locus="deterministic")
    v = D.log(x32, -x32)
    assert abs(float(v.norm()) - math.pi) <= 8 * EPS[dtype]
    assert abs(float(v @ x32)) <= 8 * EPS[dtype]
    assert torch.equal(v, D.log(x32, -x32))
    assert torch.allclose(D.exp(x32, v), -x32, atol=tol(dtype, 1e-6, 1e-13))
    # a batch: only the antipodal row is special, the others are untouched
    xb = torch.stack([x32, x32])
    yb = torch.stack([-x32, D.exp(x32, 0.3 * D.random_tangent(x32))])
    out = manifres.Sphere(2, cut_locus="nan").log(xb, yb)
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()
    # never a silent zero close to the cut locus either
    _, _, x, e = oblique_frame(dtype)
    near = manifres.Sphere(2).exp(x, (math.pi - 1e-3) * e).to(dtype)
    assert abs(float(manifres.Sphere(2).log(x.to(dtype), near).norm()) - (math.pi - 1e-3)) < 1e-4


def test_a12_dist_of_antipodal_points_is_pi(dtype):
    S = manifres.Sphere(2)
    x32, *_ = oblique_frame(dtype)
    assert abs(float(S.dist(x32, -x32)) - math.pi) <= 2 * EPS[dtype] * math.pi


# ----------------------------------------------------------------------------- A13, A14, A15
def test_a13_proj_point_of_zero(dtype):
    S = manifres.Sphere(2)
    y = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    out = S.proj_point(y)
    assert torch.equal(out, torch.tensor([[1.0, 0, 0], [1.0, 0, 0]], dtype=dtype))
    out.sum().backward()
    assert torch.equal(y.grad, torch.zeros_like(y))
    with pytest.raises(ManifoldError, match="zero vector"):
        manifres.Sphere(2, validate=True).proj_point(y.detach())


def test_a14_norm_of_zero_tangent_has_zero_gradient(dtype):
    S = manifres.Sphere(2)
    x, _ = frame(dtype)
    v = torch.zeros(3, dtype=dtype, requires_grad=True)
    n = S.norm(x, v)
    assert n == 0
    n.backward()
    assert torch.equal(v.grad, torch.zeros_like(v))


def test_a15_projection_of_huge_vector(dtype):
    S = manifres.Sphere(2)
    x = S.random(100, dtype=dtype, generator=torch.Generator().manual_seed(0))
    v = 1e6 * torch.randn(100, 3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    p = S.proj(x, v)
    assert ((p * x).sum(-1).abs() <= 4 * EPS[dtype] * v.norm(dim=-1)).all()
    assert torch.allclose(S.proj(x, p), p, atol=4 * EPS[dtype] * 1e6 * 2)


# ----------------------------------------------------------------------------- A16, A17
@pytest.mark.parametrize("method", ["exp", "projective"])
@pytest.mark.parametrize("project", [True, False])
def test_a16_a17_long_chains_stay_on_the_sphere(dtype, method, project):
    S = manifres.Sphere(2)
    g = torch.Generator().manual_seed(0)
    x = S.random(32, dtype=dtype, generator=g)
    A = torch.randn(3, 3, dtype=dtype, generator=g)
    drift = []
    for k in range(10_000):
        f = torch.tanh(x @ A) + 0.3  # state-dependent, not tangent
        v = S.proj(x, f) if project else f
        x = S.retract(x, 0.05 * v, method)
        if k % 1000 == 999:
            drift.append(float((x.norm(dim=-1) - 1).abs().max()))
    assert max(drift) <= tol(dtype, 1e-6, 1e-14)
    assert drift[-1] <= max(drift[:3]) + 2 * EPS[dtype]  # bounded, not growing


# ----------------------------------------------------------------------------- A18, A19
def test_a18_membership_tolerance_is_dtype_aware():
    x = torch.tensor([1 + 1e-5, 0.0, 0.0])
    S = manifres.Sphere(2)
    assert bool(S.is_point(x))
    assert not bool(S.is_point(x.double()))
    with pytest.raises(ManifoldError):
        S.check_point(x.double())
    assert not bool(S.is_point(torch.tensor([1 + 1e-3, 0.0, 0.0])))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a19_non_finite_inputs_propagate_or_raise(dtype, bad):
    S = manifres.Sphere(2)
    x, e = frame(dtype)
    xb = x.clone()
    xb[1] = bad
    vb = e.clone()
    vb[2] = bad
    for out in (S.exp(xb, 0.1 * e), S.exp(x, vb), S.log(x, xb), S.retract(x, vb, "projective")):
        assert not torch.isfinite(out).all()
    assert not torch.isfinite(S.dist(x, xb))
    assert not bool(S.is_point(xb))
    with pytest.raises(ManifoldError, match="not finite"):
        S.check_point(xb)
    with pytest.raises(ManifoldError, match="not finite"):
        manifres.Sphere(2, validate=True).exp(x, vb)


# ----------------------------------------------------------------------------- A20, A21, A22
def test_a20_mixed_dtypes_raise():
    S = manifres.Sphere(2)
    x = torch.tensor([1.0, 0, 0])
    with pytest.raises(DTypeError, match=r"torch.float32.*torch.float64"):
        S.exp(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(DTypeError, match="int64"):
        S.exp(torch.tensor([1, 0, 0]), torch.tensor([0, 1, 0]))
    with pytest.raises(DTypeError, match="float16"):
        S.proj(x.half(), x.half())
    assert isinstance(DTypeError("x"), TypeError)


def test_a21_broadcasting_and_shape_errors(dtype):
    S = manifres.Sphere(2)
    x, e = frame(dtype)
    v = 0.1 * torch.randn(5, 3, dtype=dtype)
    out = S.exp(x, v)
    assert out.shape == (5, 3)
    assert torch.allclose(out[2], S.exp(x, v[2]))
    xs = S.random(4, 1, dtype=dtype)
    assert S.dist(xs, S.random(5, dtype=dtype)).shape == (4, 5)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\).*\(5, 4\)"):
        S.exp(x, torch.zeros(5, 4, dtype=dtype))
    with pytest.raises(ShapeError, match="broadcast"):
        S.dist(S.random(4, dtype=dtype), S.random(5, dtype=dtype))
    with pytest.raises(UnknownChoiceError, match="exp, projective"):
        S.retract(x, e, "cayley")


def test_a22_empty_batch(dtype):
    S = manifres.Sphere(2)
    x = torch.zeros(0, 3, dtype=dtype)
    for out in (S.exp(x, x), S.log(x, x), S.retract(x, x, "projective"), S.proj(x, x), S.transport(x, x, x)):
        assert out.shape == (0, 3)
    assert S.dist(x, x).shape == (0,)
    assert S.random(0, dtype=dtype).shape == (0, 3)


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("n", [1, 2, 63])
def test_contract(dtype, n):
    S = manifres.Sphere(n)
    g = torch.Generator().manual_seed(n)
    x = S.random(20, dtype=dtype, generator=g)
    u = torch.randn(20, n + 1, dtype=dtype, generator=g)
    v = S.proj(x, u)
    assert torch.allclose(S.proj(x, v), v, atol=tol(dtype, 1e-6, 1e-14))
    assert_on_manifold(S, x)
    v = 2.0 * v / v.norm(dim=-1, keepdim=True)  # |v| = 2 < pi
    for m in S.retractions:
        assert_on_manifold(S, S.retract(x, v, m))
    y = S.exp(x, v)
    assert torch.allclose(S.log(x, y), v, atol=tol(dtype, 2e-5, 1e-12))
    assert torch.allclose(S.dist(x, y), S.norm(x, S.log(x, y)), atol=tol(dtype, 2e-6, 1e-12))
    assert torch.allclose(S.dist(x, y), torch.full((20,), 2.0, dtype=dtype), atol=tol(dtype, 2e-6, 1e-12))
    assert torch.allclose(S.geodesic(x, v, 0.5), S.exp(x, 0.5 * v))
    looped = torch.stack([S.exp(x[i], v[i]) for i in range(20)])
    assert torch.allclose(looped, y, atol=2 * EPS[dtype])
    # transport: tangent at y, isometry, maps log_x y to -log_y x
    w = S.random_tangent(x, generator=g)
    tw = S.transport(x, y, w)
    assert (S.inner(y, tw, y).abs() <= tol(dtype, 1e-5, 1e-12)).all()
    assert torch.allclose(S.norm(y, tw), S.norm(x, w), atol=tol(dtype, 1e-5, 1e-12))
    assert torch.allclose(S.transport(x, y, v), -S.log(y, x), atol=tol(dtype, 2e-5, 1e-11))
    assert S.dim == n and S.point_shape == (n + 1,)
    assert S == manifres.Sphere(n) and hash(S) == hash(manifres.Sphere(n))


def test_transport_matches_geodesic_ode():
    """Parallel transport equals the solution of the transport ODE along the geodesic."""
    S = manifres.Sphere(2)
    g = torch.Generator().manual_seed(4)
    x = S.random(dtype=torch.float64, generator=g)
    v = 2.5 * S.random_tangent(x, generator=g)
    w = S.random_tangent(x, generator=g)
    steps = 4000
    p, ww = x, w
    for k in range(steps):  # dW/dt = -<W, gamma'> gamma (Levi-Civita on the sphere)
        q = S.geodesic(x, v, (k + 1) / steps)
        ww = S.proj(q, ww)
        ww = ww * (S.norm(x, w) / S.norm(q, ww))
        p = q
    assert torch.allclose(S.transport(x, p, w), ww, atol=1e-3)


# ----------------------------------------------------------------------------- D rows
@pytest.mark.parametrize("op", ["exp", "log", "dist", "transport", "projective", "proj", "proj_point"])
def test_d5_gradcheck_and_gradgradcheck(op):
    S = manifres.Sphere(3)
    g = torch.Generator().manual_seed(7)
    x = S.random(3, dtype=torch.float64, generator=g)
    v = 0.8 * S.random_tangent(x, generator=g)
    y = S.exp(x, v)
    w = S.random_tangent(x, generator=g)
    fns = {
        "exp": (lambda x, v: S.exp(S.proj_point(x), v), (x, v)),
        "log": (lambda x, y: S.log(S.proj_point(x), S.proj_point(y)), (x, y)),
        "dist": (lambda x, y: S.dist(S.proj_point(x), S.proj_point(y)), (x, y)),
        "transport": (lambda x, y, w: S.transport(S.proj_point(x), S.proj_point(y), w), (x, y, w)),
        "projective": (lambda x, v: S.retract(x, v, "projective"), (x, v)),
        "proj": (S.proj, (x, w)),
        "proj_point": (S.proj_point, (2 * x,)),
    }
    fn, args = fns[op]
    args = tuple(a.clone().requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def test_d4_gradients_finite_at_singular_points(dtype):
    S = manifres.Sphere(2)
    x0, e0 = frame(dtype)
    cases = [
        lambda x, v: S.exp(x, 0 * v),
        lambda x, v: S.log(x, x),
        lambda x, v: S.dist(x, x),
        lambda x, v: S.dist(x, -x),
        lambda x, v: S.norm(x, 0 * v),
        lambda x, v: S.transport(x, x, v),
        lambda x, v: manifres.Sphere(2, cut_locus="deterministic").log(x, -x),
        lambda x, v: S.retract(x, 0 * v, "projective"),
    ]
    for f in cases:
        x = x0.clone().requires_grad_(True)
        v = e0.clone().requires_grad_(True)
        f(x, v).sum().backward()
        for t in (x, v):
            assert t.grad is None or torch.isfinite(t.grad).all()


def test_d6_no_unsafe_primitives_in_source():
    import pathlib

    root = pathlib.Path(manifres.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert ".acos(" not in text and "torch.acos" not in text and "arccos" not in text, path


def test_d7_bitwise_reproducible(dtype):
    S = manifres.Sphere(5)
    x = S.random(1000, dtype=dtype, generator=torch.Generator().manual_seed(0))
    v = S.random_tangent(x, generator=torch.Generator().manual_seed(1))
    y = S.exp(x, v)
    assert torch.equal(S.exp(x, v), y)
    assert torch.equal(S.log(x, y), S.log(x, y))


@pytest.mark.cuda
def test_d7_cpu_matches_cuda(dtype):
    S = manifres.Sphere(5)
    x = S.random(1000, dtype=dtype, generator=torch.Generator().manual_seed(0))
    v = S.random_tangent(x, generator=torch.Generator().manual_seed(1))
    out = S.exp(x.cuda(), v.cuda())
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), S.exp(x, v), atol=tol(dtype, 1e-6, 1e-12))
    assert torch.allclose(S.log(x.cuda(), out).cpu(), S.log(x, S.exp(x, v)), atol=tol(dtype, 1e-5, 1e-12))


# ----------------------------------------------------------------------------- range
@pytest.mark.parametrize("log2_scale", [-140, -76, -10, 66, 125])  # subnormal .. near max
def test_proj_point_is_scale_free_over_the_float32_range(log2_scale):
    scale = 2.0**log2_scale
    S = manifres.Sphere(2)
    y = torch.tensor([[0.0, 3.0, 4.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
    got = S.proj_point((scale * y).float())
    torch.testing.assert_close(got, (y / y.norm(dim=-1, keepdim=True)).float(), rtol=0, atol=2e-7)


@pytest.mark.parametrize("r", ["exp", "projective"])
def test_steps_whose_norm_overflows_are_nan_never_zero(dtype, r):
    S = manifres.Sphere(2)
    big = 1e20 if dtype == torch.float32 else 1e160
    x = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    out = S.retract(x, torch.tensor([0.0, big, 0.0], dtype=dtype), r)
    assert bool(out.isnan().all())
    ok = S.retract(x, torch.tensor([0.0, 1e18 if dtype == torch.float32 else 1e150, 0.0], dtype=dtype), r)
    assert torch.allclose(ok.norm(), torch.ones((), dtype=dtype))


@pytest.mark.parametrize("cls", [manifres.Sphere, manifres.Euclidean, manifres.SpecialOrthogonal])
def test_dimension_accepts_numpy_and_tensor_integers(cls):
    assert cls(np.int64(3)) == cls(3) and cls(torch.tensor(3)) == cls(3)
    assert type(cls(np.int32(3)).n) is int
    for bad in (3.0, True, "3", 0):
        with pytest.raises(ParameterError, match="n must be"):
            cls(bad)


def test_vmap_at_antipodes_gives_nan_under_raise_and_matches_eager_otherwise(dtype):
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    y = torch.tensor([[-1.0, 0.0, 0.0], [0.6, 0.8, 0.0]], dtype=dtype)
    v = torch.tensor([[0.0, 0.3, 0.1], [0.2, 0.0, 0.5]], dtype=dtype)
    S = manifres.Sphere(2)
    with pytest.raises(CutLocusError):
        S.log(x, y)
    for op in (S.log, lambda a, b: S.transport(a, b, v[0])):
        out = torch.func.vmap(op)(x, y)
        assert bool(out[0].isnan().all()) and bool(out[1].isfinite().all())
        torch.testing.assert_close(out[1], op(x[1], y[1]))
    D = manifres.Sphere(2, cut_locus="deterministic")
    torch.testing.assert_close(torch.func.vmap(D.log)(x, y), D.log(x, y))
    torch.testing.assert_close(torch.func.vmap(D.transport)(x, y, v), D.transport(x, y, v))
