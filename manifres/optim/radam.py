"""Riemannian Adam (Becigneul and Ganea, 2019) for manifres manifolds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .._validation import check_real
from ..errors import ParameterError
from ..manifolds.base import Manifold
from ._groups import (
    RiemannianMixin,
    batch_inner,
    check_group,
    param_manifold,
    riemannian_gradient,
    vector_transport,
)

__all__ = ["RiemannianAdam"]


class RiemannianAdam(RiemannianMixin, torch.optim.Optimizer):
    r"""Riemannian Adam (optionally AMSGrad).

    For a parameter :math:`x` on a manifold :math:`M` with Euclidean gradient :math:`g`, at
    step :math:`t`:

    .. math::
        \xi = \operatorname{egrad2rgrad}_x\big(g + \lambda\,(x - r)\big), \qquad
        m \leftarrow \beta_1 \Gamma(m) + (1 - \beta_1)\,\xi, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2)\,\langle \xi, \xi\rangle_x,

    .. math::
        x \leftarrow R_x\Big(-\frac{\eta}{1 - \beta_1^t}\,
        \frac{m}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}\Big)

    with the Riemannian gradient of the manifold's metric
    (:meth:`~manifres.manifolds.base.Manifold.egrad2rgrad`; the tangent projection for an
    embedded metric), the decay reference point :math:`r` = ``decay_to`` (0 when not given),
    the retraction :math:`R_x` and the vector transport :math:`\Gamma` of the first moment to
    the new point. The second moment :math:`v` is one scalar *per point* (the squared
    Riemannian norm :math:`\langle \xi, \xi\rangle_x` of the gradient), so the
    update is invariant under isometries of the tangent space, as in Becigneul and Ganea
    (ICLR 2019); a batch of points ``(..., *point_shape)`` gets one :math:`v` per point.
    Parameters without a manifold get exactly :class:`torch.optim.Adam`'s (elementwise)
    update.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts) that may set every option below, including
        ``"manifold"`` per group.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    betas : (float, float)
        :math:`\beta_1, \beta_2 \in [0, 1)`.
    eps : float
        :math:`\epsilon \ge 0`.
    weight_decay : float
        :math:`\lambda \ge 0` (L2 toward ``decay_to`` on the Euclidean gradient, before
        ``egrad2rgrad``); needs ``decay_to`` on a manifold other than
        :class:`~manifres.Euclidean`, see :class:`RiemannianSGD`.
    amsgrad : bool
        Use the running maximum of :math:`v` (AMSGrad).
    manifold : Manifold or None
        Default manifold of the groups that do not set one; ``None``: Euclidean parameters.
    retraction : str or None
        Retraction name (``None``: the manifold's default).
    transport : {"projection", "parallel"}
        Vector transport of the first moment, see :class:`RiemannianSGD`.
    stabilize : int or None
        Every ``stabilize`` steps map the parameter back with ``proj_point`` (and re-project
        its first moment).
    decay_to : Tensor or None
        Reference point :math:`r` of the weight decay, see :class:`RiemannianSGD`.

    Raises
    ------
    ParameterError
        If a number is not finite or out of range (or, for ``stabilize``, not a positive int),
        ``weight_decay > 0`` on a curved manifold without ``decay_to``, or a
        :class:`~manifres.ManifoldParameter` whose manifold differs from its group's.
    ManifoldError
        If a manifold parameter (or ``decay_to``) is not on its manifold (or not finite) when
        its group is added.
    UnknownChoiceError
        If a retraction or transport name is unknown.
    ShapeError, DTypeError
        If a parameter does not have the manifold's trailing shape or a float dtype.
    TypeError
        If a group's manifold is not a manifres manifold.

    Notes
    -----
    Parameter manifolds, checks and the state dict work as for :class:`RiemannianSGD`.

    Examples
    --------
    >>> import torch, manifres
    >>> from manifres.optim import RiemannianAdam
    >>> S = manifres.Sphere(2)
    >>> target = torch.tensor([0.0, 0.6, 0.8])
    >>> x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    >>> opt = RiemannianAdam([{"params": [x], "manifold": S}], lr=0.05)
    >>> for _ in range(300):
    ...     opt.zero_grad()
    ...     S.dist(x, target).pow(2).backward()
    ...     opt.step()
    >>> float(S.dist(x.detach(), target)) < 1e-2, bool(S.is_point(x.detach()))
    (True, True)
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        manifold: Manifold | None = None,
        retraction: str | None = None,
        transport: str = "projection",
        stabilize: int | None = None,
        decay_to: Tensor | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            manifold=manifold,
            retraction=retraction,
            transport=transport,
            stabilize=stabilize,
            decay_to=decay_to,
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        check_real(group["lr"], "lr", owner, minimum=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ParameterError(f"{owner}: betas must be a pair of floats, got {betas!r}")
        for k in range(2):
            check_real(betas[k], f"betas[{k}]", owner, minimum=0.0, maximum=1.0, strict_max=True)
        check_real(group["eps"], "eps", owner, minimum=0.0)
        check_real(group["weight_decay"], "weight_decay", owner, minimum=0.0)
        check_group(owner, group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimisation step (``closure`` re-evaluates the loss, optional)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            amsgrad = group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                manifold = param_manifold(group, p)
                g = riemannian_gradient(manifold, group, p)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    sq_shape = p.shape if manifold is None else _point_batch_shape(p, manifold)
                    state["exp_avg_sq"] = p.new_zeros(sq_shape)
                    if amsgrad:
                        state["max_exp_avg_sq"] = p.new_zeros(sq_shape)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if manifold is None:
                    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                else:
                    v.mul_(beta2).add_(batch_inner(manifold, p, g), alpha=1.0 - beta2)
                m.lerp_(g, 1.0 - beta1)
                if amsgrad:
                    torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                step_size = lr / (1.0 - beta1**t)
                denom = (v.sqrt() / (1.0 - beta2**t) ** 0.5).add_(eps)
                if manifold is None:
                    p.addcdiv_(m, denom, value=-step_size)
                    continue
                new = manifold.retract(p, (-step_size) * m / denom, group["retraction"])
                k = group["stabilize"]
                if k is not None and t % k == 0:
                    new = manifold.proj_point(new)
                m.copy_(vector_transport(manifold, group["transport"], p, new, m))
                p.copy_(new)
        return loss


def _point_batch_shape(p: Tensor, manifold: Manifold) -> tuple[int, ...]:
    """Shape of one scalar per point: the batch shape with singleton manifold axes."""
    return tuple(p.shape[: p.dim() - manifold.ndim]) + (1,) * manifold.ndim
