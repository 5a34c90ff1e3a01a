"""Tests of manifres.stability.gain_margin against closed forms and a simulation grid."""

import json
import math

import pytest
import torch
from torch import nn

from manifres.errors import DTypeError, ParameterError, ShapeError, StabilityError
from manifres.nn import PolicyResidual
from manifres.stability import GainMargin, gain_margin, scale_sweep


def _samuelson(c, v, dtype=torch.float64):
    """Y_t = c(1 + v) Y_{t-1} - c v Y_{t-2} + G: the state (Y_t, Y_{t-1})."""
    return torch.tensor([[c * (1 + v), -c * v], [1.0, 0.0]], dtype=dtype)


def _vec(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def _close(intervals, expected, tol):
    assert len(intervals) == len(expected), (intervals, expected)
    for (lo, hi), (elo, ehi) in zip(intervals, expected, strict=True):
        assert lo == pytest.approx(elo, abs=tol)
        assert hi == ehi if math.isinf(ehi) else hi == pytest.approx(ehi, abs=tol)


def test_samuelson_growth_policy_closed_form(dtype):
    """G_t = G - k (Y_{t-1} - Y_{t-2}): z^2 - (c(1+v) - k) z + (cv - k) = 0, stable (Jury) for
    cv - 1 < k < min(cv + 1, (1 + c + 2cv) / 2); here (0.2, 2.1), the baseline explodes."""
    c, v = 0.8, 1.5
    gm = gain_margin(_samuelson(c, v, dtype), _vec(1.0, 0.0, dtype=dtype), _vec(1.0, -1.0, dtype=dtype))
    _close(gm.intervals, [(c * v - 1, (1 + c + 2 * c * v) / 2)], 1e-12 if dtype == torch.float64 else 1e-6)
    assert not gm.stable_at_zero and gm.baseline_radius == pytest.approx(math.sqrt(c * v), rel=1e-6)
    # the lower end is a complex pair on the circle (Neimark-Sacker), the upper a flip through -1
    assert 0 < gm.crossing_angles[0] < math.pi and gm.crossing_angles[1] == pytest.approx(math.pi)
    assert max(gm.boundary_residuals) < 1e-6


def test_samuelson_level_policy_touches_zero():
    """G_t = G - k (Y_{t-1} - Y*): stable for c - 1 < k < 1 + c + 2cv when cv < 1."""
    c, v = 0.6, 1.0
    gm = gain_margin(_samuelson(c, v), _vec(1.0, 0.0), _vec(1.0, 0.0))
    _close(gm.intervals, [(0.0, 1 + c + 2 * c * v)], 1e-12)
    assert gm.stable_at_zero and gm.contains(0.0) and gm.boundaries == [gm.intervals[0][1]]
    # with cv > 1 this policy cannot help: the product of the roots stays cv
    assert gain_margin(_samuelson(0.8, 1.5), _vec(1.0, 0.0), _vec(1.0, 0.0)).intervals == []


@pytest.mark.parametrize("lam,expected", [(1.5, (0.5, 2.5)), (0.5, (0.0, 1.5)), (-1.7, None)])
def test_rank_one_on_a_diagonal(lam, expected):
    """Only lambda_1 - k moves: stable iff |lambda_1 - k| < 1 (with the others inside)."""
    j = torch.diag(_vec(lam, 0.3, -0.6))
    e1 = _vec(1.0, 0.0, 0.0)
    gm = gain_margin(j, e1, e1)
    _close(gm.intervals, [] if expected is None else [expected], 1e-12)


def test_open_at_infinity_and_zero_policy():
    """A nilpotent BK (K B = 0) on a triangular J leaves the spectrum alone: [0, inf)."""
    j = torch.diag(_vec(0.5, 0.3))
    gm = gain_margin(j, _vec(1.0, 0.0), _vec(0.0, 1.0))
    assert gm.intervals == [(0.0, math.inf)] and gm.boundaries == []
    assert json.loads(json.dumps(gm.to_dict(), allow_nan=False))["intervals"] == [[0.0, None]]
    assert gain_margin(
        j, torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    ).intervals == [(0.0, math.inf)]
    unstable = torch.diag(_vec(1.2, 0.3))
    assert gain_margin(unstable, _vec(0.0, 1.0), _vec(0.0, 1.0)).intervals == []


def test_uncontrollable_mode_on_the_circle_is_never_stable():
    """det((J - kM) x (J - kM) - I) = 0 for every k: the set is empty."""
    j = torch.diag(_vec(1.0, 0.3))
    assert gain_margin(j, _vec(0.0, 1.0), _vec(0.0, 1.0)).intervals == []


def test_marginal_baseline_interval_touches_zero_open():
    gm = gain_margin(torch.diag(_vec(1.0, 0.3)), _vec(1.0, 0.0), _vec(1.0, 0.0))
    _close(gm.intervals, [(0.0, 2.0)], 1e-12)
    assert not gm.stable_at_zero and not gm.contains(0.0) and gm.contains(1e-6)
    assert gm.boundaries[0] == 0.0


def test_touching_point_splits_the_interval():
    """J - kBK = [[0, k], [2 - k, 0]]: z^2 = k (2 - k) touches 1 at k = 1 and grows past 1 at
    |k (2 - k)| = 1, k = 1 + sqrt(2): the set is [0, 1) U (1, 1 + sqrt 2)."""
    j = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    bk = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    gm = gain_margin(j, torch.eye(2, dtype=torch.float64), bk)
    _close(gm.intervals, [(0.0, 1.0), (1.0, 1 + math.sqrt(2))], 1e-6)
    assert not gm.contains(gm.intervals[0][1])


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_grid_of_spectral_radii(seed):
    """Random 3x3 or 4x4 problems with one or two controls: membership equals rho < 1 on a grid
    (away from the boundaries)."""
    g = torch.Generator().manual_seed(seed)
    n, m = 3 + seed % 2, 1 + seed % 3 // 2
    j = 1.3 * torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
    b = torch.randn(n, m, generator=g, dtype=torch.float64)
    k = torch.randn(m, n, generator=g, dtype=torch.float64)
    gm = gain_margin(j, b, k)
    ks = torch.linspace(0, 4, 2001, dtype=torch.float64)
    rho = torch.linalg.eigvals(j - ks[:, None, None] * (b @ k)).abs().amax(-1)
    ends = torch.tensor(
        [e for iv in gm.intervals for e in iv if math.isfinite(e)] + [-1.0], dtype=torch.float64
    )
    far = (ks[:, None] - ends[None]).abs().amin(1) > 1e-6
    got = torch.tensor([gm.contains(float(kk)) for kk in ks])
    assert torch.equal(got[far], (rho < 1)[far])
    torch.testing.assert_close(gm.radius(ks), rho, atol=1e-12, rtol=0)


def test_module_linearised_at_its_fixed_point(dtype):
    """A nonlinear map with fixed point x*: its Jacobian there decides, as for the matrix."""
    c, v = 0.8, 1.5
    j = _samuelson(c, v, dtype)
    x_star = _vec(2.0, 2.0, dtype=dtype)

    def f(x):  # J (x - x*) + x* + a quadratic term that vanishes to first order at x*
        d = x - x_star
        return d @ j.T + x_star + 0.3 * d.square()

    gm = gain_margin(f, _vec(1.0, 0.0, dtype=dtype), _vec(1.0, -1.0, dtype=dtype), at=x_star)
    _close(gm.intervals, [(0.2, 2.1)], 1e-12 if dtype == torch.float64 else 1e-5)
    assert gm.fixed_point_residual == 0.0 and gm.jacobian.dtype == torch.float64
    layer = PolicyResidual(
        f, _vec(1.0, 0.0, dtype=dtype), _vec(1.0, -1.0, dtype=dtype), step=1.0, x_star=x_star
    )
    closed = gain_margin(layer, _vec(1.0, 0.0, dtype=dtype), _vec(1.0, -1.0, dtype=dtype), at=x_star)
    _close(closed.intervals, [(0.0, 1.1)], 1e-12 if dtype == torch.float64 else 1e-5)  # shifted by k = 1


def test_record_is_frozen_and_json_safe():
    gm = gain_margin(_samuelson(0.8, 1.5), _vec(1.0, 0.0), _vec(1.0, -1.0))
    assert isinstance(gm, GainMargin)
    with pytest.raises(AttributeError):
        gm.intervals = []
    d = json.loads(json.dumps(gm.to_dict(), allow_nan=False))
    assert d["stable_at_zero"] is False and len(d["jacobian"]) == 2 and d["fixed_point_residual"] is None
    assert float(gm.radius(1.0)) < 1 < float(gm.radius(3.0))


def test_errors():
    j = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ShapeError, match="square"):
        gain_margin(torch.ones(2, 3, dtype=torch.float64), _vec(1.0, 0.0), _vec(1.0, 0.0))
    with pytest.raises(ShapeError, match="B must be"):
        gain_margin(j, _vec(1.0, 0.0, 0.0), _vec(1.0, 0.0))
    with pytest.raises(ParameterError, match="at=x_star"):
        gain_margin(nn.Linear(2, 2), _vec(1.0, 0.0), _vec(1.0, 0.0))
    with pytest.raises(DTypeError):
        gain_margin(j, torch.tensor([1, 0]), torch.tensor([1, 0]))
    with pytest.raises(ShapeError, match="GAIN_MARGIN_LIMIT"):
        gain_margin(torch.eye(40, dtype=torch.float64), torch.ones(40).double(), torch.ones(40).double())
    with pytest.raises(StabilityError, match="eval"):
        gain_margin(
            nn.Sequential(nn.Linear(2, 2), nn.Dropout()), _vec(1.0, 0.0), _vec(1.0, 0.0), at=torch.zeros(2)
        )
    with pytest.raises(ShapeError, match="to itself"):
        gain_margin(lambda x: x[:1], _vec(1.0, 0.0), _vec(1.0, 0.0), at=torch.zeros(2, dtype=torch.float64))


def test_scale_sweep_of_the_policy_layer_is_a_gain_sweep():
    """The layer's step is the gain: scale_sweep's spectral radius is GainMargin.radius(k)."""
    c, v = 0.8, 1.5
    x_star = _vec(5.0, 5.0)
    j = _samuelson(c, v)
    layer = PolicyResidual(
        lambda x: (x - x_star) @ j.T + x_star, _vec(1.0, 0.0), _vec(1.0, -1.0), x_star=x_star
    )
    ks = [0.0, 0.5, 1.5, 2.5]
    sweep = scale_sweep(nn.Sequential(layer), x_star[None], ks)
    gm = gain_margin(j, _vec(1.0, 0.0), _vec(1.0, -1.0))
    torch.testing.assert_close(sweep.max_spectral_radius, gm.radius(torch.tensor(ks)), atol=1e-12, rtol=0)
    assert [gm.contains(k) for k in ks] == [bool(r < 1) for r in sweep.max_spectral_radius]
