"""manifres.graph.opinion: DeGroot, Friedkin-Johnsen, Hegselmann-Krause, and the graph state."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.data import Data

import manifres
import manifres.graph as G
from manifres.errors import DeviceError, GraphError, ParameterError, ShapeError

from ._graphs import complete, cycle, path, random_graph, star, tol


def connected_graph(n=30, seed=0, dtype=torch.float64):
    ei, w = random_graph(n, 2 * n, seed=seed, dtype=dtype)
    ring = cycle(n)
    return torch.cat([ei, ring], 1), torch.cat([w, torch.ones(2 * n, dtype=dtype)])


# ----------------------------------------------------------------------------- DeGroot
@pytest.mark.parametrize("graph, alpha", [("odd", 1.0), ("bipartite", 0.5)])
def test_degroot_reaches_the_degree_weighted_average(dtype, graph, alpha):
    if graph == "odd":
        ei, w = connected_graph(31, seed=1, dtype=dtype)
    else:
        ei, w = cycle(10), None  # bipartite: alpha = 1 would oscillate
    n = int(ei.max()) + 1
    model = G.DeGroot(ei, w, step=alpha)
    x0 = torch.randn(n, 2, dtype=dtype)
    # consensus rates (lambda_2 of L_rw): 0.74 (odd) and 0.90 (bipartite): 0.9^320 = 2e-15
    xs = model.simulate(x0, 320, every=80)
    assert xs.shape == (5, n, 2)
    deg = G.laplacian_parts(ei, w).degree.double()
    target = (deg[:, None] * x0.double()).sum(0) / deg.sum()
    torch.testing.assert_close(model.consensus(x0).double(), target, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    err = (xs[-1].double() - target).abs().max()
    assert float(err) <= tol(dtype, 1e-5, 1e-12)
    # W is row-stochastic: constants are fixed points
    c = torch.full((n, 1), 3.0, dtype=dtype)
    torch.testing.assert_close(model(c), c, rtol=0, atol=tol(dtype, 1e-6, 1e-14))


def test_isolated_nodes_keep_opinions_and_do_not_disturb_others(dtype):
    ei, w = connected_graph(20, seed=2, dtype=dtype)
    x0 = torch.randn(20, 3, dtype=dtype)
    extra = torch.randn(3, 3, dtype=dtype)
    base = G.DeGroot(ei, w, step=0.7).simulate(x0, 50)
    more = G.DeGroot(ei, w, num_nodes=23, step=0.7).simulate(torch.cat([x0, extra]), 50)
    assert torch.equal(more[:, 20:], extra.expand(51, 3, 3))
    torch.testing.assert_close(more[:, :20], base, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    fj = G.FriedkinJohnsen(ei, w, num_nodes=23, susceptibility=0.8).simulate(
        torch.cat([x0, extra]), 20
    )
    assert torch.equal(fj[:, 20:], extra.expand(21, 3, 3))


def test_degroot_directed_graph_is_row_stochastic(dtype):
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])  # directed, i listens to j
    model = G.DeGroot(ei, step=1.0)
    x = torch.tensor([[1.0], [2.0], [4.0]], dtype=dtype)
    torch.testing.assert_close(model(x), torch.tensor([[2.0], [4.0], [1.5]], dtype=dtype))


# ----------------------------------------------------------------------------- Friedkin-Johnsen
@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_friedkin_johnsen_converges_to_its_equilibrium(dtype, alpha):
    ei, w = connected_graph(40, seed=3, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    lam = torch.rand(40, generator=gen, dtype=torch.float64) * 0.9
    lam[:5] = 0.0  # fully stubborn nodes
    model = G.FriedkinJohnsen(ei, w, susceptibility=lam.to(dtype), step=alpha)
    x0 = torch.randn(40, 2, dtype=dtype, generator=gen)
    eq = model.equilibrium(x0)
    assert eq.dtype == dtype and eq.shape == x0.shape
    traj = model.simulate(x0, 300, every=300)  # rho(Lambda W) <= 0.9: 0.9^300 = 2e-14
    torch.testing.assert_close(traj[-1], eq, rtol=0, atol=tol(dtype, 1e-5, 1e-10))
    assert torch.equal(eq[:5], x0[:5])
    # the equilibrium is a fixed point of the step
    torch.testing.assert_close(model(eq, x0), eq, rtol=0, atol=tol(dtype, 1e-5, 1e-11))
    # the closed form, densely, as an independent reference
    W = np.eye(40) - alpha * G.laplacian(ei, w.double(), normalization="rw").to_dense().numpy()
    Lam = np.diag(lam.numpy())
    ref = np.linalg.solve(np.eye(40) - Lam @ W, (np.eye(40) - Lam) @ x0.double().numpy())
    np.testing.assert_allclose(eq.double().numpy(), ref, atol=tol(dtype, 1e-5, 1e-10))


def test_friedkin_johnsen_stubbornness_is_one_minus_susceptibility(dtype):
    ei = path(5)
    x0 = torch.randn(5, 1, dtype=dtype)
    a = G.FriedkinJohnsen(ei, susceptibility=torch.full((5,), 0.25, dtype=dtype))
    b = G.FriedkinJohnsen(ei, stubbornness=0.75)
    torch.testing.assert_close(a(x0), b(x0))
    with pytest.raises(ParameterError, match="exactly one"):
        G.FriedkinJohnsen(ei)
    with pytest.raises(ParameterError, match=r"susceptibility\[2\] = 1.5 is outside \[0, 1\]"):
        G.FriedkinJohnsen(ei, susceptibility=torch.tensor([0.0, 0.1, 1.5, 0.2, 0.3]))
    with pytest.raises(ShapeError):
        G.FriedkinJohnsen(ei, stubbornness=torch.ones(4))


def test_friedkin_johnsen_without_stubborn_nodes_reaches_degroot(dtype):
    ei, w = connected_graph(15, seed=4, dtype=dtype)
    x0 = torch.randn(15, 1, dtype=dtype)
    fj = G.FriedkinJohnsen(ei, w, susceptibility=1.0, step=0.5)
    target = G.DeGroot(ei, w, step=0.5).consensus(x0)
    torch.testing.assert_close(fj.equilibrium(x0), target.expand(15, 1), rtol=0,
                               atol=tol(dtype, 1e-5, 1e-10))


def test_friedkin_johnsen_equilibrium_needs_an_undirected_graph():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    fj = G.FriedkinJohnsen(ei, susceptibility=0.5)
    with pytest.raises(GraphError, match="directed"):
        fj.equilibrium(torch.zeros(3, 1))


# ----------------------------------------------------------------------------- Hegselmann-Krause
def hk_reference(x, eps, pairs=None):
    """Plain Python bounded confidence in float64."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.empty_like(x)
    for i in range(n):
        nbrs = [i] + [j for j in (range(n) if pairs is None else pairs[i]) if j != i]
        close = [j for j in nbrs if np.linalg.norm(x[i] - x[j]) <= eps]
        out[i] = x[close].mean(0)
    return out


def test_hegselmann_krause_hard_matches_reference(dtype):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(25, 2, generator=gen, dtype=torch.float64)
    model = G.HegselmannKrause(0.25, num_nodes=25)
    x, ref = x0.to(dtype), x0.numpy()
    for _ in range(15):
        x, ref = model(x), hk_reference(ref, 0.25)
    np.testing.assert_allclose(x.double().numpy(), ref, atol=tol(dtype, 1e-5, 1e-12))
    # on a graph: only neighbours (and oneself) count
    ei = cycle(25)
    pairs = {i: [(i - 1) % 25, (i + 1) % 25] for i in range(25)}
    y = G.HegselmannKrause(0.25, ei)(x0.to(dtype))
    np.testing.assert_allclose(y.double().numpy(), hk_reference(x0.numpy(), 0.25, pairs),
                               atol=tol(dtype, 1e-6, 1e-14))


def test_hegselmann_krause_clusters_are_fixed_points(dtype):
    x0 = torch.linspace(0, 1, 41, dtype=dtype).unsqueeze(-1)
    xs = G.HegselmannKrause(0.1, num_nodes=41).simulate(x0, 60)
    final = xs[-1].squeeze(-1)
    centres = torch.unique(torch.round(final * 1e4)) / 1e4
    assert len(centres) >= 2
    assert float(torch.diff(centres).min()) > 0.1  # clusters out of each other's reach
    torch.testing.assert_close(xs[-1], xs[-2])


def test_soft_hegselmann_krause_is_differentiable_and_tends_to_hard(dtype):
    gen = torch.Generator().manual_seed(2)
    x0 = torch.rand(12, 1, generator=gen, dtype=dtype)
    hard = G.HegselmannKrause(0.2, num_nodes=12)(x0)
    soft = G.HegselmannKrause(0.2, num_nodes=12, temperature=1e-4)(x0)
    torch.testing.assert_close(soft, hard, rtol=0, atol=tol(dtype, 1e-4, 1e-6))
    eps = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    xg = torch.rand(8, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    eps0 = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    model = G.HegselmannKrause(eps0, cycle(8), temperature=0.05)
    assert [name for name, _ in model.named_parameters()] == ["epsilon"]

    def f(x, e):
        return torch.func.functional_call(model, {"epsilon": e}, (x,))

    assert torch.autograd.gradcheck(f, (xg, eps))
    model(xg).sum().backward()  # the registered Parameter learns
    assert model.epsilon.grad is not None and torch.isfinite(model.epsilon.grad)
    with pytest.raises(ParameterError, match="nn.Parameter"):
        G.HegselmannKrause(eps, cycle(8), temperature=0.05)
    same = torch.zeros(4, 2, dtype=dtype, requires_grad=True)  # coincident opinions
    G.HegselmannKrause(0.2, num_nodes=4, temperature=0.1)(same).sum().backward()
    assert torch.isfinite(same.grad).all()


# ----------------------------------------------------------------------------- interface
def test_simulate_interface(dtype, capsys):
    model = G.DeGroot(Data(edge_index=star(5), num_nodes=5), step=0.5)
    x0 = torch.randn(5, 2, dtype=dtype, requires_grad=True)
    xs = model.simulate(x0, 10, every=3, progress=True)
    assert xs.shape == (4, 5, 2)
    torch.testing.assert_close(xs[1], model(model(model(x0))))
    xs[-1].sum().backward()  # differentiable in x0
    assert torch.isfinite(x0.grad).all()
    assert "DeGroot" in capsys.readouterr().err
    assert model.simulate(x0, 0).shape == (1, 5, 2)
    with pytest.raises(ParameterError, match="steps"):
        model.simulate(x0, -1)
    with pytest.raises(ParameterError, match="every"):
        model.simulate(x0, 3, every=0)
    with pytest.raises(ParameterError, match="steps must be an integer"):
        model.simulate(x0, 2.0)
    assert model.simulate(x0, np.int64(2), every=np.int32(1)).shape == (3, 5, 2)
    with pytest.raises(DeviceError, match="meta"):
        model(torch.zeros(5, 2, device="meta"))
    assert "step=0.5" in repr(model)
    for bad in (1.5, 0.0, float("nan"), "0.5", True):
        with pytest.raises(ParameterError, match="step"):
            G.DeGroot(star(5), step=bad)
    assert G.DeGroot(star(5), step=np.float32(0.25)).step == 0.25


def test_model_parameter_errors():
    ei = path(4)
    for kwargs in ({"step": 1.5}, {"step": -0.1}):
        with pytest.raises(ParameterError):
            G.FriedkinJohnsen(ei, susceptibility=0.5, **kwargs)
    with pytest.raises(ParameterError, match="stubbornness"):
        G.FriedkinJohnsen(ei, stubbornness=float("nan"))
    with pytest.raises(ParameterError, match="learnable"):
        G.FriedkinJohnsen(ei, stubbornness=nn.Parameter(torch.zeros(4)))
    with pytest.raises(ParameterError, match="requires a gradient"):
        G.FriedkinJohnsen(ei, susceptibility=torch.full((4,), 0.5, requires_grad=True))
    for kwargs in ({"epsilon": -1.0}, {"epsilon": float("inf")}, {"epsilon": 0.1, "temperature": 0.0}):
        with pytest.raises(ParameterError):
            G.HegselmannKrause(num_nodes=4, **kwargs)
    with pytest.raises(GraphError, match="num_nodes"):
        G.HegselmannKrause(0.1)
    with pytest.raises(ParameterError, match="gradient"):
        G.DeGroot(ei, torch.ones(6, requires_grad=True))
    fj = G.FriedkinJohnsen(ei, susceptibility=0.5)
    with pytest.raises(ParameterError, match="rtol"):
        fj.equilibrium(torch.zeros(4, 1), rtol=0.0)
    with pytest.raises(ParameterError, match="maxiter"):
        fj.equilibrium(torch.zeros(4, 1), maxiter=1.5)


def test_susceptibility_accepts_sequences_and_arrays(dtype):
    ei = path(4)
    x0 = torch.randn(4, 1, dtype=dtype)
    ref = G.FriedkinJohnsen(ei, susceptibility=torch.tensor([0.1, 0.2, 0.3, 0.4]))(x0)
    for value in ([0.1, 0.2, 0.3, 0.4], np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)):
        torch.testing.assert_close(G.FriedkinJohnsen(ei, susceptibility=value)(x0), ref)


def test_learnable_susceptibility_is_a_parameter(dtype):
    ei = cycle(5)
    lam = nn.Parameter(torch.full((5,), 0.5, dtype=torch.float64))
    model = G.FriedkinJohnsen(ei, susceptibility=lam)
    assert list(model.parameters()) == [lam] and "susceptibility" in model.state_dict()
    x0 = torch.randn(5, 2, dtype=dtype)
    model.simulate(x0, 3)[-1].square().sum().backward()
    assert lam.grad is not None and torch.isfinite(lam.grad).all()


def test_models_move_with_the_module_and_cast_to_the_opinions(dtype):
    model = G.FriedkinJohnsen(complete(4), susceptibility=0.5)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    x = torch.randn(4, 2, dtype=dtype)
    a = model(x)
    b = model(x.to(other))
    assert a.dtype == dtype and b.dtype == other
    torch.testing.assert_close(a.double(), b.double(), rtol=0, atol=1e-6)
    model.to(torch.float32)  # buffers cast; the cached operators are rebuilt
    assert model.edge_weight.dtype == torch.float32 and len(model._cache) == 0
    torch.testing.assert_close(model(x).double(), a.double(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- graph state
def _models(ei, w, n):
    S = manifres.Sphere(2)
    return [
        G.DeGroot(ei, w, num_nodes=n, step=0.6),
        G.FriedkinJohnsen(ei, w, num_nodes=n, susceptibility=0.7, step=0.8),
        G.HegselmannKrause(0.8, ei, w, num_nodes=n),
        G.ManifoldDiffusion(S, ei, w, num_nodes=n, step=0.4),
    ]


def _opinions(model, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if isinstance(model, G.ManifoldDiffusion):
        y = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        y[:, 2] = y[:, 2].abs() + 0.5
        return y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return torch.randn(n, 2, generator=gen, dtype=torch.float64)


def _fresh(model, ei, w, n):
    """The reference: a new model of the same kind on (ei, w), never cached before."""
    return _models(ei, w, n)[[type(m) for m in _models(ei, w, n)].index(type(model))]


def test_every_model_reuses_its_operator(monkeypatch):
    import manifres.graph.opinion as O

    calls = []
    real = O._normalize

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(O, "_normalize", counting)
    ei, w = random_graph(12, 30, seed=1)
    for model in _models(ei, w, 12):
        x = _opinions(model, 12)
        calls.clear()
        for _ in range(4):
            x = model(x)
        assert len(calls) <= 1, type(model).__name__


def test_load_state_dict_of_another_graph_is_never_stale():
    ei, w = random_graph(12, 30, seed=1)
    _, w2 = random_graph(12, 30, seed=2)  # the same edges with other weights
    for model in _models(ei, w, 12):
        x = _opinions(model, 12)
        model(x)
        model(x)  # operators cached
        other = _fresh(model, ei, w2, 12)
        model.load_state_dict(other.state_dict())
        torch.testing.assert_close(model(x), other(x), rtol=0, atol=1e-14)


def test_in_place_edits_of_graph_buffers_are_never_stale():
    ei, w = random_graph(12, 30, seed=1)
    for model in _models(ei, w, 12):
        x = _opinions(model, 12)
        model(x)
        model(x)
        with torch.no_grad():
            model.edge_weight.mul_(torch.linspace(0.5, 2.0, len(w), dtype=torch.float64))
        ref = _fresh(model, ei, model.edge_weight.clone(), 12)
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=1e-14)
        with torch.no_grad():
            model.edge_weight[0] = -1.0  # a bad value is caught when the operator is rebuilt
        with pytest.raises(GraphError, match="negative edge weight"):
            model(x)


def test_deepcopy_pickle_and_weights_only_state_dicts():
    ei, w = random_graph(12, 30, seed=1)
    for model in _models(ei, w, 12):
        x = _opinions(model, 12)
        ref = model(x)
        model(x)
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert len(clone._cache) == 0
            torch.testing.assert_close(clone(x), ref, rtol=0, atol=0)
        swa = torch.optim.swa_utils.AveragedModel(model)
        torch.testing.assert_close(swa(x), ref, rtol=0, atol=0)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        assert {"edge_index", "edge_weight"} <= set(state)
        fresh = _fresh(model, ei, torch.ones_like(w), 12)
        fresh.load_state_dict(state)
        torch.testing.assert_close(fresh(x), ref, rtol=0, atol=1e-14)


def test_models_hold_a_copy_of_the_graph():
    ei, w = random_graph(12, 30, seed=1)
    model = G.DeGroot(ei, w, step=0.5)
    x = torch.randn(12, 1, dtype=torch.float64)
    ref = model(x)
    w.mul_(3.0)  # the caller's tensors are not the model's
    ei[0, 0] = 11
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)


def test_empty_graphs_and_empty_node_sets(dtype):
    empty = torch.zeros(2, 0, dtype=torch.long)
    x = torch.randn(3, 2, dtype=dtype)
    models = (
        G.DeGroot(empty, num_nodes=3, step=0.5),
        G.FriedkinJohnsen(empty, num_nodes=3, susceptibility=0.5),
        G.HegselmannKrause(0.5, empty, num_nodes=3),
    )
    for model in models:
        torch.testing.assert_close(model(x), x, rtol=0, atol=0)  # nobody listens to anyone
    none = torch.zeros(0, 2, dtype=dtype)
    for model in (G.DeGroot(empty, num_nodes=0), G.HegselmannKrause(0.5, num_nodes=0)):
        assert model(none).shape == (0, 2)
        assert model.simulate(none, 2).shape == (3, 0, 2)


@pytest.mark.cuda
def test_models_on_cuda_match_the_cpu(dtype):
    ei, w = random_graph(12, 30, seed=1)
    for model in _models(ei, w, 12):
        x = _opinions(model, 12).to(dtype)
        ref = model(x)
        gpu = copy.deepcopy(model).cuda()
        assert len(gpu._cache) == 0
        for _ in range(2):
            y = gpu(x.cuda())
        torch.testing.assert_close(y.cpu(), ref, rtol=tol(dtype, 1e-5, 1e-12), atol=tol(dtype, 1e-5, 1e-12))
