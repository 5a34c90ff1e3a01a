"""The studies on the library's own layers, through the residual-step protocol.

For every layer kind, ``depth_profile(...).step_grads`` is the autograd derivative of the loss
with respect to each layer's step, and the Jacobians live in the manifold's tangent frames
(``manifold.dim`` coordinates). The references are computed here independently: a model with
one separate step Parameter per layer differentiated by plain autograd, and the dense ambient
Jacobian of the whole stack restricted to orthonormal tangent bases.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import manifres
from manifres.nn import (
    AmbientMLPField,
    DeadZoneResidual,
    LieAlgebraField,
    PostActResidual,
    Residual,
    TangentResidual,
    TangentResidualStack,
)
from manifres.stability import depth_profile, jacobian_spectrum, lyapunov_exponents, scale_sweep


def _loss_reference(model, x, seed=0, samples=None):
    y = model(x)
    g = torch.randn(y.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    return (g * y).sum() / (y.shape[0] if samples is None else samples)


def _separate_steps(layers):
    """The same layers with one fresh step Parameter each (the per-layer reference)."""
    params = [
        nn.Parameter(torch.as_tensor(layer.step, dtype=torch.float64).detach().clone()) for layer in layers
    ]

    def model(x):
        for layer, p in zip(layers, params, strict=True):
            x = layer.forward_with_step(x, p)
        return x

    return model, params


def _sphere_stack(time_dependent=False):
    torch.manual_seed(0)
    S = manifres.Sphere(2)
    fields = [AmbientMLPField(S, hidden=6, depth=1, time_dependent=time_dependent).double() for _ in range(4)]
    return S, TangentResidualStack(S, fields, step=0.3, learn_step=True).double()


def _so3_stack():
    torch.manual_seed(1)
    G = manifres.SpecialOrthogonal(3)
    fields = [LieAlgebraField(G, hidden=6, depth=1).double() for _ in range(3)]
    return G, TangentResidualStack(G, fields, step=0.4, learn_step=True).double()


@pytest.mark.parametrize("geometry", ["sphere", "sphere-time", "so3"])
def test_tangent_stack_step_grads_are_autograd_per_layer_and_sum_to_the_shared_step(geometry):
    M, stack = _so3_stack() if geometry == "so3" else _sphere_stack(geometry == "sphere-time")
    x = M.random(5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    prof = depth_profile(stack, x)
    model, params = _separate_steps(list(stack.layers))
    ref = torch.stack(torch.autograd.grad(_loss_reference(model, x), params))
    torch.testing.assert_close(prof.step_grads, ref, atol=1e-8, rtol=1e-8)
    # one shared step: the layers' shares add up to its gradient
    (total,) = torch.autograd.grad(_loss_reference(stack, x), stack.step)
    torch.testing.assert_close(prof.step_grads.sum(), total, atol=1e-8, rtol=1e-8)
    assert prof.dim == M.dim
    assert all(p.grad is None for p in stack.parameters())  # the study writes no .grad


@pytest.mark.parametrize("geometry", ["sphere", "so3"])
def test_tangent_layer_spectra_have_manifold_dim_entries(geometry):
    M, stack = _so3_stack() if geometry == "so3" else _sphere_stack()
    x = M.random(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    spec = jacobian_spectrum(stack.layers[0], x)
    assert spec.dim == M.dim
    assert spec.eigenvalues.shape == (4, M.dim) and spec.singular_values.shape == (4, M.dim)
    free = jacobian_spectrum(stack.layers[0], x, method="matrix_free")
    torch.testing.assert_close(free.singular_values, spec.singular_values, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("geometry", ["sphere", "so3"])
def test_end_to_end_singular_values_are_the_riemannian_ones(geometry):
    M, stack = _so3_stack() if geometry == "so3" else _sphere_stack()
    x = M.random(3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    prof = depth_profile(stack, x)
    ps = M.point_shape
    d = x[0].numel()
    for b in range(x.shape[0]):
        xb = x[b]
        jac = torch.autograd.functional.jacobian(lambda z: stack(z.reshape(ps)).reshape(-1), xb.reshape(-1))
        yb = stack(xb)
        a = M.tangent_basis(yb).mT @ jac.reshape(d, d) @ M.tangent_basis(xb)
        sv = torch.linalg.svdvals(a)
        assert a.shape == (M.dim, M.dim)
        torch.testing.assert_close(prof.log_sigma_max[b], sv[0].log(), atol=1e-10, rtol=0)
        torch.testing.assert_close(prof.log_sigma_min[b], sv[-1].log(), atol=1e-10, rtol=0)
    assert bool(prof.bound_holds.all())
    assert lyapunov_exponents(stack, x).exponents.shape == (M.dim,)


def test_a_transport_only_layer_has_unit_spectrum_and_zero_residual_norm():
    """A layer that moves along geodesics with a parallel field: J = transport, e_l = 0."""
    S = manifres.Sphere(2)
    x = S.random(4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    layer = TangentResidual(S, lambda z: torch.zeros_like(z), step=0.7)
    prof = depth_profile([layer], x)
    assert float(prof.residual_norms.max()) < 1e-12
    spec = jacobian_spectrum(layer, x)
    torch.testing.assert_close(spec.eigenvalues.real, torch.ones(4, 2, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["residual", "postact", "deadzone"])
def test_euclidean_block_step_grads_are_autograd_not_a_formula(kind):
    """For post-activation and dead-zone blocks dL/dh is not <dL/dy, F(x)>."""
    torch.manual_seed(6)
    if kind == "postact":
        blocks = [PostActResidual(4, hidden=5, activation="tanh", norm=None, step=0.7) for _ in range(3)]
    elif kind == "deadzone":
        blocks = [DeadZoneResidual(nn.Linear(4, 4), threshold=0.2, step=0.9) for _ in range(3)]
    else:
        blocks = [Residual(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), step=0.5) for _ in range(3)]
    stack = nn.Sequential(*blocks).double()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    prof = depth_profile(stack, x)
    model, params = _separate_steps(list(stack))
    ref = torch.stack(torch.autograd.grad(_loss_reference(model, x), params))
    torch.testing.assert_close(prof.step_grads, ref, atol=1e-10, rtol=1e-8)
    # the formula <dL/dy_l, F_l(x_l)> (what 0.1.0 reported) holds for x + a F(x) only
    ins, outs = [], []
    h = x.detach().requires_grad_()
    for b in stack:
        ins.append(h)
        h = b(h)
        outs.append(h)
    g = torch.randn(h.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(0))
    cots = torch.autograd.grad((g * h).sum() / h.shape[0], outs)
    with torch.no_grad():
        naive = torch.stack([(c * b.branch(i)).sum() for c, b, i in zip(cots, stack, ins, strict=True)])
    if kind == "residual":
        torch.testing.assert_close(naive, ref, atol=1e-10, rtol=1e-8)
    else:
        assert not torch.allclose(naive, ref, atol=1e-3, rtol=1e-2)
    assert prof.dim == 4


def test_scale_sweep_sweeps_tangent_layers_without_touching_them():
    S, stack = _sphere_stack()
    x = S.random(4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    before = [p.detach().clone() for p in stack.parameters()]
    sweep = scale_sweep(stack, x, [0.01, 0.1, 1.0])
    assert all(torch.equal(p, q) for p, q in zip(stack.parameters(), before, strict=True))
    assert float(stack.step.detach()) == pytest.approx(0.3)
    e = sweep.max_residual_norm
    assert bool((e[1:] > e[:-1]).all())  # the residual part grows with the step
    for h, prof in zip(sweep.steps.tolist(), sweep.profiles, strict=True):
        layers = [TangentResidual(S, lay.branch, h, index=lay.index) for lay in stack.layers]
        model, params = _separate_steps(layers)
        ref = torch.stack(torch.autograd.grad(_loss_reference(model, x), params))
        torch.testing.assert_close(prof.step_grads, ref, atol=1e-8, rtol=1e-8)


def test_train_mode_batch_norm_is_refused_and_its_statistics_do_not_move():
    block = Residual(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), step=0.5).double()
    x = torch.randn(8, 3, dtype=torch.float64)
    stats = block.branch[1].running_mean.clone()
    for study in (lambda: jacobian_spectrum(block, x), lambda: depth_profile([block], x)):
        with pytest.raises(manifres.errors.StabilityError, match="eval"):
            study()
    assert torch.equal(block.branch[1].running_mean, stats)
    block.eval()
    assert jacobian_spectrum(block, x).dim == 3


def test_empty_batches_give_empty_spectra():
    block = Residual(nn.Linear(3, 3), step=0.5).double()
    for method in ("dense", "matrix_free"):
        spec = jacobian_spectrum(block, torch.zeros(0, 3, dtype=torch.float64), method=method)
        assert spec.eigenvalues.shape == (0, 3) and spec.singular_values.shape == (0, 3)


@pytest.mark.parametrize("normalization", [None, "sym", "rw"])
def test_graph_stack_step_grads_are_autograd_and_jacobians_couple_the_nodes(normalization):
    """A stack of LaplacianResidual layers bound to a small graph: a map of the features alone,
    studied like any other stack (the whole (N, F) feature matrix is one state)."""
    from manifres.graph import LaplacianResidual
    from manifres.graph.datasets import named_graph

    g = named_graph("karate")
    base = 0.02 if normalization is None else 0.3
    layers = [
        LaplacianResidual(base * (1 + 0.2 * k), normalization=normalization).bind(
            g.edge_index, g.edge_weight, g.num_nodes
        )
        for k in range(3)
    ]
    stack = nn.Sequential(*layers).double()
    x = torch.randn(g.num_nodes, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    prof = depth_profile(stack, x)
    model, params = _separate_steps(layers)
    ref = torch.stack(torch.autograd.grad(_loss_reference(model, x, samples=1), params))
    torch.testing.assert_close(prof.step_grads, ref, atol=1e-8, rtol=1e-8)
    n_coords = g.num_nodes * 2
    assert prof.dim == n_coords and bool(prof.bound_holds)
    spec = jacobian_spectrum(layers[0], x)
    assert spec.eigenvalues.shape == (n_coords,)
    # the Jacobian of x - h L x is I - h (L kron I_F): its eigenvalues are 1 - h lambda_i(L)
    from manifres.graph import laplacian

    w64 = torch.ones(g.edge_index.shape[1], dtype=torch.float64)  # karate is unweighted
    lap = laplacian(g.edge_index, w64, num_nodes=g.num_nodes, normalization=normalization)
    lam = torch.linalg.eigvals(lap.to_dense().double()).real
    expected = torch.sort(torch.cat([1 - float(layers[0].step) * lam] * 2)).values
    torch.testing.assert_close(torch.sort(spec.eigenvalues.real).values, expected, atol=1e-10, rtol=0)
    sweep = scale_sweep(stack, x, [0.01, 0.1])
    assert bool(sweep.max_residual_norm[1] > sweep.max_residual_norm[0])
