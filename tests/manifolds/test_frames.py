import pytest
import torch

import manifres
from manifres.errors import DTypeError, ShapeError
from manifres.manifolds.frames import ProjectionFrame
from manifres.stability.frames import input_frame, output_frame


def tangent_basis(manifold, x):
    if manifold is None:
        return torch.eye(x.shape[-1], dtype=x.dtype).expand(x.shape + (x.shape[-1],))
    return manifold.tangent_basis(x)


def _orthonormal(b, tol):
    k = b.shape[-1]
    eye = torch.eye(k, dtype=b.dtype)
    assert (b.mT @ b - eye).abs().max() <= tol


def _tol(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-12


def test_sphere_basis_orthonormal_and_tangent(dtype):
    S = manifres.Sphere(4)
    x = S.random(2, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    # include points with x_0 = 0 exactly, x = e_0 and x = -e_0 (the Householder edge cases)
    special = torch.zeros(3, 5, dtype=dtype)
    special[0, 1] = 1.0
    special[1, 0] = 1.0
    special[2, 0] = -1.0
    for pts in (x, special):
        b = tangent_basis(S, pts)
        assert b.shape == pts.shape[:-1] + (5, 4)
        _orthonormal(b, _tol(dtype))
        assert (pts.unsqueeze(-2) @ b).abs().max() <= _tol(dtype)


def test_euclidean_and_none_give_the_identity(dtype):
    x = torch.randn(2, 3, dtype=dtype)
    for m in (None, manifres.Euclidean(3)):
        b = tangent_basis(m, x)
        assert torch.equal(b, torch.eye(3, dtype=dtype).expand(2, 3, 3))


def test_son_basis_is_left_translated_skew_frobenius_orthonormal(dtype):
    G = manifres.SpecialOrthogonal(4)
    r = G.random(3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    b = tangent_basis(G, r)
    assert b.shape == (3, 16, 6)
    _orthonormal(b, _tol(dtype))
    cols = b.mT.reshape(3, 6, 4, 4)
    omega = r.unsqueeze(1).mT @ cols  # R^T V must be skew
    assert (omega + omega.mT).abs().max() <= _tol(dtype)


def test_a_square_manifold_without_a_frame_gets_the_projection_frame_not_a_skew_one(dtype):
    """A new manifold of square points (say symmetric matrices) must not silently get SO(n)'s
    frame: the contract's default is the projection frame, which spans its own tangent space."""

    class Symmetric(manifres.Euclidean):
        # symmetric 2x2 matrices as a flat Euclidean space of point shape (2, 2), dim 3
        def __init__(self):
            super().__init__(4)

        @property
        def point_shape(self):
            return (2, 2)

        @property
        def dim(self):
            return 3

        def tangent_frame(self, x):
            return manifres.Manifold.tangent_frame(self, x)

        def proj(self, x, u):
            return 0.5 * (u + u.mT)

    M = Symmetric()
    x = torch.eye(2, dtype=dtype).expand(3, 2, 2)
    b = M.tangent_basis(x)
    assert b.shape == (3, 4, 3)
    _orthonormal(b, _tol(dtype))
    cols = b.mT.reshape(3, 3, 2, 2)
    assert (cols - cols.mT).abs().max() <= _tol(dtype)  # symmetric, not skew


def test_generic_projection_frame_spans_the_tangent_space(dtype):
    S = manifres.Sphere(3)
    x = S.random(4, dtype=dtype, generator=torch.Generator().manual_seed(2))
    f = ProjectionFrame(S, x)
    b = f.matrix()
    _orthonormal(b, _tol(dtype))
    ref = torch.eye(4, dtype=dtype) - x.unsqueeze(-1) * x.unsqueeze(-2)
    assert (b @ b.mT - ref).abs().max() <= 10 * _tol(dtype)


@pytest.mark.parametrize(
    "manifold", [manifres.Sphere(3), manifres.SpecialOrthogonal(3)], ids=["sphere", "so3"]
)
def test_apply_and_coords_are_adjoint_and_transport_frame_is_tangent_at_y(dtype, manifold):
    g = torch.Generator().manual_seed(4)
    x = manifold.random(5, dtype=dtype, generator=g)
    v = manifold.random_tangent(x, generator=g)
    y = manifold.exp(x, 0.3 * v)
    fx = input_frame(manifold, x, manifold.point_shape)
    for fy in (output_frame(manifold, fx, y, "transport"), output_frame(manifold, fx, y, "basis")):
        by = fy.matrix()
        _orthonormal(by, 10 * _tol(dtype))
        c = torch.randn(5, fx.k, dtype=dtype, generator=g)
        wt = manifold.proj(y, torch.randn(y.shape, dtype=dtype, generator=g))
        lhs = (fy.apply(c) * wt).flatten(1).sum(-1)
        rhs = (c * fy.coords(wt)).sum(-1)
        assert (lhs - rhs).abs().max() <= 20 * _tol(dtype)
        torch.testing.assert_close(
            fy.apply(c).flatten(1), (by @ c.unsqueeze(-1)).squeeze(-1), atol=20 * _tol(dtype), rtol=0
        )
        # tangent at y
        assert manifold._tangent_residual(y, fy.apply(c)).max() <= 20 * _tol(dtype)


def test_tangent_basis_errors():
    with pytest.raises(ShapeError):
        manifres.Sphere(2).tangent_basis(torch.zeros(4))
    with pytest.raises(DTypeError):
        manifres.Sphere(2).tangent_basis(torch.zeros(3, dtype=torch.int64))


def test_deprecated_stability_tangent_basis_warns_and_agrees():
    x = manifres.Sphere(2).random(3, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="tangent_basis"):
        b = manifres.stability.tangent_basis(manifres.Sphere(2), x)
    torch.testing.assert_close(b, manifres.Sphere(2).tangent_basis(x))


@pytest.mark.parametrize(
    "manifold", [manifres.Sphere(2), manifres.SpecialOrthogonal(2), manifres.SpecialOrthogonal(4),
                 manifres.Euclidean(3)], ids=repr
)
def test_tangent_basis_of_an_empty_batch(manifold):
    """(0, *point_shape) gives (0, D, dim) (the dense matrix of a frame used reshape(b, k, -1))."""
    x = torch.zeros((0,) + tuple(manifold.point_shape), dtype=torch.float64)
    d = 1
    for s in manifold.point_shape:
        d *= s
    assert manifold.tangent_basis(x).shape == (0, d, manifold.dim)
    assert ProjectionFrame(manifold, x).matrix().shape == (0, d, manifold.dim)
