"""Figures of the stability studies, drawn from their result records.

Every function takes a record from :mod:`manifres.stability.results` and returns a
:class:`matplotlib.figure.Figure`. matplotlib is imported on first use, and figures are built
without ``pyplot`` (no global figure manager, no GUI backend): save them with
``fig.savefig(path)``.

Examples
--------
>>> import torch
>>> from manifres.stability import weyl_band
>>> from manifres.stability.plots import plot_weyl
>>> fig = plot_weyl(weyl_band(0.3 * torch.randn(16, 4, 4, dtype=torch.float64)))
>>> type(fig).__name__, len(fig.axes)
('Figure', 1)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .results import (
    DepthProfile,
    DiffusionStability,
    GainMargin,
    JacobianSpectrum,
    LyapunovSpectrum,
    PatchInteraction,
    PlainResidualComparison,
    ScaleSweep,
    WeylBand,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "plot_spectrum",
    "plot_weyl",
    "plot_depth_profile",
    "plot_scale_sweep",
    "plot_plain_vs_residual",
    "plot_diffusion",
    "plot_gain_margin",
    "plot_patch_interaction",
]

_BLUE, _RED, _GREEN, _GREY, _ORANGE = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#ff7f0e"


def _figure(ncols: int, nrows: int = 1, width: float = 5.0, height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    fig.subplots(nrows, ncols, squeeze=False)
    return fig


def _np(t: torch.Tensor):
    return t.detach().cpu().double().numpy()


def plot_spectrum(spec: JacobianSpectrum, title: str | None = None) -> Figure:
    r"""Eigenvalues of :math:`J` in the complex plane and its singular values.

    Left: every sample's eigenvalues, the unit circle and the disc
    :math:`|z - 1| \le \max\|J - I\|_2` that contains them. Right: singular values (one line a
    sample, decreasing) inside the Weyl band :math:`[1 - e, 1 + e]`.

    Parameters
    ----------
    spec : JacobianSpectrum
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(2)
    ax, bx = fig.axes
    ev = spec.eigenvalues.reshape(-1)
    e = float(spec.residual_norm.max())
    t = torch.linspace(0, 2 * math.pi, 256, dtype=torch.float64)
    ax.plot(_np(torch.cos(t)), _np(torch.sin(t)), color=_GREY, lw=1, label="unit circle")
    ax.plot(
        _np(1 + e * torch.cos(t)),
        _np(e * torch.sin(t)),
        "--",
        color=_RED,
        lw=1,
        label=rf"$|z-1| = \max\|J-I\|_2 = {e:.3g}$",
    )
    ax.scatter(_np(ev.real), _np(ev.imag), s=12, color=_BLUE, label="eigenvalues of J", zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.axhline(0, color=_GREY, lw=0.5)
    ax.axvline(0, color=_GREY, lw=0.5)
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"eigenvalues ({spec.method}, dim {spec.dim})")
    sv = spec.singular_values.reshape(-1, spec.singular_values.shape[-1])
    idx = torch.arange(1, sv.shape[-1] + 1)
    for row in sv:
        bx.plot(_np(idx), _np(row), color=_BLUE, alpha=0.5, lw=1, marker=".")
    bx.axhline(1 + e, color=_RED, ls="--", lw=1, label=f"1 + e = {1 + e:.3g}")
    bx.axhline(max(1 - e, 0.0), color=_RED, ls=":", lw=1, label=f"max(1 - e, 0) = {max(1 - e, 0):.3g}")
    bx.axhline(1, color=_GREY, lw=0.5)
    from matplotlib.ticker import MaxNLocator

    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.set_xlabel("index i")
    bx.set_ylabel(r"$\sigma_i(J)$")
    bx.set_title("singular values inside the Weyl band")
    bx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_weyl(band: WeylBand, title: str | None = None) -> Figure:
    r"""Measured extreme singular values of :math:`I + W` against :math:`e = \|W\|_2`.

    The Weyl band :math:`1 - e \le \sigma_{\min} \le \sigma_{\max} \le 1 + e` is shaded; any
    violation is marked with a black cross.

    Parameters
    ----------
    band : WeylBand
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(1, width=6.5, height=4.5)
    (ax,) = fig.axes
    e = _np(band.epsilon.reshape(-1))
    smin, smax = _np(band.sigma_min.reshape(-1)), _np(band.sigma_max.reshape(-1))
    holds = band.holds.reshape(-1).cpu().numpy()
    grid = torch.linspace(0, float(e.max()) * 1.05 if e.size else 1.0, 64, dtype=torch.float64)
    ax.fill_between(
        _np(grid),
        _np((1 - grid).clamp(min=0)),
        _np(1 + grid),
        color=_GREY,
        alpha=0.15,
        label="Weyl band [1 - e, 1 + e]",
    )
    ax.plot(_np(grid), _np(1 + grid), color=_GREY, lw=1)
    ax.plot(_np(grid), _np(1 - grid), color=_GREY, lw=1)
    ax.scatter(e, smax, s=10, color=_RED, label=r"$\sigma_{\max}(I + W)$")
    ax.scatter(e, smin, s=10, color=_BLUE, label=r"$\sigma_{\min}(I + W)$")
    bad = ~holds
    if bad.any():
        ax.scatter(e[bad], smin[bad], marker="x", color="k", s=40, label="violation")
        ax.scatter(e[bad], smax[bad], marker="x", color="k", s=40)
    ax.axhline(0, color=_GREY, lw=0.5)
    ax.set_xlabel(r"$e = \|W\|_2$")
    ax.set_ylabel("singular value")
    ax.set_title(title or f"Weyl bound holds for {int(holds.sum())} of {holds.size} matrices")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_depth_profile(
    profile: DepthProfile, lyapunov: LyapunovSpectrum | None = None, title: str | None = None
) -> Figure:
    r"""Four panels of a stack's depth profile.

    (a) activation norms and per-layer forward gain; (b) gradient norms per layer (log10,
    parameters and activations); (c) cosines between consecutive layers' gradients; (d) the
    cumulative Weyl bounds :math:`\sum_{m \le l}\log(1 \pm e_m)` with the Lyapunov (QR) growth
    of each direction when given, and the end-to-end :math:`\log\sigma` at depth ``L``.

    Parameters
    ----------
    profile : DepthProfile
    lyapunov : LyapunovSpectrum, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(2, 2, width=5.5, height=3.8)
    ax, bx, cx, dx = fig.axes
    L = profile.depth
    layers = torch.arange(1, L + 1)
    ax.plot(
        _np(torch.arange(L + 1)), _np(profile.activation_norms), color=_BLUE, marker=".", label=r"$\|h_l\|$"
    )
    ax.set_xlabel("layer l")
    ax.set_ylabel(r"$\|h_l\|$", color=_BLUE)
    ax2 = ax.twinx()
    ax2.plot(_np(layers), _np(profile.forward_gain), color=_ORANGE, marker=".", lw=1, label="forward gain")
    ax2.axhline(1, color=_ORANGE, lw=0.5, ls=":")
    ax2.set_ylabel(r"gain $\|J_l\delta\| / \|\delta\|$", color=_ORANGE)
    ax.set_title("(a) forward amplification")

    bx.plot(
        _np(layers),
        _np(profile.log10_grad_norms),
        color=_RED,
        marker=".",
        label=r"$\|\partial L/\partial\theta_l\|$",
    )
    bx.plot(
        _np(torch.arange(L + 1)),
        _np(profile.log10_activation_grad_norms),
        color=_BLUE,
        marker=".",
        label=r"$\|\partial L/\partial h_l\|$",
    )
    bx.set_xlabel("layer l")
    bx.set_ylabel("log10 gradient norm")
    bx.set_title("(b) gradient norms")
    bx.legend(fontsize=8)

    if L > 1:
        cx.plot(
            _np(layers[:-1] + 0.5),
            _np(profile.grad_cosines),
            color=_RED,
            marker=".",
            label=r"cos($\partial_{\theta_l}$, $\partial_{\theta_{l+1}}$)",
        )
    cx.plot(
        _np(layers - 0.5),
        _np(profile.activation_grad_cosines),
        color=_BLUE,
        marker=".",
        label=r"cos($\partial_{h_{l-1}}$, $\partial_{h_l}$)",
    )
    cx.axhline(0, color=_GREY, lw=1)
    cx.set_ylim(-1.05, 1.05)
    cx.set_xlabel("layer l")
    cx.set_ylabel("cosine")
    cx.set_title("(c) consecutive-layer gradient alignment")
    cx.legend(fontsize=8)

    e = profile.residual_norms
    if not bool(torch.isnan(e).all()):
        up = torch.cumsum(torch.log1p(e.double()), 0)
        lo = torch.cumsum(torch.where(e < 1, torch.log1p(-e.double().clamp(max=1)), -math.inf), 0)
        dx.plot(_np(layers), _np(up), color=_RED, ls="--", label=r"$\sum\log(1 + e_l)$")
        finite = torch.isfinite(lo)
        if bool(finite.any()):
            dx.plot(_np(layers[finite]), _np(lo[finite]), color=_BLUE, ls="--", label=r"$\sum\log(1 - e_l)$")
        dx.scatter(
            [L],
            [float(profile.log_sigma_max.mean())],
            color=_RED,
            marker="o",
            zorder=3,
            label=r"end-to-end $\log\sigma_{\max}$",
        )
        dx.scatter(
            [L],
            [float(profile.log_sigma_min.mean())],
            color=_BLUE,
            marker="o",
            zorder=3,
            label=r"end-to-end $\log\sigma_{\min}$",
        )
    if lyapunov is not None and lyapunov.depth == L and L > 0:
        cum = lyapunov.cumulative
        for i in range(cum.shape[-1]):
            dx.plot(
                _np(layers),
                _np(cum[:, i]),
                color=_GREEN,
                lw=0.7,
                alpha=0.6,
                label="QR growth of each direction" if i == 0 else None,
            )
    dx.axhline(0, color=_GREY, lw=0.5)
    dx.set_xlabel("layer l")
    dx.set_ylabel("log growth")
    dx.set_title("(d) product bound vs measured growth")
    dx.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_scale_sweep(sweep: ScaleSweep, title: str | None = None) -> Figure:
    r"""Three panels against the step ``h`` (the residual scale; log axis).

    (a) :math:`\max_l\|J_l - I\|_2` and :math:`\max_l\rho(J_l)` with the lines 1;
    (b) end-to-end :math:`\log\sigma_{\max}` and :math:`\log\sigma_{\min}` with the bound
    :math:`\sum_l\log(1 + e_l)`, and the first-layer gradient norm; (c) mean cosine between
    consecutive layers' parameter gradients and the fraction of anti-aligned pairs.

    Parameters
    ----------
    sweep : ScaleSweep
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(3, width=4.8, height=4.0)
    ax, bx, cx = fig.axes
    a = _np(sweep.steps)
    ax.plot(a, _np(sweep.max_residual_norm), color=_RED, marker=".", label=r"$\max_l\|J_l - I\|_2$")
    ax.plot(a, _np(sweep.max_spectral_radius), color=_BLUE, marker=".", label=r"$\max_l\rho(J_l)$")
    ax.axhline(1, color=_GREY, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step h (residual scale)")
    ax.set_title("(a) per-layer Jacobians")
    ax.legend(fontsize=8)

    bx.plot(a, _np(sweep.log_upper_bound), color=_RED, ls="--", label=r"bound $\sum\log(1 + e_l)$")
    bx.plot(a, _np(sweep.log_sigma_max), color=_RED, marker=".", label=r"$\log\sigma_{\max}$")
    bx.plot(a, _np(sweep.log_sigma_min), color=_BLUE, marker=".", label=r"$\log\sigma_{\min}$")
    bx.plot(
        a,
        _np(sweep.log10_first_layer_grad_norm * math.log(10)),
        color=_GREEN,
        marker=".",
        label=r"$\log\|\partial L / \partial\theta_1\|$",
    )
    bx.axhline(0, color=_GREY, lw=0.5)
    bx.set_xscale("log")
    bx.set_xlabel("step h (residual scale)")
    bx.set_ylabel("natural log")
    bx.set_title("(b) end-to-end growth")
    bx.legend(fontsize=8)

    cx.plot(a, _np(sweep.mean_grad_cosine), color=_BLUE, marker=".", label="mean cos consecutive grads")
    cx.plot(a, _np(sweep.anti_aligned_fraction), color=_RED, marker=".", label="fraction anti-aligned")
    cx.axhline(0, color=_GREY, lw=0.5)
    cx.set_ylim(-1.05, 1.05)
    cx.set_xscale("log")
    cx.set_xlabel("step h (residual scale)")
    cx.set_title("(c) do consecutive layers fight?")
    cx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_plain_vs_residual(cmp: PlainResidualComparison, title: str | None = None) -> Figure:
    r"""First-layer gradient norm (log10) against depth, plain and residual stacks.

    Parameters
    ----------
    cmp : PlainResidualComparison
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(1, width=6.5, height=4.5)
    (ax,) = fig.axes
    d = cmp.depths
    act = cmp.activation
    for vals, color, name, dy in (
        (cmp.plain_log10_grad_norm, _RED, f"plain  h = {act}(W h + b)", -14),
        (cmp.residual_log10_grad_norm, _BLUE, f"residual  h = h + {cmp.step:g} {act}(W h + b)", 6),
    ):
        v = _np(vals)
        ax.plot(d, v, color=color, marker="o", label=name)
        for x, y in zip(d, v, strict=True):
            if math.isfinite(y):
                ax.annotate(
                    f"1e{y:+.1f}", (x, y), textcoords="offset points", xytext=(6, dy), fontsize=8, color=color
                )
    ax.margins(x=0.2, y=0.08)
    ax.axhline(0, color=_GREY, lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel(r"log10 $\|\partial L/\partial\theta_1\|$ (first layer)")
    ax.set_title(title or f"vanishing gradients: width {cmp.width}, same weights and input")
    ax.legend(fontsize=8)
    return fig


def plot_diffusion(ds: DiffusionStability, title: str | None = None) -> Figure:
    r"""Stability of :math:`I - h L` on a graph.

    Left: the multipliers :math:`1 - h\lambda_i` (from the spectrum when known, else from
    :math:`\lambda_2` and :math:`\lambda_{\max}`) against :math:`\lambda_i`, with the stable
    band :math:`[-1, 1]`. Middle: the consensus rate
    :math:`\max(|1 - s\lambda_2|, |1 - s\lambda_{\max}|)` against the step ``s``, with
    :math:`h` and :math:`2/\lambda_{\max}` marked. Right (after a simulation): the decay
    :math:`\|L x_k\| / \|L x_0\|` against :math:`\rho^k`.

    Parameters
    ----------
    ds : DiffusionStability
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = 3 if ds.decay is not None else 2
    fig = _figure(panels, width=4.8, height=4.0)
    ax, bx = fig.axes[:2]
    lam = (
        ds.eigenvalues
        if ds.eigenvalues is not None
        else torch.tensor([0.0, ds.lambda_2, ds.lambda_max], dtype=torch.float64)
    )
    lam = lam[torch.isfinite(lam)]
    mult = 1 - ds.step * lam
    ax.axhspan(-1, 1, color=_GREEN, alpha=0.1, label="stable band [-1, 1]")
    ok = mult.abs() <= 1 + 1e-12
    ax.scatter(_np(lam[ok]), _np(mult[ok]), color=_BLUE, s=14, label=r"$1 - h\lambda_i$")
    if bool((~ok).any()):
        ax.scatter(_np(lam[~ok]), _np(mult[~ok]), color=_RED, s=20, label="unstable modes")
    ax.axhline(0, color=_GREY, lw=0.5)
    ax.set_xlabel(r"Laplacian eigenvalue $\lambda_i$")
    ax.set_ylabel("multiplier of the step")
    verdict = {True: "stable", False: "UNSTABLE", None: "undecided"}[ds.stable]
    ax.set_title(rf"(a) $h = {ds.step:g}$: " + verdict)
    ax.legend(fontsize=8)

    top = max(1.5 * ds.max_step, 1.2 * ds.step) if math.isfinite(ds.max_step) else 2 * ds.step
    s = torch.linspace(0, top, 400, dtype=torch.float64)
    l2 = ds.lambda_2 if math.isfinite(ds.lambda_2) else 0.0
    rate = torch.maximum((1 - s * l2).abs(), (1 - s * ds.lambda_max).abs())
    bx.plot(_np(s), _np(rate), color=_BLUE, label="consensus rate")
    bx.axhline(1, color=_GREY, ls="--", lw=1)
    if math.isfinite(ds.max_step):
        bx.axvline(ds.max_step, color=_RED, ls="--", lw=1, label=rf"$2/\lambda_{{\max}} = {ds.max_step:.3g}$")
    bx.axvline(ds.step, color=_ORANGE, lw=1.5, label=rf"$h = {ds.step:g}$")
    bx.scatter([ds.step], [ds.consensus_rate], color=_ORANGE, zorder=3)
    bx.set_xlabel("step s")
    bx.set_ylabel(r"$\max(|1 - s\lambda_2|, |1 - s\lambda_{\max}|)$")
    bx.set_title(rf"(b) $\lambda_2 = {l2:.3g}$, $\lambda_{{\max}} = {ds.lambda_max:.3g}$")
    bx.legend(fontsize=8)

    if ds.decay is not None:
        cx = fig.axes[2]
        k = torch.arange(ds.decay.shape[0], dtype=torch.float64)
        cx.semilogy(
            _np(k), _np(ds.decay.clamp(min=1e-300)), color=_BLUE, marker=".", label=r"$\|L x_k\| / \|L x_0\|$"
        )
        cx.semilogy(
            _np(k),
            _np(torch.tensor(ds.consensus_rate, dtype=torch.float64) ** k),
            color=_RED,
            ls="--",
            label=rf"$\rho^k$, $\rho = {ds.consensus_rate:.3g}$",
        )
        cx.set_xlabel("step k")
        cx.set_title("(c) simulated disagreement")
        cx.legend(fontsize=8)
    n = f"{ds.num_nodes} nodes, {ds.num_edges} edges, normalization={ds.normalization!r}"
    fig.suptitle(title + f" ({n})" if title else n)
    return fig


def plot_gain_margin(gm: GainMargin, k_max: float | None = None, title: str | None = None) -> Figure:
    r"""The stable gains of a feedback policy.

    Left: :math:`\rho(J - kBK)` against the gain :math:`k \in [0, k_{\max}]` with the stable
    intervals shaded and the line 1. Right: the eigenvalues of :math:`J - kBK` in the complex
    plane, coloured by :math:`k`, the unit circle, and a cross where each boundary crosses it.

    Parameters
    ----------
    gm : GainMargin
    k_max : float, optional
        Right end of the gain axis (default: 1.3 times the largest finite boundary, or 1).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(2, width=5.0, height=4.2)
    ax, bx = fig.axes
    top = k_max if k_max is not None else 1.3 * max(gm.boundaries, default=0.0) or 1.0
    ks = torch.linspace(0.0, top, 400, dtype=torch.float64)
    for i, (lo, hi) in enumerate(gm.intervals):
        label = "stable gains" if i == 0 else None
        ax.axvspan(lo, min(hi, top), color=_GREEN, alpha=0.15, label=label)
    ax.plot(_np(ks), _np(gm.radius(ks)), color="k", label=r"$\rho(J - kBK)$")
    ax.axhline(1, color=_GREY, ls="--", lw=1)
    ax.set_xlabel("gain k")
    ax.set_ylabel("spectral radius")
    ax.set_title("(a) " + (", ".join(f"({lo:.4g}, {hi:.4g})" for lo, hi in gm.intervals) or "no stable gain"))
    ax.legend(fontsize=8)

    t = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
    bx.plot(_np(torch.cos(t)), _np(torch.sin(t)), color=_GREY, lw=1)
    ev = torch.linalg.eigvals(gm.jacobian - ks[:, None, None] * gm.direction)
    colour = _np(ks.repeat_interleave(ev.shape[-1]))
    sc = bx.scatter(_np(ev.real.reshape(-1)), _np(ev.imag.reshape(-1)), c=colour, s=3, cmap="viridis")
    for ang in gm.crossing_angles:
        bx.plot([math.cos(ang)] * 2, [math.sin(ang), -math.sin(ang)], "x", color=_RED, ms=8)
    fig.colorbar(sc, ax=bx, label="gain k")
    bx.set_aspect("equal")
    bx.set_xlabel("Re")
    bx.set_ylabel("Im")
    bx.set_title("(b) eigenvalues of J - kBK")
    if title:
        fig.suptitle(title)
    return fig


def plot_patch_interaction(r: PatchInteraction, title: str | None = None) -> Figure:
    r"""Sizes (Frobenius norms) of the parts of patches applied in order: identity, first order,
    interaction and order dependence, as bars.

    Parameters
    ----------
    r : PatchInteraction
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(1, width=5.5, height=4.0)
    (ax,) = fig.axes
    names = ("identity", "first_order", "interaction", "order_dependence")
    sizes = [float(torch.linalg.vector_norm(getattr(r, k).double())) for k in names]
    ax.bar(range(4), sizes, color=[_GREY, _BLUE, _RED, _GREEN])
    ax.set_xticks(range(4), [k.replace("_", " ") for k in names])
    ax.set_yscale("log")
    ax.set_ylabel("Frobenius norm")
    ax.set_title(f"interaction / first order = {r.relative_interaction:.3g}")
    if title:
        fig.suptitle(title)
    return fig
