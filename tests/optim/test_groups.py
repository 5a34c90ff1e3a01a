"""State of the Riemannian optimizers (manifres.optim._groups): plain-data state dicts that load
with torch.load(weights_only=True), manifolds restored from the live groups, resume equal to an
uninterrupted run, deepcopy, and checkpoints of torch's own SGD and Adam."""

import copy
import io

import pytest
import torch

import manifres
from manifres.errors import ManifoldError, ParameterError
from manifres.optim import RiemannianAdam, RiemannianSGD
from manifres.testing import tol

S2 = manifres.Sphere(2)
SO3 = manifres.SpecialOrthogonal(3)


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [
        torch.nn.Parameter(S2.random(4, generator=g, dtype=dtype)),
        torch.nn.Parameter(SO3.random(2, generator=g, dtype=dtype)),
        torch.nn.Parameter(torch.randn(5, generator=g, dtype=dtype)),
    ]


def _optimizer(algo, params, lr=0.1):
    x, R, w = params
    groups = [
        {"params": [x], "manifold": S2, "transport": "parallel"},
        {"params": [R], "manifold": SO3, "retraction": "cayley"},
        {"params": [w]},
    ]
    if algo == "sgd":
        return RiemannianSGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return RiemannianAdam(groups, lr=lr, amsgrad=True)


def _loss(params):
    x, R, w = params
    target = torch.tensor([0.0, 0.6, 0.8], dtype=x.dtype)
    return -(x @ target).sum() + (R[..., 0, 1] - 0.3).pow(2).sum() + (w**2).sum()


def _run(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()


def _save_load(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_state_dict_is_plain_data_and_loads_with_weights_only(dtype, algo):
    params = _params(dtype)
    opt = _optimizer(algo, params)
    _run(opt, params, 3)
    sd = _save_load(opt.state_dict())
    assert all(isinstance(v, (torch.Tensor, int, float, bool, str, type(None))) for v in _leaves(sd))
    assert [g["manifold"] for g in sd["param_groups"]] == [
        {"class": "manifres.manifolds.sphere.Sphere", "repr": "Sphere(2)"},
        {"class": "manifres.manifolds.son.SpecialOrthogonal", "repr": "SpecialOrthogonal(3)"},
        None,
    ]
    assert opt.param_groups[0]["manifold"] is S2  # the live groups keep their objects
    assert len(sd["state"]) == 3


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_resume_from_a_checkpoint_gives_the_uninterrupted_trajectory(dtype, algo):
    params = _params(dtype)
    start = [p.detach().clone() for p in params]
    opt = _optimizer(algo, params)
    _run(opt, params, 12)
    uninterrupted = [p.detach().clone() for p in params]
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(uninterrupted, start, strict=True))

    params = [torch.nn.Parameter(s.clone()) for s in start]
    opt = _optimizer(algo, params)
    _run(opt, params, 5)
    checkpoint = _save_load({"params": [p.detach() for p in params], "opt": opt.state_dict()})
    params = [torch.nn.Parameter(p.clone()) for p in checkpoint["params"]]
    resumed = _optimizer(algo, params, lr=7.0)  # the checkpoint's lr wins
    resumed.load_state_dict(checkpoint["opt"])
    assert resumed.param_groups[0]["lr"] == 0.1 and resumed.param_groups[1]["manifold"] is SO3
    _run(resumed, params, 7)
    for got, ref in zip(params, uninterrupted, strict=True):
        assert torch.equal(got.detach(), ref)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_deepcopy_continues_identically_and_independently(dtype, algo):
    params = _params(dtype)
    start = [p.detach().clone() for p in params]
    opt = _optimizer(algo, params)
    _run(opt, params, 3)
    params2, opt2 = copy.deepcopy((params, opt))
    assert opt2.param_groups[0]["params"][0] is params2[0]
    assert opt2.param_groups[0]["manifold"] == S2
    _run(opt, params, 4)
    snapshot = [p.detach().clone() for p in params]
    _run(opt2, params2, 4)
    for a, b, s in zip(params, params2, start, strict=True):
        assert torch.equal(a.detach(), b.detach()) and (a.detach() - s).abs().max() > 1e-3
    assert all(torch.equal(a.detach(), s) for a, s in zip(params, snapshot, strict=True))


def test_load_refuses_a_checkpoint_of_another_manifold():
    x = torch.nn.Parameter(S2.random(3))
    sd = RiemannianSGD([x], lr=0.1, manifold=S2).state_dict()
    for other, name in [(manifres.Sphere(2, cut_locus="nan"), "Sphere(2, 'nan')"), (None, "None")]:
        opt = RiemannianSGD([x], lr=0.1, manifold=other)
        with pytest.raises(ParameterError, match=rf"saved for the manifold Sphere\(2\).*has {name[:6]}"):
            opt.load_state_dict(sd)
    with pytest.raises(ParameterError, match="has 1 parameter groups, the optimizer has 2"):
        two = [{"params": [x]}, {"params": [torch.nn.Parameter(torch.zeros(2))]}]
        RiemannianSGD(two, lr=0.1).load_state_dict(sd)


def test_a_bad_loaded_hyperparameter_leaves_the_optimizer_unchanged():
    x = torch.nn.Parameter(S2.random(3))
    opt = RiemannianAdam([x], lr=0.1, manifold=S2)
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = (1.5, 0.9)
    with pytest.raises(ParameterError, match=r"betas\[0\]"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    x.data.mul_(2.0)  # the live parameters are checked too
    with pytest.raises(ManifoldError, match="not on the manifold"):
        opt.load_state_dict(opt.state_dict())


def test_a_pickled_manifold_of_an_old_checkpoint_still_loads():
    """Checkpoints written before the plain-data format (the manifold object itself)."""
    x = torch.nn.Parameter(S2.random(3))
    opt = RiemannianSGD([x], lr=0.1, momentum=0.5, manifold=S2)
    x.grad = torch.randn(3, 3)
    opt.step()
    sd = opt.state_dict()
    sd["param_groups"][0]["manifold"] = manifres.Sphere(2)
    resumed = RiemannianSGD([x], lr=0.1, momentum=0.5, manifold=S2)
    resumed.load_state_dict(sd)
    assert torch.equal(resumed.state[x]["momentum_buffer"], opt.state[x]["momentum_buffer"])


def test_decay_to_comes_from_the_live_group():
    r = torch.tensor([0.0, 0.0, 1.0])
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    opt = RiemannianSGD([x], lr=0.1, weight_decay=1.0, manifold=S2, decay_to=r)
    sd = _save_load(opt.state_dict())
    assert torch.equal(sd["param_groups"][0]["decay_to"], r)
    r2 = torch.tensor([0.0, 1.0, 0.0])
    resumed = RiemannianSGD([x], lr=0.1, weight_decay=1.0, manifold=S2, decay_to=r2)
    resumed.load_state_dict(sd)
    assert resumed.param_groups[0]["decay_to"] is r2


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_a_checkpoint_of_the_torch_optimizer_resumes_a_euclidean_group(dtype, algo):
    """Migrating from torch.optim.SGD / Adam: the Euclidean update is the same, so is the state."""
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(4, generator=g, dtype=dtype) for _ in range(8)]
    w0 = torch.randn(4, generator=g, dtype=dtype)
    kw = dict(lr=0.1, momentum=0.9) if algo == "sgd" else dict(lr=0.1, amsgrad=True)
    ref_cls, cls = (torch.optim.SGD, RiemannianSGD) if algo == "sgd" else (torch.optim.Adam, RiemannianAdam)
    ref_w = torch.nn.Parameter(w0.clone())
    ref = ref_cls([ref_w], foreach=False, **kw)
    for i, grad in enumerate(grads):
        if i == 4:
            w = torch.nn.Parameter(ref_w.detach().clone())
            ours = cls([w], **kw)
            ours.load_state_dict(_save_load(ref.state_dict()))
        ref_w.grad = grad.clone()
        ref.step()
        if i >= 4:
            w.grad = grad.clone()
            ours.step()
    assert ours.state[w]["step" if algo == "adam" else "momentum_buffer"] is not None
    torch.testing.assert_close(w.detach(), ref_w.detach(), atol=tol(dtype, 1e-6, 1e-14), rtol=0)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_stabilize_projects_back(dtype, algo):
    """A rotation that drifted off SO(3) (as after many float32 steps) is mapped back exactly
    every `stabilize` steps; a retraction alone only halves the digits of the drift."""
    G = manifres.SpecialOrthogonal(3)
    R0 = G.random(5, dtype=dtype, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(3, dtype=dtype)
    drift = {}
    for stabilize in (None, 1):
        R = torch.nn.Parameter(R0.clone())
        if algo == "sgd":
            opt = RiemannianSGD([R], lr=0.0, momentum=0.5, manifold=G, stabilize=stabilize)
        else:
            opt = RiemannianAdam([R], lr=0.0, manifold=G, stabilize=stabilize)
        with torch.no_grad():
            R.add_(1e-3 * torch.randn(5, 3, 3, dtype=dtype, generator=torch.Generator().manual_seed(1)))
        R.grad = torch.randn(5, 3, 3, dtype=dtype)
        opt.step()
        drift[stabilize] = float((R.detach().mT @ R.detach() - eye).abs().max())
        assert opt.state[R]["step"] == 1
    assert drift[None] > 1e-6
    assert drift[1] <= tol(dtype, 1e-6, 1e-14)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_the_groups_retraction_is_used(dtype, algo):
    """One step of length 0.5 along e_1: projective (x + v)/|x + v|, not the exponential map."""
    x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    group = {"params": [x], "manifold": S2, "retraction": "projective"}
    opt = RiemannianSGD([group], lr=0.5) if algo == "sgd" else RiemannianAdam([group], lr=0.5, eps=0.0)
    x.grad = torch.tensor([0.0, -1.0, 0.0], dtype=dtype)
    opt.step()
    expected = torch.tensor([1.0, 0.5, 0.0], dtype=dtype) / 1.25**0.5
    torch.testing.assert_close(x.detach(), expected, atol=tol(dtype, 1e-7, 1e-15), rtol=0)


def test_the_checkpoints_manifold_settings_are_restored():
    """Retraction, transport and stabilize are hyperparameters: the checkpoint's win (as lr)."""
    R = torch.nn.Parameter(SO3.random(2))
    saved = RiemannianSGD(
        [{"params": [R], "manifold": SO3, "retraction": "cayley", "transport": "parallel", "stabilize": 3}],
        lr=0.1,
    ).state_dict()
    opt = RiemannianSGD([{"params": [R], "manifold": SO3}], lr=0.1)
    opt.load_state_dict(_save_load(saved))
    g = opt.param_groups[0]
    assert (g["retraction"], g["transport"], g["stabilize"], g["manifold"]) == ("cayley", "parallel", 3, SO3)
