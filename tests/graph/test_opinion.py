"""manifres.graph.opinion: DeGroot, Friedkin-Johnsen, Hegselmann-Krause, manifold opinions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import manifres
import manifres.graph as G
from manifres.errors import CutLocusError, DeviceError, GraphError, ShapeError, UnknownChoiceError
from manifres.testing import assert_on_manifold

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
    model = G.DeGroot(ei, w, alpha=alpha)
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
    base = G.DeGroot(ei, w, alpha=0.7).simulate(x0, 50)
    more = G.DeGroot(ei, w, num_nodes=23, alpha=0.7).simulate(torch.cat([x0, extra]), 50)
    assert torch.equal(more[:, 20:], extra.expand(51, 3, 3))
    torch.testing.assert_close(more[:, :20], base, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    fj = G.FriedkinJohnsen(ei, w, num_nodes=23, susceptibility=0.8).simulate(
        torch.cat([x0, extra]), 20
    )
    assert torch.equal(fj[:, 20:], extra.expand(21, 3, 3))


def test_degroot_directed_graph_is_row_stochastic(dtype):
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])  # directed, i listens to j
    model = G.DeGroot(ei, alpha=1.0)
    x = torch.tensor([[1.0], [2.0], [4.0]], dtype=dtype)
    torch.testing.assert_close(model(x), torch.tensor([[2.0], [4.0], [1.5]], dtype=dtype))


# ----------------------------------------------------------------------------- Friedkin-Johnsen
@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_friedkin_johnsen_converges_to_its_equilibrium(dtype, alpha):
    ei, w = connected_graph(40, seed=3, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    lam = torch.rand(40, generator=gen, dtype=torch.float64) * 0.9
    lam[:5] = 0.0  # fully stubborn nodes
    model = G.FriedkinJohnsen(ei, w, susceptibility=lam.to(dtype), alpha=alpha)
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
    with pytest.raises(ValueError, match="exactly one"):
        G.FriedkinJohnsen(ei)
    with pytest.raises(GraphError, match=r"susceptibility\[2\] = 1.5 is outside \[0, 1\]"):
        G.FriedkinJohnsen(ei, susceptibility=torch.tensor([0.0, 0.1, 1.5, 0.2, 0.3]))
    with pytest.raises(ShapeError):
        G.FriedkinJohnsen(ei, stubbornness=torch.ones(4))


def test_friedkin_johnsen_without_stubborn_nodes_reaches_degroot(dtype):
    ei, w = connected_graph(15, seed=4, dtype=dtype)
    x0 = torch.randn(15, 1, dtype=dtype)
    fj = G.FriedkinJohnsen(ei, w, susceptibility=1.0, alpha=0.5)
    target = G.DeGroot(ei, w, alpha=0.5).consensus(x0)
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
    ei = cycle(8)

    def f(x, e):
        return G.HegselmannKrause(e, ei, temperature=0.05)(x)

    assert torch.autograd.gradcheck(f, (xg, eps))
    same = torch.zeros(4, 2, dtype=dtype, requires_grad=True)  # coincident opinions
    G.HegselmannKrause(0.2, num_nodes=4, temperature=0.1)(same).sum().backward()
    assert torch.isfinite(same.grad).all()


# ----------------------------------------------------------------------------- manifolds
def hemisphere_points(n, dtype, seed=0, margin=0.1):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y[:, 2] = y[:, 2].abs() + margin
    return (y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)).to(dtype)


@pytest.mark.parametrize("retraction", ["exp", "projective"])
def test_sphere_consensus_from_a_hemisphere(dtype, retraction):
    S = manifres.Sphere(2)
    ei, w = connected_graph(25, seed=5, dtype=dtype)
    x0 = hemisphere_points(25, dtype)
    model = G.ManifoldDiffusion(S, ei, w, alpha=0.8, retraction=retraction)
    xs = model.simulate(x0, 300, every=50)
    for x in xs:
        assert_on_manifold(S, x, atol=tol(dtype, 4e-7, 4e-15))
    spread = S.dist(xs[-1][:1], xs[-1]).max()
    assert float(spread) <= tol(dtype, 1e-3, 1e-10)
    energies = [float(G.dirichlet_energy(x, ei, w, manifold=S)) for x in xs]
    assert energies[-1] <= 1e-6 * energies[0] + tol(dtype, 1e-6, 1e-20)


def test_sphere_antipodal_neighbours_follow_the_cut_locus_option(dtype):
    x = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    ei = path(3)
    with pytest.raises(CutLocusError):
        G.ManifoldDiffusion(manifres.Sphere(2), ei)(x)
    S = manifres.Sphere(2, cut_locus="deterministic")
    y = G.ManifoldDiffusion(S, ei)(x)
    assert torch.isfinite(y).all()
    assert_on_manifold(S, y)


def test_isolated_manifold_nodes_do_not_move(dtype):
    S = manifres.Sphere(2)
    x0 = hemisphere_points(4, dtype)
    y = G.ManifoldDiffusion(S, path(3), num_nodes=4, alpha=0.5)(x0)
    assert torch.equal(y[3], x0[3])


def test_rotation_averaging_on_so3(dtype):
    SO = getattr(manifres, "SpecialOrthogonal", None)
    if SO is None:
        pytest.skip("manifres.SpecialOrthogonal is not available yet")
    M = SO(3)
    gen = torch.Generator().manual_seed(3)
    centre = M.random(dtype=dtype, generator=gen)
    omega = 0.6 * (torch.rand(20, 3, generator=gen, dtype=torch.float64) - 0.5)  # |w| < 0.52
    hat = torch.zeros(20, 3, 3, dtype=torch.float64)
    hat[:, 0, 1], hat[:, 0, 2], hat[:, 1, 2] = -omega[:, 2], omega[:, 1], -omega[:, 0]
    hat = hat - hat.transpose(-1, -2)
    x0 = centre @ torch.linalg.matrix_exp(hat).to(dtype)
    ei, w = connected_graph(20, seed=6, dtype=dtype)
    model = G.ManifoldDiffusion(M, ei, w, alpha=0.7)
    xs = model.simulate(x0, 200, every=200)
    assert_on_manifold(M, xs[-1])
    spread = M.dist(xs[-1][:1], xs[-1]).max()
    assert float(spread) <= tol(dtype, 1e-4, 1e-10)


def test_manifold_model_checks(dtype):
    S = manifres.Sphere(2)
    with pytest.raises(UnknownChoiceError):
        G.ManifoldDiffusion(S, path(3), retraction="cayley")
    with pytest.raises(TypeError):
        G.ManifoldDiffusion("sphere", path(3))
    model = G.ManifoldDiffusion(S, path(3))
    with pytest.raises(ShapeError):
        model(torch.ones(3, 4, dtype=dtype))
    with pytest.raises(GraphError, match="rows"):
        model(hemisphere_points(4, dtype))


# ----------------------------------------------------------------------------- interface
def test_simulate_interface(dtype, capsys):
    model = G.DeGroot(Data(edge_index=star(5), num_nodes=5), alpha=0.5)
    x0 = torch.randn(5, 2, dtype=dtype, requires_grad=True)
    xs = model.simulate(x0, 10, every=3, progress=True)
    assert xs.shape == (4, 5, 2)
    torch.testing.assert_close(xs[1], model(model(model(x0))))
    xs[-1].sum().backward()  # differentiable in x0
    assert torch.isfinite(x0.grad).all()
    assert "DeGroot" in capsys.readouterr().err
    assert model.simulate(x0, 0).shape == (1, 5, 2)
    with pytest.raises(ValueError, match="steps"):
        model.simulate(x0, -1)
    with pytest.raises(ValueError, match="every"):
        model.simulate(x0, 3, every=0)
    with pytest.raises(DeviceError, match="meta"):
        model(torch.zeros(5, 2, device="meta"))
    assert "alpha=0.5" in repr(model)
    with pytest.raises(ValueError, match="alpha"):
        G.DeGroot(star(5), alpha=1.5)


def test_models_move_with_the_module_and_cast_to_the_opinions(dtype):
    model = G.FriedkinJohnsen(complete(4), susceptibility=0.5)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    x = torch.randn(4, 2, dtype=dtype)
    a = model(x)
    b = model(x.to(other))
    assert a.dtype == dtype and b.dtype == other
    torch.testing.assert_close(a.double(), b.double(), rtol=0, atol=1e-6)
    model.to(torch.float32)  # buffers cast; the cached operators are rebuilt
    assert model.weight.dtype == torch.float32
    torch.testing.assert_close(model(x).double(), a.double(), rtol=0, atol=1e-6)
