"""
Depth profiles of manifold and graph residual flows
===================================================

A tangent-constrained residual layer :math:`x \\mapsto R_x(h\\,P_x F(x))` maps the sphere to
itself, so its Jacobian is a linear map between *tangent planes*: on :math:`S^2` a
:math:`2 \\times 2` matrix in orthonormal frames, not the :math:`3 \\times 3` ambient one (whose
extra direction, normal to the sphere, carries no information). The stability studies of
:mod:`manifres.stability` take exactly these Riemannian Jacobians for every layer of the
residual-step protocol (:mod:`manifres.nn.protocol`): per layer, the residual part
:math:`e_l = \\|J_l - I\\|_2` (measured against parallel transport, so a layer that only
transports has :math:`e_l = 0`), end to end the singular values of :math:`J_L \\cdots J_1` inside
Weyl's band :math:`\\prod_l (1 \\pm e_l)`, and the gradient of the loss with respect to each
layer's step :math:`h_l`, from autograd.

A stack with one shared step (:class:`~manifres.nn.TangentResidualStack`) reports that step's
gradient as per-layer shares that add up to the total. :func:`~manifres.stability.scale_sweep`
then turns the step up from a gentle flow to steps that wrap the sphere.

The same studies read a stack of graph residual layers :math:`X \\mapsto X - h L X`
(:class:`~manifres.graph.LaplacianResidual` bound to its graph): there the whole feature
matrix is one state, the Jacobian :math:`I - h (L \\otimes I_F)` couples the nodes, and the
sweep crosses the stability limit :math:`h = 2/\\lambda_{\\max}` where the end-to-end Jacobian
starts to grow.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

import manifres
from manifres.graph import LaplacianResidual, lambda_max
from manifres.graph.datasets import named_graph
from manifres.nn import AmbientMLPField, TangentResidualStack
from manifres.stability import depth_profile, scale_sweep

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
torch.manual_seed(0)

# %%
# A residual flow on the sphere
# -----------------------------
# Twelve (quick: eight) layers, each with its own small vector field, one shared learnable
# step :math:`h = 0.2`, the exponential map as retraction.

S = manifres.Sphere(2)
depth = 8 if QUICK else 12
fields = [AmbientMLPField(S, hidden=16, depth=1) for _ in range(depth)]
stack = TangentResidualStack(S, fields, step=0.2, learn_step=True).double()
x = S.random(16 if QUICK else 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
profile = depth_profile(stack, x)

# the per-layer step gradients are shares of the shared step's gradient (autograd check)
y = stack(x)
g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
(total,) = torch.autograd.grad((g * y).sum() / y.shape[0], stack.step)
assert profile.dim == S.dim == 2
assert abs(float(profile.step_grads.sum()) - float(total)) <= 1e-10 * max(1.0, abs(float(total)))
assert bool(profile.bound_holds.all())

# %%
# Turning the step up
# -------------------
# ``scale_sweep`` runs every layer at each step through ``forward_with_step``: the model
# itself is never modified.

steps = np.geomspace(0.02, 3.0, 7 if QUICK else 13)
before = stack.step.detach().clone()
sweep = scale_sweep(stack, x, steps.tolist())
assert torch.equal(stack.step.detach(), before)  # untouched
e = sweep.max_residual_norm.numpy()
assert bool((np.diff(e) > 0).all())  # the residual part grows with the step

# %%
# A stack of graph residual layers
# --------------------------------
# Ten diffusion layers :math:`X \mapsto X - h L X` with the combinatorial Laplacian of
# Zachary's karate club (34 members, 2 opinion features each): the state is the whole
# :math:`34 \times 2` matrix, so each Jacobian has 68 coordinates.

club = named_graph("karate")
lam = float(lambda_max(club.edge_index, num_nodes=club.num_nodes))
graph_layers = [
    LaplacianResidual(0.5 / lam, normalization=None).bind(club.edge_index, num_nodes=club.num_nodes)
    for _ in range(10)
]
graph_stack = torch.nn.Sequential(*graph_layers).double()
opinions = torch.randn(club.num_nodes, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
graph_profile = depth_profile(graph_stack, opinions)
assert graph_profile.dim == 68 and bool(graph_profile.bound_holds)
limit = 2.0 / lam
graph_steps = np.geomspace(0.05 * limit, 1.6 * limit, 6 if QUICK else 12)
graph_sweep = scale_sweep(graph_stack, opinions, graph_steps.tolist())
growth = graph_sweep.log_sigma_max.numpy()
assert bool((growth[graph_steps < limit] <= 1e-9).all())  # stable steps never amplify
assert bool((growth[graph_steps > 1.01 * limit] > 0).all())  # past the limit the stack grows

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
layers = np.arange(1, depth + 1)
ax = axes[0]
ax.bar(layers, profile.step_grads.numpy(), color="C0")
ax.axhline(0, color="0.6", lw=1)
ax.set_xlabel("layer")
ax.set_ylabel(r"$\partial L / \partial h_l$")
ax.set_title(f"shares of the step gradient (sum {float(total):.3g})")

ax = axes[1]
ln10 = np.log(10)
ax.semilogx(steps, sweep.log_upper_bound.numpy() / ln10, "C3--", label=r"$\log_{10}\prod_l(1 + e_l)$")
ax.semilogx(steps, sweep.log_sigma_max.numpy() / ln10, "C3o-", ms=4, label=r"$\log_{10}\sigma_{\max}$")
ax.semilogx(steps, sweep.log_sigma_min.numpy() / ln10, "C0o-", ms=4, label=r"$\log_{10}\sigma_{\min}$")
ax.axhline(0, color="0.7", lw=1)
ax.set_xlabel("step h")
ax.set_title("end-to-end Riemannian Jacobian (2 x 2)")
ax.legend(fontsize=8)

ax = axes[2]
ax.loglog(steps, e, "o-", color="C2", label=r"$\max_l e_l$ (left)")
ax.set_xlabel("step h")
ax.set_ylabel(r"$\max_l \|J_l - I\|_2$")
twin = ax.twinx()
twin.semilogx(steps, sweep.mean_grad_cosine.numpy(), "s-", color="C1", label="mean gradient cosine (right)")
twin.set_ylim(-1.05, 1.05)
twin.axhline(0, color="0.8", lw=1)
ax.set_title("residual part and gradient alignment")
handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower right")

ax = axes[3]
ax.semilogx(graph_steps, growth / ln10, "o-", color="C3", label=r"$\log_{10}\sigma_{\max}$, 10 layers")
ax.axvline(limit, color="0.3", ls="--", lw=1, label=r"$h = 2/\lambda_{\max}$")
ax.axhline(0, color="0.7", lw=1)
ax.set_xlabel("step h")
ax.set_title("graph diffusion stack on the karate club (68 x 68)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Summary
# -------
SUMMARY = (
    f"S^2 stack of {depth} layers: Jacobians {profile.dim}x{profile.dim}, step-gradient shares sum to "
    f"{float(profile.step_grads.sum()):.4g} (autograd {float(total):.4g}); max e_l {e[0]:.3g} at h = "
    f"{steps[0]:g} -> {e[-1]:.3g} at h = {steps[-1]:g}; karate diffusion stack "
    f"({graph_profile.dim} coordinates) grows only past h = 2/lambda_max = {limit:.4g}"
)
print(SUMMARY)
plt.show()
