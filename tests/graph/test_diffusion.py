"""manifres.graph.diffusion: LaplacianResidual, its bound form, ManifoldDiffusion."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

import manifres
import manifres.graph as G
import manifres.graph.diffusion as D
from manifres.errors import (
    CutLocusError,
    GraphError,
    ParameterError,
    ShapeError,
    StabilityError,
    UnknownChoiceError,
)
from manifres.nn.protocol import is_residual_step
from manifres.testing import assert_on_manifold

from ._graphs import cycle, dense_laplacian, path, random_graph, star, tol

NORMS = [None, "sym", "rw"]


def close(y, ref, dtype, f32=1e-6, f64=1e-14):
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, f32, f64))


def reference(x, ei, w, n, step, normalization):
    L = torch.from_numpy(dense_laplacian(ei, w, n, normalization))
    xd = x.double().reshape(n, -1)
    return (xd - step * (L @ xd)).reshape(x.shape)


def laplacian_term(x, ei, w, n, normalization):
    L = torch.from_numpy(dense_laplacian(ei, w, n, normalization))
    return (L @ x.double().reshape(n, -1)).reshape(x.shape)


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("cached", [False, True])
def test_matches_dense_reference_at_every_call(dtype, normalization, cached):
    ei, w = random_graph(30, 70, seed=4, dtype=dtype)  # isolated nodes, loops, duplicates
    x = torch.randn(33, 5, dtype=dtype)
    layer = G.LaplacianResidual(0.35, normalization, cached=cached)
    ref = reference(x, ei, w, 33, 0.35, normalization)
    for _ in range(3):  # first call: message passing; then the cached operator
        y = layer(x, ei, w)
        assert y.dtype == dtype and y.shape == x.shape
        torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 2e-6, 1e-14))


def test_is_a_message_passing_layer_with_repr():
    layer = G.LaplacianResidual(0.25, "rw", certify=True)
    assert isinstance(layer, MessagePassing)
    assert repr(layer) == "LaplacianResidual(step=0.25, normalization='rw', learn_step=False, certify=True)"


def test_feature_shapes(dtype):
    ei = cycle(6)
    layer = G.LaplacianResidual(0.5, "sym")
    for shape in [(6,), (6, 1), (6, 2, 3)]:
        x = torch.randn(shape, dtype=dtype)
        for _ in range(2):
            y = layer(x, ei)
            ref = reference(x, ei, None, 6, 0.5, "sym")
            torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    with pytest.raises(ShapeError):
        layer(torch.tensor(1.0, dtype=dtype), ei)
    assert layer(torch.zeros(0, 4, dtype=dtype), torch.zeros(2, 0, dtype=torch.long)).shape == (0, 4)
    assert layer(torch.zeros(6, 0, dtype=dtype), ei).shape == (6, 0)


def test_operator_is_built_once_and_reused(dtype, monkeypatch):
    builds = []
    real = D.diffusion_operator

    def counting(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(D, "diffusion_operator", counting)
    ei, w = random_graph(20, 50, seed=2, dtype=dtype)
    x = torch.randn(20, 3, dtype=dtype)
    layer = G.LaplacianResidual(0.3)  # default arguments
    layer(x, ei, w)
    assert builds == []  # first sight: message passing, no sort
    for _ in range(4):
        layer(x, ei, w)
    assert builds == [1]
    layer.propagate = None  # the cached path does not call message passing
    layer(x, ei, w)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("cached", [False, True])
def test_gradcheck_features_and_weights(normalization, cached):
    ei = cycle(5)
    h = torch.rand(5, dtype=torch.float64) + 0.5
    x = torch.randn(5, 2, dtype=torch.float64)
    layer = G.LaplacianResidual(0.4, normalization, cached=cached)

    def f(x, h):
        return layer(x, ei, torch.cat([h, h]))

    # gradcheck calls f many times with the same edge_index: the cached CSR pattern is used
    assert torch.autograd.gradcheck(f, (x.requires_grad_(), h.requires_grad_()))


@pytest.mark.parametrize("normalization", NORMS)
def test_weight_gradients_match_message_passing_on_every_call(dtype, normalization):
    ei, w0 = random_graph(15, 40, seed=9, dtype=dtype)
    x = torch.randn(15, 3, dtype=dtype)
    g = torch.randn(15, 3, dtype=dtype)
    ref_layer = G.LaplacianResidual(0.3, normalization, cached=False)
    w = w0.clone().requires_grad_(True)
    (gw_ref,) = torch.autograd.grad((ref_layer(x, ei, w) * g).sum(), w)
    layer = G.LaplacianResidual(0.3, normalization)
    for _ in range(3):  # message passing, then the CSR pattern
        (gw,) = torch.autograd.grad((layer(x, ei, w) * g).sum(), w)
        torch.testing.assert_close(gw, gw_ref, rtol=0, atol=tol(dtype, 1e-5, 1e-13))


def test_weights_computed_per_call_are_not_kept_alive():
    import weakref

    ei = cycle(8)
    layer = G.LaplacianResidual(0.3)
    raw = nn.Parameter(torch.rand(8, dtype=torch.float64))
    x = torch.randn(8, 2, dtype=torch.float64)
    refs = []
    for _ in range(3):
        w = raw.exp().repeat(2)  # a new non-leaf tensor at every call (the weights of a network)
        refs.append(weakref.ref(w))
        layer(x, ei, w).sum().backward()
        del w
    assert all(r() is None for r in refs)  # the cache holds none of them
    assert raw.grad is not None and torch.isfinite(raw.grad).all()


@pytest.mark.parametrize("width", [1, 3])
def test_cached_step_is_differentiable_in_features(dtype, width):
    ei, w = random_graph(12, 30, seed=6, dtype=dtype)
    x = torch.randn(14, width, dtype=dtype, requires_grad=True)
    g = torch.randn(14, width, dtype=dtype)
    grads = []
    for cached in (False, True):
        layer = G.LaplacianResidual(0.4, "rw", cached=cached)
        for _ in range(2):
            (gx,) = torch.autograd.grad((layer(x, ei, w) * g).sum(), x)
        grads.append(gx)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=tol(dtype, 1e-6, 1e-14))


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("cached", [False, True])
def test_learnable_step(dtype, normalization, cached):
    ei = star(6)
    x = torch.randn(6, 3, dtype=dtype)
    layer = G.LaplacianResidual(0.3, normalization, learn_step=True, cached=cached)
    assert float(layer.step.detach()) == pytest.approx(0.3)
    assert [name for name, _ in layer.named_parameters()] == ["theta"]
    ref = reference(x, ei, None, 6, 0.3, normalization)
    L = torch.from_numpy(dense_laplacian(ei, None, 6, normalization))
    expect = float((2 * ref * -(L @ x.double())).sum())  # d sum(y^2) / d step = 2 <y, -L x>
    for _ in range(2):
        layer.theta.grad = None
        y = layer(x, ei)
        torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
        y.square().sum().backward()
        assert float(layer.theta.grad) == pytest.approx(expect, rel=tol(dtype, 1e-4, 1e-10))


def test_parameter_step_is_used_as_given():
    theta = nn.Parameter(torch.tensor(0.2, dtype=torch.float64))
    layer = G.LaplacianResidual(theta)
    assert layer.theta is theta and layer.learn_step and layer.step is theta
    with pytest.raises(ParameterError, match="requires a gradient"):
        G.LaplacianResidual(torch.tensor(0.2, requires_grad=True))
    with pytest.raises(ParameterError, match="certified"):
        G.LaplacianResidual(theta, certify=True)
    with pytest.raises(ParameterError, match="finite"):
        G.LaplacianResidual(float("nan"))


# ----------------------------------------------------------------------------- certificates
@pytest.mark.parametrize("normalization", NORMS)
def test_certified_learnable_step_stays_stable(dtype, normalization):
    ei = star(7)  # combinatorial lambda_max = 7 = 2 max_i d_i * 7/12
    x = torch.randn(7, 2, dtype=dtype)
    layer = G.LaplacianResidual(0.5, normalization, learn_step=True, certify=True)
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
    bound = layer.bind(ei)
    assert float(bound.step.detach()) == pytest.approx(step)
    for bad in (1.0, 1.5):
        with pytest.raises(StabilityError, match=r"\(0, 1\)"):
            G.LaplacianResidual(bad, normalization, learn_step=True, certify=True)
    with pytest.raises(StabilityError, match="positive"):
        G.LaplacianResidual(0.0, normalization, learn_step=True, certify=True)


def test_certified_fixed_step(dtype):
    ei = star(5)  # lambda_max: 5 (combinatorial), 2 (sym)
    x = torch.randn(5, 1, dtype=dtype)
    G.LaplacianResidual(0.4, None, certify=True)(x, ei)  # 0.4 * 5 = 2: the boundary
    with pytest.raises(StabilityError, match=r"outside the stable range"):
        G.LaplacianResidual(0.41, None, certify=True)(x, ei)
    G.LaplacianResidual(1.0, "sym", certify=True)(x, ei)  # certified without a spectrum
    with pytest.raises(StabilityError, match="lambda_max >= 2"):
        G.LaplacianResidual(1.01, "sym", certify=True)(x, ei)
    G.LaplacianResidual(1.2, "sym", certify=True)(x, cycle(3))  # lambda_max = 1.5
    with pytest.raises(StabilityError, match="positive"):
        G.LaplacianResidual(0.0, certify=True)


def test_changing_a_certified_step_certifies_again(dtype):
    ei, x = star(5), torch.randn(5, 1, dtype=dtype)
    layer = G.LaplacianResidual(0.4, None, certify=True)
    layer(x, ei)
    layer.step = 0.45  # 0.45 * 5 > 2
    with pytest.raises(StabilityError):
        layer(x, ei)
    layer.step = 0.3
    layer(x, ei)
    with pytest.raises(StabilityError, match="positive"):
        layer.step = -1.0


def test_certification_needs_an_undirected_graph_only_with_a_spectrum():
    directed = torch.tensor([[0, 1, 2], [1, 2, 0]])
    x = torch.randn(3, 1)
    G.LaplacianResidual(0.9, "rw", certify=True)(x, directed)  # max-norm argument: no spectrum
    with pytest.raises(GraphError, match="directed"):
        G.LaplacianResidual(0.9, None, certify=True)(x, directed)


def test_forward_with_step_never_certifies():
    ei, x = star(5), torch.randn(5, 2, dtype=torch.float64)
    layer = G.LaplacianResidual(0.1, None, certify=True)
    y = layer.forward_with_step(x, ei, step=3.0)  # far outside the stable range
    torch.testing.assert_close(y, reference(x, ei, None, 5, 3.0, None))


# ----------------------------------------------------------------------------- graph state
def test_graph_changes_are_detected(dtype):
    layer = G.LaplacianResidual(0.5, None, certify=True)
    x = torch.randn(4, 1, dtype=dtype)
    ei = path(4)
    for _ in range(2):
        y1 = layer(x, ei)
    w = torch.ones(6, dtype=dtype)
    torch.testing.assert_close(layer(x, ei, w), y1)
    w.mul_(0.5)  # in-place change: a new version, a new operator and a new certificate
    for _ in range(2):
        torch.testing.assert_close(layer(x, ei, w).double(), reference(x, ei, w, 4, 0.5, None))
    with pytest.raises(StabilityError):
        layer(x, star(4), torch.full((6,), 2.0, dtype=dtype))  # lambda_max 8 > 2 / 0.5
    x64 = torch.randn(4, 1, dtype=torch.float64)
    w64 = torch.ones(6, dtype=torch.float64)
    torch.testing.assert_close(layer(x64, ei, w64), reference(x64, ei, w64, 4, 0.5, None))
    layer.reset_parameters()
    assert len(layer._cache) == 0


def test_in_place_edit_of_edge_index_is_a_new_graph(dtype):
    layer = G.LaplacianResidual(0.5, "rw")
    x = torch.randn(6, 2, dtype=dtype)
    ei = cycle(6).clone()
    for _ in range(3):
        layer(x, ei)
    ei[1, 0] = 3  # 0 -> 3 instead of 0 -> 1: same tensor, same shape, a new version
    for _ in range(2):
        close(layer(x, ei), reference(x, ei, None, 6, 0.5, "rw"), dtype)


def test_a_new_tensor_is_a_new_graph_even_at_a_recycled_address(dtype):
    layer = G.LaplacianResidual(0.5, "rw")
    x = torch.randn(6, 2, dtype=dtype)
    for k in range(4):  # new graph tensors each time (addresses are often reused)
        ei = cycle(6) if k % 2 == 0 else star(6)
        for _ in range(2):
            close(layer(x, ei), reference(x, ei, None, 6, 0.5, "rw"), dtype)
        del ei


def test_node_count_is_part_of_the_key(dtype):
    layer = G.LaplacianResidual(0.5, "sym")
    ei = path(3)
    for n in (3, 5, 3):
        x = torch.randn(n, 2, dtype=dtype)
        for _ in range(2):
            close(layer(x, ei), reference(x, ei, None, n, 0.5, "sym"), dtype)


def test_invalid_graphs_are_checked_once_and_on_change():
    layer = G.LaplacianResidual(0.5, None)
    ei = path(3).clone()
    x = torch.zeros(3, 1)
    layer(x, ei)
    layer(x, ei)
    ei[0, 0] = 7  # in-place corruption: a new version, validated again
    with pytest.raises(GraphError, match="node 7"):
        layer(x, ei)


def test_inference_mode_graphs_are_not_cached_and_operators_stay_usable(dtype):
    layer = G.LaplacianResidual(0.5, "sym")
    x = torch.randn(5, 2, dtype=dtype)
    ref = reference(x, cycle(5), None, 5, 0.5, "sym")
    with torch.inference_mode():
        ei_inf = cycle(5)
        for _ in range(3):
            torch.testing.assert_close(layer(x, ei_inf).double(), ref, rtol=0, atol=tol(dtype, 1e-6, 1e-14))
        ei_inf[1, 0] = 2  # an inference tensor edited in place (both directions): never stale
        ei_inf[0, 5] = 2
        close(layer(x, ei_inf), reference(x, ei_inf, None, 5, 0.5, "sym"), dtype)
    ei = cycle(5)
    with torch.inference_mode():  # operator built in inference mode on a normal graph ...
        layer(x, ei)
        layer(x, ei)
    xg = x.clone().requires_grad_(True)
    layer(xg, ei).sum().backward()  # ... and used for training outside of it
    assert torch.isfinite(xg.grad).all()


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


# ----------------------------------------------------------------------------- module state
def _used_layers():
    ei, w = random_graph(10, 25, seed=1)
    x = torch.randn(10, 2, dtype=torch.float64)
    layers = [
        G.LaplacianResidual(0.3, "sym"),
        G.LaplacianResidual(0.3, None, learn_step=True),
        G.LaplacianResidual(0.3, "rw", learn_step=True, certify=True),
        G.LaplacianResidual(0.2, None, certify=True, cached=True),
    ]
    for layer in layers:
        for _ in range(2):
            layer(x, ei, w)
    return layers, x, ei, w


def test_deepcopy_and_pickle_after_forward():
    layers, x, ei, w = _used_layers()
    for layer in layers:
        ref = layer(x, ei, w)
        for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
            assert len(clone._cache) == 0
            torch.testing.assert_close(clone(x, ei, w), ref, rtol=0, atol=1e-14)
            torch.testing.assert_close(clone(x, ei, w), ref, rtol=0, atol=1e-14)


def test_averaged_model_and_state_dict_round_trip():
    layers, x, ei, w = _used_layers()
    for layer in layers:
        swa = torch.optim.swa_utils.AveragedModel(layer)
        swa.update_parameters(layer)
        torch.testing.assert_close(swa(x, ei, w), layer(x, ei, w), rtol=0, atol=1e-14)
        buf = io.BytesIO()
        torch.save(layer.state_dict(), buf)
        buf.seek(0)
        fresh = G.LaplacianResidual(
            0.1, layer.normalization, learn_step=layer.learn_step, certify=layer.certify
        ).double()
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        if layer.learn_step:
            torch.testing.assert_close(fresh(x, ei, w), layer(x, ei, w), rtol=0, atol=1e-14)


def test_load_state_dict_and_in_place_step_edits_take_effect():
    ei, x = cycle(6), torch.randn(6, 2, dtype=torch.float64)
    layer = G.LaplacianResidual(0.3, "sym", learn_step=True)
    layer(x, ei)
    layer(x, ei)
    layer.load_state_dict({"theta": torch.tensor(0.6, dtype=torch.float64)})
    torch.testing.assert_close(layer(x, ei), reference(x, ei, None, 6, 0.6, "sym"))
    with torch.no_grad():
        layer.theta.mul_(0.5)
    torch.testing.assert_close(layer(x, ei), reference(x, ei, None, 6, 0.3, "sym"))


def test_to_dtype_drops_and_rebuilds():
    ei, x = cycle(6), torch.randn(6, 2)
    layer = G.LaplacianResidual(0.3, "sym", learn_step=True)
    layer(x, ei)
    layer(x, ei)
    layer.double()
    assert len(layer._cache) == 0 and layer.theta.dtype == torch.float64
    x64 = x.double()
    torch.testing.assert_close(layer(x64, ei), reference(x64, ei, None, 6, 0.3, "sym"))


# ----------------------------------------------------------------------------- protocol
def test_step_property_reads_and_writes():
    layer = G.LaplacianResidual(0.3)
    layer.step = 0.7
    assert layer.step == 0.7
    learn = G.LaplacianResidual(0.3, learn_step=True)
    theta = learn.theta
    learn.step = 0.5
    assert learn.theta is theta and float(learn.step.detach()) == 0.5  # the same Parameter, in place
    cert = G.LaplacianResidual(0.3, learn_step=True, certify=True)
    cert.step = 0.8
    assert float(cert.step.detach()) == pytest.approx(0.8)
    with pytest.raises(StabilityError):
        cert.step = 1.2
    with pytest.raises(ParameterError):
        layer.step = float("inf")


def test_deprecated_aliases_warn_and_work():
    with pytest.warns(DeprecationWarning, match="'alpha' is deprecated"):
        layer = G.LaplacianResidual(alpha=0.4, normalization=None)
    with pytest.warns(DeprecationWarning, match="'learn_alpha'"):
        learn = G.LaplacianResidual(0.4, learn_alpha=True)
    assert learn.learn_step
    with pytest.warns(DeprecationWarning):
        assert layer.alpha == 0.4
    with pytest.warns(DeprecationWarning):
        layer.alpha = 0.2
    assert layer.step == 0.2
    with pytest.warns(DeprecationWarning):
        assert learn.learn_alpha is True
    with pytest.raises(TypeError, match="both"):
        G.LaplacianResidual(0.3, alpha=0.4)
    with pytest.raises(TypeError, match="missing the step"):
        G.LaplacianResidual()
    for cls, kw in ((G.DeGroot, {}), (G.FriedkinJohnsen, {"susceptibility": 0.5})):
        with pytest.warns(DeprecationWarning, match="'alpha'"):
            model = cls(cycle(4), alpha=0.5, **kw)
        assert model.step == 0.5
        with pytest.warns(DeprecationWarning):
            assert model.alpha == 0.5
    with pytest.warns(DeprecationWarning, match="'alpha'"):
        md = G.ManifoldDiffusion(manifres.Sphere(2), cycle(4), alpha=0.25)
    assert md.step == 0.25


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("learn", [False, True])
def test_bound_layer_equals_unbound_layer(dtype, normalization, learn):
    ei, w = random_graph(12, 30, seed=3, dtype=dtype)
    layer = G.LaplacianResidual(0.4, normalization, learn_step=learn)
    bound = layer.bind(ei, w, num_nodes=14)
    x = torch.randn(14, 2, 3, dtype=dtype)
    for _ in range(3):
        torch.testing.assert_close(bound(x), layer(x, ei, w), rtol=0, atol=tol(dtype, 1e-6, 1e-14))
    assert is_residual_step(bound) and not is_residual_step(layer)
    assert bound.manifold is None and bound.sample_ndim is None and bound.num_nodes == 14
    close(bound.branch(x), laplacian_term(x, ei, w, 14, normalization), dtype, 1e-5, 1e-13)
    torch.testing.assert_close(bound.forward_with_step(x, bound.step), bound(x))
    assert list(bound.parameters()) == list(layer.parameters())
    with pytest.raises(GraphError, match="13 rows but the bound graph has 14"):
        bound(torch.randn(13, 2, dtype=dtype))


@pytest.mark.parametrize("normalization", NORMS)
def test_forward_with_step_gradient_is_the_laplacian_term(dtype, normalization):
    ei, w = random_graph(10, 25, seed=5, dtype=dtype)
    x = torch.randn(11, 3, dtype=dtype)
    g = torch.randn(11, 3, dtype=dtype)
    layer = G.LaplacianResidual(0.2, normalization)
    expect = float((g.double() * -laplacian_term(x, ei, w, 11, normalization)).sum())
    for bound in (False, True):
        fn = layer.bind(ei, w, num_nodes=11) if bound else None
        for _ in range(2):
            step = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
            y = fn.forward_with_step(x, step) if bound else layer.forward_with_step(x, ei, w, step=step)
            (gs,) = torch.autograd.grad((g * y).sum(), step)  # dL/dstep = <dL/dy, -L x>
            rel, abs_ = tol(dtype, 1e-4, 1e-10), tol(dtype, 1e-4, 1e-12)
            assert float(gs) == pytest.approx(expect, rel=rel, abs=abs_)


def test_bound_layer_state_moves_copies_and_reloads():
    ei, w = random_graph(8, 20, seed=4)
    layer = G.LaplacianResidual(0.3, "sym", learn_step=True)
    bound = layer.bind(Data(edge_index=ei, edge_weight=w, num_nodes=9))  # node 8 is isolated
    assert bound.num_nodes == 9
    assert set(bound.state_dict()) == {"layer.theta", "edge_index", "edge_weight"}
    x = torch.randn(9, 2, dtype=torch.float64)
    y = bound(x)
    bound(x)
    clone = copy.deepcopy(bound)
    torch.testing.assert_close(clone(x), y, rtol=0, atol=0)
    assert clone.layer is not layer
    f32 = copy.deepcopy(bound).float()
    assert f32.edge_weight.dtype == torch.float32 and len(f32._cache) == 0
    torch.testing.assert_close(f32(x.float()).double(), y, rtol=0, atol=1e-5)
    # another graph's weights loaded into the bound module: the operator is rebuilt
    other = torch.rand(w.shape, dtype=torch.float64) + 0.5
    other = torch.cat([other[: len(other) // 2], other[: len(other) // 2]])
    state = bound.state_dict()
    state["edge_weight"] = other
    bound.load_state_dict(state)
    ref = G.LaplacianResidual(0.3, "sym", cached=False)(x, ei, other)
    torch.testing.assert_close(bound(x), ref, rtol=0, atol=1e-14)
    bound.edge_weight.mul_(2.0)  # in place: rebuilt (sym is scale invariant: same values)
    torch.testing.assert_close(bound(x), ref, rtol=0, atol=1e-14)


def test_bound_layer_with_learnable_weights():
    ei = cycle(6)
    w = nn.Parameter(torch.rand(12, dtype=torch.float64) + 0.5)
    bound = G.LaplacianResidual(0.3, None).bind(ei, w)
    assert list(bound.parameters()) == [w]
    x = torch.randn(6, 2, dtype=torch.float64)
    for _ in range(2):
        w.grad = None
        bound(x).square().sum().backward()
        assert w.grad is not None and torch.isfinite(w.grad).all()
    with pytest.raises(ParameterError, match="nn.Parameter"):
        G.LaplacianResidual(0.3).bind(ei, torch.ones(12, requires_grad=True))


def test_bound_data_declared_node_count_must_agree():
    ei = path(3)
    with pytest.raises(GraphError, match="declares 5"):
        G.LaplacianResidual(0.3).bind(Data(edge_index=ei, num_nodes=5), num_nodes=4)
    with pytest.raises(GraphError, match="declares 5 nodes but x has 4 rows"):
        G.LaplacianResidual(0.3)(torch.zeros(4, 1), Data(edge_index=ei, num_nodes=5))


def test_depth_profile_of_a_bound_stack_gives_autograd_step_gradients():
    from manifres.stability import depth_profile

    ei, w = random_graph(9, 20, seed=7)
    steps = ((0.2, "sym"), (0.3, None), (0.5, "rw"))
    layers = [G.LaplacianResidual(s, norm).bind(ei, w) for s, norm in steps]
    stack = nn.Sequential(*layers).eval()
    x = torch.randn(9, 2, dtype=torch.float64)
    prof = depth_profile(stack, x)
    params = [torch.tensor(float(layer.step), dtype=torch.float64, requires_grad=True) for layer in layers]
    h = x
    for layer, p in zip(layers, params, strict=True):
        h = layer.forward_with_step(h, p)
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(h.shape, dtype=x.dtype, generator=gen)
    # a bound stack's state is the whole feature matrix: one sample, so the loss is not averaged
    ref = torch.autograd.grad((g * h).sum(), params)
    got = torch.as_tensor(prof.step_grads, dtype=torch.float64)
    torch.testing.assert_close(got, torch.stack(ref), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- manifolds
def connected_graph(n=30, seed=0, dtype=torch.float64):
    ei, w = random_graph(n, 2 * n, seed=seed, dtype=dtype)
    ring = cycle(n)
    return torch.cat([ei, ring], 1), torch.cat([w, torch.ones(2 * n, dtype=dtype)])


def hemisphere_points(n, dtype, seed=0, margin=0.1):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y[:, 2] = y[:, 2].abs() + margin
    return (y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)).to(dtype)


@pytest.mark.parametrize("retraction", ["exp", "projective"])
def test_sphere_consensus_from_a_hemisphere(dtype, retraction):
    S = manifres.Sphere(2)
    ei, w = connected_graph(25, seed=5, dtype=dtype)
    x0 = hemisphere_points(25, dtype)
    model = G.ManifoldDiffusion(S, ei, w, step=0.8, retraction=retraction)
    xs = model.simulate(x0, 300, every=50)
    for x in xs:
        assert_on_manifold(S, x, atol=tol(dtype, 4e-7, 4e-15))
    spread = S.dist(xs[-1][:1], xs[-1]).max()
    assert float(spread) <= tol(dtype, 1e-3, 1e-10)
    energies = [float(G.dirichlet_energy(x, ei, w, manifold=S)) for x in xs]
    assert energies[-1] <= 1e-6 * energies[0] + tol(dtype, 1e-6, 1e-20)


def test_manifold_step_matches_the_tangent_average(dtype):
    S = manifres.Sphere(2)
    ei, w = random_graph(8, 14, seed=2, dtype=dtype)
    x = hemisphere_points(8, dtype, seed=1)
    model = G.ManifoldDiffusion(S, ei, w, step=0.4)
    A = dense_laplacian(ei, w, 8, "rw")
    An = torch.from_numpy(np.eye(8) - A)  # D^-1 A, isolated rows 0
    xd = x.double()
    for i in range(8):  # reference: R_{x_i}(h sum_j An_ij log_{x_i} x_j), node by node
        v = sum(An[i, j] * S.log(xd[i], xd[j]) for j in range(8) if An[i, j] != 0)
        expect = S.retract(xd[i], 0.4 * v) if torch.is_tensor(v) else xd[i]
        for _ in range(2):
            torch.testing.assert_close(model(x)[i].double(), expect, rtol=0, atol=tol(dtype, 1e-5, 1e-13))


def test_sphere_antipodal_neighbours_follow_the_cut_locus_option(dtype):
    x = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    ei = path(3)
    with pytest.raises(CutLocusError):
        G.ManifoldDiffusion(manifres.Sphere(2), ei)(x)
    S = manifres.Sphere(2, cut_locus="deterministic")
    y = G.ManifoldDiffusion(S, ei)(x)
    assert torch.isfinite(y).all()
    assert_on_manifold(S, y)


def test_isolated_manifold_nodes_do_not_move(dtype):
    S = manifres.Sphere(2)
    x0 = hemisphere_points(4, dtype)
    y = G.ManifoldDiffusion(S, path(3), num_nodes=4, step=0.5)(x0)
    assert torch.equal(y[3], x0[3])


def test_rotation_averaging_on_so3(dtype):
    M = manifres.SpecialOrthogonal(3)
    gen = torch.Generator().manual_seed(3)
    centre = M.random(dtype=dtype, generator=gen)
    omega = 0.6 * (torch.rand(20, 3, generator=gen, dtype=torch.float64) - 0.5)  # |w| < 0.52
    x0 = centre @ torch.linalg.matrix_exp(M.hat(omega)).to(dtype)
    ei, w = connected_graph(20, seed=6, dtype=dtype)
    model = G.ManifoldDiffusion(M, ei, w, step=0.7)
    xs = model.simulate(x0, 200, every=200)
    assert_on_manifold(M, xs[-1])
    spread = M.dist(xs[-1][:1], xs[-1]).max()
    assert float(spread) <= tol(dtype, 1e-4, 1e-10)


def test_manifold_model_checks(dtype):
    S = manifres.Sphere(2)
    with pytest.raises(UnknownChoiceError):
        G.ManifoldDiffusion(S, path(3), retraction="cayley")
    with pytest.raises(UnknownChoiceError):
        G.ManifoldDiffusion(S, path(3), normalization="bogus")
    with pytest.raises(TypeError):
        G.ManifoldDiffusion("sphere", path(3))
    with pytest.raises(ParameterError, match="finite"):
        G.ManifoldDiffusion(S, path(3), step=float("nan"))
    model = G.ManifoldDiffusion(S, path(3))
    with pytest.raises(ShapeError):
        model(torch.ones(3, 4, dtype=dtype))
    with pytest.raises(GraphError, match="rows"):
        model(hemisphere_points(4, dtype))


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
def test_default_cached_step_makes_no_host_device_sync_on_cuda(dtype):
    ei = cycle(1000).cuda()
    layer = G.LaplacianResidual(0.5)  # default arguments
    xs = [torch.randn(1000, f, dtype=dtype, device="cuda") for f in (1, 8)]
    refs = [layer(x, ei) for x in xs] + [layer(x, ei) for x in xs]  # validated, operator built
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ys = [layer(x, ei) for x in xs]
        step = torch.tensor(0.5, dtype=dtype, device="cuda")
        zs = [layer.forward_with_step(x, ei, step=step) for x in xs]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for y, z, ref, x in zip(ys, zs, refs[len(xs):], xs, strict=True):
        torch.testing.assert_close(y, ref)
        torch.testing.assert_close(z, ref)
        cpu = G.LaplacianResidual(0.5, cached=False)(x.cpu(), ei.cpu())
        torch.testing.assert_close(y.cpu(), cpu, rtol=0, atol=tol(dtype, 1e-6, 1e-14))


@pytest.mark.cuda
@pytest.mark.parametrize("normalization", NORMS)
def test_layer_paths_on_cuda_match_the_cpu(dtype, normalization):
    ei, w = random_graph(40, 120, seed=11, dtype=dtype)
    x = torch.randn(42, 3, dtype=dtype)
    g = torch.randn(42, 3, dtype=dtype)
    results = {}
    for device in ("cpu", "cuda"):
        layer = G.LaplacianResidual(0.3, normalization, learn_step=True).to(device)
        wd = w.to(device).requires_grad_(True)
        for _ in range(3):  # message passing, then the CSR pattern
            y = layer(x.to(device), ei.to(device), wd)
        (y * g.to(device)).sum().backward()
        bound = G.LaplacianResidual(0.3, normalization).bind(ei, w, num_nodes=42).to(device)
        results[device] = (y.detach().cpu(), wd.grad.cpu(), layer.theta.grad.cpu(), bound(x.to(device)).cpu())
    for a, b in zip(results["cpu"], results["cuda"], strict=True):
        torch.testing.assert_close(b, a, rtol=tol(dtype, 1e-4, 1e-10), atol=tol(dtype, 1e-5, 1e-12))


def test_bound_integer_weights_are_cast_at_each_call():
    ei = path(4)
    wi = torch.tensor([1, 1, 2, 2, 3, 3])
    bound = G.LaplacianResidual(0.2, None).bind(ei, wi)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(4, 2, dtype=dtype)
        for _ in range(2):
            y = bound(x)
            assert y.dtype == dtype
            torch.testing.assert_close(y, G.LaplacianResidual(0.2, None)(x, ei, wi.to(dtype)))
