"""Riemannian stochastic gradient descent (with momentum) for manifres manifolds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .._validation import check_real
from ..errors import ParameterError
from ..manifolds.base import Manifold
from ._groups import RiemannianMixin, check_group, param_manifold, riemannian_gradient, vector_transport

__all__ = ["RiemannianSGD"]


class RiemannianSGD(RiemannianMixin, torch.optim.Optimizer):
    r"""Riemannian SGD with heavy-ball or Nesterov momentum.

    For a parameter :math:`x` on a manifold :math:`M` with Euclidean gradient :math:`g`:

    .. math::
        \xi = \operatorname{egrad2rgrad}_x\big(g + \lambda\,(x - r)\big), \qquad
        m \leftarrow \mu\,\Gamma(m) + (1 - \tau)\,\xi, \qquad
        x \leftarrow R_x\big(-\eta\,d\big), \quad d = m \ (\text{or } \xi + \mu m
        \text{ with Nesterov})

    where :meth:`~manifres.manifolds.base.Manifold.egrad2rgrad` turns the Euclidean gradient
    into the Riemannian one of the manifold's metric (the tangent projection :math:`P_x` for an
    embedded metric), :math:`R_x` is the retraction and :math:`\Gamma` the vector transport of
    the momentum from the old point to the new one. The decay term is the gradient of
    :math:`\tfrac{\lambda}{2}\|x - r\|^2` with the reference point :math:`r` = ``decay_to``
    (0 when it is not given). Parameters without a manifold get exactly
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
        :math:`\lambda \ge 0`: adds :math:`\lambda (x - r)` to the Euclidean gradient (before
        ``egrad2rgrad``). On a manifold other than :class:`~manifres.Euclidean` it needs
        ``decay_to``: :math:`\lambda x` is normal to a sphere or a rotation group, so it would
        have no effect (refused with a :class:`~manifres.errors.ParameterError`).
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
    decay_to : Tensor or None
        The reference point :math:`r` of the weight decay (on the manifold, broadcastable
        against the parameters of the group); ``None``: :math:`r = 0`.

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
    A group's manifold is its ``"manifold"`` key (or the ``manifold=`` default); in a group
    without one, a :class:`~manifres.ManifoldParameter` (or a ``geoopt.ManifoldParameter``)
    uses its own. The checks run when a group is added (one read of the parameters);
    :meth:`step` has no host-device synchronisation (except in a manifold's own ``transport``
    at a cut locus check). The momentum buffer lives in the tangent space of the current
    point. :meth:`state_dict` holds plain data only (``torch.load(weights_only=True)`` reads
    it) and :meth:`load_state_dict` takes the manifolds from the live groups, see
    :mod:`manifres.optim`. Sparse gradients are not supported.

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
        decay_to: Tensor | None = None,
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
            decay_to=decay_to,
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        check_real(group["lr"], "lr", owner, minimum=0.0)
        check_real(group["momentum"], "momentum", owner, minimum=0.0, maximum=1.0, strict_max=True)
        check_real(group["dampening"], "dampening", owner, minimum=0.0, maximum=1.0)
        check_real(group["weight_decay"], "weight_decay", owner, minimum=0.0)
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
            lr, mu, tau, nesterov = group["lr"], group["momentum"], group["dampening"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                manifold = param_manifold(group, p)
                g = riemannian_gradient(manifold, group, p)
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
