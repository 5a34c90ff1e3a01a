"""
Geodesic residual flow on the sphere
====================================

A tangent residual layer maps a point to :math:`x \\mapsto R_x(h\\,P_x F(x))`: the correction
:math:`F(x)` is projected onto the tangent space, scaled by the step :math:`h`, and a retraction
:math:`R` brings the result back onto the sphere. A stack of :math:`L` such layers is the
explicit Euler method for :math:`x' = F(x)`.

Here :math:`F` is the velocity field of a family of great circles travelled at constant speed
(:func:`manifres.flows.problems.sphere_geodesic`). With the **exponential map** as retraction
each layer moves exactly along the geodesic, so the stack reproduces the exact flow to rounding
whatever the step. The **projective retraction** :math:`(x + v)/\\|x + v\\|` only agrees with
the exponential map to second order: every layer falls short by :math:`O(h^3)`, and the
shortfall accumulates along the stack.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from manifres.flows import problems
from manifres.nn import TangentResidualStack

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
torch.manual_seed(0)

# %%
# The problem: one point on a great circle, speed 1.3, one full turn
# ------------------------------------------------------------------
# The problem object carries the manifold, the field and the exact solution.

p = problems.sphere_geodesic(dtype=torch.float64, batch=1)
S = p.manifold
T = 2 * np.pi / 1.3  # one full turn of the great circle

# %%
# Two stacks of L layers, one per retraction
# ------------------------------------------
# ``return_trajectory=True`` returns every layer's output, so we can compare layer ``k`` with
# the exact solution at time :math:`t_k = k h`.


def run(depth, retraction):
    h = T / depth
    net = TangentResidualStack(S, p.field, step=h, depth=depth, retraction=retraction, return_trajectory=True)
    with torch.no_grad():
        traj = net(p.x0)  # (depth + 1, 1, 3)
    times = torch.arange(depth + 1, dtype=torch.float64) * h
    exact = torch.stack([p.exact(t) for t in times])
    err = S.dist(traj, exact)[:, 0]  # geodesic error after each layer
    return traj[:, 0], exact[:, 0], err


depths = (12, 48) if QUICK else (12, 48, 192)
results = {(L, r): run(L, r) for L in depths for r in ("exp", "projective")}

# %%
# The per-step defect of the projective retraction
# ------------------------------------------------
# :func:`~manifres.flows.problems.retraction_defect` measures
# :math:`\max\|R_x(hv) - \exp_x(hv)\|` for a few step sizes and fits the slope: 3 for a
# second-order retraction.

x = S.random(64, dtype=torch.float64)
v = S.random_tangent(x)
v = v / S.norm(x, v)[..., None]  # unit speed
hs = np.geomspace(0.01, 1.0, 7 if QUICK else 13)
defect = problems.retraction_defect(S, x, v, "projective", hs=tuple(hs))

# %%
# The figure
# ----------
# Left: the exact great circle and the two 12-layer stacks. Middle: the error after each layer,
# for several depths (the exponential map stays at rounding level, ~1e-16). Right: the
# one-step defect against the step, with slope 3.

fig = plt.figure(figsize=(15, 4.8))
ax = fig.add_subplot(1, 3, 1, projection="3d")
ax.set_proj_type("ortho")
u, w = np.mgrid[0 : 2 * np.pi : 40j, 0 : np.pi : 20j]
ax.plot_wireframe(np.cos(u) * np.sin(w), np.sin(u) * np.sin(w), np.cos(w), color="0.85", lw=0.5)
L0 = depths[0]
traj_exp, exact, _ = results[(L0, "exp")]
traj_proj, _, _ = results[(L0, "projective")]
fine = torch.stack([p.exact(t) for t in torch.linspace(0, T, 200, dtype=torch.float64)])[:, 0]
ax.plot(*fine.T.numpy(), color="k", lw=1, label="exact great circle")
ax.plot(*traj_exp.T.numpy(), "o", color="C0", ms=6, label=f"exp retraction, {L0} layers")
ax.plot(*traj_proj.T.numpy(), "s", color="C3", ms=5, label=f"projective, {L0} layers")
for a, b in zip(traj_exp.numpy(), traj_proj.numpy(), strict=True):
    ax.plot(*np.stack([a, b]).T, color="C3", lw=0.8, alpha=0.6)  # how far behind each layer is
normal = np.cross(exact[0].numpy(), exact[3].numpy())  # look at the circle from 35 degrees off its axis
elev = np.degrees(np.arcsin(normal[2] / np.linalg.norm(normal)))
ax.view_init(elev=elev - 35 if elev > 0 else elev + 35, azim=np.degrees(np.arctan2(normal[1], normal[0])))
ax.set_box_aspect((1, 1, 1), zoom=1.3)
ax.set_axis_off()
ax.legend(loc="lower left", fontsize=8)
ax.set_title("a stack of tangent residual layers on $S^2$")

ax = fig.add_subplot(1, 3, 2)
floor = 1e-17  # exact zeros drawn at the floor of the log axis
for i, L in enumerate(depths):
    for r, style in (("exp", "-"), ("projective", "--")):
        err = results[(L, r)][2].numpy()
        ax.semilogy(np.arange(L + 1) / L, np.maximum(err, floor), style, color=f"C{i}", label=f"{r}, L={L}")
ax.set_xlabel("layer k / L  (fraction of the turn)")
ax.set_ylabel("geodesic error $d(x_k, x(t_k))$")
ax.set_title("error after each layer")
ax.legend(fontsize=8, ncol=2)

ax = fig.add_subplot(1, 3, 3)
ax.loglog(defect.steps, defect.errors, "o-", color="C3", label=f"projective (slope {defect.slope:.2f})")
ax.loglog(hs, hs**3 / 3, "k:", label="$h^3/3$")
ax.set_xlabel("step h")
ax.set_ylabel(r"$\max \|R_x(hv) - \exp_x(hv)\|$")
ax.set_title("one-step defect of the projective retraction")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# What the numbers say
# --------------------
e_exp = max(float(results[(L, "exp")][2].max()) for L in depths)
e_proj = float(results[(L0, "projective")][2][-1])
SUMMARY = (
    f"exp-map stack follows the great circle to {e_exp:.1e} rad; the projective stack ends "
    f"{e_proj:.2f} rad short after {L0} layers (one-step defect slope {defect.slope:.2f})"
)
print(SUMMARY)
assert e_exp < 1e-12 and e_proj > 0.1 and abs(defect.slope - 3) < 0.2
plt.show()
