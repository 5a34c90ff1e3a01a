"""pymanopt bridge: a pymanopt solver on manifres geometry, conversions, and pymanopt as oracle."""

import numpy as np
import pytest
import torch

import manifres
from manifres.testing import tol

pymanopt = pytest.importorskip("pymanopt")
from manifres.interop.pymanopt import from_pymanopt, to_pymanopt  # noqa: E402


def test_round_trip():
    S = manifres.Sphere(4)
    assert from_pymanopt(to_pymanopt(S)) is S
    assert from_pymanopt(pymanopt.manifolds.Sphere(5)) == S
    assert from_pymanopt(pymanopt.manifolds.Euclidean(3)) == manifres.Euclidean(3)
    with pytest.raises(TypeError, match="no manifres counterpart"):
        from_pymanopt(pymanopt.manifolds.Stiefel(4, 2))


@pytest.mark.parametrize("solver", ["SteepestDescent", "ConjugateGradient", "TrustRegions"])
def test_pymanopt_solver_on_manifres_sphere(solver):
    """Dominant eigenvector by Rayleigh-quotient maximisation, solved by pymanopt."""
    rng = np.random.default_rng(0)
    B = rng.standard_normal((10, 10))
    A = B + B.T
    M = to_pymanopt(manifres.Sphere(9))

    @pymanopt.function.numpy(M)
    def cost(x):
        return -x @ A @ x

    @pymanopt.function.numpy(M)
    def egrad(x):
        return -2 * A @ x

    @pymanopt.function.numpy(M)
    def ehess(x, u):
        return -2 * A @ u

    problem = pymanopt.Problem(M, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)
    opt = getattr(pymanopt.optimizers, solver)(verbosity=0, max_iterations=2000)
    x = opt.run(problem, initial_point=M.random_point()).point
    w, V = np.linalg.eigh(A)
    assert abs(abs(x @ V[:, -1]) - 1) < 1e-6
    assert bool(manifres.Sphere(9).is_point(torch.as_tensor(x)))


def test_sphere_matches_pymanopt(dtype):
    S = manifres.Sphere(4)
    P = pymanopt.manifolds.Sphere(5)
    g = torch.Generator().manual_seed(1)
    x = S.random(dtype=torch.float64, generator=g)
    v = 1.5 * S.random_tangent(x, generator=g) / 2
    w = S.random_tangent(x, generator=g)
    y = S.exp(x, v)
    xn, vn, yn, wn = (t.numpy() for t in (x, v, y, w))
    xs, vs, ys, ws = (t.to(dtype) for t in (x, v, y, w))
    pairs = [
        (S.exp(xs, vs), P.exp(xn, vn)),
        (S.log(xs, ys), P.log(xn, yn)),
        (S.dist(xs, ys), P.dist(xn, yn)),
        (S.proj(xs, ws + xs), P.projection(xn, wn + xn)),
        (S.retract(xs, vs, "projective"), P.retraction(xn, vn)),
    ]
    for ours, ref in pairs:
        assert np.abs(ours.double().numpy() - ref).max() <= tol(dtype, 2e-6, 1e-12)


def test_pymanopt_solver_on_manifres_rotation_group():
    """Orthogonal Procrustes on manifres' SO(3), solved by pymanopt's trust regions."""
    rng = np.random.default_rng(1)
    R_true = manifres.SpecialOrthogonal(3).random(
        dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    A = rng.standard_normal((3, 20))
    B = R_true.numpy() @ A + 1e-3 * rng.standard_normal((3, 20))
    M = to_pymanopt(manifres.SpecialOrthogonal(3))
    assert from_pymanopt(M) == manifres.SpecialOrthogonal(3)
    assert from_pymanopt(pymanopt.manifolds.SpecialOrthogonalGroup(3)) == manifres.SpecialOrthogonal(3)

    @pymanopt.function.numpy(M)
    def cost(R):
        return 0.5 * np.sum((R @ A - B) ** 2)

    @pymanopt.function.numpy(M)
    def egrad(R):
        return (R @ A - B) @ A.T

    @pymanopt.function.numpy(M)
    def ehess(R, U):
        return U @ A @ A.T

    problem = pymanopt.Problem(M, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)
    opt = pymanopt.optimizers.TrustRegions(verbosity=0)
    R = opt.run(problem, initial_point=M.random_point()).point
    U, _, Vt = np.linalg.svd(B @ A.T)
    R_svd = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    assert np.abs(R - R_svd).max() < 1e-6
    assert bool(manifres.SpecialOrthogonal(3).is_point(torch.as_tensor(R)))


class _ScaledSphere(manifres.Sphere):
    """S^n with the metric c<u, v>: Riemannian gradient P_x g / c."""

    def __init__(self, n, c):
        super().__init__(n)
        self.c = c

    def _params(self):
        return (self.n, self.c)

    def inner(self, x, u, v):
        return self.c * super().inner(x, u, v)

    def egrad2rgrad(self, x, g):
        return self.proj(x, g) / self.c


def test_a_manifold_with_its_own_metric_keeps_it_in_pymanopt():
    S = _ScaledSphere(2, 4.0)
    M = to_pymanopt(S)
    x = np.array([1.0, 0.0, 0.0])
    u, g = np.array([0.0, 1.0, 2.0]), np.array([3.0, -2.0, 1.0])
    assert M.inner_product(x, u, u) == pytest.approx(4.0 * 5.0, abs=1e-14)
    assert M.norm(x, u) == pytest.approx(2.0 * 5.0**0.5, abs=1e-14)
    np.testing.assert_allclose(M.euclidean_to_riemannian_gradient(x, g), [0.0, -0.5, 0.25], atol=1e-15)
    with pytest.raises(NotImplementedError, match="own metric"):
        M.euclidean_to_riemannian_hessian(x, g, g, u)
    A = np.diag([3.0, 2.0, 1.0])

    @pymanopt.function.numpy(M)
    def cost(x):
        return -x @ A @ x

    @pymanopt.function.numpy(M)
    def egrad(x):
        return -2 * A @ x

    problem = pymanopt.Problem(M, cost, euclidean_gradient=egrad)
    solver = pymanopt.optimizers.SteepestDescent(verbosity=0)
    x = solver.run(problem, initial_point=np.array([0.6, 0.6, 0.52915026])).point
    assert abs(abs(x[0]) - 1) < 1e-6
