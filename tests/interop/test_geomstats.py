"""geomstats bridge, and geomstats as an independent oracle for the sphere (float32 and float64)."""

import logging

import pytest
import torch

import manifres
from manifres.interop.geomstats import from_geomstats, import_geomstats, to_geomstats
from manifres.testing import tol

try:
    import_geomstats()
except ImportError as err:  # pragma: no cover
    pytest.skip(f"geomstats unavailable: {err}", allow_module_level=True)


def test_import_restores_global_state():
    before = (torch.get_default_dtype(), logging.getLogger().level, list(logging.getLogger().handlers))
    gs = import_geomstats()
    after = (torch.get_default_dtype(), logging.getLogger().level, list(logging.getLogger().handlers))
    assert before == after
    assert gs.__name__.endswith("pytorch")


@pytest.mark.parametrize("m", [manifres.Sphere(2), manifres.Sphere(5), manifres.Euclidean(4)])
def test_round_trip(m):
    space = to_geomstats(m)
    assert space.dim == m.dim
    assert from_geomstats(space) == m


def test_unknown_space_raises():
    with pytest.raises(TypeError, match="no manifres counterpart"):
        from_geomstats(object())


@pytest.mark.parametrize("n", [2, 7])
def test_sphere_matches_geomstats(dtype, n):
    S = manifres.Sphere(n)
    space = to_geomstats(S)
    g = torch.Generator().manual_seed(n)
    x = S.random(50, dtype=torch.float64, generator=g)
    v = S.random_tangent(x, generator=g)
    v = 2.5 * torch.rand(50, 1, dtype=torch.float64, generator=g) * v / v.norm(dim=-1, keepdim=True)
    w = S.random_tangent(x, generator=g)
    y = S.exp(x, v)
    metric = space.metric
    torch.set_default_dtype(torch.float64)  # geomstats builds its constants in the default dtype
    ref = {
        "exp": metric.exp(v, x),  # geomstats: base point second
        "log": metric.log(y, x),
        "dist": metric.dist(x, y),
        "proj": space.to_tangent(w + x, x),
        "transport": metric.parallel_transport(w, x, end_point=y),
    }
    torch.set_default_dtype(torch.float32)
    xs, vs, ys, ws = (t.to(dtype) for t in (x, v, y, w))
    got = {
        "exp": S.exp(xs, vs),
        "log": S.log(xs, ys),
        "dist": S.dist(xs, ys),
        "proj": S.proj(xs, ws + xs),
        "transport": S.transport(xs, ys, ws),
    }
    for k in ref:
        assert got[k].dtype == dtype
        err = (got[k].double() - ref[k]).abs().max()
        assert err <= tol(dtype, 2e-5, 1e-10), (k, float(err))


def test_geomstats_antipodal_log_is_zero_but_ours_is_not():
    """The documented difference: geomstats 2.8 returns 0 for log of antipodal points."""
    S = manifres.Sphere(2, cut_locus="deterministic")
    x = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    ours = S.log(x, -x)
    assert abs(float(ours.norm()) - torch.pi) < 1e-12
    theirs = to_geomstats(S).metric.log(-x, x)
    assert float(theirs.norm()) < 1e-6


@pytest.mark.parametrize("n", [3, 4])
def test_rotation_group_round_trip(n):
    m = manifres.SpecialOrthogonal(n)
    space = to_geomstats(m)
    assert space.dim == m.dim
    assert from_geomstats(space) == m
