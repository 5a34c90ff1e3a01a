r"""Patches applied one after the other: what adds up, what interacts, what depends on the order.

A *patch* is a correction applied on top of a model's state, :math:`x \leftarrow x + p(x)`
(a fine-tuning delta, an edit, a hot fix, an adapter). Applied in sequence they form a residual
stack with step 1, and the composed effect is the sum of the patches only to first order:

.. math:: x_m = x + \sum_i p_i(x) + \text{interaction}, \qquad
          (I + A_2)(I + A_1) = I + A_1 + A_2 + A_2A_1 \quad\text{(linear patches)}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .._validation import check_floating
from ..errors import ShapeError
from ..nn.protocol import is_residual_step
from ..nn.residual import Residual
from .results import PatchInteraction

__all__ = ["patch_interaction", "patch_stack"]

Patch = Callable[[Tensor], Tensor]


class _FunctionPatch(nn.Module):
    """A plain function as the branch of a :class:`~manifres.nn.Residual`."""

    def __init__(self, fn: Patch) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)


def _update(layer: Callable) -> Patch:
    """The patch of a residual-step layer: its update ``layer(x) - x``."""
    return lambda z: layer(z) - z


def _patches(patches: object, who: str) -> list[Patch]:
    if isinstance(patches, nn.Sequential):
        layers = list(patches)
        if not all(is_residual_step(layer) for layer in layers):
            raise TypeError(
                f"{who}: an nn.Sequential is read as a residual stack, so every layer must implement "
                "the residual-step protocol (see patch_stack); pass a list of patches instead"
            )
        return [_update(layer) for layer in layers]
    if isinstance(patches, (list, tuple, nn.ModuleList)):
        out = []
        for i, p in enumerate(patches):
            if not callable(p):
                raise TypeError(f"{who}: patch {i} is not callable ({type(p).__name__})")
            out.append(_update(p) if is_residual_step(p) else p)
        return out
    raise TypeError(
        f"{who}: patches must be a list or tuple of modules or functions (or a residual stack), "
        f"got {type(patches).__name__}"
    )


def _apply(patch: Patch, z: Tensor, i: int, who: str) -> Tensor:
    d = patch(z)
    if not isinstance(d, Tensor) or d.shape != z.shape:
        got = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
        raise ShapeError(f"{who}: patch {i} must return the shape of its input {tuple(z.shape)}, got {got}")
    return d


def _compose(patches: Sequence[Patch], x: Tensor, order: Sequence[int], who: str) -> Tensor:
    z = x
    for i in order:
        z = z + _apply(patches[i], z, i, who)
    return z


def patch_interaction(patches: Sequence[Patch | nn.Module] | nn.Sequential, x: Tensor) -> PatchInteraction:
    r"""Split the effect of patches applied in order into identity, first order and interaction.

    .. math:: x_0 = x, \quad x_i = x_{i-1} + p_i(x_{i-1}), \qquad
              x_m = \underbrace{x}_{\text{identity}}
              + \underbrace{\textstyle\sum_i p_i(x)}_{\text{first order}}
              + \underbrace{x_m - x - \textstyle\sum_i p_i(x)}_{\text{interaction}},

    and the order dependence :math:`\tilde x_m - x_m`, :math:`\tilde x_m` the output with the
    patches applied in reverse order. For linear patches :math:`p_i(x) = A_i x`, the interaction
    is :math:`\sum_{i<j} A_jA_i x + \dots` (all products in order) and, for two, the order
    dependence is the commutator :math:`(A_1A_2 - A_2A_1)x`; for any two patches the
    interaction is :math:`p_2(x + p_1(x)) - p_2(x)`.

    Parameters
    ----------
    patches : list or tuple of modules or callables, or a residual stack
        The patches :math:`p_1, \dots, p_m`, in the order they are applied. An element that
        implements the residual-step protocol (a :class:`~manifres.nn.Residual`, ...) is read
        as its whole update, :math:`p(x) = \text{layer}(x) - x`; an ``nn.Sequential`` of such
        layers (as :func:`patch_stack` returns) is read layer by layer.
    x : Tensor
        Inputs (any shape every patch accepts and keeps).

    Returns
    -------
    PatchInteraction
        Detached tensors of the shape of ``x``; ``relative_interaction`` and
        ``relative_order_dependence`` compare their sizes with the first order.

    Raises
    ------
    TypeError
        If ``patches`` is not a sequence of callables (an ``nn.Sequential`` must be a residual
        stack: a single patch that is a Sequential goes in a list, ``[seq]``).
    ShapeError
        If a patch changes the shape.
    DTypeError
        If ``x`` is not float32/float64.

    Notes
    -----
    Costs ``3 m`` patch evaluations (first order, in order, reversed), without gradients.
    With patches of size :math:`\varepsilon` (:math:`\|p_i\| = O(\varepsilon)`, Lipschitz
    constants :math:`O(\varepsilon)`), the first order is :math:`O(\varepsilon)` and the
    interaction and the order dependence :math:`O(\varepsilon^2)`.

    Examples
    --------
    >>> import torch
    >>> a1 = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    >>> a2 = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> x = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> r = patch_interaction([lambda z: z @ a1.T, lambda z: z @ a2.T], x)
    >>> r.first_order.tolist(), r.interaction.tolist(), r.order_dependence.tolist()
    ([1.0, 1.0], [0.0, 1.0], [1.0, -1.0])
    """
    who = "patch_interaction"
    check_floating(x, names=("x",))
    ps = _patches(patches, who)
    m = len(ps)
    with torch.no_grad():
        x = x.detach()
        first = torch.zeros_like(x)
        for i, p in enumerate(ps):
            first = first + _apply(p, x, i, who)
        total = _compose(ps, x, range(m), who)
        reverse = _compose(ps, x, range(m - 1, -1, -1), who)
    return PatchInteraction(
        identity=x.clone(),
        first_order=first,
        interaction=total - x - first,
        total=total,
        reversed_total=reverse,
        order_dependence=reverse - total,
    )


def patch_stack(patches: Sequence[Patch | nn.Module], step: float = 1.0) -> nn.Sequential:
    r"""The patches as a residual stack: :math:`x \leftarrow x + h\,p_i(x)`, one
    :class:`~manifres.nn.Residual` per patch.

    With ``step=1`` the stack applies the patches exactly as :func:`patch_interaction`
    composes them; as layers of the residual-step protocol, the stability studies see each
    patch's strength as a step (:func:`~manifres.stability.depth_profile`'s ``step_grads`` is
    the sensitivity of the loss to each patch, :func:`~manifres.stability.scale_sweep` scales
    all patches together).

    Parameters
    ----------
    patches : sequence of modules or callables
        :math:`p_1, \dots, p_m` (a function is wrapped in a module without parameters).
    step : float
        :math:`h`, the strength of every patch (default 1).

    Returns
    -------
    nn.Sequential
        ``Residual(p_1, step), ..., Residual(p_m, step)``; the modules are shared, not copied.

    Raises
    ------
    TypeError
        If a patch is not callable, or ``patches`` is not a list or tuple.
    ParameterError
        If ``step`` is not finite.

    Examples
    --------
    >>> import torch
    >>> stack = patch_stack([lambda z: 0.1 * z, torch.sin], step=1.0)
    >>> x = torch.ones(3)
    >>> torch.allclose(stack(x), patch_interaction([lambda z: 0.1 * z, torch.sin], x).total)
    True
    """
    if not isinstance(patches, (list, tuple, nn.ModuleList)):
        raise TypeError(f"patch_stack: patches must be a list or tuple, got {type(patches).__name__}")
    layers = []
    for i, p in enumerate(patches):
        if not callable(p):
            raise TypeError(f"patch_stack: patch {i} is not callable ({type(p).__name__})")
        layers.append(Residual(p if isinstance(p, nn.Module) else _FunctionPatch(p), step))
    return nn.Sequential(*layers)
