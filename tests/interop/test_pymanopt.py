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
