"""geoopt bridge: geoopt's optimizers on manifres manifolds, manifres' optimizers on geoopt
parameters, and both against the same problems solved natively (the leading eigenvector of a
symmetric matrix on S^5, orthogonal Procrustes on SO(3)) and in closed form."""

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import manifres
from manifres.errors import ParameterError, UnknownChoiceError
from manifres.optim import RiemannianAdam, RiemannianSGD
from manifres.testing import assert_on_manifold, tol

geoopt = pytest.importorskip("geoopt")
from manifres.interop.geoopt import ManifresManifold, from_geoopt, parameter_manifold, to_geoopt  # noqa: E402

S5 = manifres.Sphere(5)
SO3 = manifres.SpecialOrthogonal(3)


class ScaledSphere(manifres.Sphere):
    """S^n with the metric c<u, v> (Riemannian gradient P_x g / c)."""

    def __init__(self, n, c):
        super().__init__(n)
        self.c = c

    def _params(self):
        return (self.n, self.c)

    def inner(self, x, u, v):
        return self.c * super().inner(x, u, v)

    def egrad2rgrad(self, x, g):
        return self.proj(x, g) / self.c


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_import_manifres_does_not_import_geoopt():
    modules = "manifres, manifres.optim, manifres.nn, manifres.interop, manifres.parameter"
    code = f"import sys, {modules}; print('geoopt' in sys.modules)"
    root = Path(manifres.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_from_geoopt_maps_spheres_and_euclidean_spaces():
    assert from_geoopt(geoopt.Sphere(), 4) == manifres.Sphere(4)
    assert from_geoopt(geoopt.SphereExact(), 2) == manifres.Sphere(2)
    assert from_geoopt(geoopt.Euclidean(), 3) == manifres.Euclidean(3)
    assert from_geoopt(geoopt.Euclidean(ndim=1), 3) == manifres.Euclidean(3)
    m = to_geoopt(SO3, retraction="cayley")
    assert from_geoopt(m) is SO3 and m.retraction == "cayley"
    with pytest.raises(TypeError, match="no manifres counterpart"):
        from_geoopt(geoopt.Stiefel(), 3)
    with pytest.raises(TypeError, match="no manifres counterpart"):
        from_geoopt(geoopt.Sphere(intersection=torch.eye(4)[:, :2]), 3)
    with pytest.raises(ParameterError, match="carries no dimension; pass n"):
        from_geoopt(geoopt.Sphere())
    with pytest.raises(ParameterError, match="n must be >= 1"):
        from_geoopt(geoopt.Sphere(), 0)
    with pytest.raises(TypeError, match="needs a geoopt manifold"):
        from_geoopt(manifres.Sphere(2), 2)
    with pytest.raises(UnknownChoiceError, match="exp, cayley, qr, polar"):
        to_geoopt(SO3, retraction="projective")
    with pytest.raises(UnknownChoiceError, match="transport"):
        to_geoopt(SO3, transport="schild")
    with pytest.raises(TypeError, match="manifres Manifold"):
        to_geoopt(geoopt.Sphere())


@pytest.mark.parametrize("manifold", [manifres.Sphere(3), SO3], ids=["S3", "SO3"])
def test_the_geoopt_interface_calls_manifres_in_geoopts_argument_order(dtype, manifold):
    m = to_geoopt(manifold)
    x = manifold.random(4, dtype=dtype, generator=_gen(0))
    y = manifold.random(4, dtype=dtype, generator=_gen(1))
    u = manifold.random_tangent(x, generator=_gen(2))
    w = manifold.random_tangent(x, generator=_gen(3))
    g = torch.randn(x.shape, dtype=dtype, generator=_gen(4))
    k, last = manifold.ndim, manifold.retractions[-1]
    pairs = [
        (m.projx(x + 0.1 * g), manifold.proj_point(x + 0.1 * g)),
        (m.proju(x, g), manifold.proj(x, g)),
        (m.egrad2rgrad(x, g), manifold.egrad2rgrad(x, g)),
        (m.retr(x, u), manifold.retract(x, u)),
        (to_geoopt(manifold, last).retr(x, u), manifold.retract(x, u, last)),
        (m.expmap(x, u), manifold.exp(x, u)),
        (m.logmap(x, y), manifold.log(x, y)),
        (m.transp(x, y, u), manifold.proj(y, u)),
        (to_geoopt(manifold, transport="parallel").transp(x, y, u), manifold.transport(x, y, u)),
        (m.inner(x, u, w), manifold.inner(x, u, w)),
        (m.inner(x, u), manifold.inner(x, u, u)),
        (m.inner(x[:1], u, w, keepdim=True), manifold.inner(x, u, w).reshape((4,) + (1,) * k)),
        (m.norm(x, u, keepdim=True), manifold.norm(x, u).reshape((4,) + (1,) * k)),
        (m.dist(x, y), manifold.dist(x, y)),
        (m.dist2(x, y), manifold.dist(x, y) ** 2),
    ]
    for got, ref in pairs:
        assert got.shape == ref.shape and got.dtype == dtype
        torch.testing.assert_close(got, ref, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    assert m.component_inner(x, u).shape == (4,) + (1,) * k  # one second moment per point
    assert m.check_point_on_manifold(x) and not m.check_point_on_manifold(2 * x)
    assert m.check_vector_on_tangent(x, u) and not m.check_vector_on_tangent(x, x)
    with pytest.raises(ValueError, match="must have shape"):
        m.assert_check_point(torch.zeros(4, 7))
    r = m.random(5, *manifold.point_shape, dtype=dtype)
    assert isinstance(r, geoopt.ManifoldTensor) and r.manifold is m and r.shape == (5, *manifold.point_shape)
    assert_on_manifold(manifold, r.detach())


def test_a_non_embedded_metric_reaches_geoopt(dtype):
    M = ScaledSphere(2, 4.0)
    m = to_geoopt(M)
    x = M.random(3, dtype=dtype, generator=_gen(0))
    u = M.random_tangent(x, generator=_gen(1))
    g = torch.randn(3, 3, dtype=dtype, generator=_gen(2))
    torch.testing.assert_close(m.inner(x, u), 4.0 * (u * u).sum(-1), atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    torch.testing.assert_close(m.egrad2rgrad(x, g), M.proj(x, g) / 4.0, atol=tol(dtype, 1e-6, 1e-14), rtol=0)
    torch.testing.assert_close(m.norm(x, u), 2.0 * u.norm(dim=-1), atol=tol(dtype, 1e-6, 1e-14), rtol=0)


def _rayleigh(dtype, n=6):
    B = torch.randn(n, n, dtype=torch.float64, generator=_gen(7))
    A = B + B.T
    x0 = S5.random(dtype=torch.float64, generator=_gen(8))
    return A.to(dtype), x0.to(dtype), torch.linalg.eigh(A).eigenvectors[:, -1]


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_geoopt_optimizer_on_a_manifres_sphere_follows_the_manifres_trajectory(dtype, algo):
    """No momentum for SGD (geoopt starts its buffer from the Euclidean gradient); Adam's
    moments are the same (one second moment per point, projection transport)."""
    A, x0, _ = _rayleigh(dtype)
    a = geoopt.ManifoldParameter(x0.clone(), manifold=to_geoopt(S5))
    b = torch.nn.Parameter(x0.clone())
    if algo == "sgd":
        ours, theirs = RiemannianSGD([b], lr=0.05, manifold=S5), geoopt.optim.RiemannianSGD([a], lr=0.05)
    else:
        ours, theirs = RiemannianAdam([b], lr=0.05, manifold=S5), geoopt.optim.RiemannianAdam([a], lr=0.05)
    for _ in range(40):
        for p, opt in ((a, theirs), (b, ours)):
            opt.zero_grad()
            (-(p @ A @ p)).backward()
            opt.step()
    assert float(S5.dist(b.detach(), x0)) > 0.3
    torch.testing.assert_close(a.detach(), b.detach(), atol=tol(dtype, 2e-5, 1e-12), rtol=0)


def _solve(params, opt, loss_fn, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(*params).backward()
        opt.step()
    return [p.detach().clone() for p in params]


def test_leading_eigenvector_three_ways(dtype):
    """max x^T A x on S^5: manifres natively, geoopt on manifres' sphere, manifres on geoopt's
    sphere. All three reach the leading eigenvector (eigh) to 1e-4 (f32) / 1e-8 (f64)."""
    A, x0, v = _rayleigh(dtype)

    def loss(x):
        return -(x @ A @ x)

    x = torch.nn.Parameter(x0.clone())
    native = _solve([x], RiemannianSGD([x], lr=0.02, momentum=0.9, manifold=S5), loss, 600)[0]
    x = geoopt.ManifoldParameter(x0.clone(), manifold=to_geoopt(S5))
    geo_on_ours = _solve([x], geoopt.optim.RiemannianSGD([x], lr=0.02, momentum=0.9), loss, 600)[0]
    x = geoopt.ManifoldParameter(x0.clone(), manifold=geoopt.SphereExact())
    ours_on_geo = _solve([x], RiemannianSGD([x], lr=0.02, momentum=0.9), loss, 600)[0]
    assert type(x) is geoopt.ManifoldParameter and isinstance(x.manifold, geoopt.SphereExact)
    atol = tol(dtype, 1e-4, 1e-8)
    for sol in (native, geo_on_ours, ours_on_geo):
        assert_on_manifold(S5, sol)
        sol = sol.double() * torch.sign(sol.double() @ v)
        torch.testing.assert_close(sol, v, atol=atol, rtol=0)


def test_procrustes_on_so3_three_ways(dtype):
    """min |R X - Y|^2 on SO(3): manifres natively, geoopt on manifres' SO(3), manifres on a
    geoopt parameter; all equal the SVD solution to 1e-5 (f32) / 1e-10 (f64)."""
    R_true = SO3.random(dtype=torch.float64, generator=_gen(2))
    X = torch.randn(3, 30, dtype=torch.float64, generator=_gen(3))
    Y = R_true @ X + 0.05 * torch.randn(3, 30, dtype=torch.float64, generator=_gen(4))
    U, _, Vt = torch.linalg.svd(Y @ X.T)
    D = torch.diag(torch.tensor([1.0, 1.0, float(torch.linalg.det(U @ Vt))], dtype=torch.float64))
    R_svd = U @ D @ Vt
    X, Y = X.to(dtype), Y.to(dtype)

    def loss(R):
        return ((R @ X - Y) ** 2).sum() / 30

    R0 = torch.eye(3, dtype=dtype)
    R = torch.nn.Parameter(R0.clone())
    native = _solve([R], RiemannianSGD([R], lr=0.1, momentum=0.8, manifold=SO3), loss, 300)[0]
    R = geoopt.ManifoldParameter(R0.clone(), manifold=to_geoopt(SO3, retraction="cayley"))
    geo_on_ours = _solve([R], geoopt.optim.RiemannianSGD([R], lr=0.1, momentum=0.8), loss, 300)[0]
    R = geoopt.ManifoldParameter(R0.clone(), manifold=to_geoopt(SO3))
    group = {"params": [R], "retraction": "polar"}
    ours_on_geo = _solve([R], RiemannianSGD([group], lr=0.1, momentum=0.8), loss, 300)[0]
    for sol in (native, geo_on_ours, ours_on_geo):
        assert_on_manifold(SO3, sol)
        torch.testing.assert_close(sol.double(), R_svd, atol=tol(dtype, 1e-5, 1e-10), rtol=0)


def test_manifres_optimizers_read_geoopt_parameters():
    S2 = manifres.Sphere(2)
    on_sphere = geoopt.ManifoldParameter(torch.tensor([1.0, 0.0, 0.0]), manifold=geoopt.Sphere())
    flat = geoopt.ManifoldParameter(torch.zeros(4, 2), manifold=geoopt.Euclidean())
    wrapped = geoopt.ManifoldParameter(SO3.random(2), manifold=to_geoopt(SO3))
    assert parameter_manifold(on_sphere) == S2 and parameter_manifold(flat) is None
    assert parameter_manifold(wrapped) is SO3
    # geoopt's Euclidean is elementwise: the plain (torch) Adam update, as geoopt's own
    ref = torch.nn.Parameter(torch.zeros(4, 2))
    opt, ref_opt = RiemannianAdam([flat], lr=0.1), torch.optim.Adam([ref], lr=0.1, foreach=False)
    for g in torch.randn(5, 4, 2, generator=_gen(0)):
        flat.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(flat.detach(), ref.detach(), atol=1e-6, rtol=0)
    stiefel = geoopt.ManifoldParameter(torch.eye(3)[:, :2], manifold=geoopt.Stiefel())
    with pytest.raises(TypeError, match="no manifres counterpart"):
        RiemannianSGD([stiefel], lr=0.1)
    with pytest.raises(ParameterError, match="lives on Sphere"):
        RiemannianSGD([{"params": [on_sphere], "manifold": manifres.Sphere(2, cut_locus="nan")}], lr=0.1)


def test_geoopt_stabilize_uses_manifres_projection(dtype):
    R = geoopt.ManifoldParameter(SO3.random(3, dtype=dtype, generator=_gen(0)), manifold=to_geoopt(SO3))
    opt = geoopt.optim.RiemannianSGD([R], lr=0.0, momentum=0.5, stabilize=1)
    with torch.no_grad():
        R.add_(1e-3 * torch.randn(3, 3, 3, dtype=dtype, generator=_gen(1)))
    R.grad = torch.zeros_like(R)
    opt.step()
    eye = torch.eye(3, dtype=dtype)
    assert float((R.detach().mT @ R.detach() - eye).abs().max()) <= tol(dtype, 1e-6, 1e-14)


def test_wrapped_parameters_deepcopy_pickle_and_save_plain_state():
    m = to_geoopt(SO3, retraction="qr")
    R = geoopt.ManifoldParameter(SO3.random(2), manifold=m)
    for clone in (copy.deepcopy(R), pickle.loads(pickle.dumps(R))):
        assert type(clone) is geoopt.ManifoldParameter and clone.manifold == m
        assert isinstance(clone.manifold, ManifresManifold) and clone.manifold.retraction == "qr"
        assert torch.equal(clone.detach(), R.detach())
    assert m != to_geoopt(SO3) and hash(m) == hash(to_geoopt(SO3, retraction="qr"))
    module = torch.nn.Module()
    module.R = R
    assert type(module.state_dict()["R"]) is torch.Tensor
    opt = RiemannianSGD([R], lr=0.1, momentum=0.5)
    R.grad = torch.randn(2, 3, 3)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["manifold"] is None
    assert type(sd["state"][0]["momentum_buffer"]) is torch.Tensor
