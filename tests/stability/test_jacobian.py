import cmath
import math

import pytest
import torch
from torch import nn

import manifres
from manifres.errors import DTypeError, ShapeError, UnknownChoiceError
from manifres.stability import jacobian_spectrum

from ._models import LinearRes, Tangent, tanh_stack


def _tol(dtype, f32=2e-5, f64=1e-11):
    return f32 if dtype == torch.float32 else f64


def _match(ev, ref, tol):
    """Every reference eigenvalue has a computed one within tol (multisets of equal size)."""
    assert ev.shape == ref.shape
    d = (ref.unsqueeze(-1) - ev.unsqueeze(-2)).abs().amin(-1)
    assert d.max() <= tol, d.max()


def test_linear_block_closed_form(dtype):
    # J = I + a W exactly: eigenvalues 1 + a lambda(W), singular values of I + a W (float64 ref)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 5, dtype=torch.float64, generator=g)
    a = 0.3
    block = LinearRes(w.to(dtype), a)
    x = torch.randn(2, 3, 5, dtype=dtype, generator=g)
    spec = jacobian_spectrum(block, x)
    j = torch.eye(5, dtype=torch.float64) + a * w
    assert spec.eigenvalues.shape == (2, 3, 5) and spec.sigma_max.shape == (2, 3)
    tol = _tol(dtype, 1e-5, 1e-12) * 4
    _match(spec.eigenvalues[1, 2].to(torch.complex128), 1 + a * torch.linalg.eigvals(w), tol)
    _match(spec.residual_eigenvalues[0, 0].to(torch.complex128), a * torch.linalg.eigvals(w), tol)
    torch.testing.assert_close(spec.singular_values[0, 1].double(), torch.linalg.svdvals(j), atol=tol, rtol=0)
    torch.testing.assert_close(
        spec.residual_singular_values[1, 0].double(), a * torch.linalg.svdvals(w), atol=tol, rtol=0
    )
    assert spec.spectral_radius.dtype == dtype and spec.eigenvalues.dtype.is_complex
    assert spec.method == "dense" and spec.dim == 5


def test_nonlinear_block_against_float64_autograd(dtype):
    stack = tanh_stack(6, 1, 0.7, torch.float64)
    block = stack[0]
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = jacobian_spectrum(block.to(dtype), x.to(dtype))
    block.double()
    for b in range(4):
        j = torch.autograd.functional.jacobian(block, x[b])
        _match(spec.eigenvalues[b].to(torch.complex128), torch.linalg.eigvals(j), _tol(dtype, 5e-5))
        torch.testing.assert_close(
            spec.singular_values[b].double(), torch.linalg.svdvals(j), atol=_tol(dtype), rtol=0
        )
        e = torch.linalg.matrix_norm(j - torch.eye(6, dtype=torch.float64), ord=2)
        assert abs(float(spec.residual_norm[b]) - float(e)) <= _tol(dtype)


def test_matrix_free_agrees_with_dense(dtype):
    stack = tanh_stack(12, 1, 0.5, dtype, seed=3)
    x = torch.randn(3, 12, dtype=dtype, generator=torch.Generator().manual_seed(2))
    dense = jacobian_spectrum(stack[0], x)
    free = jacobian_spectrum(stack[0], x, method="matrix_free", steps=12)
    tol = _tol(dtype, 1e-4, 1e-9)
    torch.testing.assert_close(free.singular_values, dense.singular_values, atol=tol, rtol=0)
    torch.testing.assert_close(
        free.residual_singular_values, dense.residual_singular_values, atol=tol, rtol=0
    )
    for b in range(3):
        _match(free.eigenvalues[b], dense.eigenvalues[b], 10 * tol)
    # fewer steps: the top singular value is a lower bound and already close
    few = jacobian_spectrum(stack[0], x, method="matrix_free", steps=6)
    assert (few.sigma_max <= dense.sigma_max + tol).all()
    assert (few.sigma_max >= 0.95 * dense.sigma_max).all()
    assert few.singular_values.shape == (3, 6)


def test_identity_and_zero_blocks_are_finite(dtype):
    # D1: F = 0 gives J = I (all eigenvalues repeated); D2: J = 0 gives zeros, not NaN
    x = torch.randn(3, 4, dtype=dtype)
    for method in ("dense", "matrix_free"):
        ident = jacobian_spectrum(lambda z: z + 0.0 * torch.tanh(z), x, method=method)
        assert torch.allclose(ident.eigenvalues.real, torch.ones(3, 4, dtype=dtype))
        assert torch.allclose(ident.singular_values, torch.ones(3, 4, dtype=dtype))
        assert torch.equal(ident.residual_norm, torch.zeros(3, dtype=dtype))
        zero = jacobian_spectrum(lambda z: 0.0 * z, x, method=method)
        assert torch.equal(zero.singular_values, torch.zeros_like(zero.singular_values))
        assert torch.equal(zero.spectral_radius, torch.zeros(3, dtype=dtype))
        const = jacobian_spectrum(lambda z: torch.ones_like(z), x, method=method)  # no graph at all
        assert torch.equal(const.sigma_max, torch.zeros(3, dtype=dtype))
        assert torch.equal(const.residual_norm, torch.ones(3, dtype=dtype))


def test_sphere_block_tangent_restriction(dtype):
    # reference: P_y J P_x has the tangent singular values plus one extra 0 (the normal)
    S = manifres.Sphere(3)
    g = torch.Generator().manual_seed(5)
    a = torch.randn(4, 4, dtype=torch.float64, generator=g)
    x = S.random(3, dtype=torch.float64, generator=g)
    block = Tangent(S, a, 0.4)
    spec = jacobian_spectrum(Tangent(S, a.to(dtype), 0.4), x.to(dtype))
    assert spec.dim == 3 and spec.singular_values.shape == (3, 3)
    free = jacobian_spectrum(Tangent(S, a.to(dtype), 0.4), x.to(dtype), method="matrix_free", steps=3)
    for b in range(3):
        j = torch.autograd.functional.jacobian(block, x[b])
        y = block(x[b])
        px = torch.eye(4, dtype=torch.float64) - torch.outer(x[b], x[b])
        py = torch.eye(4, dtype=torch.float64) - torch.outer(y, y)
        ref = torch.linalg.svdvals(py @ j @ px)[:3]
        torch.testing.assert_close(spec.singular_values[b].double(), ref, atol=_tol(dtype, 5e-5), rtol=0)
        torch.testing.assert_close(
            free.singular_values[b].double(), ref, atol=_tol(dtype, 1e-4, 1e-9), rtol=0
        )
        # eigenvalues in the parallel frame: transport back to x, restricted to T_x
        cols = S.transport(y.expand(4, 4), x[b].expand(4, 4), (py @ j).mT).mT
        m = px @ cols @ px
        ev_ref = torch.linalg.eigvals(m)
        ev_ref = ev_ref[ev_ref.abs().argsort(descending=True)][:3]  # drop the normal's 0
        _match(spec.eigenvalues[b].to(torch.complex128), ev_ref, _tol(dtype, 1e-4, 1e-10))


def test_manifold_taken_from_the_block_and_identity_in_transport_frame(dtype):
    S = manifres.Sphere(2)
    x = S.random(4, dtype=dtype, generator=torch.Generator().manual_seed(0))
    # a block that rotates every point by a fixed rotation about e_2: J = Q, an isometry
    c, s = math.cos(0.3), math.sin(0.3)
    q = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)

    class Rot(nn.Module):
        manifold = S

        def forward(self, z):
            return z @ q.mT

    spec = jacobian_spectrum(Rot(), x)
    assert spec.dim == 2
    torch.testing.assert_close(spec.singular_values, torch.ones(4, 2, dtype=dtype), atol=_tol(dtype), rtol=0)
    # the identity map in the transport frame is exactly I
    ident = jacobian_spectrum(lambda z: z, x, manifold=S)
    torch.testing.assert_close(
        ident.eigenvalues.real, torch.ones(4, 2, dtype=dtype), atol=_tol(dtype), rtol=0
    )
    torch.testing.assert_close(ident.residual_norm, torch.zeros(4, dtype=dtype), atol=_tol(dtype), rtol=0)


def test_son_block_right_translation_is_an_isometry(dtype):
    G = manifres.SpecialOrthogonal(3)
    r = G.random(3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    w = torch.tensor([[0.0, -0.2, 0.1], [0.2, 0.0, -0.3], [-0.1, 0.3, 0.0]], dtype=dtype)
    block = lambda z: G.exp(z, z @ w)  # noqa: E731  (x -> x exp(w))
    for frame in ("transport", "basis"):
        spec = jacobian_spectrum(block, r, manifold=G, frame=frame)
        assert spec.dim == 3
        torch.testing.assert_close(
            spec.singular_values, torch.ones(3, 3, dtype=dtype), atol=_tol(dtype, 1e-5), rtol=0
        )
    # left-trivialised frame: Ad_{exp(-w)}, eigenvalues 1 and exp(+-i |w|)
    theta = math.sqrt(0.3**2 + 0.1**2 + 0.2**2)
    ev = jacobian_spectrum(block, r, manifold=G, frame="basis").eigenvalues[0].to(torch.complex128)
    ref = torch.tensor([1.0, cmath.exp(1j * theta), cmath.exp(-1j * theta)], dtype=torch.complex128)
    _match(ev, ref, _tol(dtype, 1e-5, 1e-10))


def test_whole_tensor_as_one_sample_for_coupled_maps(dtype):
    # a graph-like map on (N, d) that couples the nodes: J = kron(A, I_d)
    a = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5, 0.5]], dtype=dtype)
    x = torch.randn(3, 2, dtype=dtype)
    spec = jacobian_spectrum(lambda z: a @ z, x, sample_ndim=2)
    ref = torch.linalg.eigvals(torch.kron(a.double(), torch.eye(2, dtype=torch.float64)))
    assert spec.dim == 6 and spec.eigenvalues.shape == (6,)
    _match(spec.eigenvalues.to(torch.complex128), ref, _tol(dtype))


def test_bad_input_raises_named_errors():
    x = torch.randn(2, 4)
    with pytest.raises(ShapeError, match="square Jacobian"):
        jacobian_spectrum(nn.Linear(4, 3), x)
    with pytest.raises(ShapeError, match="method='matrix_free'"):
        jacobian_spectrum(lambda z: z, torch.randn(1, 600))
    with pytest.raises(UnknownChoiceError, match="'dense', 'matrix_free'"):
        jacobian_spectrum(lambda z: z, x, method="eig")
    with pytest.raises(UnknownChoiceError, match="transport"):
        jacobian_spectrum(
            lambda z: z, torch.tensor([[1.0, 0.0, 0.0]]), manifold=manifres.Sphere(2), frame="nope"
        )
    with pytest.raises(DTypeError):
        jacobian_spectrum(lambda z: z, torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ShapeError):
        jacobian_spectrum(lambda z: z, x, manifold=manifres.Sphere(2))
    with pytest.raises(ShapeError, match="sample_ndim"):
        jacobian_spectrum(lambda z: z, x, sample_ndim=3)
    with pytest.raises(ShapeError, match="Tensor"):
        jacobian_spectrum(lambda z: (z, z), x)


def test_matrix_free_handles_widths_above_the_dense_limit(dtype):
    # y = x + a * (d * x): J = I + a diag(d), singular values |1 + a d_i| in closed form
    n = 520
    d = torch.linspace(-1.0, 1.0, n, dtype=dtype)
    spec = jacobian_spectrum(
        lambda z: z + 0.5 * d * z, torch.zeros(2, n, dtype=dtype), method="matrix_free", steps=40
    )
    assert spec.singular_values.shape == (2, 40)
    assert abs(float(spec.sigma_max[0]) - 1.5) <= 1e-3
    assert float(spec.sigma_max[0]) <= 1.5 + 1e-5  # a Ritz value never exceeds sigma_max
    assert float(spec.residual_norm[1]) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    stack = tanh_stack(8, 1, 0.5, torch.float64)
    x = torch.randn(4, 8, dtype=torch.float64)
    cpu = jacobian_spectrum(stack[0], x)
    gpu = jacobian_spectrum(stack[0].cuda(), x.cuda())
    assert gpu.singular_values.device.type == "cuda"
    torch.testing.assert_close(gpu.singular_values.cpu(), cpu.singular_values, atol=1e-10, rtol=0)
    free = jacobian_spectrum(stack[0].cuda(), x.cuda(), method="matrix_free", steps=8)
    torch.testing.assert_close(free.singular_values.cpu(), cpu.singular_values, atol=1e-8, rtol=0)
