"""manifres.graph.diffusion: the LaplacianResidual layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.nn import MessagePassing

import manifres.graph as G
from manifres.errors import ShapeError, StabilityError

from ._graphs import cycle, dense_laplacian, path, random_graph, star, tol

NORMS = [None, "sym", "rw"]


def reference(x, ei, w, n, alpha, normalization):
    L = torch.from_numpy(dense_laplacian(ei, w, n, normalization))
    xd = x.double().reshape(n, -1)
    return (xd - alpha * (L @ xd)).reshape(x.shape)


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("cached", [False, True])
def test_matches_dense_reference(dtype, normalization, cached):
    ei, w = random_graph(30, 70, seed=4, dtype=dtype)  # isolated nodes, loops, duplicates
    x = torch.randn(33, 5, dtype=dtype)
    layer = G.LaplacianResidual(0.35, normalization, cached=cached)
    y = layer(x, ei, w)
    assert y.dtype == dtype and y.shape == x.shape
    ref = reference(x, ei, w, 33, 0.35, normalization)
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 2e-6, 1e-14))
    # a second call reuses the cached operator and gives the same answer
    torch.testing.assert_close(layer(x, ei, w), y, rtol=0, atol=0)


def test_is_a_message_passing_layer_with_repr():
    layer = G.LaplacianResidual(0.25, "rw", certify=True)
    assert isinstance(layer, MessagePassing)
    assert repr(layer) == (
        "LaplacianResidual(alpha=0.25, normalization='rw', learn_alpha=False, certify=True)"
    )


def test_feature_shapes(dtype):
    ei = cycle(6)
    layer = G.LaplacianResidual(0.5, "sym")
    for shape in [(6,), (6, 1), (6, 2, 3)]:
        x = torch.randn(shape, dtype=dtype)
        y = layer(x, ei)
        ref = reference(x, ei, None, 6, 0.5, "sym")
        torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    with pytest.raises(ShapeError):
        layer(torch.tensor(1.0, dtype=dtype), ei)
    assert layer(torch.zeros(0, 4, dtype=dtype), torch.zeros(2, 0, dtype=torch.long)).shape == (0, 4)


@pytest.mark.parametrize("normalization", NORMS)
def test_gradcheck_features_and_weights(normalization):
    ei = cycle(5)
    h = torch.rand(5, dtype=torch.float64) + 0.5
    x = torch.randn(5, 2, dtype=torch.float64)
    layer = G.LaplacianResidual(0.4, normalization)

    def f(x, h):
        return layer(x, ei, torch.cat([h, h]))

    assert torch.autograd.gradcheck(f, (x.requires_grad_(), h.requires_grad_()))


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("cached", [False, True])
def test_learnable_step(dtype, normalization, cached):
    ei = star(6)
    x = torch.randn(6, 3, dtype=dtype)
    layer = G.LaplacianResidual(0.3, normalization, learn_alpha=True, cached=cached)
    assert float(layer.alpha.detach()) == pytest.approx(0.3)
    y = layer(x, ei)
    ref = reference(x, ei, None, 6, 0.3, normalization)
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    y.square().sum().backward()
    assert layer.theta.grad is not None and torch.isfinite(layer.theta.grad)
    # gradient of sum(y^2) in alpha is 2 <y, -L x>
    L = torch.from_numpy(dense_laplacian(ei, None, 6, normalization))
    expect = float((2 * ref * -(L @ x.double())).sum())
    assert float(layer.theta.grad) == pytest.approx(expect, rel=tol(dtype, 1e-4, 1e-10))


@pytest.mark.parametrize("normalization", NORMS)
def test_certified_learnable_step_stays_stable(dtype, normalization):
    ei = star(7)  # combinatorial lambda_max = 7 = 2 max_i d_i * 7/12
    x = torch.randn(7, 2, dtype=dtype)
    layer = G.LaplacianResidual(0.5, normalization, learn_alpha=True, certify=True)
    with torch.no_grad():
        layer.theta.fill_(40.0)  # sigmoid(theta) = 1: the edge of the certified range
    lam = float(G.lambda_max(ei, normalization=normalization))
    xs = x
    with torch.no_grad():
        for _ in range(200):
            xs = layer(xs, ei)
    assert float(torch.linalg.vector_norm(xs)) <= float(torch.linalg.vector_norm(x)) * (1 + 1e-5)
    step = 1.0 if normalization is not None else 1.0 / 6.0  # rho = 1 or 1 / max degree
    assert step * lam <= 2.0 + 1e-12
    for bad in (1.0, 1.5):
        with pytest.raises(StabilityError, match=r"\(0, 1\)"):
            G.LaplacianResidual(bad, normalization, learn_alpha=True, certify=True)
    with pytest.raises(StabilityError, match="positive"):
        G.LaplacianResidual(0.0, normalization, learn_alpha=True, certify=True)


def test_certified_fixed_step(dtype):
    ei = star(5)  # lambda_max: 5 (combinatorial), 2 (sym)
    x = torch.randn(5, 1, dtype=dtype)
    G.LaplacianResidual(0.4, None, certify=True)(x, ei)  # 0.4 * 5 = 2: the boundary
    with pytest.raises(StabilityError, match=r"\(0, 0.4\]"):
        G.LaplacianResidual(0.41, None, certify=True)(x, ei)
    G.LaplacianResidual(1.0, "sym", certify=True)(x, ei)  # certified without a spectrum
    with pytest.raises(StabilityError, match="lambda_max = 2"):
        G.LaplacianResidual(1.01, "sym", certify=True, cached=True)(x, ei)
    G.LaplacianResidual(1.2, "sym", certify=True)(x, cycle(3))  # lambda_max = 1.5
    with pytest.raises(StabilityError, match="positive"):
        G.LaplacianResidual(0.0, certify=True)


def test_graph_changes_are_detected(dtype):
    layer = G.LaplacianResidual(0.5, None, cached=True, certify=True)
    x = torch.randn(4, 1, dtype=dtype)
    ei = path(4)
    y1 = layer(x, ei)
    w = torch.ones(6, dtype=dtype)
    y2 = layer(x, ei, w)
    torch.testing.assert_close(y1, y2)
    w.mul_(0.5)  # in-place change: a new version, a new operator and a new certificate
    torch.testing.assert_close(layer(x, ei, w).double(), reference(x, ei, w, 4, 0.5, None))
    with pytest.raises(StabilityError):
        layer(x, star(4), torch.full((6,), 2.0, dtype=dtype))  # lambda_max 8 > 2 / 0.5
    w64 = torch.ones(6, dtype=torch.float64)
    layer(torch.randn(4, 1, dtype=torch.float64), ei, w64)  # new dtype: rebuilt
    layer.reset_parameters()
    assert layer._operator is None


def test_cached_path_falls_back_when_weights_need_gradients(dtype):
    ei = cycle(4)
    w = torch.ones(8, dtype=dtype, requires_grad=True)
    layer = G.LaplacianResidual(0.3, "sym", cached=True)
    layer(torch.randn(4, 2, dtype=dtype), ei, w).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_invalid_graphs_are_checked_once_and_on_change():
    layer = G.LaplacianResidual(0.5, None)
    ei = path(3)
    x = torch.zeros(3, 1)
    layer(x, ei)
    ei[0, 0] = 7  # in-place corruption: a new version, validated again
    with pytest.raises(Exception, match="node 7"):
        layer(x, ei)


def test_long_stack_is_monotone_and_converges(dtype):
    ei, w = random_graph(50, 200, seed=8, dtype=dtype)
    ei = torch.cat([ei, cycle(50)], dim=1)
    w = torch.cat([w, torch.ones(100, dtype=dtype)])
    x = torch.randn(50, 2, dtype=dtype)
    rate = float(G.consensus_rate(0.5, ei, w, normalization="sym"))
    layer = G.LaplacianResidual(0.5, "sym")
    y = x
    for _ in range(60):
        y = layer(y, ei, w)
    # the disagreement (component orthogonal to D^{1/2} 1) shrinks at the certified rate
    d = G.laplacian_parts(ei, w.double(), normalization="sym").degree  # self-loops excluded
    u = (d.sqrt() / d.sum().sqrt()).unsqueeze(-1)
    xd, yd = x.double(), y.double()
    dis0 = xd - u @ (u.T @ xd)
    dis = yd - u @ (u.T @ yd)
    bound = rate**60 * float(torch.linalg.vector_norm(dis0))
    assert float(torch.linalg.vector_norm(dis)) <= bound * (1 + 1e-3) + tol(dtype, 1e-5, 1e-12)
    assert np.isfinite(rate) and rate < 1


@pytest.mark.parametrize("width", [1, 3])
def test_cached_step_is_differentiable_in_features(dtype, width):
    ei, w = random_graph(12, 30, seed=6, dtype=dtype)
    x = torch.randn(14, width, dtype=dtype, requires_grad=True)
    g = torch.randn(14, width, dtype=dtype)
    grads = []
    for cached in (False, True):
        (gx,) = torch.autograd.grad((G.LaplacianResidual(0.4, "sym", cached=cached)(x, ei, w) * g).sum(), x)
        grads.append(gx)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=tol(dtype, 1e-6, 1e-14))
