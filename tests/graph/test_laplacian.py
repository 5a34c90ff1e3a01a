"""manifres.graph.laplacian: values against SciPy / torch-geometric, gradients, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.csgraph as csgraph
import torch
from torch_geometric.data import Data
from torch_geometric.utils import get_laplacian

import manifres.graph as G
from manifres.errors import DTypeError, GraphError, UnknownChoiceError

from ._graphs import cycle, dense_laplacian, path, random_graph, tol, undirected

NORMS = [None, "sym", "rw"]


@pytest.mark.parametrize("normalization", NORMS)
def test_matches_definition_with_isolated_loops_duplicates(dtype, normalization):
    ei, w = random_graph(30, 60, seed=1, dtype=dtype)  # nodes 30..34 isolated
    L = G.laplacian(ei, w, num_nodes=35, normalization=normalization)
    ref = dense_laplacian(ei, w, 35, normalization)
    np.testing.assert_allclose(L.to_dense().double().numpy(), ref, atol=tol(dtype, 1e-6, 1e-14))
    assert L.dtype == dtype and L.is_coalesced()


@pytest.mark.parametrize("normed", [False, True])
def test_matches_scipy_csgraph(dtype, normed):
    ei, w = random_graph(25, 50, seed=2, dtype=dtype)
    keep = ei[0] != ei[1]  # scipy ignores the diagonal of A only under normed=True
    ei, w = ei[:, keep], w[keep]
    A = np.zeros((27, 27))
    np.add.at(A, (ei[0].numpy(), ei[1].numpy()), w.double().numpy())
    ref = csgraph.laplacian(A, normed=normed)
    L = G.laplacian(ei, w, num_nodes=27, normalization="sym" if normed else None)
    np.testing.assert_allclose(L.to_dense().double().numpy(), ref, atol=tol(dtype, 1e-6, 1e-14))


@pytest.mark.parametrize("normalization", NORMS)
def test_matches_torch_geometric_without_isolated_nodes(dtype, normalization):
    ei = cycle(9)
    w = torch.rand(9, dtype=dtype) + 0.2
    w = torch.cat([w, w])
    idx, val = get_laplacian(ei, w, normalization=normalization, num_nodes=9)
    ref = torch.sparse_coo_tensor(idx, val, (9, 9), check_invariants=False).to_dense()
    L = G.laplacian(ei, w, normalization=normalization).to_dense()
    torch.testing.assert_close(L, ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))


def test_csr_layout_and_parts(dtype):
    ei = path(5)
    w = torch.rand(8, dtype=dtype)
    w = torch.cat([w[:4], w[:4]])
    coo = G.laplacian(ei, w, normalization="sym")
    csr = G.laplacian(ei, w, normalization="sym", layout=torch.sparse_csr)
    assert csr.layout == torch.sparse_csr
    torch.testing.assert_close(csr.to_dense(), coo.to_dense())
    p = G.laplacian_parts(ei, w, normalization="sym")
    x = torch.randn(5, 2, dtype=dtype)
    lx = p.diag[:, None] * x - torch.zeros_like(x).index_add_(0, ei[0], p.weight[:, None] * x[ei[1]])
    torch.testing.assert_close(lx, coo @ x)
    with pytest.raises(UnknownChoiceError, match="layout"):
        G.laplacian(ei, layout=torch.strided)


@pytest.mark.parametrize("normalization", NORMS)
def test_gradcheck_edge_weights(normalization):
    ei = undirected([(0, 1), (1, 2), (2, 3), (0, 3)])
    half = torch.rand(4, dtype=torch.float64) + 0.5

    def f(h):
        return G.laplacian(ei, torch.cat([h, h]), normalization=normalization).to_dense()

    assert torch.autograd.gradcheck(f, (half.requires_grad_(),))


@pytest.mark.parametrize("normalization", NORMS)
def test_zero_weights_are_valid_with_finite_gradients(dtype, normalization):
    # node 3's only edges weigh 0: it behaves as an isolated node, gradients stay finite
    ei = path(4)
    w = torch.tensor([1.0, 2.0, 0.0, 1.0, 2.0, 0.0], dtype=dtype, requires_grad=True)
    L = G.laplacian(ei, w, normalization=normalization).to_dense()
    assert (L[3] == 0).all() and (L[:, 3] == 0).all()
    x = torch.randn(4, 2, dtype=dtype)
    (x * (L @ x)).sum().backward()
    assert torch.isfinite(w.grad).all()
    w.grad = None
    y = G.LaplacianResidual(0.5, normalization)(x, ei, w)
    assert torch.equal(y[3], x[3])
    y.sum().backward()
    assert torch.isfinite(w.grad).all()


def test_data_objects(dtype):
    ei = path(4)
    w = torch.arange(1.0, 7.0, dtype=dtype)
    w = torch.cat([w[:3], w[:3]])
    ref = G.laplacian(ei, w, num_nodes=6).to_dense()
    for data in (
        Data(edge_index=ei, edge_weight=w, num_nodes=6),
        Data(edge_index=ei, edge_attr=w, num_nodes=6),
        Data(edge_index=ei, edge_attr=w, x=torch.zeros(6, 1)),
    ):
        assert torch.equal(G.laplacian(data).to_dense(), ref)
    with pytest.raises(GraphError, match="Data"):
        G.laplacian([[0, 1], [1, 0]])


def test_data_edge_attr_column_is_the_weight(dtype):
    ei = path(4)
    w = torch.arange(1.0, 7.0, dtype=dtype)
    ref = G.laplacian(ei, w, num_nodes=4).to_dense()
    data = Data(edge_index=ei, edge_attr=w.unsqueeze(1), num_nodes=4)  # from_networkx's (E, 1)
    assert torch.equal(G.laplacian(data).to_dense(), ref)
    # edge_weight wins over edge_attr
    data = Data(edge_index=ei, edge_weight=w, edge_attr=torch.ones(6, 1, dtype=dtype), num_nodes=4)
    assert torch.equal(G.laplacian(data).to_dense(), ref)


def test_data_multi_column_edge_attr_is_an_error():
    ei = path(4)
    data = Data(edge_index=ei, edge_attr=torch.ones(6, 2), num_nodes=4)
    with pytest.raises(GraphError, match=r"edge_attr has shape \(6, 2\)"):
        G.laplacian(data)
    # an explicit weight is used instead
    assert G.laplacian(data, torch.ones(6)).shape == (4, 4)


def test_trailing_isolated_nodes_need_num_nodes():
    ei = path(3)
    assert G.laplacian(ei).shape == (3, 3)  # inferred as max + 1 (documented)
    assert G.laplacian(ei, num_nodes=5).shape == (5, 5)


def test_bad_arguments():
    ei = path(3)
    with pytest.raises(UnknownChoiceError, match="'sym'"):
        G.laplacian(ei, normalization="symmetric")
    with pytest.raises(DTypeError, match="never promotes"):
        G.laplacian(ei, torch.ones(4, dtype=torch.float64), dtype=torch.float32)
    with pytest.raises(DTypeError, match="float16"):
        G.laplacian(ei, torch.ones(4, dtype=torch.float16))
    with pytest.raises(GraphError, match=r"shape \(E,\) = \(4,\)"):
        G.laplacian(ei, torch.ones(3))
    with pytest.raises(GraphError, match="num_nodes must be >= 0"):
        G.laplacian(ei, num_nodes=-1)
    with pytest.raises(GraphError, match="integer"):
        G.laplacian(ei, num_nodes=2.5)
    with pytest.raises(GraphError, match="bool"):
        G.laplacian(ei.bool())
    assert G.laplacian(ei.int()).shape == (3, 3)  # int32 indices are accepted


def test_validation_can_be_skipped():
    ei = torch.tensor([[0, 1], [1, 2]])
    G.laplacian(ei, normalization="rw", validate=False)  # directed is fine for rw anyway
    L = G.laplacian(ei, normalization="sym", validate=False)  # unchecked: no error raised
    assert L.shape == (3, 3)


# ----------------------------------------------------------------------------- range
def _extreme(dtype):
    fi = torch.finfo(dtype)
    return [fi.max / 4, fi.max, fi.smallest_normal, fi.smallest_normal * fi.eps, 1e-30, 1e30]


@pytest.mark.parametrize("normalization", ["sym", "rw"])
def test_normalised_laplacian_is_scale_invariant_at_extreme_weights(dtype, normalization):
    # L_sym and L_rw do not change when every weight is scaled: for any finite scale the
    # result must equal the unit-weight Laplacian (3e38 in float32 used to give the identity)
    ei = cycle(7)
    ref = G.laplacian(ei, torch.ones(14, dtype=dtype), normalization=normalization).to_dense()
    for c in _extreme(dtype):
        L = G.laplacian(ei, torch.full((14,), c, dtype=dtype), normalization=normalization).to_dense()
        assert torch.isfinite(L).all(), c
        torch.testing.assert_close(L, ref, rtol=0, atol=4 * torch.finfo(dtype).eps, msg=f"scale {c}")
        p = G.laplacian_parts(ei, torch.full((14,), c, dtype=dtype), normalization=normalization)
        assert (p.diag == 1).all()


@pytest.mark.parametrize("normalization", ["sym", "rw"])
def test_components_with_weights_far_apart(dtype, normalization):
    # one component at 3e38 (or 1e300), one at subnormal weights, one at 1: each normalised on
    # its own, as if alone (components do not interact)
    fi = torch.finfo(dtype)
    scales = [fi.max / 3, fi.smallest_normal * fi.eps * 8, 1.0]
    parts, weights = [], []
    for k, c in enumerate(scales):
        e = cycle(5) + 5 * k
        parts.append(e)
        half = (torch.rand(5, dtype=torch.float64) + 0.5).to(dtype)
        weights.append(torch.cat([half, half]) * c)
    ei, w = torch.cat(parts, 1), torch.cat(weights)
    L = G.laplacian(ei, w, normalization=normalization).to_dense()
    for k in range(3):
        block = G.laplacian(cycle(5), weights[k] / scales[k], normalization=normalization).to_dense()
        got = L[5 * k : 5 * k + 5, 5 * k : 5 * k + 5]
        torch.testing.assert_close(got, block, rtol=0, atol=tol(dtype, 1e-5, 1e-13))


def test_mixed_huge_and_tiny_weights_in_one_component(dtype):
    # a path 0 - 1 - 2 with weights 1e30 and 1e-30: d = (1e30, 1e30, 1e-30)
    ei = path(3)
    w = torch.tensor([1e30, 1e-30, 1e30, 1e-30], dtype=dtype)  # (0,1), (1,2), (1,0), (2,1)
    sym = G.laplacian(ei, w, normalization="sym").to_dense().double()
    rw = G.laplacian(ei, w, normalization="rw").to_dense().double()
    # exact values: sym_01 = -1e30 / sqrt(1e30 * (1e30 + 1e-30)) = -1; sym_12 = -1e-30 /
    # sqrt((1e30 + 1e-30) * 1e-30) = -1e-15; rw_21 = -1; rw_12 = -1e-60 (0 in float32)
    assert sym[0, 1] == pytest.approx(-1.0, rel=tol(dtype, 1e-6, 1e-15))
    assert sym[1, 2] == pytest.approx(-1e-15, rel=tol(dtype, 1e-6, 1e-14))
    assert rw[2, 1] == pytest.approx(-1.0, rel=tol(dtype, 1e-6, 1e-15))
    assert abs(float(rw[1, 2]) + 1e-60) <= tol(dtype, 1.5e-45, 1e-74)
    assert (torch.diagonal(sym) == 1).all() and (torch.diagonal(rw) == 1).all()


def test_combinatorial_degrees_round_correctly_or_overflow_to_inf(dtype):
    fi = torch.finfo(dtype)
    ei = cycle(4)
    big = G.laplacian(ei, torch.full((8,), fi.max / 2, dtype=dtype)).to_dense()
    # d = max: the sum of two max/2 is representable (rounded correctly from float64 sums)
    assert torch.diagonal(big).eq(fi.max).all() or torch.isinf(torch.diagonal(big)).all()
    over = G.laplacian(ei, torch.full((8,), fi.max, dtype=dtype)).to_dense()
    assert torch.isinf(torch.diagonal(over)).all()  # the true degree 2 max is not finite
    tiny = fi.smallest_normal * fi.eps  # the smallest subnormal: degree 2 tiny, exactly
    t = G.laplacian(ei, torch.full((8,), tiny, dtype=dtype)).to_dense()
    assert (torch.diagonal(t) == 2 * tiny).all()


@pytest.mark.parametrize("normalization", [None, "sym", "rw"])
def test_extreme_weights_in_the_layer_and_spectra(dtype, normalization):
    ei = cycle(6)
    x = torch.randn(6, 2, dtype=dtype)
    if normalization is None:  # L scales with the weights: steps h = 0.25 / c stay finite
        scales = [1e30, 1e-30] if dtype == torch.float32 else [1e300, 1e-300]
    else:
        scales = [3e38, 1e-30, 1e-45] if dtype == torch.float32 else [1e308, 1e-300, 5e-324]
    ref = G.LaplacianResidual(0.25, normalization, cached=False)(x, ei)
    for c in scales:
        w = torch.full((12,), c, dtype=dtype)
        layer = G.LaplacianResidual(0.25 / c if normalization is None else 0.25, normalization)
        for _ in range(2):  # message passing, then the cached operator
            y = layer(x, ei, w)
            torch.testing.assert_close(y, ref, rtol=tol(dtype, 1e-5, 1e-12), atol=tol(dtype, 1e-6, 1e-14))
        lam = float(G.lambda_max(ei, w, normalization=normalization))
        assert lam == pytest.approx(2.0 if normalization else 4.0 * c, rel=1e-6)
