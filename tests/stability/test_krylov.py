import pytest
import torch

from manifres.stability.krylov import arnoldi, golub_kahan


def _ops(a):
    def mv(v):
        return (a @ v.unsqueeze(-1)).squeeze(-1)

    def rmv(u):
        return (a.mT @ u.unsqueeze(-1)).squeeze(-1)

    return mv, rmv


def _v0(b, n, dtype):
    return torch.randn(b, n, dtype=dtype, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_golub_kahan_full_steps_equal_svdvals(dtype, n):
    g = torch.Generator().manual_seed(n)
    a = torch.randn(3, n, n, dtype=torch.float64, generator=g)
    ref = torch.linalg.svdvals(a)
    mv, rmv = _ops(a.to(dtype))
    sv = golub_kahan(mv, rmv, _v0(3, n, dtype), n)
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(sv.double(), ref, atol=tol * ref.max(), rtol=0)


def test_golub_kahan_partial_steps_get_the_top_singular_value(dtype):
    # well separated top singular value: a few steps suffice; Ritz values interlace
    n = 60
    g = torch.Generator().manual_seed(0)
    q1 = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g)).Q
    q2 = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g)).Q
    s = torch.cat(
        [torch.tensor([10.0, 5.0], dtype=torch.float64), torch.linspace(1, 0.1, n - 2, dtype=torch.float64)]
    )
    a = (q1 * s) @ q2.T
    mv, rmv = _ops(a.to(dtype).unsqueeze(0))
    sv = golub_kahan(mv, rmv, _v0(1, n, dtype), 20)[0].double()
    rel = 1e-5 if dtype == torch.float32 else 1e-12
    assert abs(sv[0] - 10.0) <= 10.0 * rel
    assert sv[0] <= 10.0 * (1 + rel) and sv[-1] >= 0.1 * (1 - rel)


@pytest.mark.parametrize("kind", ["zero", "identity", "nilpotent"])
def test_degenerate_operators_give_exact_values_never_nan(dtype, kind):
    n = 4
    if kind == "zero":
        a = torch.zeros(2, n, n, dtype=dtype)
        sv_ref, rho_ref = torch.zeros(2, n, dtype=dtype), 0.0
    elif kind == "identity":
        a = torch.eye(n, dtype=dtype).expand(2, n, n)
        sv_ref, rho_ref = torch.ones(2, n, dtype=dtype), 1.0
    else:
        a = torch.diag(torch.ones(n - 1, dtype=dtype), 1).expand(2, n, n)
        sv_ref, rho_ref = torch.tensor([1.0, 1, 1, 0], dtype=dtype).expand(2, n), 0.0
    mv, rmv = _ops(a)
    sv = golub_kahan(mv, rmv, _v0(2, n, dtype), n)
    ev = arnoldi(mv, _v0(2, n, dtype), n)
    assert torch.isfinite(sv).all() and torch.isfinite(ev.real).all() and torch.isfinite(ev.imag).all()
    torch.testing.assert_close(sv, sv_ref, atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0)
    # a nilpotent Jordan block's eigenvalues are sensitive: eps ** (1 / n)
    atol = (torch.finfo(dtype).eps ** (1 / n)) * 10 if kind == "nilpotent" else 1e-6
    assert (ev.abs().amax(-1) - rho_ref).abs().max() <= atol
    # a single step on the zero operator (power iteration) returns 0, not NaN
    if kind == "zero":
        assert torch.equal(golub_kahan(mv, rmv, _v0(2, n, dtype), 1), torch.zeros(2, 1, dtype=dtype))
        assert torch.equal(arnoldi(mv, _v0(2, n, dtype), 1).abs(), torch.zeros(2, 1, dtype=dtype))


def test_arnoldi_full_steps_equal_eigvals(dtype):
    n = 6
    a = torch.randn(2, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref = torch.linalg.eigvals(a)
    mv, _ = _ops(a.to(dtype))
    ev = arnoldi(mv, _v0(2, n, dtype), n).to(torch.complex128)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for b in range(2):
        # match each reference eigenvalue to its nearest Ritz value
        d = (ref[b][:, None] - ev[b][None, :]).abs().amin(-1)
        assert d.max() <= tol * ref[b].abs().max()
    # sorted by decreasing modulus
    assert (ev.abs()[:, :-1] >= ev.abs()[:, 1:] - 1e-12).all()
