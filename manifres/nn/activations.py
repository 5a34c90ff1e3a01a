"""The activation registry: one table of names for every layer, field, study and command.

Examples
--------
>>> activation("tanh")
Tanh()
>>> sorted(ACTIVATIONS)[:3]
['elu', 'gelu', 'identity']
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._validation import check_choice

__all__ = ["ACTIVATIONS", "activation"]

#: Activation names and the module classes they build.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def activation(name: str | nn.Module, owner: str = "activation") -> nn.Module:
    """Build the activation module called ``name``, or return a given module unchanged.

    Raises
    ------
    UnknownChoiceError
        If ``name`` is not in :data:`ACTIVATIONS` (the message lists the names).
    """
    if isinstance(name, nn.Module):
        return name
    return ACTIVATIONS[check_choice(name, ACTIVATIONS, "activation", owner)]()
