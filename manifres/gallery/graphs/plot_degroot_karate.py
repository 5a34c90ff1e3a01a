"""
DeGroot consensus on the karate club
====================================

Zachary's karate club is a friendship network of 34 members that split into two clubs. Give
every member an opinion: positive in Mr. Hi's faction, negative in the Officer's. In the
**DeGroot** model every member repeatedly replaces their opinion by a mix of their own and the
average of their friends',

.. math:: x_i \\leftarrow (1 - \\alpha)\\,x_i + \\alpha \\sum_j \\frac{A_{ij}}{d_i} x_j,
   \\qquad\\text{i.e.}\\qquad X \\leftarrow (I - \\alpha L_{\\mathrm{rw}})\\,X,

a residual graph layer with the random-walk Laplacian. On a connected graph the opinions reach
a **consensus**, and it is not the plain average: since :math:`d^T(I - \\alpha L_{\\mathrm{rw}}) =
d^T`, the degree-weighted average :math:`\\sum_i d_i x_i / \\sum_i d_i` is conserved, so
well-connected members count more. The disagreement shrinks geometrically, at the rate
:math:`\\rho = \\max(|1 - \\alpha\\lambda_2|, |1 - \\alpha\\lambda_{\\max}|)` of
:func:`manifres.graph.consensus_rate`.
"""

import os

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch

from manifres.graph import DeGroot, consensus_rate

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
gen = torch.Generator().manual_seed(0)

# %%
# The graph and the initial opinions
# ----------------------------------
# networkx ships the karate club; manifres takes an ``edge_index`` with both directions of
# every undirected edge.

G = nx.karate_club_graph()
edges = torch.tensor(list(G.edges())).T
edge_index = torch.cat([edges, edges.flip(0)], dim=1)
faction = torch.tensor([1.0 if G.nodes[i]["club"] == "Mr. Hi" else -1.0 for i in G.nodes])
x0 = (faction * (0.3 + 0.7 * torch.rand(34, generator=gen))).double().unsqueeze(-1)  # (N, 1)

# %%
# The dynamics
# ------------
alpha = 0.5
model = DeGroot(edge_index, step=alpha)
steps = 120 if QUICK else 240
traj = model.simulate(x0, steps)[..., 0]  # (steps + 1, N)
target = float(model.consensus(x0))
rho = float(consensus_rate(alpha, edge_index, normalization="rw"))
d = model.degree
disagreement = torch.sqrt((d * (traj - target) ** 2).sum(-1) / d.sum())  # degree-weighted norm

# %%
# The figure
# ----------
pos = nx.spring_layout(G, seed=3)
fig, axes = plt.subplots(2, 2, figsize=(12, 9), layout="constrained")
norm = plt.Normalize(-1, 1)
for ax, k in ((axes[0, 0], 0), (axes[0, 1], 4)):
    nx.draw_networkx_edges(G, pos, ax=ax, alpha=0.3)
    nodes = nx.draw_networkx_nodes(
        G,
        pos,
        ax=ax,
        node_color=traj[k].numpy(),
        cmap="coolwarm",
        vmin=-1,
        vmax=1,
        node_size=30 + 25 * d.numpy(),
        edgecolors="k",
        linewidths=0.5,
    )
    ax.set_title(f"opinions after {k} steps" if k else "initial opinions (size: degree)")
    ax.set_axis_off()
fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="coolwarm"), ax=axes[0, :], shrink=0.8, label="opinion")

ax = axes[1, 0]
ks = np.arange(steps + 1)
for i in range(34):
    ax.plot(ks, traj[:, i].numpy(), color=plt.cm.coolwarm(norm(float(x0[i]))), lw=0.8)
ax.axhline(target, color="k", lw=2, label=f"degree-weighted average {target:+.3f}")
ax.axhline(float(x0.mean()), color="k", ls=":", lw=1.5, label=f"plain average {float(x0.mean()):+.3f}")
ax.set_xlim(0, 60)
ax.set_xlabel("step k")
ax.set_ylabel("opinion")
ax.set_title("every member's opinion")
ax.legend(fontsize=9)

ax = axes[1, 1]
ax.semilogy(ks, disagreement.numpy(), "o", ms=3, label="measured disagreement")
ax.semilogy(ks, float(disagreement[0]) * rho**ks, "k--", label=rf"$\rho^k$, $\rho$ = {rho:.3f}")
ax.set_xlabel("step k")
ax.set_ylabel(r"$\|x_k - \bar x\|_D$")
ax.set_title("geometric convergence to consensus")
ax.legend()

# %%
# Summary
# -------
SUMMARY = (
    f"karate club reaches consensus {target:+.3f} (degree-weighted; plain mean {float(x0.mean()):+.3f}); "
    f"disagreement x{float(disagreement[-1] / disagreement[0]):.0e} in {steps} steps, rate {rho:.3f}"
)
print(SUMMARY)
assert float((traj[-1] - target).abs().max()) < 1e-3
plt.show()
