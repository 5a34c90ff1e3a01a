"""Measured orders of convergence (slopes of log error against log step, float64), exactness of
exponential Euler on geodesics and of the Lie-group methods on left-invariant fields, and the
O(h^3) defect of second-order retractions. The slope table is printed on every run."""

import logging

import pytest
import torch

import manifres
from manifres.flows import METHODS, integrate, problems
from manifres.testing import tol

SO = manifres.SpecialOrthogonal
EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def table():
    return problems.convergence_table(problems.CONVERGENCE_PROBLEMS, list(METHODS))


def test_print_convergence_table(table, capsys):
    text = problems.format_table(table)
    log.info("measured orders of convergence (float64)\n%s", text)
    with capsys.disabled():  # shown with or without -s
        print("\nmeasured orders of convergence (float64)\n" + text)
    assert len(table) == len(problems.CONVERGENCE_PROBLEMS) * len(METHODS)


@pytest.mark.parametrize("problem", problems.CONVERGENCE_PROBLEMS)
@pytest.mark.parametrize("method", list(METHODS))
def test_measured_order_within_0_2(table, problem, method):
    (row,) = [r for r in table if r.problem == problem and r.method == method]
    assert abs(row.slope - METHODS[method]) <= 0.2, problems.format_table([row])
    # errors decrease monotonically: the fit is taken in the asymptotic regime
    assert all(a > b for a, b in zip(row.errors, row.errors[1:], strict=False))


@pytest.mark.parametrize("method", list(METHODS))
def test_float32_errors_follow_float64(dtype, method):
    """At the coarsest step count the discretisation error dominates float32 rounding."""
    n = problems.DEFAULT_STEPS[METHODS[method]][0]
    p64 = problems.sphere_time_dependent(torch.float64)
    p = problems.sphere_time_dependent(dtype)
    e = problems.global_error(p, method, n)
    e64 = problems.global_error(p64, method, n)
    assert abs(e - e64) <= tol(dtype, 2e-6, 1e-14)


def test_exp_euler_reproduces_the_geodesic(dtype):
    p = problems.sphere_geodesic(dtype)
    traj = integrate(p.manifold, p.field, p.x0, p.t1, 100, return_trajectory=True)
    ts = torch.linspace(p.t0, p.t1, 101, dtype=torch.float64)
    exact = torch.stack([problems.sphere_geodesic(torch.float64).exact(t) for t in ts])
    # rounding only: a few eps per step, accumulated along the 100 steps
    assert (traj.double() - exact).abs().max() <= 100 * 4 * EPS[dtype]
    # the projective retraction is not exact on the same field
    proj = integrate(p.manifold, p.field, p.x0, p.t1, 100, retraction="projective")
    assert (proj.double() - exact[-1]).abs().max() > 1e-4


@pytest.mark.parametrize("method", list(METHODS))
def test_left_invariant_constant_field_is_exact_on_so3(dtype, method):
    """R' = R W: exponential Euler and every Lie-group method reproduce R0 expm(tW)."""
    p = problems.so3_constant(dtype)
    traj = integrate(p.manifold, p.field, p.x0, p.t1, 20, method=method, return_trajectory=True)
    for k in (1, 7, 20):
        t = p.t0 + k * (p.t1 - p.t0) / 20
        assert (traj[k] - p.exact(t)).abs().max() <= 20 * 8 * EPS[dtype]


def test_projective_retraction_defect_is_third_order(dtype):
    S = manifres.Sphere(2)
    x = S.random(16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v = S.random_tangent(x, generator=torch.Generator().manual_seed(1))
    row = problems.retraction_defect(S, x, v, "projective")
    log.info("%s", problems.format_table([row]))
    assert abs(row.slope - 3) <= 0.2
    if dtype == torch.float32:  # the float32 defects agree with float64 above rounding
        row32 = problems.retraction_defect(S, x.float(), v.float(), "projective")
        for a, b in zip(row32.errors, row.errors, strict=True):
            assert abs(a - b) <= 1e-6


@pytest.mark.parametrize("retraction,order", [("cayley", 3), ("polar", 3), ("qr", 2)])
def test_so3_retraction_defects(retraction, order):
    M = SO(3)
    g = torch.Generator().manual_seed(0)
    R = M.random(8, dtype=torch.float64, generator=g)
    V = M.random_tangent(R, generator=g)
    row = problems.retraction_defect(M, R, V, retraction, order=order)
    assert abs(row.slope - order) <= 0.2, problems.format_table([row])
