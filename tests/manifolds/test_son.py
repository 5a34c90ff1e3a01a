"""SpecialOrthogonal: rows B13, B14, B17-B20 (and B9, B22, B23 on the manifold) of
HOSTILE_INPUTS.md, the contract suite on SO(2..5), gradchecks, long chains and references."""

import logging
import math
import os

import numpy as np
import pytest
import scipy.linalg as sl
import torch

import manifres
from manifres import SpecialOrthogonal, so3
from manifres.errors import (
    CutLocusError,
    DTypeError,
    ManifoldError,
    ParameterError,
    ShapeError,
    UnknownChoiceError,
)
from manifres.testing import assert_on_manifold, assert_tangent, tol

EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}
METHODS = ["exp", "cayley", "qr", "polar"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one thread avoids OpenMP overhead on a loaded 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def planes(n, angles, seed=0):
    """A rotation with the given plane angles in a random frame, and its log (float64)."""
    Q = SpecialOrthogonal(n).random(dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    A = torch.zeros(n, n, dtype=torch.float64)
    for k, a in enumerate(angles):
        A[2 * k + 1, 2 * k] = a
        A[2 * k, 2 * k + 1] = -a
    return Q @ torch.linalg.matrix_exp(A) @ Q.mT, Q @ A @ Q.mT


def signed_permutation(n, dtype):
    """An exactly representable rotation that is not the identity."""
    P = torch.zeros(n, n, dtype=dtype)
    P[torch.arange(n), torch.roll(torch.arange(n), 1)] = 1.0
    if torch.linalg.det(P.double()) < 0:
        P[0] = -P[0]
    return P


def orth(R):
    E = R.mT @ R - torch.eye(R.shape[-1], dtype=R.dtype)
    return float(E.abs().max())


def frame(G, dtype, batch=(), seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = G.random(*batch, dtype=torch.float64, generator=g)
    v = G.random_tangent(x, generator=g)
    v = scale * v / G.norm(x, v)[..., None, None]
    return x.to(dtype), v.to(dtype)


def geomstats_so(n):
    """geomstats' SO(n) (matrices), imported lazily; global state restored afterwards."""
    os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        from geomstats.geometry.special_orthogonal import SpecialOrthogonal as GS
    finally:
        torch.set_default_dtype(torch.float32)
        root.setLevel(level)
        root.handlers[:] = handlers
    return GS(n, point_type="matrix")


def as64(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


# ----------------------------------------------------------------------------- B13, B14
@pytest.mark.parametrize("n", [2, 3, 4])
def test_b13_dist_at_coincident_and_tiny_angles(dtype, n):
    G = SpecialOrthogonal(n)
    x = signed_permutation(n, dtype)
    xr = G.random(3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    assert torch.equal(G.dist(xr, xr), torch.zeros(3, dtype=dtype))
    assert torch.equal(G.log(xr, xr), torch.zeros_like(xr))
    R = torch.eye(n, dtype=torch.float64)  # a plane rotation by 1e-7, entries rounded once
    R[0, 0] = R[1, 1] = math.cos(1e-7)
    R[1, 0], R[0, 1] = math.sin(1e-7), -math.sin(1e-7)
    y = (x.double() @ R).to(dtype)  # exact products: x is a signed permutation
    assert abs(float(G.dist(x, y)) - math.sqrt(2) * 1e-7) <= tol(dtype, 1e-5, 1e-12) * math.sqrt(2) * 1e-7
    assert abs(float(G.angle(x, y)) - 1e-7) <= tol(dtype, 1e-5, 1e-12) * 1e-7
    a = xr.clone().requires_grad_(True)
    b = xr.clone().requires_grad_(True)
    G.dist(a, b).sum().backward()
    assert torch.equal(a.grad, torch.zeros_like(a)) and torch.equal(b.grad, torch.zeros_like(b))


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("delta", [1e-6, 0.0])
def test_b14_dist_near_and_at_pi(dtype, n, delta):
    G = SpecialOrthogonal(n)
    x = signed_permutation(n, dtype)
    R, _ = planes(n, [math.pi - delta], seed=2)
    y = (x.double() @ R).to(dtype)
    assert abs(float(G.angle(x, y)) - (math.pi - delta)) <= tol(dtype, 1e-6, 1e-12)
    assert abs(float(G.dist(x, y)) - math.sqrt(2) * (math.pi - delta)) <= tol(dtype, 1.5e-6, 1.5e-12)


# ----------------------------------------------------------------------------- B17
def np_qf(M):
    Q, T = np.linalg.qr(M)
    return Q * np.where(np.diag(T) < 0, -1.0, 1.0)[None, :]


@pytest.mark.parametrize("n", [3, 4])
def test_b17_qr_retraction(dtype, n):
    G = SpecialOrthogonal(n)
    x, v = frame(G, dtype, seed=3)
    hs = torch.linspace(0, 3, 301, dtype=dtype)
    out = G.retract(x.expand(301, n, n), hs[:, None, None] * v, "qr")
    # continuous in h (no sign flips), orthogonal, det +1, equal to the definition qf(x + h v)
    assert (out[1:] - out[:-1]).abs().max() <= 0.05
    assert max(orth(o.double()) for o in out) <= tol(dtype, 1e-6, 1e-14)
    assert (torch.linalg.det(out.double()) - 1).abs().max() <= tol(dtype, 1e-6, 1e-14)
    ref = np.stack([np_qf((x + h * v).double().numpy()) for h in hs[::30].double()])
    assert np.abs(out[::30].double().numpy() - ref).max() <= tol(dtype, 2e-6, 1e-13)
    assert torch.equal(G.retract(x, 0 * v, "qr"), G.retract(x, 0 * v, "qr"))
    # tangent gradient against float64 finite differences
    _check_retraction_gradient(G, x, v, "qr", dtype)


def _check_retraction_gradient(G, x, v, method, dtype, scale=1.0):
    W = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    vv = v.clone().requires_grad_(True)
    (W.to(dtype) * G.retract(x, scale * vv, method)).sum().backward()
    assert torch.isfinite(vv.grad).all()
    d = G.random_tangent(x.double(), generator=torch.Generator().manual_seed(5))
    h = 1e-6
    f = lambda t: (W * G.retract(x.double(), scale * (v.double() + t * d), method)).sum()  # noqa: E731
    fd = float((f(h) - f(-h)) / (2 * h))
    auto = float((vv.grad.double() * d).sum())
    assert abs(auto - fd) <= tol(dtype, 1e-3, 1e-7) * max(abs(fd), 1.0)


# ----------------------------------------------------------------------------- B18
@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("theta", [10.0, 100.0])
def test_b18_cayley_retraction_large_steps(dtype, n, theta):
    G = SpecialOrthogonal(n)
    x, v = frame(G, dtype, seed=6, scale=theta)
    out = G.retract(x, v, "cayley")
    assert torch.isfinite(out).all()
    assert orth(out.double()) <= tol(dtype, 1e-6, 1e-14)
    Om = (x.mT @ v).double().numpy()
    I = np.eye(n)
    ref = x.double().numpy() @ np.linalg.solve(I - Om / 2, I + Om / 2)
    assert np.abs(out.double().numpy() - ref).max() <= tol(dtype, 2e-6, 1e-13)
    if n == 3:  # a rotation by 2 atan(|omega| / 2), |omega| = |v|_F / sqrt(2)
        want = 2 * math.atan(theta / (2 * math.sqrt(2)))
        assert abs(float(G.angle(x, out)) - want) <= tol(dtype, 2e-6, 1e-12)
    _check_retraction_gradient(G, x, v / theta, "cayley", dtype, scale=theta)


# ----------------------------------------------------------------------------- B19, B20
@pytest.mark.parametrize("n", [4, 5, 8])
def test_b19_log_with_one_plane_near_pi(dtype, n):
    G = SpecialOrthogonal(n)
    angles = [math.pi - 1e-7] + [0.4 + 0.5 * k for k in range(n // 2 - 1)]
    R, A = planes(n, angles, seed=n)
    I = torch.eye(n, dtype=dtype)
    L = G.log(I, R.to(dtype))
    assert (L + L.mT).abs().max() <= tol(dtype, 1e-6, 1e-12)
    assert (torch.linalg.matrix_exp(L.double()) - R.to(dtype).double()).abs().max() <= tol(dtype, 1e-5, 1e-12)
    assert (L.double() - A).abs().max() <= tol(dtype, 1e-5, 1e-12)


@pytest.mark.parametrize("n", [4, 5])
def test_b20_log_with_two_planes_at_pi(dtype, n):
    G = SpecialOrthogonal(n)
    I = torch.eye(n, dtype=dtype)
    for R in (planes(n, [math.pi, math.pi], seed=1)[0].to(dtype),
              torch.diag(torch.tensor([-1.0] * 4 + [1.0] * (n - 4), dtype=dtype))):
        L = G.log(I, R)  # a documented choice: one valid logarithm, deterministic
        assert torch.equal(L, G.log(I, R.clone()))
        assert (L + L.mT).abs().max() == 0
        assert abs(float(L.norm()) - 2 * math.pi) <= tol(dtype, 1e-5, 1e-12)
        assert (torch.linalg.matrix_exp(L.double()) - R.double()).abs().max() <= tol(dtype, 1e-6, 1e-12)
        with pytest.raises(CutLocusError, match="two or more planes"):
            SpecialOrthogonal(n, validate=True).log(I, R)
        with pytest.raises(CutLocusError):
            SpecialOrthogonal(n, validate=True).transport(I, R, torch.zeros_like(R))
    # one plane at pi is not an error, and neither is a pair of planes just below pi
    SpecialOrthogonal(n, validate=True).log(I, planes(n, [math.pi, 1.0])[0].to(dtype))
    SpecialOrthogonal(n, validate=True).log(I, planes(n, [math.pi - 1e-3] * 2)[0].to(dtype))


def test_log_n4_hard_cases_round_trip_and_match_truth():
    """Repeated and nearly repeated angles near 0, pi/2, 2pi/3 and pi, in float64 and float32."""
    cases = [[math.pi - 1e-3] * 2, [math.pi - 1e-7] * 2, [math.pi - 1e-5, math.pi - 2e-5],
             [math.pi - 1e-9, math.pi - 1e-3], [1.0, 1.0], [0.0, 0.0], [1e-9, 2.0],
             [math.pi / 2, math.pi / 2 + 1e-9], [2 * math.pi / 3, 2 * math.pi / 3 + 1e-10],
             [math.pi, 0.0], [math.pi - 0.05, math.pi - 0.05 - 1e-8]]
    for n in (4, 5, 6):
        G = SpecialOrthogonal(n)
        for angles in cases:
            angles = angles + [0.3] * (n // 2 - 2)
            R, A = planes(n, angles, seed=n)
            L = G.log(torch.eye(n, dtype=torch.float64), R)
            assert (torch.linalg.matrix_exp(L) - R).abs().max() <= 1e-13, angles
            if min(math.pi - a for a in angles) > 1e-6:  # unique and well conditioned
                assert (L - A).abs().max() <= 1e-9, angles
            L32 = G.log(torch.eye(n), R.float())
            assert (torch.linalg.matrix_exp(L32.double()) - R.float().double()).abs().max() <= 1e-6


# ----------------------------------------------------------------------------- B9, B22, B23 (manifold)
def test_b9_manifold_checks_and_projection(dtype):
    G = SpecialOrthogonal(3)
    x, v = frame(G, dtype, seed=7)
    y = G.exp(x, v)
    M = 1.001 * y
    assert torch.allclose(G.log(x, M), G.log(x, y), atol=tol(dtype, 2e-6, 1e-12))
    with pytest.raises(ManifoldError, match=r"\|\|R\^T R - I\|\|_F \(\+2 if det R <= 0\) = "):
        SpecialOrthogonal(3, validate=True).log(x, M)
    with pytest.raises(ManifoldError, match="not tangent"):
        SpecialOrthogonal(3, validate=True).exp(x, x)
    with manifres.validation(), pytest.raises(ManifoldError):
        G.retract(x, x, "cayley")
    # without validation a non-tangent v is projected first
    assert torch.allclose(G.exp(x, v + x @ torch.eye(3, dtype=dtype)), y, atol=tol(dtype, 1e-6, 1e-14))
    P = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=dtype))
    assert not bool(G.is_point(P))
    assert float(G._point_residual(P)) >= 2
    x3 = torch.eye(3, dtype=torch.float64) * (1 + 3e-6)
    assert bool(G.is_point(x3.float())) and not bool(G.is_point(x3))
    with pytest.raises(ManifoldError, match="not finite"):
        G.check_point(torch.full((3, 3), math.nan, dtype=dtype))
    with pytest.raises(ManifoldError, match="non-finite"):
        SpecialOrthogonal(3, validate=True).proj_point(torch.full((3, 3), math.inf, dtype=dtype))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_b22_manifold_shapes_broadcasting_empty(dtype, n):
    G = SpecialOrthogonal(n)
    x, v = frame(G, dtype, batch=(2, 3), seed=8)
    assert G.exp(x, v).shape == (2, 3, n, n) and G.dist(x, G.exp(x, v)).shape == (2, 3)
    x0 = x[0, 0]
    vb = v[0]
    out = G.exp(x0, vb)  # (n, n) against (3, n, n)
    assert out.shape == (3, n, n)
    assert torch.allclose(out[1], G.exp(x0, vb[1]), atol=2 * EPS[dtype])
    assert G.log(x0, out).shape == (3, n, n) and G.dist(out, x0).shape == (3,)
    e = torch.zeros(0, n, n, dtype=dtype)
    for f in (G.exp, G.log, G.proj, G.retract_cayley, G.retract_qr, G.retract_polar):
        assert f(e, e).shape == (0, n, n)
    assert G.transport(e, e, e).shape == (0, n, n)
    assert G.dist(e, e).shape == (0,) and G.proj_point(e).shape == (0, n, n)
    assert G.random(0, dtype=dtype).shape == (0, n, n)
    with pytest.raises(ShapeError, match=rf"\(\.\.\., {n}, {n}\), got \({n}, {n + 1}\)"):
        G.exp(torch.zeros(n, n + 1, dtype=dtype), torch.zeros(n, n + 1, dtype=dtype))
    with pytest.raises(ShapeError, match="broadcast"):
        G.dist(G.random(4, dtype=dtype), G.random(5, dtype=dtype))
    with pytest.raises(UnknownChoiceError, match="exp, cayley, qr, polar"):
        G.retract(x, v, "projective")


def test_b23_manifold_dtypes():
    G = SpecialOrthogonal(3)
    x = torch.eye(3)
    with pytest.raises(DTypeError, match="int64"):
        G.exp(torch.eye(3, dtype=torch.int64), torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(DTypeError, match="float16"):
        G.log(x.half(), x.half())
    with pytest.raises(DTypeError, match="bfloat16"):
        G.dist(x.bfloat16(), x.bfloat16())
    with pytest.raises(DTypeError, match=r"torch.float32.*torch.float64"):
        G.exp(x, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ParameterError, match="n must be >= 2"):
        SpecialOrthogonal(1)


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_contract(dtype, n):
    G = SpecialOrthogonal(n)
    g = torch.Generator().manual_seed(n)
    x = G.random(12, dtype=dtype, generator=g)
    assert_on_manifold(G, x)
    u = torch.randn(12, n, n, dtype=dtype, generator=g)
    v = G.proj(x, u)
    assert_tangent(G, x, v)
    assert torch.allclose(G.proj(x, v), v, atol=tol(dtype, 1e-6, 1e-14))
    assert torch.allclose(G.proj_point(x), x, atol=tol(dtype, 2e-6, 1e-14))
    v = 2.0 * v / G.norm(x, v)[:, None, None]  # |v| = 2 < pi sqrt(2): plane angles below pi
    for m in G.retractions:
        assert_on_manifold(G, G.retract(x, v, m))
    y = G.exp(x, v)
    assert torch.allclose(G.log(x, y), v, atol=tol(dtype, 2e-5, 1e-12))
    assert torch.allclose(G.dist(x, y), G.norm(x, G.log(x, y)), atol=tol(dtype, 2e-6, 1e-12))
    assert torch.allclose(G.dist(x, y), torch.full((12,), 2.0, dtype=dtype), atol=tol(dtype, 2e-6, 1e-12))
    assert torch.allclose(G.angle(x, y), G.dist(x, y) / math.sqrt(2), atol=tol(dtype, 2e-6, 1e-12))
    assert torch.allclose(G.geodesic(x, v, 0.5), G.exp(x, 0.5 * v))
    for f in (G.exp, G.log, G.dist, G.retract_qr, G.retract_polar):
        looped = torch.stack([f(x[i], (v if f in (G.exp, G.retract_qr, G.retract_polar) else y)[i])
                              for i in range(12)])
        batched = f(x, v if f in (G.exp, G.retract_qr, G.retract_polar) else y)
        assert torch.allclose(looped, batched, atol=4 * EPS[dtype])
    # transport: tangent at y, isometry, maps log_x y to -log_y x, inverse transport
    w = G.random_tangent(x, generator=g)
    tw = G.transport(x, y, w)
    assert_tangent(G, y, tw)
    assert torch.allclose(G.norm(y, tw), G.norm(x, w), atol=tol(dtype, 1e-5, 1e-12))
    tv = G.transport(x, y, v)
    assert torch.allclose(G.inner(y, tw, tv), G.inner(x, w, v), atol=tol(dtype, 2e-5, 1e-12))
    assert torch.allclose(G.transport(x, y, v), -G.log(y, x), atol=tol(dtype, 2e-5, 1e-11))
    assert torch.allclose(G.transport(y, x, tw), w, atol=tol(dtype, 2e-5, 1e-11))
    assert G.dim == n * (n - 1) // 2 and G.point_shape == (n, n) and G.ndim == 2
    assert G == SpecialOrthogonal(n) and hash(G) == hash(SpecialOrthogonal(n))
    assert G != SpecialOrthogonal(n + 1)
    assert repr(G) == f"SpecialOrthogonal({n})"


@pytest.mark.parametrize("n", [2, 3, 4])
def test_shortest_log_beyond_pi(dtype, n):
    """exp then log of a vector whose plane angle exceeds pi returns the shortest one."""
    G = SpecialOrthogonal(n)
    I = torch.eye(n, dtype=torch.float64)
    _, A = planes(n, [4.0], seed=9)
    _, A_short = planes(n, [4.0 - 2 * math.pi], seed=9)
    L = G.log(I.to(dtype), G.exp(I.to(dtype), A.to(dtype)))
    assert torch.allclose(L.double(), A_short, atol=tol(dtype, 2e-6, 1e-12))


# ----------------------------------------------------------------------------- retraction chains
@pytest.mark.parametrize("method", METHODS)
def test_10000_float32_steps_stay_on_the_group(method):
    G = SpecialOrthogonal(3)
    g = torch.Generator().manual_seed(0)
    x = G.random(4, generator=g)
    A = torch.randn(3, 3, generator=g)
    drift = []
    for k in range(10_000):
        f = torch.tanh(x @ A) + 0.3  # state dependent, not tangent
        x = G.retract(x, 0.05 * f, method)
        if k % 1000 == 999:
            drift.append(float(G._point_residual(x).max()))
    assert max(drift) <= 2e-6
    assert drift[-1] <= max(drift[:3]) + 4 * EPS[torch.float32]  # bounded, not growing


def test_2000_float32_steps_on_so5():
    G = SpecialOrthogonal(5)
    g = torch.Generator().manual_seed(1)
    x = G.random(2, generator=g)
    A = torch.randn(5, 5, generator=g)
    for k in range(2000):
        x = G.retract(x, 0.05 * torch.tanh(x @ A), METHODS[k % 4])
    assert float(G._point_residual(x).max()) <= 2e-6


# ----------------------------------------------------------------------------- references
@pytest.mark.parametrize("n", [3, 4, 5])
def test_matches_scipy_expm_logm(n):
    G = SpecialOrthogonal(n)
    x, v = frame(G, torch.float64, batch=(6,), seed=10, scale=2.5)
    y = G.exp(x, v)
    ref = np.stack([xi @ sl.expm(xi.T @ vi) for xi, vi in zip(x.numpy(), v.numpy(), strict=True)])
    assert np.abs(y.numpy() - ref).max() <= 1e-13
    L = G.log(x, y)
    ref = np.stack([xi @ sl.logm(xi.T @ yi).real for xi, yi in zip(x.numpy(), y.numpy(), strict=True)])
    assert np.abs(L.numpy() - ref).max() <= 1e-12
    Y = torch.randn(6, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    U, _, Vt = np.linalg.svd(Y.numpy())
    D = np.ones((6, n))
    D[:, -1] = np.sign(np.linalg.det(U @ Vt))
    assert np.abs(G.proj_point(Y).numpy() - (U * D[:, None, :]) @ Vt).max() <= 1e-12
    assert (torch.linalg.det(G.proj_point(Y)) - 1).abs().max() <= 1e-13
    P = G.retract(x, v, "polar")
    Z = (x + v).numpy()
    ref = np.stack([z @ np.linalg.inv(sl.sqrtm(z.T @ z).real) for z in Z])
    assert np.abs(P.numpy() - ref).max() <= 1e-12


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 __array__ inside geomstats
@pytest.mark.parametrize("n", [3, 4])
def test_matches_geomstats(n):
    GS = geomstats_so(n)
    G = SpecialOrthogonal(n)
    x, v = frame(G, torch.float64, batch=(5,), seed=12, scale=2.0)
    y = G.exp(x, v)
    w = G.random_tangent(x, generator=torch.Generator().manual_seed(13))
    assert (as64(GS.metric.exp(v, x)) - y).abs().max() <= 1e-12
    assert (as64(GS.metric.log(y, x)) - G.log(x, y)).abs().max() <= 1e-12
    # geomstats' bi-invariant metric is half the Frobenius one
    assert (as64(GS.metric.dist(x, y)) * math.sqrt(2) - G.dist(x, y)).abs().max() <= 1e-12
    assert (as64(GS.metric.inner_product(v, w, x)) * 2 - G.inner(x, v, w)).abs().max() <= 1e-12
    pt = as64(GS.metric.parallel_transport(w, x, end_point=y))
    assert (pt - G.transport(x, y, w)).abs().max() <= 1e-12


@pytest.mark.parametrize("n", [3, 4])
def test_transport_matches_discrete_projection_transport(n):
    """Parallel transport of the induced metric is the limit of projecting onto the tangent
    spaces along the curve (renormalised); here 4000 steps, error O(1/steps)."""
    G = SpecialOrthogonal(n)
    x, v = frame(G, torch.float64, seed=14, scale=2.0)
    w = G.random_tangent(x, generator=torch.Generator().manual_seed(15))
    steps = 4000
    ts = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    path = G.geodesic(x, v, ts[:, None, None].expand(steps, 1, 1).reshape(steps))
    nw = G.norm(x, w)
    ww = w
    for q in path:
        ww = q @ (0.5 * (q.mT @ ww - ww.mT @ q))
        ww = ww * (nw / G.norm(q, ww))
    assert (G.transport(x, path[-1], w) - ww).abs().max() <= 2e-3


def test_random_is_haar():
    G = SpecialOrthogonal(3)
    R = G.random(20_000, dtype=torch.float64, generator=torch.Generator().manual_seed(16))
    assert_on_manifold(G, R)
    assert (R.mean(0)).abs().max() <= 0.03  # E[R] = 0
    theta = so3.angle(R)  # density (1 - cos t) / pi on [0, pi]
    assert abs(float(theta.mean()) - (math.pi / 2 + 2 / math.pi)) <= 0.02
    assert abs(float((theta < math.pi / 2).double().mean()) - (math.pi / 2 - 1) / math.pi) <= 0.01
    R4 = SpecialOrthogonal(4).random(5000, dtype=torch.float64, generator=torch.Generator().manual_seed(17))
    assert (torch.linalg.det(R4) - 1).abs().max() <= 1e-12 and R4.mean(0).abs().max() <= 0.05
    a = G.random(3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, G.random(3, generator=torch.Generator().manual_seed(5)))
    assert a.dtype == torch.float32


# ----------------------------------------------------------------------------- D4, D5
@pytest.mark.parametrize("n", [2, 3, 4])
def test_d4_finite_gradients_at_singular_points(dtype, n):
    G = SpecialOrthogonal(n)
    x0 = signed_permutation(n, dtype)
    Rpi = (x0.double() @ planes(n, [math.pi], seed=3)[0]).to(dtype)
    _, v0 = frame(G, dtype, seed=18)
    v0 = x0 @ (x0.mT @ v0 - (x0.mT @ v0).mT) / 2
    cases = [lambda x, v: G.exp(x, 0 * v), lambda x, v: G.log(x, x), lambda x, v: G.dist(x, x),
             lambda x, v: G.dist(x, Rpi), lambda x, v: G.log(x, Rpi), lambda x, v: G.norm(x, 0 * v),
             lambda x, v: G.transport(x, x, v), lambda x, v: G.proj_point(x), lambda x, v: G.angle(x, Rpi)]
    cases += [lambda x, v, m=m: G.retract(x, 0 * v, m) for m in METHODS]
    for f in cases:
        x = x0.clone().requires_grad_(True)
        v = v0.clone().requires_grad_(True)
        f(x, v).sum().backward()
        for t in (x, v):
            assert t.grad is None or torch.isfinite(t.grad).all()


GRAD_OPS = ["exp", "log", "dist", "transport", "cayley", "qr", "polar", "proj_point"]


@pytest.mark.parametrize(
    "n,op", [(n, op) for n in (2, 3, 4) for op in GRAD_OPS]
    + [(5, op) for op in ("log", "dist", "transport", "polar", "proj_point")],
)
def test_d5_gradcheck_and_gradgradcheck(n, op):
    G = SpecialOrthogonal(n)
    x, v = frame(G, torch.float64, batch=(1,), seed=19 + n, scale=1.5)
    y = G.exp(x, v)
    w = G.random_tangent(x, generator=torch.Generator().manual_seed(20))
    Y = x + 0.3 * torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(21))
    fns = {"exp": (G.exp, (x, v)), "log": (G.log, (x, y)), "dist": (G.dist, (x, y)),
           "transport": (G.transport, (x, y, w)), "cayley": (G.retract_cayley, (x, v)),
           "qr": (G.retract_qr, (x, v)), "polar": (G.retract_polar, (x, v)),
           "proj_point": (G.proj_point, (Y,))}
    fn, args = fns[op]
    args = tuple(a.clone().requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args, fast_mode=n >= 4)


def test_d7_bitwise_reproducible(dtype):
    for n in (3, 4):
        G = SpecialOrthogonal(n)
        x, v = frame(G, dtype, batch=(200,), seed=22, scale=2.0)
        y = G.exp(x, v)
        assert torch.equal(G.exp(x, v), y)
        assert torch.equal(G.log(x, y), G.log(x, y))


@pytest.mark.cuda
def test_d7_cpu_matches_cuda(dtype):
    for n in (2, 3, 4):
        G = SpecialOrthogonal(n)
        x, v = frame(G, dtype, batch=(500,), seed=23, scale=2.0)
        y = G.exp(x.cuda(), v.cuda())
        assert y.device.type == "cuda"
        assert torch.allclose(y.cpu(), G.exp(x, v), atol=tol(dtype, 2e-6, 1e-12))
        assert torch.allclose(G.log(x.cuda(), y).cpu(), G.log(x, G.exp(x, v)), atol=tol(dtype, 2e-5, 1e-11))
        for m in METHODS:
            assert torch.allclose(G.retract(x.cuda(), v.cuda(), m).cpu(), G.retract(x, v, m),
                                  atol=tol(dtype, 2e-6, 1e-12))
        assert torch.allclose(G.proj_point(2 * x.cuda()).cpu(), x, atol=tol(dtype, 2e-6, 1e-12))
