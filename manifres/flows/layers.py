r"""Each integration method as a layer: a higher-order step per residual layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ..errors import UnknownChoiceError
from ..manifolds.base import Manifold
from ..nn.tangent import TangentResidual, TangentResidualStack, _check_manifold
from .schemes import get_stepper

__all__ = ["FlowStep", "RKMKLayer", "FlowStack"]


class _Scheme:
    """Mixin: replace the Euler step of the tangent residual layers by a named scheme."""

    def _scheme_args(self, manifold: Manifold, method: str, retraction: str | None) -> str | None:
        """Validate ``method`` (before any state changes); return the retraction for the base."""
        get_stepper(_check_manifold(manifold, type(self).__name__), method, retraction)
        return retraction if method == "euler" else None

    def _setup_scheme(self, method: str, retraction: str | None) -> None:
        self.method = method
        self._stepper = get_stepper(self.manifold, method, retraction)
        if method != "euler":
            self.retraction = None

    def _step(self, field: Callable, td: bool, x: Tensor, t: float | Tensor, h: float | Tensor) -> Tensor:
        return self._stepper(field, x, t, h, td)

    def _scheme_repr(self) -> str:
        if self.method == "euler":
            return f"method='euler', retraction={self.retraction!r}"
        return f"method={self.method!r}"


class FlowStep(_Scheme, TangentResidual):
    r"""One step of a manifold ODE scheme as a layer: :math:`x \mapsto \Phi_h(x, t)`.

    .. math:: \Phi_h^{\text{rkmk4}}(x, t) = \exp\Bigl(\sum_i b_i \tilde k_i\Bigr) \cdot x,
        \qquad \tilde k_i = \operatorname{dexp}^{-1}_{u_i}\bigl(h f(e^{u_i} x, t + c_i h)\bigr)

    (and likewise for the other methods of :mod:`manifres.flows.schemes`; ``"euler"`` is
    :class:`~manifres.nn.TangentResidual`).

    Shapes: ``x``: ``(..., *point_shape)`` -> same; ``forward(x, t=None)``.

    Parameters
    ----------
    manifold : Manifold
        A manifold with a Lie-group action (:func:`~manifres.flows.lie_action`) unless
        ``method="euler"``.
    field : nn.Module or callable
        ``F(x)`` or ``F(x, t)``, ambient output of the shape of ``x``.
    step : float
        The step ``h`` (finite).
    method : {"euler", "rkmk2", "rkmk4", "cg2", "cf4"}
        The scheme.
    retraction : str, optional
        Only with ``method="euler"``.
    learn_step : bool
        Make ``h`` an ``nn.Parameter``.

    Raises
    ------
    UnknownChoiceError
        Unknown method or retraction, a retraction with a Lie-group method, or a manifold
        without a group action.
    ParameterError
        Non-finite step.
    ShapeError, DTypeError
        At call: wrong input trailing shape, field output of another shape or dtype.

    Examples
    --------
    >>> import torch, manifres
    >>> from manifres.nn import LinearField
    >>> S = manifres.Sphere(2)
    >>> A = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> layer = FlowStep(S, LinearField(A), step=0.1, method="cf4")
    >>> layer
    FlowStep(
      manifold=Sphere(2), step=0.1, method='cf4'
      (field): LinearField(d=3, side=None, time_dependent=False)
    )
    >>> layer(S.random(5)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        manifold: Manifold,
        field: Callable,
        step: float = 0.1,
        method: str = "rkmk4",
        retraction: str | None = None,
        learn_step: bool = False,
    ) -> None:
        base_retraction = self._scheme_args(manifold, method, retraction)
        super().__init__(manifold, field, step, learn_step=learn_step, retraction=base_retraction)
        self._setup_scheme(method, retraction)


class RKMKLayer(FlowStep):
    r"""A Runge-Kutta-Munthe-Kaas step of order 2 (Heun) or 4 (classical RK4) as a layer.

    .. math:: x \mapsto \exp\bigl(\Theta_h(x, t)\bigr) \cdot x

    Same as ``FlowStep(manifold, field, step, method=f"rkmk{order}")``.

    Parameters
    ----------
    manifold : Manifold
        Sphere, SpecialOrthogonal, Euclidean, or a manifold with ``lie_action()``.
    field : nn.Module or callable
    step : float
    order : {2, 4}
    learn_step : bool

    Raises
    ------
    UnknownChoiceError
        If ``order`` is not 2 or 4, or the manifold has no group action.

    Examples
    --------
    >>> import torch, manifres
    >>> from manifres.nn import AmbientMLPField
    >>> S = manifres.Sphere(2)
    >>> layer = RKMKLayer(S, AmbientMLPField(S, hidden=4, depth=1), step=0.2, order=2)
    >>> bool(S.is_point(layer(S.random(3))).all())
    True
    """

    def __init__(
        self,
        manifold: Manifold,
        field: Callable,
        step: float = 0.1,
        order: int = 4,
        learn_step: bool = False,
    ) -> None:
        if order not in (2, 4):
            raise UnknownChoiceError(f"RKMKLayer: unknown order {order!r}; valid orders: 2, 4")
        super().__init__(manifold, field, step, method=f"rkmk{order}", learn_step=learn_step)


class FlowStack(_Scheme, TangentResidualStack):
    r"""A deep stack of scheme steps, :math:`x_{k+1} = \Phi^{(k)}_h(x_k, t_k)`.

    .. math:: x_{k+1} = \Phi^{(k)}_h(x_k, t_k), \qquad t_k = t_0 + k h, \quad k = 0, \dots, L-1

    :class:`~manifres.nn.TangentResidualStack` with any method of
    :mod:`manifres.flows.schemes` per layer; with a shared field it equals
    :func:`~manifres.flows.integrate` over ``depth`` steps.

    Shapes: ``x``: ``(..., *point_shape)`` -> same, or ``(L + 1, ..., *point_shape)``.

    Parameters
    ----------
    manifold : Manifold
    fields : nn.Module or sequence of nn.Module
        One field per layer, or one shared field applied ``depth`` times.
    step : float
    method : {"euler", "rkmk2", "rkmk4", "cg2", "cf4"}
    retraction : str, optional
        Only with ``method="euler"``.
    depth : int, optional
        Required with a shared field.
    return_trajectory : bool
        Return :math:`x_0, \dots, x_L` stacked along a new axis 0.
    learn_step : bool
    t0 : float

    Raises
    ------
    UnknownChoiceError, ParameterError, ValueError, ShapeError, DTypeError
        As :class:`FlowStep` and :class:`~manifres.nn.TangentResidualStack`.

    Examples
    --------
    >>> import torch, manifres
    >>> E = manifres.Euclidean(3)
    >>> net = FlowStack(E, torch.nn.Linear(3, 3), step=0.1, method="rkmk4", depth=5)
    >>> net(torch.randn(2, 3)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        manifold: Manifold,
        fields: nn.Module | Sequence[nn.Module],
        step: float,
        method: str = "rkmk4",
        retraction: str | None = None,
        depth: int | None = None,
        return_trajectory: bool = False,
        learn_step: bool = False,
        t0: float = 0.0,
    ) -> None:
        base_retraction = self._scheme_args(manifold, method, retraction)
        super().__init__(
            manifold,
            fields,
            step,
            retraction=base_retraction,
            depth=depth,
            return_trajectory=return_trajectory,
            learn_step=learn_step,
            t0=t0,
        )
        self._setup_scheme(method, retraction)
