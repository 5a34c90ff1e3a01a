"""manifres.graph.spectral: closed-form spectra, SciPy / networkx, certificates, energy."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch
from torch_geometric.data import Data

import manifres
import manifres.graph as G
from manifres.errors import GraphError, ParameterError, StabilityError, UnknownChoiceError

from ._graphs import GRAPHS, cycle, dense_laplacian, path, random_graph, spectrum, star, tol

NORMS = [None, "sym", "rw"]
REL = 1e-6  # the agreement target (both dtypes: values are computed in float64)


def _ones(ei, dtype):
    return torch.ones(ei.shape[1], dtype=dtype)


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("n", [7, 40])
def test_closed_form_spectra_dense(dtype, name, normalization, n):
    ei = GRAPHS[name](n)
    w = _ones(ei, dtype)
    ev = spectrum(name, n, normalization)
    lmax = G.lambda_max(ei, w, normalization=normalization)
    l2 = G.lambda_2(ei, w, normalization=normalization)
    assert lmax.dtype == dtype and lmax.shape == ()
    assert float(lmax) == pytest.approx(ev[-1], rel=REL)
    assert float(l2) == pytest.approx(ev[1], rel=REL)
    full = G.laplacian_spectrum(ei, w, normalization=normalization).double().numpy()
    np.testing.assert_allclose(full, ev, rtol=REL, atol=tol(dtype, 1e-6, 1e-12))


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("normalization", [None, "sym"])
def test_closed_form_spectra_lanczos(dtype, name, normalization):
    n = 40
    ei = GRAPHS[name](n)
    w = _ones(ei, dtype)
    ev = spectrum(name, n, normalization)
    opts = dict(normalization=normalization, method="lanczos")
    assert float(G.lambda_max(ei, w, **opts)) == pytest.approx(ev[-1], rel=REL)
    assert float(G.lambda_2(ei, w, **opts)) == pytest.approx(ev[1], rel=REL)


def test_large_graphs_use_lanczos_by_default(dtype):
    n = G.spectral.DENSE_MAX + 88
    ei = star(n)
    w = _ones(ei, dtype)
    for normalization in (None, "sym"):
        ev = spectrum("star", n, normalization)
        assert float(G.lambda_max(ei, w, normalization=normalization)) == pytest.approx(ev[-1], rel=REL)
        assert float(G.lambda_2(ei, w, normalization=normalization)) == pytest.approx(ev[1], rel=REL)


@pytest.mark.parametrize("weight", [None, "weight"])
def test_karate_club_against_networkx(dtype, weight):
    g = nx.karate_club_graph()
    pairs = torch.tensor(list(g.edges())).t()
    ei = torch.cat([pairs, pairs.flip(0)], dim=1)
    if weight is None:
        w = _ones(ei, dtype)
    else:
        ww = torch.tensor([d["weight"] for _, _, d in g.edges(data=True)], dtype=dtype)
        w = torch.cat([ww, ww])
    for normalization, ref in (
        (None, np.sort(nx.laplacian_spectrum(g, weight=weight))),
        ("sym", np.sort(nx.normalized_laplacian_spectrum(g, weight=weight))),
    ):
        for method in ("dense", "lanczos"):
            opts = dict(normalization=normalization, method=method)
            assert float(G.lambda_max(ei, w, **opts)) == pytest.approx(ref[-1], rel=REL)
            assert float(G.lambda_2(ei, w, **opts)) == pytest.approx(ref[1], rel=REL)


def test_lanczos_against_scipy_eigsh(dtype):
    ei, w = random_graph(3000, 9000, seed=5, dtype=dtype)
    for normalization in (None, "sym"):
        L = G.laplacian(ei, w, num_nodes=3000, normalization=normalization).coalesce()
        idx = L.indices().numpy()
        S = sp.csr_matrix((L.values().double().numpy(), (idx[0], idx[1])), shape=(3000, 3000))
        ref = sla.eigsh(S, k=1, which="LA", return_eigenvectors=False, tol=1e-12)[0]
        lam = G.lambda_max(ei, w, num_nodes=3000, normalization=normalization)
        assert float(lam) == pytest.approx(ref, rel=REL)


def test_consensus_rate_and_max_step_against_dense_eigenvalues(dtype):
    ei, w = random_graph(40, 120, seed=7, dtype=dtype)
    ei = torch.cat([ei, cycle(40)], dim=1)  # connected
    w = torch.cat([w, _ones(cycle(40), dtype)])
    for normalization in NORMS:
        L = dense_laplacian(ei, w, 40, normalization)
        lam = np.sort(np.linalg.eigvals(L).real)  # rw: not symmetric, real spectrum
        for alpha in (0.05, 0.3):
            # spectral radius of I - alpha L without the consensus eigenvalue (lambda_1 = 0)
            rho = np.abs(1 - alpha * lam[1:]).max()
            got = G.consensus_rate(alpha, ei, w, normalization=normalization)
            assert float(got) == pytest.approx(rho, rel=tol(dtype, 1e-5, 1e-12))
        lmax = np.linalg.eigvals(L).real.max()
        step = G.max_stable_step(ei, w, normalization=normalization)
        assert float(step) == pytest.approx(2 / lmax, rel=tol(dtype, 1e-6, 1e-12))


def test_stability_certificate(dtype):
    ei = cycle(6)
    w = _ones(ei, dtype)
    c = G.stability_certificate(0.5, ei, w)
    assert c.stable and c.lambda_max == pytest.approx(4.0) and c.max_step == pytest.approx(0.5)
    assert c.lambda_2 == pytest.approx(1.0) and c.rate == pytest.approx(1.0)
    c.require_stable()
    c = G.stability_certificate(0.51, ei, w, fiedler=False)
    assert not c.stable and c.lambda_2 is None and c.rate is None
    with pytest.raises(StabilityError, match="outside the stable range"):
        c.require_stable()
    assert G.stability_certificate(0.0, ei, w).stable is False
    assert c.safe_step == pytest.approx(0.5, rel=1e-9) and c.converged
    with pytest.warns(DeprecationWarning, match="'alpha'"):
        assert c.alpha == 0.51
    with pytest.warns(DeprecationWarning, match="'alpha' is deprecated"):
        assert G.stability_certificate(alpha=0.51, edge_index=ei, edge_weight=w).stable is False
    with pytest.warns(DeprecationWarning, match="'alpha' is deprecated"):
        assert float(G.consensus_rate(alpha=0.25, edge_index=ei, edge_weight=w)) == pytest.approx(0.75)
    with pytest.raises(TypeError, match="both"):
        G.consensus_rate(0.25, ei, w, alpha=0.25)


def test_disconnected_and_tiny_graphs(dtype):
    ei = torch.cat([path(3), path(3) + 3], dim=1)
    w = _ones(ei, dtype)
    assert float(G.lambda_2(ei, w)) == 0.0
    assert float(G.consensus_rate(0.2, ei, w)) == 1.0
    one = torch.zeros(2, 0, dtype=torch.long)
    assert float(G.lambda_max(one, torch.zeros(0, dtype=dtype), num_nodes=1)) == 0.0
    with pytest.raises(GraphError, match="at least 2 nodes"):
        G.lambda_2(one, num_nodes=1)
    with pytest.raises(GraphError, match="no nodes"):
        G.lambda_max(one)


def test_rw_has_the_sym_spectrum_and_data_objects(dtype):
    ei = star(6)
    w = _ones(ei, dtype)
    assert float(G.lambda_max(ei, w, normalization="rw")) == pytest.approx(2.0)
    data = Data(edge_index=ei, edge_weight=w, num_nodes=8)
    assert float(G.lambda_2(data)) == 0.0  # two isolated nodes declared by the Data object
    assert float(G.lambda_max(data)) == pytest.approx(6.0)


def test_reproducible_bitwise():
    ei, w = random_graph(300, 900, seed=9)
    a = G.lambda_max(ei, w, num_nodes=300, normalization="sym", method="lanczos")
    b = G.lambda_max(ei, w, num_nodes=300, normalization="sym", method="lanczos")
    assert torch.equal(a, b)


def test_lanczos_warns_when_not_converged_and_returns_bounds():
    ei = path(400)
    exact = spectrum("path", 400, None)
    with pytest.warns(RuntimeWarning, match="did not converge") as rec:
        l2 = float(G.lambda_2(ei, method="lanczos", maxiter=20))
    assert "upper bound of lambda_2" in str(rec[0].message)
    assert l2 >= exact[1]  # a Ritz value on the complement of the null vector: an upper bound
    with pytest.warns(RuntimeWarning, match="upper bound of lambda_max"):
        lmax = float(G.lambda_max(ei, method="lanczos", maxiter=20))
    assert exact[-1] <= lmax <= 4.0  # never below lambda_max; at most the edge-degree bound


def test_bad_method_and_options():
    with pytest.raises(UnknownChoiceError, match="'dense', 'lanczos'"):
        G.lambda_max(path(3), method="arpack")
    with pytest.raises(ParameterError, match="maxiter"):
        G.lambda_max(path(3), maxiter=0)
    with pytest.raises(ParameterError, match="tol"):
        G.lambda_max(path(3), tol=-1.0)
    with pytest.warns(DeprecationWarning, match="krylov_dim"):
        assert float(G.lambda_max(path(3), krylov_dim=8)) == pytest.approx(3.0)


# ----------------------------------------------------------------------------- energy
@pytest.mark.parametrize("normalization", [None, "sym"])
def test_dirichlet_energy_is_the_quadratic_form(dtype, normalization):
    ei, w = random_graph(20, 50, seed=11, dtype=dtype)  # loops, duplicates, isolated nodes
    x = torch.randn(22, 3, dtype=dtype)
    e = G.dirichlet_energy(x, ei, w, normalization=normalization)
    L = dense_laplacian(ei, w, 22, normalization)
    xd = x.double().numpy()
    assert float(e) == pytest.approx(np.trace(xd.T @ L @ xd), rel=tol(dtype, 1e-5, 1e-12))
    assert e.dtype == dtype and e.shape == ()


def test_dirichlet_energy_gradients(dtype):
    ei = cycle(5)
    x = torch.zeros(5, 2, dtype=dtype, requires_grad=True)  # coincident features
    w = torch.zeros(10, dtype=dtype, requires_grad=True)  # zero weights
    G.dirichlet_energy(x, ei, w, normalization="sym").backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()
    xx = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: G.dirichlet_energy(t, ei), (xx,))


def test_dirichlet_energy_on_a_manifold(dtype):
    S = manifres.Sphere(2)
    x = S.random(6, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ei = cycle(6)
    e = G.dirichlet_energy(x, ei, manifold=S)
    d = S.dist(x, torch.roll(x, -1, 0))
    assert float(e) == pytest.approx(float((d * d).sum()), rel=tol(dtype, 1e-5, 1e-12))
    xs = x[:1].expand(6, 3).clone().requires_grad_(True)
    G.dirichlet_energy(xs, ei, manifold=S).backward()  # coincident points: finite gradient
    assert torch.isfinite(xs.grad).all()
    with pytest.raises(UnknownChoiceError):
        G.dirichlet_energy(x, ei, normalization="sym", manifold=S)


def test_dirichlet_energy_rejects_rw():
    with pytest.raises(UnknownChoiceError, match="not symmetric"):
        G.dirichlet_energy(torch.zeros(3, 1), path(3), normalization="rw")
    with pytest.raises(UnknownChoiceError):
        G.dirichlet_energy(torch.zeros(3, 1), path(3), normalization="bogus")


def test_path_fiedler_value_is_tiny_but_positive():
    # lambda_2 of P_200 = 2 - 2 cos(pi / 200) = 2.5e-4: well above the zero threshold
    lam = G.lambda_2(path(200), torch.ones(398, dtype=torch.float64))
    assert float(lam) == pytest.approx(2 - 2 * math.cos(math.pi / 200), rel=1e-9)


# ----------------------------------------------------------------------------- soundness
def _grid(k):
    idx = torch.arange(k * k).reshape(k, k)
    pairs = torch.cat(
        [torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)]),
         torch.stack([idx[:-1, :].reshape(-1), idx[1:, :].reshape(-1)])], dim=1
    )
    return torch.cat([pairs, pairs.flip(0)], dim=1), k * k


def _families():
    """(name, edge_index, weights, num_nodes): bipartite graphs (lambda_max(sym) = 2 exactly),
    rings, grids, stars, disconnected graphs, isolated nodes, weighted random graphs."""
    ring_even, ring_odd = cycle(600), cycle(601)
    grid, ng = _grid(24)
    two = torch.cat([cycle(300), cycle(301) + 300], dim=1)  # disconnected: bipartite + odd
    ei, w = random_graph(700, 2100, seed=3)
    return [
        ("ring600", ring_even, None, 600),
        ("ring601", ring_odd, None, 601),
        ("grid24", grid, None, ng),
        ("star700", star(700), None, 700),
        ("path650", path(650), None, 650),
        ("two-rings", two, None, 601),
        ("ring+isolated", ring_odd, None, 640),
        ("random", ei, w, 700),
    ]


@pytest.mark.parametrize("normalization", [None, "sym"])
@pytest.mark.parametrize("case", range(8))
def test_certificate_is_sound_with_an_unconverged_eigensolver(case, normalization):
    name, ei, w, n = _families()[case]
    w = torch.ones(ei.shape[1], dtype=torch.float64) if w is None else w
    exact = float(G.lambda_max(ei, w, num_nodes=n, normalization=normalization, method="dense"))
    for maxiter in (10, 40):  # far from converged on the clustered ones
        for factor in (0.5, 0.999, 1.0, 1.0 + 1e-7, 1.001, 1.05, 3.0):
            h = factor * 2.0 / exact
            c = G.stability_certificate(
                h, ei, w, num_nodes=n, normalization=normalization, method="lanczos", maxiter=maxiter,
                fiedler=False,
            )
            lo, hi = c.lambda_max_bounds
            assert lo <= exact * (1 + 1e-12) and exact <= hi * (1 + 1e-12), name
            unstable = h * exact > 2.0 * (1 + G.STEP_RTOL)
            if unstable:
                assert c.stable is not True, (name, factor, maxiter)
                with pytest.raises(StabilityError):
                    c.require_stable()
            else:
                assert c.stable is not False, (name, factor, maxiter)
            if c.stable is None:
                assert "cannot decide" in c.reason
            if h <= c.safe_step:
                assert c.stable is True


def test_certificate_decides_what_the_bounds_decide():
    ring = cycle(5000)  # even: bipartite, lambda_max(sym) = 2 exactly; Lanczos does not converge
    c = G.stability_certificate(1.0000001, ring, normalization="sym", fiedler=False)
    assert c.stable is not True and not c.converged
    with pytest.raises(StabilityError, match="cannot decide|outside"):
        c.require_stable()
    assert G.stability_certificate(1.0, ring, normalization="sym", fiedler=False).stable is True
    assert G.stability_certificate(1.01, ring, normalization="sym", fiedler=False).stable is False
    # combinatorial: the edge-degree bound max (d_i + d_j) = 4 is exact on the even ring
    assert G.stability_certificate(0.5, ring, fiedler=False).stable is True
    assert G.stability_certificate(0.51, ring, fiedler=False).stable is False


def test_laplacian_residual_refuses_an_undecided_certificate():
    ring = cycle(5000)
    x = torch.randn(5000, 1, dtype=torch.float64)
    with pytest.raises(StabilityError, match="cannot decide|outside"):
        G.LaplacianResidual(1.0000001, "sym", certify=True)(x, ring)
    G.LaplacianResidual(0.5, None, certify=True)(x, ring)  # proven by the cheap bound


def test_bounds_hold_for_lambda_2():
    for ei, n in ((path(800), 800), (cycle(900), 900)):
        w = torch.ones(ei.shape[1], dtype=torch.float64)
        exact = float(G.lambda_2(ei, w, num_nodes=n, method="dense"))
        with pytest.warns(RuntimeWarning, match="did not converge"):
            got = float(G.lambda_2(ei, w, num_nodes=n, method="lanczos", maxiter=30))
        assert got >= exact


def test_isolated_node_gives_an_exact_zero_lambda_2():
    ei = cycle(2000)
    assert float(G.lambda_2(ei, num_nodes=2001, maxiter=1)) == 0.0  # no iteration needed


def test_karate_from_networkx_reads_the_edge_attr_column(dtype):
    from torch_geometric.utils import from_networkx

    g = nx.karate_club_graph()
    data = from_networkx(g, group_edge_attrs=["weight"])
    assert data.edge_attr.shape == (156, 1)
    data.edge_attr = data.edge_attr.to(dtype)
    ref = np.sort(nx.laplacian_spectrum(g, weight="weight"))[-1]  # 52.07, unweighted 18.14
    assert float(G.lambda_max(data)) == pytest.approx(ref, rel=REL)
    x = torch.randn(34, 2, dtype=dtype)
    w = data.edge_attr[:, 0]
    layer = G.LaplacianResidual(0.01, None)
    torch.testing.assert_close(layer(x, data), layer(x, data.edge_index, w))


def test_an_outlier_the_krylov_space_has_not_met_yet_is_never_missed():
    # a dense random graph (lambda_max(sym) ~ 1.4) plus one separate edge (lambda_max = 2):
    # after a few steps the Ritz value plus its residual is still ~1.4 < 2, not a bound
    g = torch.Generator().manual_seed(0)
    n = 700
    r, c = torch.randint(0, n, (15 * n,), generator=g), torch.randint(0, n, (15 * n,), generator=g)
    keep = r != c
    ei = torch.stack([torch.cat([r[keep], c[keep]]), torch.cat([c[keep], r[keep]])])
    ei = torch.cat([ei, torch.tensor([[n, n + 1], [n + 1, n]])], 1)
    w = torch.ones(ei.shape[1], dtype=torch.float64)
    opts = dict(num_nodes=n + 2, normalization="sym", method="lanczos")
    for maxiter in (2, 3, 4):
        with pytest.warns(RuntimeWarning, match="did not converge"):
            assert float(G.lambda_max(ei, w, maxiter=maxiter, **opts)) >= 2.0
        c = G.stability_certificate(1.02, ei, w, maxiter=maxiter, fiedler=False, **opts)
        assert c.stable is not True
        lo, hi = c.lambda_max_bounds
        assert lo <= 2.0 <= hi


@pytest.mark.cuda
def test_spectra_and_certificates_on_cuda(dtype):
    ei, w = random_graph(800, 2400, seed=12, dtype=dtype)
    for normalization in (None, "sym"):
        opts = dict(num_nodes=800, normalization=normalization, method="lanczos")
        cpu = G.lambda_max(ei, w, **opts)
        gpu = G.lambda_max(ei.cuda(), w.cuda(), **opts)
        assert gpu.device.type == "cuda"
        assert float(gpu) == pytest.approx(float(cpu), rel=1e-9)
        c = G.stability_certificate(0.1, ei.cuda(), w.cuda(), **opts)
        assert c.stable == G.stability_certificate(0.1, ei, w, **opts).stable
