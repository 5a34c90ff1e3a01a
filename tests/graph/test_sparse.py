"""manifres.graph._sparse: CSR from entries, pattern products, the operator builder."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from manifres.graph._sparse import (
    RowPattern,
    diffusion_operator,
    pattern_matmul,
    sparse_coo,
    sparse_csr,
    sparse_operator,
    spmm,
)

from ._graphs import random_graph, tol


def _entries(n=40, m=160, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    row = torch.randint(0, n, (m,), generator=gen)
    col = torch.randint(0, n, (m,), generator=gen)  # unsorted, with duplicates
    val = torch.randn(m, generator=gen, dtype=torch.float64).to(dtype)
    return row, col, val


def _scipy(row, col, val, n):
    return sp.coo_matrix((val.double().numpy(), (row.numpy(), col.numpy())), shape=(n, n)).toarray()


def test_row_pattern_matches_scipy(dtype):
    row, col, val = _entries(dtype=dtype)
    p = RowPattern(row, col, 40)
    A = p.matrix(val)
    assert A.layout == torch.sparse_csr and A.crow_indices().dtype == torch.int32
    atol = tol(dtype, 1e-6, 1e-14)
    np.testing.assert_allclose(A.to_dense().double().numpy(), _scipy(row, col, val, 40), atol=atol)
    assert torch.equal(p.rows, torch.repeat_interleave(torch.arange(40), torch.bincount(row, minlength=40)))
    t = p.transpose.csr(p.transpose.sorted_values(p.sorted_values(val)))
    np.testing.assert_allclose(t.to_dense().double().numpy(), _scipy(row, col, val, 40).T, atol=atol)


def test_row_pattern_of_sorted_rows_needs_no_permutation():
    row = torch.tensor([0, 0, 1, 3, 3])
    col = torch.tensor([2, 1, 0, 3, 1])
    p = RowPattern(row, col, 4)
    assert p.perm is None
    assert p.crow.tolist() == [0, 2, 3, 3, 5]


def test_coalesced_builders_sum_duplicates(dtype):
    row, col, val = _entries(dtype=dtype)
    ref = _scipy(row, col, val, 40)
    coo = sparse_coo(torch.stack([row, col]), val, 40)
    csr = sparse_csr(torch.stack([row, col]), val, 40)
    assert coo.is_coalesced() and csr.col_indices().numel() == coo._nnz()
    for M in (coo, csr):
        np.testing.assert_allclose(M.to_dense().double().numpy(), ref, atol=tol(dtype, 1e-6, 1e-14))


def test_pattern_matmul_gradients():
    row, col, val = _entries(n=12, m=40)
    p = RowPattern(row, col, 12)
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    v = p.sorted_values(val).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pattern_matmul(p, a, b), (v, x))
    dense = torch.from_numpy(_scipy(row, col, val, 12))
    torch.testing.assert_close(pattern_matmul(p, v, x), dense @ x)


@pytest.mark.parametrize("width", [1, 4])
def test_spmm_single_column_and_matrix(dtype, width):
    ei, w = random_graph(30, 80, seed=1, dtype=dtype)
    A = RowPattern(ei[0], ei[1], 30).matrix(w)
    x = torch.randn(30, width, dtype=dtype)
    ref = torch.from_numpy(_scipy(ei[0], ei[1], w, 30)) @ x.double()
    torch.testing.assert_close(spmm(A, x).double(), ref, rtol=0, atol=tol(dtype, 1e-5, 1e-13))


def test_operator_builders_against_dense(dtype):
    ei, w = random_graph(25, 60, seed=2, dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    diag = torch.rand(25, generator=gen, dtype=torch.float64).to(dtype)
    diag[:3] = 0.0  # zero diagonal entries are dropped on the CPU
    A = _scipy(ei[0], ei[1], w, 25)
    M = sparse_operator(ei, w, diag, 25).to_dense().double().numpy()
    np.testing.assert_allclose(M, A + np.diag(diag.double().numpy()), atol=tol(dtype, 1e-6, 1e-14))
    h = 0.3
    L = np.diag(diag.double().numpy()) - A
    I_hL = diffusion_operator(ei, w, diag, 25, step=h).to_dense().double().numpy()
    np.testing.assert_allclose(I_hL, np.eye(25) - h * L, atol=tol(dtype, 1e-6, 1e-14))
    I_L = diffusion_operator(ei, w, diag, 25).to_dense().double().numpy()
    np.testing.assert_allclose(I_L, np.eye(25) - L, atol=tol(dtype, 1e-6, 1e-14))


def test_empty_patterns():
    empty = torch.zeros(0, dtype=torch.long)
    p = RowPattern(empty, empty, 3)
    assert p.matrix(torch.zeros(0)).to_dense().abs().sum() == 0
    assert spmm(p.matrix(torch.zeros(0)), torch.ones(3, 2)).abs().sum() == 0
    assert RowPattern(empty, empty, 0).crow.tolist() == [0]


@pytest.mark.cuda
def test_sparse_kernels_on_cuda(dtype):
    row, col, val = _entries(dtype=dtype)
    p_cpu, p_gpu = RowPattern(row, col, 40), RowPattern(row.cuda(), col.cuda(), 40)
    x = torch.randn(40, 3, dtype=dtype)
    xg = x.cuda().requires_grad_(True)
    vg = p_gpu.sorted_values(val.cuda()).clone().requires_grad_(True)
    y = pattern_matmul(p_gpu, vg, xg)
    torch.testing.assert_close(y.detach().cpu(), spmm(p_cpu.matrix(val), x))
    y.sum().backward()
    v = p_cpu.sorted_values(val).clone().requires_grad_(True)
    xc = x.clone().requires_grad_(True)
    pattern_matmul(p_cpu, v, xc).sum().backward()
    torch.testing.assert_close(xg.grad.cpu(), xc.grad)
    torch.testing.assert_close(
        torch.sort(vg.grad.cpu()).values, torch.sort(v.grad).values  # the same multiset of entries
    )
    ones = torch.ones(40, dtype=dtype, device="cuda")
    M = diffusion_operator(torch.stack([row, col]).cuda(), val.cuda(), ones, 40)
    ref = diffusion_operator(torch.stack([row, col]), val, torch.ones(40, dtype=dtype), 40)
    torch.testing.assert_close(M.to_dense().cpu(), ref.to_dense())
