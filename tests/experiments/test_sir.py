"""Tests of manifres.experiments.sir: the SIR baseline, SIR inside a Hybrid, and the
hybrid-versus-scratch experiment."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from manifres.errors import DTypeError, ParameterError, ShapeError, UnknownChoiceError
from manifres.experiments import SIR, sir_hybrid_experiment
from manifres.nn import Hybrid
from manifres.testing import tol


@pytest.fixture(autouse=True)
def _one_thread():
    """Small-model training: one intra-op thread (two threads on a loaded 2-core machine
    spin in OpenMP barriers and run 10-50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _x0(dtype):
    return torch.tensor([[0.99, 0.01, 0.0], [0.7, 0.1, 0.2]], dtype=dtype)


# ---------------------------------------------------------------------------- SIR
def _scipy_sir(x0, beta, gamma, t1):
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp

    def f(t, y):
        s, i, _ = y
        b = beta(t)
        return [-b * s * i, b * s * i - gamma * i, gamma * i]

    sol = solve_ivp(f, (0.0, t1), x0, method="DOP853", rtol=1e-12, atol=1e-14)
    return sol.y[:, -1]


@pytest.mark.parametrize("varying", [False, True], ids=["constant", "time-varying"])
def test_sir_rk4_matches_scipy(dtype, varying):
    x0 = [0.9, 0.08, 0.02]
    if varying:
        model = SIR(lambda t: 0.4 + 0.2 * torch.sin(t), 0.1, dt=10.0, steps=1000)
        ref = _scipy_sir(x0, lambda t: 0.4 + 0.2 * np.sin(t), 0.1, 10.0)
    else:
        model = SIR(0.4, 0.1, dt=10.0, steps=1000)
        ref = _scipy_sir(x0, lambda t: 0.4, 0.1, 10.0)
    out = model(torch.tensor(x0, dtype=dtype))
    torch.testing.assert_close(out, torch.tensor(ref, dtype=dtype), atol=tol(dtype, 2e-6, 1e-11), rtol=0)


def test_sir_convergence_orders():
    """Measured order (slope of log error against log step) within 0.2 of 1, 2, 4.

    float64 only: float32 rounding hides the RK4 error before the asymptotic regime.
    """
    x0 = [0.9, 0.08, 0.02]
    ref = torch.tensor(_scipy_sir(x0, lambda t: 0.4 + 0.2 * np.sin(t), 0.1, 10.0))
    for method, order in [("euler", 1), ("heun", 2), ("rk4", 4)]:
        errs = []
        for steps in (40, 80, 160):
            m = SIR(lambda t: 0.4 + 0.2 * torch.sin(t), 0.1, dt=10.0, steps=steps, method=method)
            errs.append(float((m(torch.tensor(x0, dtype=torch.float64)) - ref).abs().max()))
        slope = np.polyfit(np.log([1 / 40, 1 / 80, 1 / 160]), np.log(errs), 1)[0]
        assert abs(slope - order) < 0.2, (method, slope, errs)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_sir_conserves_population_and_batches(dtype, method):
    model = SIR(0.5, 0.2, dt=1.0, steps=3, method=method)
    traj = model.simulate(_x0(dtype), 50)
    assert traj.shape == (51, 2, 3)
    torch.testing.assert_close(traj.sum(-1), torch.ones(51, 2, dtype=dtype), atol=tol(dtype, 1e-6), rtol=0)
    # batched equals looped
    torch.testing.assert_close(model.simulate(_x0(dtype)[1], 50), traj[:, 1], atol=0, rtol=0)


def test_sir_gradcheck():
    model = SIR(0.3, 0.1, dt=2.0, steps=2, learn=True).double()
    x = _x0(torch.float64).requires_grad_(True)

    def f(x, beta, gamma):
        with torch.no_grad():
            model.beta.copy_(beta)
            model.gamma.copy_(gamma)
        return torch.func.functional_call(model, {"beta": beta, "gamma": gamma}, (x,))

    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x, beta, gamma))


def test_sir_bad_input():
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        SIR()(torch.zeros(2, 4))
    with pytest.raises(DTypeError):
        SIR()(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(UnknownChoiceError, match="'euler', 'heun', 'rk4'"):
        SIR(method="rk45")
    for dt in [0.0, -1.0, math.nan, math.inf]:
        with pytest.raises(ParameterError, match="dt"):
            SIR(dt=dt)
    with pytest.raises(ParameterError, match="beta"):
        SIR(beta=math.nan)
    with pytest.raises(ParameterError, match="steps"):
        SIR(steps=0)
    assert "beta=<function>" in repr(SIR(lambda t: 0.1 + 0 * t))


# ---------------------------------------------------------------------------- SIR in a Hybrid
def test_differentiable_baseline_fits_its_rates(dtype):
    """freeze_baseline=False: the SIR rates are trained (recovering the data's rates)."""
    x0 = torch.tensor([[0.95, 0.05, 0.0], [0.8, 0.1, 0.1]], dtype=dtype)
    traj = SIR(0.35, 0.12).simulate(x0, 30)
    corr = nn.Linear(3, 3).to(dtype)
    nn.init.zeros_(corr.weight)
    nn.init.zeros_(corr.bias)
    model = Hybrid(SIR(0.3, 0.1, learn=True), corr, freeze_baseline=False)
    assert model.baseline.beta.requires_grad
    opt = torch.optim.Adam([model.baseline.beta, model.baseline.gamma], lr=0.01)
    for _ in range(100):
        opt.zero_grad()
        (model(traj[:-1]) - traj[1:]).pow(2).mean().backward()
        opt.step()
    assert float(model.baseline.beta.detach()) == pytest.approx(0.35, abs=1e-3)
    assert float(model.baseline.gamma.detach()) == pytest.approx(0.12, abs=1e-3)


# ---------------------------------------------------------------------------- experiment
def test_hybrid_beats_scratch_on_richer_model(dtype):
    state = torch.get_rng_state()
    r = sir_hybrid_experiment(seed=0, iterations=150, dtype=dtype)
    assert r["hybrid"] < r["scratch"] / 100
    assert r["hybrid"] < r["baseline"] / 4
    assert torch.equal(torch.get_rng_state(), state)  # seeded without touching the global RNG


@pytest.mark.cuda
def test_sir_in_a_hybrid_on_cuda(dtype):
    model = Hybrid(SIR(lambda t: 0.3 + 0.1 * torch.cos(t), 0.1, steps=2), nn.Linear(3, 3)).to(dtype)
    x = _x0(dtype)
    t = torch.tensor([0.5, 1.5], dtype=dtype)
    y = model(x, t)
    y_cuda = model.to("cuda")(x.cuda(), t.cuda())
    assert y_cuda.device.type == "cuda" and y_cuda.dtype == dtype
    torch.testing.assert_close(y_cuda.cpu(), y, atol=tol(dtype, 1e-6, 1e-13), rtol=0)
