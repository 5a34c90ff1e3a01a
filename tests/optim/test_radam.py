"""Tests of manifres.optim.RiemannianAdam: Euclidean equivalence, per-point moments, errors."""

import math

import pytest
import torch

import manifres
from manifres.errors import ManifoldError, ParameterError, UnknownChoiceError
from manifres.optim import RiemannianAdam, RiemannianSGD
from manifres.testing import assert_on_manifold, assert_tangent, tol

SO = getattr(manifres, "SpecialOrthogonal", None)


def _grads(shape, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]


@pytest.mark.parametrize(
    "kw",
    [dict(lr=0.01), dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1), dict(lr=0.01, amsgrad=True)],
    ids=["default", "betas-wd", "amsgrad"],
)
def test_euclidean_group_matches_torch_adam(dtype, kw):
    x0 = torch.randn(5, 2, dtype=dtype)
    a = torch.nn.Parameter(x0.clone())
    b = torch.nn.Parameter(x0.clone())
    ours = RiemannianAdam([a], **kw)
    ref = torch.optim.Adam([b], foreach=False, **kw)
    for g in _grads((5, 2), 8, dtype):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), atol=tol(dtype, 1e-6, 1e-14), rtol=0)


def test_sphere_moments_are_per_point_and_tangent(dtype):
    S = manifres.Sphere(2)
    x0 = S.random(6, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    x = torch.nn.Parameter(x0.clone())
    opt = RiemannianAdam([x], lr=0.05, manifold=S, amsgrad=True)
    for g in _grads((6, 2, 3), 200, dtype, seed=1):
        x.grad = g
        opt.step()
    st = opt.state[x]
    assert st["exp_avg_sq"].shape == (6, 2, 1) and st["max_exp_avg_sq"].shape == (6, 2, 1)
    assert bool((S.dist(x.detach(), x0) > 1e-2).all())  # every point moved
    assert_on_manifold(S, x.detach())
    assert_tangent(S, x.detach(), st["exp_avg"])


def test_first_step_is_normalised_geodesic_step():
    """Step 1: m/sqrt(v) = xi/|xi|, so the point moves by exactly lr along the gradient."""
    S = manifres.Sphere(2)
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    opt = RiemannianAdam([x], lr=0.3, eps=0.0, manifold=S)
    x.grad = torch.tensor([5.0, -2.0, 0.0], dtype=torch.float64)  # tangent part (0, -2, 0)
    opt.step()
    expected = torch.tensor([math.cos(0.3), math.sin(0.3), 0.0], dtype=torch.float64)
    torch.testing.assert_close(x.detach(), expected, atol=1e-15, rtol=0)


def test_rotation_invariance_of_the_update():
    """Rotating the problem rotates the trajectory (the per-point second moment is intrinsic).

    The point travels far (an optimizer that does not move fails), and an elementwise second
    moment (torch.optim.Adam's, not invariant) breaks the equality.
    """
    S = manifres.Sphere(2)
    Q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)))[0]
    x0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    target = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    a = torch.nn.Parameter(x0.clone())
    b = torch.nn.Parameter(Q @ x0)
    oa = RiemannianAdam([a], lr=0.1, manifold=S)
    ob = RiemannianAdam([b], lr=0.1, manifold=S)
    for noise in _grads((3,), 20, torch.float64, seed=6):
        g = 0.3 * noise - target
        a.grad, b.grad = g.clone(), Q @ g
        oa.step()
        ob.step()
    assert float(S.dist(a.detach(), x0)) > 1.0
    torch.testing.assert_close(Q @ a.detach(), b.detach(), atol=1e-13, rtol=0)


def test_rotation_parameters_batch(dtype):
    if SO is None:
        pytest.skip("manifres.SpecialOrthogonal is not available yet")
    G = SO(3)
    R0 = G.random(4, dtype=dtype, generator=torch.Generator().manual_seed(0))
    R = torch.nn.Parameter(R0.clone())
    opt = RiemannianAdam([R], lr=0.1, manifold=G, retraction="cayley", transport="parallel")
    for g in _grads((4, 3, 3), 50, dtype, seed=7):
        R.grad = g
        opt.step()
    assert opt.state[R]["exp_avg_sq"].shape == (4, 1, 1)
    assert bool((G.dist(R.detach(), R0) > 1e-2).all())
    assert_on_manifold(G, R.detach())
    assert_tangent(G, R.detach(), opt.state[R]["exp_avg"], atol=tol(dtype, 1e-5, 1e-12))


def test_bad_input_raises_named_errors():
    S = manifres.Sphere(2)
    on = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ParameterError, match=r"betas\[0\]"):
        RiemannianAdam([on], betas=(1.0, 0.9), manifold=S)
    with pytest.raises(ParameterError, match=r"betas\[1\]"):
        RiemannianAdam([on], betas=(0.9, math.nan), manifold=S)
    with pytest.raises(ParameterError, match="pair"):
        RiemannianAdam([on], betas=0.9, manifold=S)
    with pytest.raises(ParameterError, match="eps"):
        RiemannianAdam([on], eps=-1e-8, manifold=S)
    with pytest.raises(ManifoldError, match="not on the manifold"):
        RiemannianAdam([torch.nn.Parameter(torch.zeros(3))], manifold=S)
    with pytest.raises(UnknownChoiceError, match="valid names"):
        RiemannianAdam([on], manifold=S, retraction="qr")


@pytest.mark.cuda
@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_cuda_matches_cpu(dtype, algo):
    S = manifres.Sphere(2)
    x0 = S.random(8, dtype=dtype)
    grads = _grads((8, 3), 20, dtype, seed=8)
    out = {}
    for device in ["cpu", "cuda"]:
        x = torch.nn.Parameter(x0.to(device))
        w = torch.nn.Parameter(torch.zeros(3, dtype=dtype, device=device))
        groups = [{"params": [x], "manifold": S}, {"params": [w]}]
        opt = RiemannianSGD(groups, lr=0.1, momentum=0.9) if algo == "sgd" else RiemannianAdam(groups, lr=0.1)
        for g in grads:
            x.grad, w.grad = g.to(device), g[0].to(device)
            opt.step()
        assert (
            x.device.type == device
            and opt.state[x]["exp_avg" if algo == "adam" else "momentum_buffer"].device.type == device
        )
        out[device] = x.detach().cpu()
        assert bool((S.dist(out[device], x0) > 0.1).all())
    torch.testing.assert_close(out["cuda"], out["cpu"], atol=tol(dtype, 1e-5, 1e-12), rtol=0)


def test_moments_use_the_manifold_metric(dtype, weighted_euclidean):
    """Metric diag(d): xi = D^{-1} g and v = <xi, xi>_D = g^T D^{-1} g, so the first step is
    -lr D^{-1} g / |g|_{D^{-1}} (the projection and the Frobenius norm give other steps)."""
    x0 = torch.tensor([0.5, -1.0, 2.0], dtype=dtype)
    g = torch.tensor([1.0, 2.0, -3.0], dtype=dtype)
    x = torch.nn.Parameter(x0.clone())
    opt = RiemannianAdam([x], lr=0.1, eps=0.0, manifold=weighted_euclidean)
    x.grad = g.clone()
    opt.step()
    d = torch.tensor(weighted_euclidean.d, dtype=dtype)
    expected = x0 - 0.1 * (g / d) / (g * g / d).sum().sqrt()
    torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_weight_decay_toward_decay_to_is_a_projected_step(dtype):
    """Zero loss: xi = P_x(lambda (x - r)); the normalised first step moves by exactly lr toward r."""
    S = manifres.Sphere(2)
    r = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    opt = RiemannianAdam([x], lr=0.3, eps=0.0, weight_decay=1.0, manifold=S, decay_to=r)
    x.grad = torch.zeros(3, dtype=dtype)
    opt.step()
    expected = torch.tensor([math.cos(0.3), math.sin(0.3), 0.0], dtype=dtype)
    torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_weight_decay_without_decay_to_is_refused_on_the_sphere():
    S = manifres.Sphere(2)
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ParameterError, match="would do nothing on Sphere"):
        RiemannianAdam([x], weight_decay=0.01, manifold=S)
