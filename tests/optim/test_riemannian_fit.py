"""Riemannian optimizers fit a rotation (Procrustes) and a point on the sphere: compared with
closed forms computed independently (scipy's Wahba solver, the normalised mean)."""

import pytest
import torch

import manifres
from manifres.optim import RiemannianAdam, RiemannianSGD
from manifres.testing import assert_on_manifold

SO = getattr(manifres, "SpecialOrthogonal", None)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small-model training: one intra-op thread (two threads on a loaded 2-core machine
    spin in OpenMP barriers and run 10-50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _procrustes_data(dtype):
    g = torch.Generator().manual_seed(0)
    R_true = SO(3).random(generator=g, dtype=dtype)
    X = torch.randn(3, 50, generator=g, dtype=dtype)
    t_true = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    Y = R_true @ X + t_true[:, None] + 0.1 * torch.randn(3, 50, generator=g, dtype=dtype)
    return X, Y


def _kabsch_reference(X, Y):
    """Least-squares rotation and translation from scipy (float64, independent of manifres)."""
    Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    Xc = (X - X.mean(1, keepdim=True)).double()
    Yc = (Y - Y.mean(1, keepdim=True)).double()
    rot, _ = Rotation.align_vectors(Yc.T.numpy(), Xc.T.numpy())
    R = torch.from_numpy(rot.as_matrix())
    return R, Y.double().mean(1) - R @ X.double().mean(1)


_CASES = [
    ("sgd-exp", "sgd", "exp"),
    ("sgd-cayley", "sgd", "cayley"),
    ("adam-exp", "adam", "exp"),
    ("adam-polar", "adam", "polar"),
]


@pytest.mark.parametrize("case", _CASES, ids=[c[0] for c in _CASES])
def test_fit_rotation_and_translation(dtype, case):
    """Rotation on SO(3) and translation (Euclidean group) fitted jointly to noisy data."""
    if SO is None:
        pytest.skip("manifres.SpecialOrthogonal is not available yet")
    _, algo, retraction = case
    X, Y = _procrustes_data(dtype)
    R_ref, t_ref = _kabsch_reference(X, Y)
    R = torch.nn.Parameter(torch.eye(3, dtype=dtype))
    t = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
    groups = [{"params": [R], "manifold": SO(3), "retraction": retraction}, {"params": [t]}]
    if algo == "sgd":
        opt = RiemannianSGD(groups, lr=0.3, momentum=0.7)
        sched, steps, atol = None, 150, {torch.float32: 2e-6, torch.float64: 1e-10}[dtype]
    else:
        opt = RiemannianAdam(groups, lr=0.2, betas=(0.5, 0.9))
        sched, steps, atol = torch.optim.lr_scheduler.ExponentialLR(opt, 0.98), 300, 2e-4
    for _ in range(steps):
        opt.zero_grad()
        ((R @ X + t[:, None] - Y) ** 2).sum(0).mean().backward()
        opt.step()
        if sched is not None:
            sched.step()
    assert_on_manifold(SO(3), R.detach())
    torch.testing.assert_close(R.detach().double(), R_ref, atol=atol, rtol=0)
    torch.testing.assert_close(t.detach().double(), t_ref, atol=atol, rtol=0)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_fit_point_on_sphere(dtype, algo):
    """argmin_x mean |x - y_i|^2 on S^4 is the normalised mean of the data."""
    g = torch.Generator().manual_seed(1)
    S = manifres.Sphere(4)
    mu = S.random(generator=g, dtype=torch.float64)
    data = S.proj_point(mu + 0.4 * torch.randn(40, 5, generator=g, dtype=torch.float64)).to(dtype)
    ref = S.proj_point(data.double().mean(0))
    x = torch.nn.Parameter(S.random(generator=g, dtype=dtype))
    if algo == "sgd":
        opt = RiemannianSGD([x], lr=0.3, momentum=0.5, manifold=S, transport="parallel")
        sched, steps, atol = None, 100, {torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    else:
        opt = RiemannianAdam([x], lr=0.1, manifold=S, betas=(0.5, 0.9))
        sched, steps, atol = torch.optim.lr_scheduler.ExponentialLR(opt, 0.97), 300, 1e-4
    for _ in range(steps):
        opt.zero_grad()
        ((x - data) ** 2).sum(-1).mean().backward()
        opt.step()
        if sched is not None:
            sched.step()
    assert_on_manifold(S, x.detach())
    torch.testing.assert_close(x.detach().double(), ref, atol=atol, rtol=0)
