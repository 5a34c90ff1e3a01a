"""
The step limit of graph diffusion
=================================

A graph residual layer :math:`X \\leftarrow X - \\alpha L X` multiplies the component of
:math:`X` along each Laplacian eigenvector by :math:`1 - \\alpha\\lambda_i`. All of them stay in
:math:`[-1, 1]` exactly when

.. math:: 0 < \\alpha \\le \\frac{2}{\\lambda_{\\max}(L)},

and one step beyond that limit the mode of :math:`\\lambda_{\\max}` is multiplied by
:math:`|1 - \\alpha\\lambda_{\\max}| > 1` at every layer: the diffusion explodes, and it does so
by flipping sign at every step (the multiplier is below :math:`-1`).

:func:`manifres.graph.max_stable_step` computes the limit, :class:`manifres.graph.LaplacianResidual`
is the layer (with ``certify=True`` it refuses an unstable step), and
:func:`manifres.stability.diffusion_stability` with :func:`manifres.stability.plots.plot_diffusion`
summarise one step size. We try steps just below and just above the limit on a bipartite
graph (a grid, whose top mode alternates in sign between the two colour classes) and on a
random graph.
"""

import os

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch

from manifres.errors import StabilityError
from manifres.graph import LaplacianResidual, lambda_max, max_stable_step
from manifres.stability import diffusion_stability
from manifres.stability.plots import plot_diffusion

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
steps = 80 if QUICK else 120


def edge_index_of(G):
    G = nx.convert_node_labels_to_integers(G)
    e = torch.tensor(list(G.edges())).T
    return torch.cat([e, e.flip(0)], dim=1), G.number_of_nodes()


graphs = {
    "bipartite grid 8x8": edge_index_of(nx.grid_2d_graph(8, 8)),
    "random G(80, 0.08)": edge_index_of(nx.gnp_random_graph(80, 0.08, seed=1)),
}
factors = [0.5, 0.9, 0.99, 1.01, 1.05, 1.2]

# %%
# Run the layer at steps around the limit
# ---------------------------------------
# The combinatorial Laplacian :math:`L = D - A` (``normalization=None``); start from random
# opinions and record :math:`\\|X_k\\|`.

runs = {}
for name, (ei, n) in graphs.items():
    limit = float(max_stable_step(ei, num_nodes=n))
    x0 = torch.randn(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for f in factors:
        layer = LaplacianResidual(f * limit, normalization=None)
        x, norms = x0, [float(x0.norm())]
        for _ in range(steps):
            x = layer(x, ei)
            norms.append(float(x.norm()))
        runs[name, f] = np.array(norms)
    runs[name, "limit"] = limit
    runs[name, "lambda_max"] = float(lambda_max(ei, num_nodes=n))

# %%
# The certified layer refuses the unstable step
# ---------------------------------------------
ei, n = graphs["random G(80, 0.08)"]
try:
    LaplacianResidual(1.01 * runs["random G(80, 0.08)", "limit"], normalization=None, certify=True)(
        torch.zeros(n, 1), ei
    )
except StabilityError as exc:
    print("StabilityError:", exc)

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
colors = plt.cm.RdYlBu_r(np.linspace(0, 1, len(factors)))
for ax, name in zip(axes[:2], graphs, strict=True):
    for f, c in zip(factors, colors, strict=True):
        ax.semilogy(runs[name, f], color=c, label=rf"$\alpha$ = {f:g} x limit")
    ax.set_title(f"{name}: limit 2/$\\lambda_{{\\max}}$ = {runs[name, 'limit']:.4f}")
    ax.set_xlabel("layer k")
    ax.set_ylabel(r"$\|X_k\|$")
    ax.legend(fontsize=8)

ax = axes[2]
fine = np.linspace(0.5, 1.25, 200)
ax.plot(
    fine,
    np.maximum(1, np.abs(1 - 2 * fine)),
    "--",
    color="0.4",
    lw=1,
    label=r"$\max_i |1 - \alpha\lambda_i| = \max(1, |1 - \alpha\lambda_{\max}|)$",
)
growth = {}  # measured growth factor per layer over the last 20 layers
for name, mk, size in zip(graphs, ("o", "s"), (11, 6), strict=True):
    growth[name] = [np.exp(np.log(runs[name, f][-1] / runs[name, f][-21]) / 20) for f in factors]
    ax.plot(factors, growth[name], mk, ms=size, label=f"measured, {name}")
ax.axhline(1, color="k", lw=0.8)
ax.axvline(1, color="C3", lw=0.8)
ax.set_xlabel(r"step $\alpha$ / limit")
ax.set_ylabel("growth factor per layer")
ax.set_title("growth per layer over the last 20 layers")
ax.legend(fontsize=8)

# %%
# The library's own summary of one step size
# ------------------------------------------
# :func:`~manifres.stability.diffusion_stability` returns the spectrum, the limit, the
# consensus rate and a simulated decay; :func:`~manifres.stability.plots.plot_diffusion` draws
# them. Here the random graph at 1.05 times its limit: the top of the spectrum leaves the
# stable band.

ds = diffusion_stability(ei, 1.05 * runs["random G(80, 0.08)", "limit"], num_nodes=n, simulate=40)
# plot_diffusion builds its Figure without pyplot: save it with fig2.savefig(path)
fig2 = plot_diffusion(ds, title="random graph, 1.05 x the step limit")

# %%
# Summary
# -------
i = factors.index(1.05)
grid_up, rnd_up = growth["bipartite grid 8x8"][i], growth["random G(80, 0.08)"][i]
rnd_down = runs["random G(80, 0.08)", 0.99][-1] / runs["random G(80, 0.08)", 0.99][0]
SUMMARY = (
    f"5% past 2/lambda_max every layer multiplies the norm by {grid_up:.3f} (grid) and {rnd_up:.3f} "
    f"(random graph), close to |1 - alpha lambda_max| = 1.1; 1% below it {steps} layers shrink it "
    f"x{rnd_down:.1e}"
)
print(SUMMARY)
assert grid_up > 1.02 and rnd_up > 1.02 and rnd_down <= 1 and not ds.stable
plt.show()
