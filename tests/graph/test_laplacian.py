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
