"""manifres._linalg: Lanczos and preconditioned conjugate gradients against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from manifres._linalg import lanczos, pcg


def _symmetric(n, seed, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    ev = torch.linspace(-1.0, 1.0, n, dtype=torch.float64) * spread
    ev[-1] += 0.5 * spread  # an isolated top eigenvalue
    return q @ torch.diag(ev) @ q.T, ev


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("n", [30, 3000])  # a kept basis (small), plain recurrence (large)
def test_lanczos_extreme_eigenvalue_matches_numpy(largest, n):
    if n == 3000:
        gen = torch.Generator().manual_seed(1)
        d = torch.rand(n, generator=gen, dtype=torch.float64)
        d[-1] = 2.0
        d[0] = -1.0

        def mv(v):
            return d * v

        ref = 2.0 if largest else -1.0
    else:
        A, _ = _symmetric(n, seed=0)
        ev = np.linalg.eigvalsh(A.numpy())
        ref = ev[-1] if largest else ev[0]

        def mv(v):
            return A @ v

    start = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r = lanczos(mv, start, largest=largest, tol=1e-10, maxiter=300)
    assert r.converged
    assert r.value == pytest.approx(ref, abs=1e-8)
    assert r.residual <= 1e-10 * r.scale


def test_lanczos_ritz_values_bound_the_spectrum_before_convergence():
    A, _ = _symmetric(200, seed=3, spread=1.0)
    ev = np.linalg.eigvalsh(A.numpy())
    start = torch.randn(200, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for maxiter in (3, 5, 8):
        top = lanczos(lambda v: A @ v, start, largest=True, maxiter=maxiter, check_every=1)
        bottom = lanczos(lambda v: A @ v, start, largest=False, maxiter=maxiter, check_every=1)
        assert top.value <= ev[-1] + 1e-12 and bottom.value >= ev[0] - 1e-12
        assert not top.converged and top.steps == maxiter


def test_lanczos_invariant_space_is_exact():
    # the complete graph's Laplacian n I - J has two distinct eigenvalues: a 2-dim Krylov space
    n = 50
    L = n * torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64)
    start = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = lanczos(lambda v: L @ v, start, largest=True, check_every=1)
    assert r.converged and r.steps <= 3 and r.value == pytest.approx(n, rel=1e-13)


def test_lanczos_stop_callback():
    A, _ = _symmetric(100, seed=5)
    start = torch.randn(100, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    seen = []
    r = lanczos(lambda v: A @ v, start, tol=1e-300, stop=lambda ritz: seen.append(ritz.steps) or True)
    assert seen and r.steps == seen[-1] and not r.converged


def test_pcg_matches_a_dense_solve():
    gen = torch.Generator().manual_seed(7)
    M = torch.randn(40, 40, generator=gen, dtype=torch.float64)
    A = M @ M.T + 40 * torch.eye(40, dtype=torch.float64)
    b = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    pinv = 1.0 / torch.diag(A).unsqueeze(-1)
    y = pcg(lambda v: A @ v, b, pinv, torch.zeros_like(b), rtol=1e-12, maxiter=200)
    np.testing.assert_allclose(y.numpy(), np.linalg.solve(A.numpy(), b.numpy()), rtol=0, atol=1e-10)


def test_pcg_warns_when_it_runs_out_of_iterations():
    A = torch.diag(torch.logspace(0, 8, 60, dtype=torch.float64))
    b = torch.ones(60, 1, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        pcg(lambda v: A @ v, b, 1.0, torch.zeros_like(b), rtol=1e-14, maxiter=3)
