"""Ready-made stability studies: seeded models, the analysis, a JSON payload and a figure.

Each ``*_study`` function builds its own small model or graph from plain parameters, runs the
analysis functions of :mod:`manifres.stability` and returns a :class:`Study`. The ``manifres
study`` command is a thin shell around them; they are also usable from Python.

The JSON payload (:meth:`Study.payload`) has a stable layout::

    {"schema": "manifres.stability.study", "schema_version": 1, "study": "<name>",
     "manifres_version": "...", "torch_version": "...", "params": {...}, "results": {...}}

where ``results`` maps names to the ``to_dict()`` of the result records (see
:mod:`manifres.stability.results`; non-finite numbers are ``null``). Fields may be added in a
later version of the same ``schema_version``; none is renamed or removed without bumping it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import DeviceError, UnknownChoiceError
from ..graph.datasets import GRAPH_NAMES, named_graph, read_edge_list
from ._models import make_layers, plain_stack, residual_stack
from .depth import depth_profile, lyapunov_exponents
from .diffusion import diffusion_stability
from .results import to_plain
from .sweep import compare_plain_residual, scale_sweep
from .weyl import weyl_band

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "STUDIES",
    "Study",
    "resolve_device",
    "depth_study",
    "weyl_study",
    "diffusion_study",
    "plain_vs_residual_study",
    "scale_study",
]

SCHEMA = "manifres.stability.study"
SCHEMA_VERSION = 1

#: Names of the built-in studies (``manifres study <name>``).
STUDIES = ("depth", "weyl", "diffusion", "plain-vs-residual", "scale")


@dataclass(frozen=True, eq=False)
class Study:
    """The outcome of one study: parameters, result records, a figure factory, a summary."""

    name: str
    params: dict[str, Any]
    results: dict[str, Any]
    draw: Callable[[], Figure] = field(repr=False)
    summary: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        """JSON-safe dictionary (see the module notes for the layout)."""
        from .. import __version__

        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "study": self.name,
            "manifres_version": __version__,
            "torch_version": torch.__version__,
            "params": to_plain(self.params),
            "results": to_plain(self.results),
        }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``torch.device(device)``, checking that CUDA is there when asked for.

    Raises
    ------
    DeviceError
        For an unknown device string, or CUDA (MPS) without a CUDA (MPS) device.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {device!r} asked for, but CUDA is not available here "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r} asked for, but MPS is not available here")
    return dev


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "float64": torch.float64}
    if dtype not in table:
        raise UnknownChoiceError(f"unknown dtype {dtype!r}; valid names: float32, float64")
    return table[dtype]


def _input(batch: int, width: int, dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 12345)
    return torch.randn(batch, width, dtype=dtype, generator=gen).to(device)


def depth_study(
    *,
    width: int = 16,
    depth: int = 64,
    scale: float = 0.5,
    activation: str = "tanh",
    batch: int = 8,
    plain: bool = False,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float64,
    device: str | torch.device | None = "cpu",
) -> Study:
    r"""Depth profile and QR growth rates of a residual (or plain) tanh stack.

    Layers :math:`h \mapsto h + a\,\phi(W_l h + b_l)` (or :math:`\phi(W_l h + b_l)` with
    ``plain=True``), torch's default ``nn.Linear`` initialisation, seeded.

    Examples
    --------
    >>> s = depth_study(width=4, depth=3, batch=2)
    >>> sorted(s.results), s.params["depth"]
    (['lyapunov', 'profile'], 3)
    """
    dt, dev = _dtype(dtype), resolve_device(device)
    layers = make_layers(width, depth, activation, dt, dev, seed)
    stack = plain_stack(layers) if plain else residual_stack(layers, scale)
    x = _input(batch, width, dt, dev, seed)
    prof = depth_profile(stack, x, seed=seed)
    lyap = lyapunov_exponents(stack, x, seed=seed)
    params = dict(
        width=width,
        depth=depth,
        scale=scale,
        activation=activation,
        batch=batch,
        plain=plain,
        seed=seed,
        dtype=dt,
        device=str(dev),
    )
    kind = "plain" if plain else f"residual (a = {scale:g})"
    summary = (
        f"{kind} {activation} stack, depth {depth}, width {width}",
        f"end-to-end log sigma_max = {float(prof.log_sigma_max.mean()):.4g} "
        f"(bound {float(prof.log_upper_bound.mean()):.4g}), log sigma_min = "
        f"{float(prof.log_sigma_min.mean()):.4g} (bound {float(prof.log_lower_bound.mean()):.4g})",
        f"first-layer gradient norm 1e{float(prof.log10_grad_norms[0]):.2f}, "
        f"largest Lyapunov exponent {float(lyap.exponents[0]):.4g} per layer",
    )

    def draw() -> Figure:
        from .plots import plot_depth_profile

        return plot_depth_profile(prof, lyap, title=f"depth profile: {summary[0]}")

    return Study("depth", params, {"profile": prof, "lyapunov": lyap}, draw, summary)


WEYL_FAMILIES = ("gaussian", "symmetric", "skew", "rank-one")


def weyl_study(
    *,
    width: int = 32,
    samples: int = 256,
    max_norm: float = 2.0,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float64,
    device: str | torch.device | None = "cpu",
) -> Study:
    r"""The Weyl bound on random residual matrices ``W`` of norms spread over ``(0, max_norm]``.

    Four families in turn: Gaussian, symmetric (the bound is attained at both ends),
    skew-symmetric (:math:`\sigma_{\min}(I + W) \ge 1`: the lower bound is loose) and rank one
    (:math:`\sigma_{\min} = 1` for ``width > 1``), each scaled to :math:`\|W\|_2 = e_i`.

    Examples
    --------
    >>> s = weyl_study(width=3, samples=8)
    >>> s.results["band"].all_hold
    True
    """
    dt, dev = _dtype(dtype), resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(samples, width, width, dtype=torch.float64, generator=gen)
    fam = torch.arange(samples) % len(WEYL_FAMILIES)
    sym = 0.5 * (g + g.mT)
    skew = 0.5 * (g - g.mT)
    u = g[..., :, :1] @ g[..., :1, :]
    w = torch.where((fam == 0)[:, None, None], g, sym)
    w = torch.where((fam == 2)[:, None, None], skew, w)
    w = torch.where((fam == 3)[:, None, None], u, w)
    norms = max_norm * torch.arange(1, samples + 1, dtype=torch.float64) / samples
    w = w * (norms / torch.linalg.matrix_norm(w, ord=2))[:, None, None]
    band = weyl_band(w.to(dt).to(dev))
    params = dict(
        width=width,
        samples=samples,
        max_norm=max_norm,
        seed=seed,
        dtype=dt,
        device=str(dev),
        families=list(WEYL_FAMILIES),
    )
    nhold = int(band.holds.sum())
    gap = torch.minimum(band.sigma_min - band.lower, band.upper - band.sigma_max)
    summary = (
        f"Weyl bound holds for {nhold} of {samples} random {width}x{width} matrices",
        f"smallest distance to the band edge: {float(gap.min()):.3g} (negative = violation; "
        f"tolerance {band.tol:.2g} (1 + e))",
    )

    def draw() -> Figure:
        from .plots import plot_weyl

        return plot_weyl(band)

    return Study("weyl", params, {"band": band, "family": [WEYL_FAMILIES[i] for i in fam]}, draw, summary)


def diffusion_study(
    *,
    graph: str = "karate",
    nodes: int = 20,
    alpha: float = 1.0,
    normalization: str | None = "sym",
    steps: int = 30,
    seed: int = 0,
) -> Study:
    r"""Stability and consensus rate of :math:`x \mapsto (I - \alpha L)x` on a graph.

    ``graph`` is one of :data:`~manifres.graph.datasets.GRAPH_NAMES` (with ``nodes``) or the
    path of an edge-list file (see :func:`~manifres.graph.datasets.read_edge_list`).

    Raises
    ------
    UnknownChoiceError
        If ``graph`` is neither a known name nor an existing file.
    GraphError
        For a malformed edge-list file.

    Examples
    --------
    >>> s = diffusion_study(graph="cycle", nodes=6, alpha=0.5, normalization=None, steps=0)
    >>> s.results["stability"].stable, round(s.results["stability"].max_step, 6)
    (True, 0.5)
    """
    if graph in GRAPH_NAMES:
        g = named_graph(graph, nodes)
    elif os.path.isfile(graph):
        g = read_edge_list(graph)
    else:
        raise UnknownChoiceError(
            f"graph {graph!r} is neither a known graph ({', '.join(GRAPH_NAMES)}) nor an "
            "existing edge-list file"
        )
    ds = diffusion_stability(
        g.edge_index,
        alpha,
        normalization,
        edge_weight=g.edge_weight,
        num_nodes=g.num_nodes,
        steps=steps,
        seed=seed,
    )
    params = dict(
        graph=graph,
        graph_name=g.name,
        nodes=g.num_nodes,
        alpha=alpha,
        normalization=normalization,
        steps=steps,
        seed=seed,
    )
    summary = (
        f"{g.name}: {ds.num_nodes} nodes, {ds.num_edges} edges, normalization={normalization!r}",
        f"lambda_max = {ds.lambda_max:.6g}, lambda_2 = {ds.lambda_2:.6g}, max stable step "
        f"2/lambda_max = {ds.max_step:.6g}",
        f"alpha = {alpha:g}: {'stable' if ds.stable else 'UNSTABLE'}, consensus rate "
        f"{ds.consensus_rate:.6g} per step",
    )

    def draw() -> Figure:
        from .plots import plot_diffusion

        return plot_diffusion(ds, title=f"graph diffusion on {g.name}")

    return Study("diffusion", params, {"stability": ds}, draw, summary)


def plain_vs_residual_study(
    *,
    depths: Sequence[int] = (10, 100, 1000),
    width: int = 32,
    scale: float = 1.0,
    activation: str = "tanh",
    batch: int = 16,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float64,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
) -> Study:
    r"""First-layer gradient norm against depth for a plain and a residual stack
    (see :func:`~manifres.stability.compare_plain_residual`).

    Examples
    --------
    >>> s = plain_vs_residual_study(depths=(2, 4), width=4, batch=2)
    >>> s.results["comparison"].depths
    [2, 4]
    """
    dt, dev = _dtype(dtype), resolve_device(device)
    cmp = compare_plain_residual(
        depths,
        width,
        step=scale,
        activation=activation,
        batch=batch,
        dtype=dt,
        device=dev,
        seed=seed,
        progress=progress,
    )
    params = dict(
        depths=list(cmp.depths),
        width=width,
        scale=scale,
        activation=activation,
        batch=batch,
        seed=seed,
        dtype=dt,
        device=str(dev),
    )
    lines = [
        f"first-layer gradient norm, width {width}, {activation}, residual scale {scale:g}:",
        f"{'depth':>8} {'plain':>12} {'residual':>12}",
    ]
    for i, d in enumerate(cmp.depths):
        lines.append(
            f"{d:>8} {_sci(cmp.plain_log10_grad_norm[i]):>12} {_sci(cmp.residual_log10_grad_norm[i]):>12}"
        )

    def draw() -> Figure:
        from .plots import plot_plain_vs_residual

        return plot_plain_vs_residual(cmp)

    return Study("plain-vs-residual", params, {"comparison": cmp}, draw, tuple(lines))


def _sci(log10: torch.Tensor) -> str:
    v = float(log10)
    if not math.isfinite(v):
        return "0" if v < 0 else "inf"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"


def scale_study(
    *,
    width: int = 16,
    depth: int = 32,
    min_scale: float = 0.01,
    max_scale: float = 10.0,
    num_scales: int = 13,
    activation: str = "tanh",
    batch: int = 8,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float64,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
) -> Study:
    r"""Sweep of the residual scale ``a`` over a log-spaced grid on one residual tanh stack
    (see :func:`~manifres.stability.scale_sweep`).

    Examples
    --------
    >>> s = scale_study(width=4, depth=3, num_scales=2, batch=2)
    >>> s.results["sweep"].steps.shape
    torch.Size([2])
    """
    dt, dev = _dtype(dtype), resolve_device(device)
    layers = make_layers(width, depth, activation, dt, dev, seed)
    stack = residual_stack(layers, 1.0)
    x = _input(batch, width, dt, dev, seed)
    scales = torch.logspace(math.log10(min_scale), math.log10(max_scale), num_scales, dtype=torch.float64)
    sweep = scale_sweep(stack, x, scales.tolist(), seed=seed, progress=progress)
    params = dict(
        width=width,
        depth=depth,
        min_scale=min_scale,
        max_scale=max_scale,
        num_scales=num_scales,
        activation=activation,
        batch=batch,
        seed=seed,
        dtype=dt,
        device=str(dev),
    )
    lines = [
        f"residual {activation} stack, depth {depth}, width {width}:",
        f"{'a':>8} {'max e_l':>9} {'log smax':>9} {'bound':>9} {'mean cos':>9} {'anti':>6}",
    ]
    for i in range(num_scales):
        lines.append(
            f"{float(sweep.steps[i]):>8.3g} {float(sweep.max_residual_norm[i]):>9.3g} "
            f"{float(sweep.log_sigma_max[i]):>9.3g} {float(sweep.log_upper_bound[i]):>9.3g} "
            f"{float(sweep.mean_grad_cosine[i]):>9.3f} {float(sweep.anti_aligned_fraction[i]):>6.2f}"
        )

    def draw() -> Figure:
        from .plots import plot_scale_sweep

        return plot_scale_sweep(sweep, title=f"residual scale sweep: {lines[0][:-1]}")

    return Study("scale", params, {"sweep": sweep}, draw, tuple(lines))
