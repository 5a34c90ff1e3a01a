"""Riemannian stochastic gradient descent (with momentum) for manifres manifolds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from ..errors import ParameterError
from ..manifolds.base import Manifold
from ._groups import CheckedGroupsMixin, check_group, check_number, vector_transport

__all__ = ["RiemannianSGD"]


class RiemannianSGD(CheckedGroupsMixin, torch.optim.Optimizer):
    r"""Riemannian SGD with heavy-ball or Nesterov momentum.

    For a parameter :math:`x` on a manifold :math:`M` with Euclidean gradient :math:`g`:

    .. math::
        \xi = P_x(g + \lambda x), \qquad
        m \leftarrow \mu\,\Gamma(m) + (1 - \tau)\,\xi, \qquad
        x \leftarrow R_x\big(-\eta\,d\big), \quad d = m \ (\text{or } \xi + \mu m
        \text{ with Nesterov})

    where :math:`P_x` is the tangent projection (the Riemannian gradient of the embedded
    metric), :math:`R_x` the retraction and :math:`\Gamma` the vector transport of the momentum
    from the old point to the new one. Parameters without a manifold get exactly
    :class:`torch.optim.SGD`'s update.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts) that may set every option below, including
        ``"manifold"`` per group.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    dampening : float
        :math:`\tau \in [0, 1]`.
    weight_decay : float
        :math:`\lambda \ge 0`: adds :math:`\lambda x` to the Euclidean gradient (before the
        projection).
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
    manifold : Manifold or None
        Default manifold of the groups that do not set one; ``None``: Euclidean parameters.
    retraction : str or None
        Retraction name (``None``: the manifold's default, its first in
        :attr:`~manifres.manifolds.base.Manifold.retractions`).
    transport : {"projection", "parallel"}
        Vector transport of the momentum: ``"projection"`` (default) projects it onto the
        new tangent space, :math:`\Gamma(m) = P_{x'}(m)` (cheap, always defined, first-order
        accurate); ``"parallel"`` uses :meth:`~manifres.manifolds.base.Manifold.transport`
        (an isometry; may raise at a cut locus).
    stabilize : int or None
        Every ``stabilize`` steps of a parameter, map it back onto the manifold with
        ``proj_point`` and re-project its momentum (guards long float32 runs).

    Raises
    ------
    ParameterError
        If a number is not finite or out of range (or, for ``stabilize``, not a positive int).
    ManifoldError
        If a manifold parameter is not on its manifold (or not finite) when its group is
        added.
    UnknownChoiceError
        If a retraction or transport name is unknown.
    ShapeError, DTypeError
        If a parameter does not have the manifold's trailing shape or a float dtype.
    TypeError
        If a group's manifold is not a manifres manifold.

    Notes
    -----
    The checks run when a group is added (one read of the parameters); :meth:`step` has no
    host-device synchronisation (except in a manifold's own ``transport`` at a cut locus
    check). The momentum buffer lives in the tangent space of the current point. Sparse
    gradients are not supported.

    Examples
    --------
    >>> import torch, manifres
    >>> from manifres.optim import RiemannianSGD
    >>> S = manifres.Sphere(2)
    >>> target = torch.tensor([0.0, 0.0, 1.0])
    >>> x = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))
    >>> opt = RiemannianSGD([x], lr=0.2, momentum=0.5, manifold=S)
    >>> for _ in range(100):
    ...     opt.zero_grad()
    ...     loss = -(x * target).sum()
    ...     loss.backward()
    ...     opt.step()
    >>> torch.allclose(x.detach(), target, atol=1e-4), bool(S.is_point(x.detach()))
    (True, True)
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        manifold: Manifold | None = None,
        retraction: str | None = None,
        transport: str = "projection",
        stabilize: int | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            manifold=manifold,
            retraction=retraction,
            transport=transport,
            stabilize=stabilize,
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        check_number(owner, "lr", group["lr"], 0.0)
        check_number(owner, "momentum", group["momentum"], 0.0, 1.0, open_high=True)
        check_number(owner, "dampening", group["dampening"], 0.0, 1.0)
        check_number(owner, "weight_decay", group["weight_decay"], 0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ParameterError(f"{owner}: nesterov momentum needs momentum > 0 and dampening = 0")
        check_group(owner, group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimisation step (``closure`` re-evaluates the loss, optional)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            manifold: Manifold | None = group["manifold"]
            lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                if manifold is not None:
                    g = manifold.proj(p, g)
                state = self.state[p]
                buf = None
                if mu != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.clone()
                    else:
                        buf.mul_(mu).add_(g, alpha=1.0 - tau)
                    d = g.add(buf, alpha=mu) if nesterov else buf
                else:
                    d = g
                if manifold is None:
                    p.add_(d, alpha=-lr)
                    continue
                new = manifold.retract(p, -lr * d, group["retraction"])
                state["step"] = state.get("step", 0) + 1
                k = group["stabilize"]
                if k is not None and state["step"] % k == 0:
                    new = manifold.proj_point(new)
                if buf is not None:
                    buf.copy_(vector_transport(manifold, group["transport"], p, new, buf))
                p.copy_(new)
        return loss
