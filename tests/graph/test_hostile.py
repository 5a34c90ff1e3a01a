"""Section C of HOSTILE_INPUTS.md: one test per row (C1..C16), in float32 and float64."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import manifres.graph as G
from manifres.errors import DeviceError, DTypeError, GraphError, StabilityError

from ._graphs import cycle, dense_laplacian, path, random_graph, star, tol, undirected

NORMS = [None, "sym", "rw"]


def dense(L):
    return L.to_dense().double().numpy()


# ---------------------------------------------------------------------------------- C1
@pytest.mark.parametrize("normalization", NORMS)
def test_c1_isolated_node(dtype, normalization):
    ei = path(3)  # nodes 0-1-2, node 3 isolated
    L = dense(G.laplacian(ei, num_nodes=4, normalization=normalization, dtype=dtype))
    assert np.isfinite(L).all()
    assert (L[3] == 0).all() and (L[:, 3] == 0).all()  # documented: L_33 = 0
    assert L[0, 0] == 1.0
    # diffusion follows the convention exactly: the isolated node keeps its features
    x = torch.randn(4, 3, dtype=dtype)
    for cached in (False, True):
        y = G.LaplacianResidual(0.7, normalization, cached=cached)(x, ei)
        assert torch.equal(y[3], x[3])
        assert torch.isfinite(y).all()
    # and adds one exact zero eigenvalue
    w = torch.ones(ei.shape[1], dtype=dtype)
    ev = G.laplacian_spectrum(ei, w, num_nodes=4, normalization=normalization)
    assert int((ev == 0).sum()) == 2


# ---------------------------------------------------------------------------------- C2
def test_c2_num_nodes_from_features(dtype):
    ei = path(3)
    x = torch.randn(5, 2, dtype=dtype)  # nodes 3 and 4 have no edges
    y = G.LaplacianResidual(0.5, "sym")(x, ei)
    assert y.shape == x.shape  # never silently dropped
    assert torch.equal(y[3:], x[3:])
    e = G.dirichlet_energy(x, ei)
    xd = x.double().numpy()
    ref = np.trace(xd.T @ dense_laplacian(ei, None, 5) @ xd)
    assert float(e) == pytest.approx(ref, rel=tol(dtype, 1e-5, 1e-12))
    # num_nodes other than the features' rows: a named error
    from torch_geometric.data import Data

    with pytest.raises(GraphError, match="num_nodes=4 but the features have 5 rows"):
        G.dirichlet_energy(x, Data(edge_index=ei, num_nodes=4))
    with pytest.raises(GraphError, match="x has 5 rows but the graph has 4 nodes"):
        G.DeGroot(ei, num_nodes=4)(x)


# ---------------------------------------------------------------------------------- C3
@pytest.mark.parametrize("normalization", NORMS)
def test_c3_negative_weights(dtype, normalization):
    ei = path(4)
    w = torch.ones(ei.shape[1], dtype=dtype)
    w[2] = -0.5
    with pytest.raises(GraphError, match=r"negative edge weight -0.5 at edge 2 = \(2, 3\)"):
        G.laplacian(ei, w, normalization=normalization)
    with pytest.raises(GraphError, match="negative edge weight"):
        G.LaplacianResidual(0.5, normalization)(torch.zeros(4, 1, dtype=dtype), ei, w)
    with pytest.raises(GraphError, match="negative edge weight"):
        G.lambda_max(ei, w, normalization=normalization)
    # without validation: a node with a negative degree gets NaN in its row, never a finite
    # wrong value (pyg: NaN under sym, a silent sign flip under rw)
    # (node 3: degree -1; node 2: degrees cancel to 0, which is not an isolated node)
    w2 = torch.ones(ei.shape[1], dtype=dtype)
    w2[(ei[0] == 3) | ((ei[0] == 2) & (ei[1] == 3))] = -1.0
    L = dense(G.laplacian(ei, w2, normalization=normalization, validate=False))
    if normalization is None:
        assert np.isfinite(L).all()  # D - A is defined for signed weights
        assert np.allclose(L.sum(1), 0)
    else:
        assert np.isnan(L[2, 2]) and np.isnan(L[3, 3])  # no finite value in those rows
        assert not np.isfinite(L[2]).any() or np.isnan(L[2, 1:]).all()
        assert np.isfinite(L[0]).all()


# ---------------------------------------------------------------------------------- C4
def test_c4_directed_graph_with_sym(dtype):
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 0]])  # 1->2 and 2->0 have no reverse
    w = torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=dtype)
    with pytest.raises(GraphError, match=r"directed: A\[1, 2\] = 2 but A\[2, 1\] = 0"):
        G.laplacian(ei, w, normalization="sym")
    with pytest.raises(GraphError, match="directed"):
        G.lambda_max(ei, w)
    L = G.laplacian(ei, w, normalization="sym", symmetrize=True)
    Ld = dense(L)
    assert np.abs(Ld - Ld.T).max() <= tol(dtype, 1e-7, 1e-15)
    A = np.zeros((3, 3))
    for (i, j), wk in zip(ei.T.tolist(), w.tolist(), strict=True):
        A[i, j] += wk
    As = (A + A.T) / 2
    d = As.sum(1)
    ref = np.eye(3) - As / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(Ld, ref, atol=tol(dtype, 1e-6, 1e-14))
    # combinatorial and random-walk Laplacians accept directed graphs (rows sum to zero)
    Lc = dense(G.laplacian(ei, w))
    np.testing.assert_allclose(Lc.sum(1), 0, atol=tol(dtype, 1e-6, 1e-14))


# ---------------------------------------------------------------------------------- C5
@pytest.mark.parametrize("normalization", NORMS)
def test_c5_self_loops_removed(dtype, normalization):
    ei = cycle(5)
    half = torch.rand(5, dtype=dtype) + 0.5
    w = torch.cat([half, half])
    loops = torch.tensor([[0, 3, 3], [0, 3, 3]])
    ei2 = torch.cat([ei, loops], 1)
    w2 = torch.cat([w, torch.tensor([7.0, 2.0, 0.5], dtype=dtype)])
    L1 = dense(G.laplacian(ei, w, normalization=normalization))
    L2 = dense(G.laplacian(ei2, w2, normalization=normalization))
    np.testing.assert_array_equal(L1, L2)
    if normalization is None:
        scale = float(w2.abs().max())
        assert np.abs(L2.sum(1)).max() <= tol(dtype, 1e-6, 1e-14) * scale
    else:
        np.testing.assert_array_equal(np.diag(L2), np.ones(5))


# ---------------------------------------------------------------------------------- C6
@pytest.mark.parametrize("normalization", NORMS)
def test_c6_duplicate_edges_summed(dtype, normalization):
    ei = torch.tensor([[0, 1, 0, 1, 1, 2], [1, 0, 1, 0, 2, 1]])
    w = torch.tensor([1.0, 1.0, 2.0, 2.0, 0.5, 0.5], dtype=dtype)
    ref = G.laplacian(
        torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        torch.tensor([3.0, 3.0, 0.5, 0.5], dtype=dtype),
        normalization=normalization,
    )
    L = G.laplacian(ei, w, normalization=normalization)
    # coalescing sums duplicates before or after the normalisation: equal up to rounding
    assert torch.allclose(L.to_dense(), ref.to_dense(), atol=4 * torch.finfo(dtype).eps, rtol=0)
    assert L.is_coalesced()


# ---------------------------------------------------------------------------------- C7
@pytest.mark.parametrize("normalization", NORMS)
def test_c7_empty_edge_set(dtype, normalization):
    ei = torch.zeros(2, 0, dtype=torch.long)
    L = G.laplacian(ei, num_nodes=4, normalization=normalization, dtype=dtype)
    assert torch.equal(L.to_dense(), torch.zeros(4, 4, dtype=dtype))  # documented: 0
    x = torch.randn(4, 2, dtype=dtype)
    for cached in (False, True):
        assert torch.equal(G.LaplacianResidual(0.9, normalization, cached=cached)(x, ei), x)
    w = torch.zeros(0, dtype=dtype)
    assert float(G.lambda_max(ei, w, num_nodes=4, normalization=normalization)) == 0.0
    assert float(G.max_stable_step(ei, w, num_nodes=4)) == float("inf")


# ---------------------------------------------------------------------------------- C8
@pytest.mark.parametrize(
    "edge_index, message",
    [
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "dtype torch.float32; node indices must be"),
        (torch.tensor([[0, -1], [1, 0]]), r"negative node index at edge 1 = \(-1, 0\)"),
        (torch.tensor([[0, 1, 5], [1, 0, 1]]), r"node 5 at edge 2 = \(5, 1\).*3 nodes"),
        (torch.tensor([[0, 1], [1, 0], [1, 2]]), r"shape \(2, E\), got \(3, 2\).*edge_index.t\(\)"),
        (torch.tensor([0, 1]), r"shape \(2, E\), got \(2,\)"),
    ],
    ids=["float", "negative", "out-of-range", "E-by-2", "1-d"],
)
def test_c8_bad_edge_index(dtype, edge_index, message):
    x = torch.zeros(3, 1, dtype=dtype)
    with pytest.raises(GraphError, match=message):
        G.LaplacianResidual(0.5)(x, edge_index)
    with pytest.raises(GraphError):
        G.laplacian(edge_index, num_nodes=3)


# ---------------------------------------------------------------------------------- C9
def test_c9_integer_weights_cast(dtype):
    ei = path(4)
    wi = torch.tensor([1, 1, 2, 2, 3, 3])
    x = torch.randn(4, 2, dtype=dtype)
    layer = G.LaplacianResidual(0.3, None)
    y = layer(x, ei, wi)
    assert y.dtype == dtype
    torch.testing.assert_close(y, layer(x, ei, wi.to(dtype)), rtol=0, atol=0)
    L = G.laplacian(ei, wi, dtype=dtype)
    assert L.dtype == dtype
    torch.testing.assert_close(L.to_dense(), G.laplacian(ei, wi.to(dtype)).to_dense())
    # a float dtype that differs from the features is an error, never a silent promotion
    other = torch.float64 if dtype == torch.float32 else torch.float32
    with pytest.raises(DTypeError, match="never promotes"):
        layer(x, ei, wi.to(other))


# ---------------------------------------------------------------------------------- C10
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_c10_non_finite_weight(dtype, bad):
    ei = path(5)
    w = torch.ones(ei.shape[1], dtype=dtype)
    w[1] = bad
    with pytest.raises(GraphError, match=r"edge weight (nan|inf) at edge 1 = \(1, 2\) is not finite"):
        G.laplacian(ei, w)
    with pytest.raises(GraphError, match="not finite"):
        G.LaplacianResidual(0.5, "sym")(torch.zeros(5, 1, dtype=dtype), ei, w)
    # without validation: NaN confined to the affected rows (combinatorial: the row
    # of the edge's source node only: row 1, the node whose degree is not finite)
    x = torch.ones(5, 1, dtype=dtype)
    y = G.LaplacianResidual(0.5, None, validate=False)(x, ei, w)
    assert (~torch.isfinite(y[:, 0])).tolist() == [False, True, False, False, False]


# ---------------------------------------------------------------------------------- C11
def test_c11_mass_conservation(dtype):
    ei, w = random_graph(60, 200, seed=3, dtype=dtype)
    x = torch.randn(60, 4, dtype=dtype) + 2.0
    for cached in (False, True):
        layer = G.LaplacianResidual(0.01, None, cached=cached)
        y = x
        for _ in range(20):
            y = layer(y, ei, w)
        rel = ((y.sum(0) - x.sum(0)).abs() / x.abs().sum(0)).max()
        assert float(rel) <= tol(dtype, 1e-6, 1e-13)


# ---------------------------------------------------------------------------------- C12
@pytest.mark.parametrize("graph", ["bipartite", "odd"])
def test_c12_stability_of_the_step(dtype, graph):
    ei = cycle(8) if graph == "bipartite" else cycle(7)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(int(ei.max()) + 1, 3, dtype=dtype, generator=gen)
    # alpha in (0, 1] with L_sym: the norm never grows over 1,000 layers (alpha = 1 is the
    # boundary on the bipartite graph, where the eigenvalue 1 - 2 alpha = -1)
    for alpha in (0.3, 1.0) if graph == "bipartite" else (1.0,):
        layer = G.LaplacianResidual(alpha, "sym", certify=True)
        x, norms = x0, [float(torch.linalg.vector_norm(x0))]
        for _ in range(1000):
            x = layer(x, ei)
            norms.append(float(torch.linalg.vector_norm(x)))
        growth = np.diff(norms) / norms[0]
        assert growth.max() <= tol(dtype, 1e-5, 1e-12)
    # just above the bound: certify refuses, and the uncertified step diverges exactly where
    # the spectrum says (eigenvalue 1 - alpha lambda_max < -1)
    lam = float(G.lambda_max(ei, normalization="sym"))
    assert lam == pytest.approx(2.0 if graph == "bipartite" else 1 - np.cos(6 * np.pi / 7))
    above = 2.0 / lam * 1.01
    with pytest.raises(StabilityError, match="outside the stable range"):
        G.LaplacianResidual(above, "sym", certify=True)(x0, ei)
    x = x0
    layer = G.LaplacianResidual(above, "sym")
    for _ in range(300):
        x = layer(x, ei)
    assert float(torch.linalg.vector_norm(x)) > 2.0 * float(torch.linalg.vector_norm(x0))
    below = 2.0 / lam * 0.99
    G.LaplacianResidual(below, "sym", certify=True)(x0, ei)  # accepted


# ---------------------------------------------------------------------------------- C13
def test_c13_near_zero_eigenvalues(dtype):
    # three components: a 6-cycle, a 5-path and an isolated node; weights in the test dtype
    pairs = [(i, (i + 1) % 6) for i in range(6)] + [(i, i + 1) for i in range(6, 10)]
    ei = undirected(pairs)
    half = (torch.rand(len(pairs), dtype=torch.float64) + 0.5).to(dtype)
    w = torch.cat([half, half])
    for normalization in NORMS:
        ev = G.laplacian_spectrum(ei, w, num_nodes=12, normalization=normalization)
        assert int((ev == 0).sum()) == 3
        for method in ("dense", "lanczos"):
            l2 = G.lambda_2(ei, w, num_nodes=12, normalization=normalization, method=method)
            assert float(l2) == 0.0
    # a float32 eigensolver alone does not give exact zeros: the threshold is what counts
    L = G.laplacian(ei, w, num_nodes=12).to_dense()
    raw = torch.linalg.eigvalsh(L)
    lam_max = float(raw.max())
    assert int((raw.abs() <= 100 * torch.finfo(dtype).eps * lam_max).sum()) == 3


# ---------------------------------------------------------------------------------- C14
def _ring(n):
    a = torch.arange(n)
    b = torch.roll(a, -1)
    return torch.stack([torch.cat([a, b]), torch.cat([b, a])])


def test_c14_large_ring_is_sparse(dtype):
    n = 1_000_000
    ei = _ring(n)
    t = time.perf_counter()
    L = G.laplacian(ei, num_nodes=n, dtype=dtype)
    elapsed = time.perf_counter() - t
    assert L.is_sparse and L._nnz() == 3 * n
    assert elapsed < 20.0
    v = L.values()
    assert float(v.min()) == -1.0 and float(v.max()) == 2.0
    x = torch.randn(n, 1, dtype=dtype)
    y = G.LaplacianResidual(0.5, "sym", cached=True)(x, ei)
    assert y.shape == x.shape and bool(torch.isfinite(y).all())


@pytest.mark.slow
def test_c14_ring_of_ten_million():
    n = 10_000_000
    t = time.perf_counter()
    L = G.laplacian(_ring(n), num_nodes=n)
    assert L._nnz() == 3 * n
    assert time.perf_counter() - t < 60.0


# ---------------------------------------------------------------------------------- C15
def test_c15_devices(dtype):
    ei = path(3)
    x = torch.zeros(3, 2, dtype=dtype, device="meta")
    with pytest.raises(DeviceError, match="edge_index is on cpu but x is on meta"):
        G.LaplacianResidual(0.5)(x, ei)
    with pytest.raises(DeviceError, match="cpu.*meta"):
        G.laplacian(ei, torch.ones(4, dtype=dtype, device="meta"))
    with pytest.raises(DeviceError):
        G.DeGroot(ei)(x)


@pytest.mark.cuda
def test_c15_cuda(dtype):
    ei = path(3)
    x = torch.randn(3, 2, dtype=dtype, device="cuda")
    with pytest.raises(DeviceError, match="cpu.*cuda"):
        G.LaplacianResidual(0.5)(x, ei)
    y = G.LaplacianResidual(0.5, cached=True)(x, ei.cuda())
    ref = G.LaplacianResidual(0.5)(x.cpu(), ei)
    torch.testing.assert_close(y.cpu(), ref)
    assert G.lambda_max(ei.cuda(), method="lanczos").device.type == "cuda"


# ---------------------------------------------------------------------------------- C16
@pytest.mark.parametrize("normalization", NORMS)
def test_c16_batched_graphs(dtype, normalization):
    from torch_geometric.data import Batch, Data

    graphs = [path(4), star(5), torch.zeros(2, 0, dtype=torch.long), cycle(3)]
    sizes = [4, 5, 1, 3]
    datas = [Data(edge_index=e, num_nodes=n) for e, n in zip(graphs, sizes, strict=True)]
    batch = Batch.from_data_list(datas)
    x = torch.randn(sum(sizes), 2, dtype=dtype)
    L = dense(G.laplacian(batch, normalization=normalization, dtype=dtype))
    y = G.LaplacianResidual(0.4, normalization)(x, batch.edge_index)
    off = 0
    for e, n in zip(graphs, sizes, strict=True):
        Li = dense(G.laplacian(e, num_nodes=n, normalization=normalization, dtype=dtype))
        np.testing.assert_array_equal(L[off : off + n, off : off + n], Li)
        assert (L[off : off + n, :off] == 0).all() and (L[off : off + n, off + n :] == 0).all()
        yi = G.LaplacianResidual(0.4, normalization)(x[off : off + n], e)
        torch.testing.assert_close(y[off : off + n], yi, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
        off += n
    # the single-node graph (node 9) follows C1: unchanged
    assert torch.equal(y[9], x[9])
    ev = G.laplacian_spectrum(batch.edge_index, torch.ones(batch.num_edges, dtype=dtype),
                              num_nodes=13, normalization=normalization)
    assert int((ev == 0).sum()) == 4


# ---------------------------------------------------------------------------------- C7+
@pytest.mark.parametrize("normalization", NORMS)
def test_c7_all_zero_weights_behave_as_isolated_nodes(dtype, normalization):
    ei = cycle(6)
    w = torch.zeros(12, dtype=dtype)
    x = torch.randn(6, 2, dtype=dtype)
    for _ in range(2):
        assert torch.equal(G.LaplacianResidual(0.9, normalization)(x, ei, w), x)
    assert float(G.lambda_max(ei, w, normalization=normalization)) == 0.0
    c = G.stability_certificate(50.0, ei, w, normalization=normalization)
    assert c.stable is True and c.safe_step == float("inf")
    assert float(G.lambda_2(ei, w, normalization=normalization)) == 0.0


def test_c7_empty_node_sets_are_named_errors_for_spectra_and_empty_elsewhere(dtype):
    from manifres.stability import diffusion_stability

    none = torch.zeros(2, 0, dtype=torch.long)
    assert G.laplacian(none, num_nodes=0, dtype=dtype).shape == (0, 0)
    assert float(G.dirichlet_energy(torch.zeros(0, 3, dtype=dtype), none)) == 0.0
    assert G.LaplacianResidual(0.5).bind(none, num_nodes=0)(torch.zeros(0, 2, dtype=dtype)).shape == (0, 2)
    for fn in (
        lambda: G.lambda_max(none, num_nodes=0),
        lambda: G.stability_certificate(0.5, none, num_nodes=0),
        lambda: diffusion_stability(none, 0.5, num_nodes=0),
    ):
        with pytest.raises(GraphError, match="no nodes"):
            fn()
    one = G.stability_certificate(0.5, none, num_nodes=1)
    assert one.stable is True and one.lambda_max == 0.0 and one.lambda_2 is None
