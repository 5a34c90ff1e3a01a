r"""Ready-made stability studies: seeded models, the analysis, a JSON payload and a figure.

Each ``*_study`` function checks its plain parameters, builds its own small model or graph,
runs the analysis functions of :mod:`manifres.stability` and returns a :class:`Study`: the
parameters, the result records and a figure factory. Studies return data and never format
text; the ``manifres study`` command is a thin shell that prints their summaries.
:data:`STUDIES` maps the command's study names to the functions.

The JSON payload (:meth:`Study.payload`) has a stable layout::

    {"schema": "manifres.stability.study", "schema_version": 2, "study": "<name>",
     "manifres_version": "...", "torch_version": "...", "params": {...}, "results": {...}}

where ``results`` maps names to the ``to_dict()`` of the result records (see
:mod:`manifres.stability.results`; non-finite numbers are ``null``). Fields may be added in a
later version of the same ``schema_version``; none is renamed or removed without bumping it.
Version 2 (manifres 0.2) renamed the residual scale to the step everywhere: ``params`` has
``step`` (``min_step``, ``max_step``, ``num_steps``) where version 1 had ``scale``
(``min_scale``, ``max_scale``, ``num_scales``), and the results have ``step_grads``,
``steps``, ``mean_abs_step_grad``, ``step_grad_sign_flips`` and ``step`` where version 1 had
``scale_grads``, ``scales``, ``mean_abs_scale_grad``, ``scale_grad_sign_flips`` and ``scale``;
depth profiles gained ``dim``.

Limits
------
Every parameter is checked before anything runs (:class:`~manifres.errors.ParameterError`):
numbers must be finite and in range, counts at least 1, depths at most :data:`MAX_DEPTH`,
other counts at most :data:`MAX_COUNT`, steps and norms at most :data:`MAX_STEP` in size,
seeds in ``[0, MAX_SEED]``, and the numbers a study holds at once (weights, activations,
Jacobians) at most :data:`MAX_NUMBERS`; a named graph has at most :data:`MAX_GRAPH_EDGES`
edges.

Examples
--------
>>> s = STUDIES["weyl"](width=3, samples=8)
>>> s.name, s.payload()["schema_version"], s.results["band"].all_hold
('weyl', 2, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .._deprecation import UNSET, renamed_kwargs
from .._validation import SUPPORTED_DTYPES, check_choice, check_int, check_real
from ..errors import DeviceError, ParameterError, UnknownChoiceError
from ..graph.datasets import GRAPH_NAMES, named_graph, read_edge_list
from ..stability._models import make_layers, plain_stack, residual_stack
from ..stability.depth import depth_profile, lyapunov_exponents
from ..stability.diffusion import diffusion_stability
from ..stability.jacobian import DENSE_LIMIT
from ..stability.results import to_plain
from ..stability.sweep import compare_plain_residual, scale_sweep
from ..stability.weyl import weyl_band

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "STUDIES",
    "MAX_DEPTH",
    "MAX_COUNT",
    "MAX_STEP",
    "MAX_SEED",
    "MAX_NUMBERS",
    "MAX_GRAPH_EDGES",
    "WEYL_FAMILIES",
    "Study",
    "depth_study",
    "weyl_study",
    "diffusion_study",
    "plain_vs_residual_study",
    "scale_study",
]

SCHEMA = "manifres.stability.study"
SCHEMA_VERSION = 2

#: Largest depth of a study's stack (one Python module per layer).
MAX_DEPTH = 100_000
#: Largest batch, sample, node, step or grid count.
MAX_COUNT = 1_000_000
#: Largest size of a residual step, a diffusion step or a matrix norm.
MAX_STEP = 1e6
#: Largest seed.
MAX_SEED = 2**32 - 1
#: Most numbers a study may hold at once (2 GiB in float64).
MAX_NUMBERS = 2**28
#: Most edges of a named graph.
MAX_GRAPH_EDGES = 1_000_000

#: Matrix families of :func:`weyl_study`, in turn.
WEYL_FAMILIES = ("gaussian", "symmetric", "skew", "rank-one")


@dataclass(frozen=True, eq=False)
class Study:
    """The outcome of one study: its name, parameters, result records and a figure factory.

    Attributes
    ----------
    name : str
        The study's name in :data:`STUDIES`.
    params : dict
        The parameters it ran with (see the module notes for the step's two names).
    results : dict
        Result records of :mod:`manifres.stability.results` (and plain data).
    draw : callable
        ``draw() -> matplotlib.figure.Figure``, the study's figure (needs matplotlib).
    """

    name: str
    params: dict[str, Any]
    results: dict[str, Any]
    draw: Callable[[], Figure] = field(repr=False)

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


# ------------------------------------------------------------------------------ checks
def _runtime(owner: str, seed: Any, dtype: Any, device: Any) -> tuple[torch.dtype, torch.device]:
    check_int(seed, "seed", owner, minimum=0, maximum=MAX_SEED)
    dt = check_choice(dtype, SUPPORTED_DTYPES, "dtype", owner)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"{owner}: unknown device {device!r} ({exc})") from None
    return dt, dev


def _count(value: Any, name: str, owner: str, maximum: int = MAX_COUNT, minimum: int = 1) -> int:
    return check_int(value, name, owner, minimum=minimum, maximum=maximum)


def _step(value: Any, name: str, owner: str, positive: bool = False) -> float:
    if positive:
        return check_real(value, name, owner, minimum=0.0, maximum=MAX_STEP, strict_min=True)
    return check_real(value, name, owner, minimum=-MAX_STEP, maximum=MAX_STEP)


def _size(owner: str, numbers: int, what: str) -> None:
    if numbers > MAX_NUMBERS:
        raise ParameterError(
            f"{owner}: {what} would hold {numbers:,} numbers at once, more than the "
            f"{MAX_NUMBERS:,} a study may use; choose smaller sizes"
        )


def _stack_numbers(depth: int, width: int, batch: int, spectra: bool) -> int:
    """Weights and biases, the activations kept for the backward pass and, with spectra,
    the per-sample Jacobian of a layer and the running end-to-end product."""
    numbers = depth * width * (width + 1) + 2 * depth * batch * width
    return numbers + (2 * batch * width * width if spectra else 0)


def _input(batch: int, width: int, dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 12345)
    return torch.randn(batch, width, dtype=dtype, generator=gen).to(device)


# ------------------------------------------------------------------------------ studies
def depth_study(
    *,
    width: int = 16,
    depth: int = 64,
    step: float = 0.5,
    activation: str = "tanh",
    batch: int = 8,
    plain: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Study:
    r"""Depth profile and QR growth rates of a residual (or plain) stack.

    Layers :math:`h \mapsto h + a\,\phi(W_l h + b_l)` with the residual step :math:`a`
    (``step``), or :math:`h \mapsto \phi(W_l h + b_l)` with ``plain=True``; torch's default
    ``nn.Linear`` initialisation, seeded (see :func:`~manifres.stability.depth_profile` and
    :func:`~manifres.stability.lyapunov_exponents`).

    Parameters
    ----------
    width : int
        Layer width ``d``, at most :data:`~manifres.stability.DENSE_LIMIT` (dense Jacobians).
    depth : int
        Number of layers ``L``.
    step : float
        The residual step :math:`a`.
    activation : str
        :math:`\phi`, a name of :data:`manifres.nn.activations.ACTIVATIONS`.
    batch : int
        Input batch size ``B``; the input is :math:`x \sim N(0, I)`, shape ``(B, d)``.
    plain : bool
        Profile the plain stack instead.
    seed : int
        Seed of the weights, the input and the probes.
    dtype : torch.dtype
        float32 or float64.
    device : torch.device or str
        Where the stack runs.

    Returns
    -------
    Study
        ``results``: ``"profile"`` (:class:`~manifres.stability.DepthProfile`) and
        ``"lyapunov"`` (:class:`~manifres.stability.LyapunovSpectrum`).

    Raises
    ------
    ParameterError
        For a parameter out of range (see the module notes).
    UnknownChoiceError
        For an unknown activation or dtype.

    Examples
    --------
    >>> s = depth_study(width=4, depth=3, batch=2)
    >>> sorted(s.results), s.params["depth"]
    (['lyapunov', 'profile'], 3)
    """
    owner = "depth_study"
    dt, dev = _runtime(owner, seed, dtype, device)
    width = _count(width, "width", owner, maximum=DENSE_LIMIT)
    depth = _count(depth, "depth", owner, maximum=MAX_DEPTH)
    batch = _count(batch, "batch", owner)
    step = _step(step, "step", owner)
    _size(owner, _stack_numbers(depth, width, batch, spectra=True), "the stack")
    layers = make_layers(width, depth, activation, dt, dev, seed)
    stack = plain_stack(layers) if plain else residual_stack(layers, step)
    x = _input(batch, width, dt, dev, seed)
    prof = depth_profile(stack, x, seed=seed)
    lyap = lyapunov_exponents(stack, x, seed=seed)
    params = dict(
        width=width,
        depth=depth,
        step=step,
        activation=activation,
        batch=batch,
        plain=bool(plain),
        seed=seed,
        dtype=dt,
        device=str(dev),
    )
    kind = "plain" if plain else f"residual (step {step:g})"

    def draw() -> Figure:
        from ..stability.plots import plot_depth_profile

        title = f"depth profile: {kind} {activation} stack, depth {depth}, width {width}"
        return plot_depth_profile(prof, lyap, title=title)

    return Study("depth", params, {"profile": prof, "lyapunov": lyap}, draw)


def weyl_study(
    *,
    width: int = 32,
    samples: int = 256,
    max_norm: float = 2.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Study:
    r"""The Weyl bound on random residual matrices ``W`` of norms spread over ``(0, max_norm]``.

    Four families in turn (:data:`WEYL_FAMILIES`): Gaussian, symmetric (the bound is attained
    at both ends), skew-symmetric (:math:`\sigma_{\min}(I + W) \ge 1`: the lower bound is
    loose) and rank one (:math:`\sigma_{\min} = 1` for ``width > 1``), each scaled to
    :math:`\|W\|_2 = e_i = \text{max\_norm}\cdot i / \text{samples}`
    (see :func:`~manifres.stability.weyl_band`).

    Parameters
    ----------
    width : int
        Matrix size ``n``.
    samples : int
        Number of matrices.
    max_norm : float
        The largest :math:`e = \|W\|_2` (positive).
    seed : int
        Seed of the matrices.
    dtype : torch.dtype
        float32 or float64 (the matrices are drawn in float64, then cast).
    device : torch.device or str
        Where the singular values are computed.

    Returns
    -------
    Study
        ``results``: ``"band"`` (:class:`~manifres.stability.WeylBand`, batch ``(samples,)``)
        and ``"family"`` (the family name of each matrix).

    Raises
    ------
    ParameterError
        For a parameter out of range (see the module notes).

    Examples
    --------
    >>> s = weyl_study(width=3, samples=8)
    >>> s.results["band"].all_hold
    True
    """
    owner = "weyl_study"
    dt, dev = _runtime(owner, seed, dtype, device)
    width = _count(width, "width", owner)
    samples = _count(samples, "samples", owner)
    max_norm = _step(max_norm, "max_norm", owner, positive=True)
    _size(owner, 6 * samples * width * width, "the matrices")
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

    def draw() -> Figure:
        from ..stability.plots import plot_weyl

        return plot_weyl(band)

    return Study("weyl", params, {"band": band, "family": [WEYL_FAMILIES[i] for i in fam]}, draw)


def _named_graph_edges(name: str, n: int) -> int:
    """Number of undirected edges of ``named_graph(name, n)`` (karate: 78)."""
    if name == "karate":
        return 78
    if name == "complete":
        return n * (n - 1) // 2
    if name == "bipartite":
        return (n // 2) * (n - n // 2)
    return 2 * n  # path, cycle, star, grid: at most 2n


def diffusion_study(
    *,
    graph: str = "karate",
    nodes: int = 20,
    step: float = 1.0,
    normalization: str | None = "sym",
    simulate: int = 30,
    seed: int = 0,
    **deprecated: object,
) -> Study:
    r"""Stability and consensus rate of :math:`x \mapsto (I - h L)x` on a graph.

    .. math:: \text{stable} \iff 0 < h \le 2 / \lambda_{\max}

    (see :func:`~manifres.stability.diffusion_stability`).

    Parameters
    ----------
    graph : str
        One of :data:`~manifres.graph.datasets.GRAPH_NAMES` (with ``nodes``) or the path of
        an edge-list file (see :func:`~manifres.graph.datasets.read_edge_list`).
    nodes : int
        Node count of a named graph (``grid``: a :math:`k \times k` grid,
        :math:`k = \lfloor\sqrt{\text{nodes}}\rfloor`).
    step : float
        The step :math:`h` under test (positive; deprecated keyword: ``alpha``).
    normalization : {None, "sym", "rw"}
        Laplacian normalization (``None``: :math:`L = D - A`).
    simulate : int
        Simulated diffusion steps (0: none; deprecated keyword: ``steps``).
    seed : int
        Seed of the simulation's start.

    Returns
    -------
    Study
        ``results``: ``"stability"`` (:class:`~manifres.stability.DiffusionStability`).

    Raises
    ------
    ParameterError
        For a parameter out of range (see the module notes).
    UnknownChoiceError
        If ``graph`` is neither a known name nor an existing file.
    GraphError
        For a malformed edge-list file, or too few nodes for a named graph.

    Examples
    --------
    >>> s = diffusion_study(graph="cycle", nodes=6, step=0.5, normalization=None, simulate=0)
    >>> s.results["stability"].stable, round(s.results["stability"].max_step, 6)
    (True, 0.5)
    """
    owner = "diffusion_study"
    if deprecated:
        new = renamed_kwargs(owner, deprecated, {"alpha": ("step", UNSET), "steps": ("simulate", UNSET)})
        step, simulate = new.get("step", step), new.get("simulate", simulate)
    check_int(seed, "seed", owner, minimum=0, maximum=MAX_SEED)
    nodes = _count(nodes, "nodes", owner)
    step = _step(step, "step", owner, positive=True)
    simulate = _count(simulate, "simulate", owner, minimum=0)
    if not isinstance(graph, str):
        raise ParameterError(f"{owner}: graph must be a name or a path, got {type(graph).__name__}")
    if graph in GRAPH_NAMES:
        edges = _named_graph_edges(graph, nodes)
        if edges > MAX_GRAPH_EDGES:
            raise ParameterError(
                f"{owner}: a {graph} graph on {nodes:,} nodes has {edges:,} edges, more than "
                f"{MAX_GRAPH_EDGES:,}; choose fewer nodes"
            )
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
        step,
        normalization,
        edge_weight=g.edge_weight,
        num_nodes=g.num_nodes,
        simulate=simulate,
        seed=seed,
    )
    params = dict(
        graph=graph,
        graph_name=g.name,
        nodes=g.num_nodes,
        step=step,
        normalization=normalization,
        simulate=simulate,
        seed=seed,
    )

    def draw() -> Figure:
        from ..stability.plots import plot_diffusion

        return plot_diffusion(ds, title=f"graph diffusion on {g.name}")

    return Study("diffusion", params, {"stability": ds}, draw)


def plain_vs_residual_study(
    *,
    depths: Sequence[int] = (10, 100, 1000),
    width: int = 32,
    step: float = 1.0,
    activation: str = "tanh",
    batch: int = 16,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Study:
    r"""First-layer gradient norm against depth for a plain and a residual stack.

    .. math:: \text{plain: } h_l = \phi(W_l h_{l-1} + b_l), \qquad
              \text{residual: } h_l = h_{l-1} + a\,\phi(W_l h_{l-1} + b_l)

    with the same weights and input (see :func:`~manifres.stability.compare_plain_residual`).

    Parameters
    ----------
    depths : sequence of int
        The depths ``L`` to measure (a shallower stack is a prefix of a deeper one).
    width : int
        Layer width ``d``.
    step : float
        The residual step :math:`a`.
    activation : str
        :math:`\phi`, a name of :data:`manifres.nn.activations.ACTIVATIONS`.
    batch : int
        Input batch size.
    seed : int
        Seed of the weights, the input and the loss direction.
    dtype : torch.dtype
        float32 or float64.
    device : torch.device or str
        Where the stacks run.
    progress : bool
        Show a tqdm progress bar over the depths (silent when not on a terminal).

    Returns
    -------
    Study
        ``results``: ``"comparison"`` (:class:`~manifres.stability.PlainResidualComparison`).

    Raises
    ------
    ParameterError
        For a parameter out of range (see the module notes), or no depth.
    UnknownChoiceError
        For an unknown activation or dtype.

    Examples
    --------
    >>> s = plain_vs_residual_study(depths=(2, 4), width=4, batch=2)
    >>> s.results["comparison"].depths
    [2, 4]
    """
    owner = "plain_vs_residual_study"
    dt, dev = _runtime(owner, seed, dtype, device)
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or not depths:
        raise ParameterError(f"{owner}: depths must be a non-empty sequence of integers, got {depths!r}")
    depths = [_count(d, "each depth", owner, maximum=MAX_DEPTH) for d in depths]
    width = _count(width, "width", owner)
    batch = _count(batch, "batch", owner)
    step = _step(step, "step", owner)
    _size(owner, _stack_numbers(max(depths), width, batch, spectra=False), "the deepest stack")
    cmp = compare_plain_residual(
        depths,
        width,
        step=step,
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
        step=step,
        activation=activation,
        batch=batch,
        seed=seed,
        dtype=dt,
        device=str(dev),
    )

    def draw() -> Figure:
        from ..stability.plots import plot_plain_vs_residual

        return plot_plain_vs_residual(cmp)

    return Study("plain-vs-residual", params, {"comparison": cmp}, draw)


def scale_study(
    *,
    width: int = 16,
    depth: int = 32,
    min_step: float = 0.01,
    max_step: float = 10.0,
    num_steps: int = 13,
    activation: str = "tanh",
    batch: int = 8,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Study:
    r"""Sweep of the residual step :math:`a` over a log-spaced grid on one residual stack.

    .. math:: a_k = a_{\min} (a_{\max} / a_{\min})^{k / (K - 1)}, \qquad k = 0, \dots, K - 1

    (see :func:`~manifres.stability.scale_sweep`).

    Parameters
    ----------
    width : int
        Layer width ``d``, at most :data:`~manifres.stability.DENSE_LIMIT` (dense Jacobians).
    depth : int
        Number of layers.
    min_step, max_step : float
        :math:`a_{\min} \le a_{\max}`, both positive.
    num_steps : int
        :math:`K`, the number of values of :math:`a`.
    activation : str
        A name of :data:`manifres.nn.activations.ACTIVATIONS`.
    batch : int
        Input batch size.
    seed : int
        Seed of the weights, the input and the probes.
    dtype : torch.dtype
        float32 or float64.
    device : torch.device or str
        Where the stack runs.
    progress : bool
        Show a tqdm progress bar over the steps (silent when not on a terminal).

    Returns
    -------
    Study
        ``results``: ``"sweep"`` (:class:`~manifres.stability.ScaleSweep`).

    Raises
    ------
    ParameterError
        For a parameter out of range (see the module notes), or ``min_step > max_step``.
    UnknownChoiceError
        For an unknown activation or dtype.

    Examples
    --------
    >>> s = scale_study(width=4, depth=3, num_steps=2, batch=2)
    >>> s.results["sweep"].steps.shape
    torch.Size([2])
    """
    owner = "scale_study"
    dt, dev = _runtime(owner, seed, dtype, device)
    width = _count(width, "width", owner, maximum=DENSE_LIMIT)
    depth = _count(depth, "depth", owner, maximum=MAX_DEPTH)
    num_steps = _count(num_steps, "num_steps", owner)
    batch = _count(batch, "batch", owner)
    min_step = _step(min_step, "min_step", owner, positive=True)
    max_step = _step(max_step, "max_step", owner, positive=True)
    if min_step > max_step:
        raise ParameterError(f"{owner}: min_step {min_step:g} is above max_step {max_step:g}")
    _size(owner, _stack_numbers(depth, width, batch, spectra=True), "the stack")
    layers = make_layers(width, depth, activation, dt, dev, seed)
    stack = residual_stack(layers, 1.0)
    x = _input(batch, width, dt, dev, seed)
    grid = torch.logspace(math.log10(min_step), math.log10(max_step), num_steps, dtype=torch.float64)
    sweep = scale_sweep(stack, x, grid.tolist(), seed=seed, progress=progress)
    params = dict(
        width=width,
        depth=depth,
        min_step=min_step,
        max_step=max_step,
        num_steps=num_steps,
        activation=activation,
        batch=batch,
        seed=seed,
        dtype=dt,
        device=str(dev),
    )

    def draw() -> Figure:
        from ..stability.plots import plot_scale_sweep

        title = f"residual step sweep: {activation} stack, depth {depth}, width {width}"
        return plot_scale_sweep(sweep, title=title)

    return Study("scale", params, {"sweep": sweep}, draw)


#: The built-in studies by name (``manifres study <name>``), in the command's order.
STUDIES: dict[str, Callable[..., Study]] = {
    "depth": depth_study,
    "weyl": weyl_study,
    "diffusion": diffusion_study,
    "plain-vs-residual": plain_vs_residual_study,
    "scale": scale_study,
}
