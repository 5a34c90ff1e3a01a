"""Tests of manifres.optim.RiemannianSGD: Euclidean equivalence, manifold invariants, errors."""

import math

import pytest
import torch

import manifres
from manifres.errors import DTypeError, ManifoldError, ParameterError, ShapeError, UnknownChoiceError
from manifres.optim import RiemannianSGD
from manifres.testing import assert_on_manifold, assert_tangent, tol


def _grads(shape, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
    ],
    ids=["plain", "momentum", "dampening-wd", "nesterov"],
)
@pytest.mark.parametrize("manifold", [None, "euclidean"])
def test_euclidean_groups_match_torch_sgd(dtype, kw, manifold):
    x0 = torch.randn(4, 3, dtype=dtype)
    a = torch.nn.Parameter(x0.clone())
    b = torch.nn.Parameter(x0.clone())
    M = manifres.Euclidean(3) if manifold else None
    ours = RiemannianSGD([a], manifold=M, **kw)
    ref = torch.optim.SGD([b], **kw)
    for g in _grads((4, 3), 6, dtype):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), atol=tol(dtype, 1e-6, 1e-14), rtol=0)


@pytest.mark.parametrize("transport", ["projection", "parallel"])
@pytest.mark.parametrize("retraction", ["exp", "projective"])
def test_sphere_stays_on_manifold_with_tangent_momentum(dtype, transport, retraction):
    S = manifres.Sphere(3, cut_locus="nan")
    g = torch.Generator().manual_seed(1)
    x0 = S.random(8, generator=g, dtype=dtype)
    x = torch.nn.Parameter(x0.clone())
    opt = RiemannianSGD([x], lr=0.05, momentum=0.9, manifold=S, retraction=retraction, transport=transport)
    for grad in _grads((8, 4), 300, dtype, seed=2):
        x.grad = grad
        opt.step()
    assert bool((S.dist(x.detach(), x0) > 0.1).all())
    assert_on_manifold(S, x.detach())
    assert_tangent(S, x.detach(), opt.state[x]["momentum_buffer"])


def test_parallel_and_projection_transport_differ_but_both_descend():
    """One step of each, from the same state: parallel transport keeps the buffer's norm."""
    S = manifres.Sphere(2)
    x0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    norms = {}
    for transport in ["projection", "parallel"]:
        x = torch.nn.Parameter(x0.clone())
        opt = RiemannianSGD([x], lr=0.5, momentum=0.9, manifold=S, transport=transport)
        x.grad = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
        opt.step()
        norms[transport] = float(opt.state[x]["momentum_buffer"].norm())
    assert norms["parallel"] == pytest.approx(1.0, abs=1e-14)
    assert norms["projection"] == pytest.approx(math.cos(0.5), abs=1e-14)


def test_mixed_groups_and_no_grad_parameters():
    S = manifres.Sphere(2)
    x = torch.nn.Parameter(torch.tensor([0.0, 0.0, 1.0]))
    w = torch.nn.Parameter(torch.ones(2))
    unused = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    opt = RiemannianSGD([{"params": [x, unused], "manifold": S}, {"params": [w], "lr": 1.0}], lr=0.1)
    x.grad = torch.tensor([1.0, 0.0, 0.0])
    w.grad = torch.ones(2)
    opt.step()
    assert torch.equal(w.detach(), torch.zeros(2))
    assert torch.equal(unused.detach(), torch.tensor([1.0, 0.0, 0.0]))
    assert x[0] < 0 and bool(S.is_point(x.detach()))


def test_state_dict_round_trip():
    S = manifres.Sphere(2)
    torch.manual_seed(3)
    x0 = S.random(4, dtype=torch.float64)
    grads = _grads((4, 3), 6, torch.float64, seed=4)

    def run(split):
        x = torch.nn.Parameter(x0.clone())
        opt = RiemannianSGD([x], lr=0.1, momentum=0.9, manifold=S)
        for i, g in enumerate(grads):
            if i == split:
                state = opt.state_dict()
                opt = RiemannianSGD([x], lr=0.7, manifold=S)
                opt.load_state_dict(state)
            x.grad = g.clone()
            opt.step()
        return x.detach()

    assert torch.equal(run(None), run(3))
    assert bool((S.dist(run(None), x0) > 0.1).all())


def test_closure_returns_loss():
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0]))
    opt = RiemannianSGD([x], lr=0.1, manifold=manifres.Sphere(1))

    def closure():
        opt.zero_grad()
        loss = x[1] - x[0]
        loss.backward()
        return loss

    assert float(opt.step(closure).detach()) == -1.0
    assert x[0] < 1.0 and x[1] < 0.0


def test_bad_input_raises_named_errors():
    S = manifres.Sphere(2)
    on = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ManifoldError, match="not on the manifold.*proj_point"):
        RiemannianSGD([torch.nn.Parameter(torch.ones(3))], lr=0.1, manifold=S)
    with pytest.raises(ManifoldError, match="not finite"):
        RiemannianSGD([torch.nn.Parameter(torch.full((3,), math.nan))], lr=0.1, manifold=S)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        RiemannianSGD([torch.nn.Parameter(torch.ones(4))], lr=0.1, manifold=S)
    with pytest.raises(DTypeError):
        RiemannianSGD([torch.nn.Parameter(torch.ones(3, dtype=torch.float16))], lr=0.1, manifold=S)
    with pytest.raises(UnknownChoiceError, match="exp, projective"):
        RiemannianSGD([on], lr=0.1, manifold=S, retraction="cayley")
    with pytest.raises(UnknownChoiceError, match="'projection', 'parallel'"):
        RiemannianSGD([on], lr=0.1, manifold=S, transport="schild")
    for kw, match in [
        (dict(lr=math.nan), "lr must be finite"),
        (dict(lr=-1.0), "lr must be >= 0"),
        (dict(lr=0.1, momentum=1.0), "momentum"),
        (dict(lr=0.1, weight_decay=math.inf), "weight_decay"),
        (dict(lr="fast"), "real number"),
    ]:
        with pytest.raises(ParameterError, match=match):
            RiemannianSGD([on], manifold=S, **kw)
    with pytest.raises(ParameterError, match="nesterov"):
        RiemannianSGD([on], lr=0.1, nesterov=True)
    with pytest.raises(ParameterError, match="stabilize"):
        RiemannianSGD([on], lr=0.1, manifold=S, stabilize=0)
    with pytest.raises(TypeError, match="Manifold"):
        RiemannianSGD([on], lr=0.1, manifold="sphere")


def test_failed_add_param_group_leaves_optimizer_unchanged():
    S = manifres.Sphere(2)
    on = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    opt = RiemannianSGD([on], lr=0.1, manifold=S)
    with pytest.raises(ManifoldError):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(3))]})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(3))], "manifold": None})
    assert len(opt.param_groups) == 2


# ----------------------------------------------------------------------------- the metric
def test_gradient_is_the_riemannian_gradient_of_the_metric(dtype, scaled_sphere):
    """With the metric c<u, v> the Riemannian gradient is P_x g / c, not P_x g."""
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    opt = RiemannianSGD([x], lr=0.3, manifold=scaled_sphere)
    x.grad = torch.tensor([5.0, -2.0, 0.0], dtype=dtype)  # P_x g = (0, -2, 0), / c = (0, -0.5, 0)
    opt.step()
    expected = torch.tensor([math.cos(0.15), math.sin(0.15), 0.0], dtype=dtype)
    torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_flat_space_with_a_weighted_metric(dtype, weighted_euclidean):
    """R^3 with the metric diag(d): the step is -lr D^{-1} g."""
    x0 = torch.tensor([0.5, -1.0, 2.0], dtype=dtype)
    g = torch.tensor([1.0, 2.0, -3.0], dtype=dtype)
    x = torch.nn.Parameter(x0.clone())
    opt = RiemannianSGD([x], lr=0.1, manifold=weighted_euclidean)
    x.grad = g.clone()
    opt.step()
    d = torch.tensor(weighted_euclidean.d, dtype=dtype)
    torch.testing.assert_close(x.detach(), x0 - 0.1 * g / d, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


# ----------------------------------------------------------------------------- weight decay
@pytest.mark.parametrize("manifold", [manifres.Sphere(2), manifres.SpecialOrthogonal(3)], ids=["S2", "SO3"])
def test_weight_decay_on_a_curved_manifold_needs_a_reference_point(manifold):
    """lambda x is normal to S^n and SO(n): without decay_to it would silently do nothing."""
    p = torch.nn.Parameter(manifold.random(2))
    with pytest.raises(ParameterError, match="weight_decay=100 would do nothing.*decay_to"):
        RiemannianSGD([p], lr=0.1, weight_decay=100, manifold=manifold)
    group = {"params": [p], "manifold": manifold, "weight_decay": 0.0}
    opt = RiemannianSGD([group], lr=0.1, weight_decay=1.0)
    assert opt.param_groups[0]["weight_decay"] == 0.0


def test_weight_decay_pulls_along_the_geodesic_toward_decay_to(dtype, scaled_sphere):
    """Zero loss: xi = egrad2rgrad(lambda (x - r)) = -lambda P_x r / c, one exact step, then convergence."""
    r = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    opt = RiemannianSGD([x], lr=0.2, weight_decay=2.0, manifold=scaled_sphere, decay_to=r)
    x.grad = torch.zeros(3, dtype=dtype)
    opt.step()
    angle = 0.2 * 2.0 / scaled_sphere.c
    expected = torch.tensor([math.cos(angle), math.sin(angle), 0.0], dtype=dtype)
    torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)
    dists = []
    for _ in range(400):
        opt.step()
        dists.append(float(manifres.Sphere(2).dist(x.detach(), r)))
    assert all(b <= a for a, b in zip(dists, dists[1:], strict=False)) and dists[-1] < tol(dtype, 1e-5, 1e-12)


def test_weight_decay_toward_a_point_in_flat_space(dtype):
    x0 = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=dtype)
    r = torch.tensor([0.5, 0.5], dtype=dtype)  # broadcast over the two points
    for manifold in (None, manifres.Euclidean(2)):
        x = torch.nn.Parameter(x0.clone())
        opt = RiemannianSGD([x], lr=0.1, weight_decay=0.5, manifold=manifold, decay_to=r)
        x.grad = torch.ones(2, 2, dtype=dtype)
        opt.step()
        expected = x0 - 0.1 * (1.0 + 0.5 * (x0 - r))
        torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_bad_decay_to_raises_named_errors():
    S = manifres.Sphere(2)
    x = torch.nn.Parameter(torch.tensor([[1.0, 0.0, 0.0]] * 2))
    with pytest.raises(ManifoldError, match="decay_to.*not on the manifold"):
        RiemannianSGD([x], lr=0.1, weight_decay=1.0, manifold=S, decay_to=torch.ones(3))
    with pytest.raises(ParameterError, match=r"decay_to of shape \(4, 3\) does not broadcast"):
        RiemannianSGD([x], lr=0.1, weight_decay=1.0, manifold=S, decay_to=S.random(4))
    with pytest.raises(TypeError, match="decay_to must be a tensor"):
        RiemannianSGD([x], lr=0.1, weight_decay=1.0, manifold=S, decay_to=[0.0, 1.0, 0.0])
