r"""Residual adapters for continual learning: a frozen backbone plus small per-task residuals.

A residual adapter is a residual block that starts as the identity,
:math:`y = x + a\,A(x)` with :math:`A` zero-initialised, inserted after layers of a frozen,
pre-trained backbone (Rebuffi et al. 2017; Houlsby et al. 2019). Learning a new task then
trains only the adapters. Keeping one set of adapters per task forgets nothing; sharing one
set between tasks overwrites what the earlier tasks learned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from .._deprecation import UNSET
from ..errors import ParameterError, ShapeError, UnknownChoiceError
from .activations import activation as _activation
from .residual import Residual, _step_args

__all__ = ["ResidualAdapter", "AdapterNetwork"]

_MODES = ("shared", "per_task")


class ResidualAdapter(Residual):
    r"""Zero-initialised residual adapter over the feature axis.

    .. math:: y = x + a\,W x \quad(\text{bottleneck}=\text{None}), \qquad
              y = x + a\,W_{\uparrow}\,\sigma(W_{\downarrow} x + b_{\downarrow}) + a\,b_{\uparrow}

    :math:`W` (resp. :math:`W_{\uparrow}, b_{\uparrow}`) starts at zero, so the adapter starts
    as the identity.

    Parameters
    ----------
    features : int
        Size ``C`` of the feature (last) axis.
    bottleneck : int, optional
        ``None``: a linear adapter :math:`W \in \mathbb{R}^{C\times C}` (Rebuffi et al.,
        without bias); an int ``B``: a bottleneck ``C -> B -> C`` (Houlsby et al.).
    activation : str or nn.Module
        :math:`\sigma` of the bottleneck (default ``"relu"``).
    step, learn_step
        The step :math:`h`, see :class:`~manifres.nn.Residual` (deprecated spellings:
        ``scale``, ``learn_scale``).

    Shapes:
        - **input:** ``(..., features)``
        - **output:** ``(..., features)``

    Examples
    --------
    >>> import torch
    >>> adapter = ResidualAdapter(8, bottleneck=2)
    >>> x = torch.randn(3, 8)
    >>> torch.equal(adapter(x), x)
    True
    >>> sum(p.numel() for p in adapter.parameters())
    42
    """

    def __init__(
        self,
        features: int,
        bottleneck: int | None = None,
        activation: str | nn.Module = "relu",
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        **deprecated: object,
    ) -> None:
        step, learn_step = _step_args(type(self).__name__, step, learn_step, deprecated)
        if bottleneck is None:
            fn: nn.Module = nn.Linear(features, features, bias=False)
        else:
            fn = nn.Sequential(
                nn.Linear(features, bottleneck), _activation(activation), nn.Linear(bottleneck, features)
            )
        super().__init__(fn, step, learn_step)
        self.features, self.bottleneck = features, bottleneck
        self._zero_last()

    def _zero_last(self) -> None:
        last = self.branch if isinstance(self.branch, nn.Linear) else self.branch[-1]
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def reset_parameters(self) -> None:
        """Re-initialise (the adapter is the identity again)."""
        super().reset_parameters()
        self._zero_last()


class AdapterNetwork(nn.Module):
    r"""A frozen backbone with residual adapters after chosen layers, per task or shared.

    .. math:: h_{i} = A^{(k)}_{i}(L_i(h_{i-1})), \qquad A^{(k)}_i(z) = z + a\,F^{(k)}_i(z)

    for task :math:`k`, where :math:`L_i` are the frozen backbone layers and
    :math:`A^{(k)}_i` the adapters (the identity where no adapter is inserted).

    Parameters
    ----------
    backbone : nn.Sequential or sequence of nn.Module
        The layers :math:`L_i`. Frozen: ``requires_grad=False``, kept in eval mode.
    widths : sequence of (int or None)
        One entry per backbone layer: the feature size of that layer's output, where an
        adapter follows it, or ``None`` for no adapter.
    n_tasks : int
        Number of tasks (task ids ``0 .. n_tasks - 1``).
    mode : {"per_task", "shared"}
        ``"per_task"``: one set of adapters per task, selected by the task id; training task
        ``k`` touches nothing that another task uses (no forgetting). ``"shared"``: one set of
        adapters that every task uses, overwritten by whichever task trains last.
    bottleneck, activation
        Adapter architecture, see :class:`ResidualAdapter`.

    Attributes
    ----------
    backbone : nn.Sequential
    adapters : nn.ModuleList
        ``adapters[j]`` is an ``nn.ModuleDict`` from layer index (a string) to adapter, for
        adapter set ``j`` (one set per task, or a single set when shared).

    Shapes:
        - **input:** ``x`` as the backbone accepts, and ``task`` a Python int
        - **output:** the backbone's output shape

    Raises
    ------
    ShapeError
        If ``widths`` does not have one entry per backbone layer.
    UnknownChoiceError
        If ``mode`` is unknown, or (at a call) ``task`` is not a valid task id.
    ParameterError
        If ``n_tasks`` is not an int ``>= 1``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> backbone = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> net = AdapterNetwork(backbone, [None, 8, None], n_tasks=3)
    >>> x = torch.randn(5, 4)
    >>> torch.equal(net(x, task=2), backbone(x))
    True
    >>> len(list(net.task_parameters(0)))
    1
    """

    def __init__(
        self,
        backbone: nn.Sequential | Sequence[nn.Module],
        widths: Sequence[int | None],
        n_tasks: int,
        mode: str = "per_task",
        bottleneck: int | None = None,
        activation: str | nn.Module = "relu",
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise UnknownChoiceError(f"unknown mode {mode!r}; valid names: {', '.join(_MODES)}")
        if not isinstance(n_tasks, int) or isinstance(n_tasks, bool) or n_tasks < 1:
            raise ParameterError(f"AdapterNetwork: n_tasks must be an integer >= 1, got {n_tasks!r}")
        backbone = backbone if isinstance(backbone, nn.Sequential) else nn.Sequential(*backbone)
        if len(widths) != len(backbone):
            raise ShapeError(
                f"AdapterNetwork: widths needs one entry per backbone layer ({len(backbone)}), "
                f"got {len(widths)}"
            )
        self.backbone = backbone.requires_grad_(False).eval()
        self.mode, self.n_tasks = mode, n_tasks
        self.widths = list(widths)
        copies = n_tasks if mode == "per_task" else 1
        self.adapters = nn.ModuleList(
            nn.ModuleDict(
                {str(i): ResidualAdapter(w, bottleneck, activation) for i, w in enumerate(widths) if w}
            )
            for _ in range(copies)
        )

    def train(self, mode: bool = True) -> AdapterNetwork:
        """Set training mode; the frozen backbone stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def adapter_set(self, task: int) -> nn.ModuleDict:
        """The adapters that task ``task`` uses (the shared set in ``"shared"`` mode)."""
        if not isinstance(task, int) or isinstance(task, bool) or not 0 <= task < self.n_tasks:
            raise UnknownChoiceError(
                f"AdapterNetwork: unknown task {task!r}; valid task ids: 0 .. {self.n_tasks - 1}"
            )
        return self.adapters[task if self.mode == "per_task" else 0]

    def task_parameters(self, task: int) -> Iterator[nn.Parameter]:
        """The trainable parameters of task ``task`` (give these to the optimizer)."""
        return self.adapter_set(task).parameters()

    def reset_parameters(self) -> None:
        """Reset every adapter to the identity (the backbone is untouched)."""
        for adapters in self.adapters:
            for a in adapters.values():
                a.reset_parameters()

    def forward(self, x: Tensor, task: int) -> Tensor:
        adapters = self.adapter_set(task)
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if str(i) in adapters:
                x = adapters[str(i)](x)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, n_tasks={self.n_tasks}"
