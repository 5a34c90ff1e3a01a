r"""Memory that a forward pass holds for the backward pass: the tensors autograd saves.

Training memory beyond the parameters is dominated by the activations that autograd keeps
between the forward and the backward pass. They are counted here exactly, by intercepting
every tensor that autograd saves (``torch.autograd.graph.saved_tensors_hooks``), rather than
from the process' resident memory (which the allocator's caching blurs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["saved_activation_bytes"]


def saved_activation_bytes(model: Callable[[Tensor], Tensor], x: Tensor) -> int:
    r"""Bytes of the tensors that one forward pass of ``model`` saves for its backward pass.

    .. math:: \text{bytes} = \sum_{s \in S \setminus P} \operatorname{nbytes}(s)

    over the distinct storages :math:`S` of the saved tensors (a tensor saved by several
    operations, or views of one storage, count once), without the storages :math:`P` of the
    model's parameters and buffers. All of them are alive when the forward pass ends, so this
    is the peak memory of saved activations.

    Parameters
    ----------
    model : module or callable
        Run once on ``x`` with gradients enabled (as in training: what is saved depends on
        which inputs require gradients; ``x`` is used as given).
    x : Tensor
        The input batch.

    Returns
    -------
    int
        The number of bytes (0 when nothing requires a gradient).

    Notes
    -----
    Only what autograd saves is counted: temporaries freed during the forward pass and the
    output itself (unless an operation saved it) are not. Which tensors an operation saves is
    torch's choice (``tanh`` saves its output, a matrix product saves the operand that the
    other's gradient needs), so compare architectures under one torch version.

    Examples
    --------
    >>> import torch
    >>> w = torch.randn(4, 5, requires_grad=True)
    >>> x = torch.randn(3, 4)
    >>> saved_activation_bytes(lambda z: torch.exp(z @ w), x)  # x for dw, exp's output: (12 + 15) * 4
    108
    """
    exclude = set()
    if isinstance(model, nn.Module):
        for t in list(model.parameters()) + list(model.buffers()):
            exclude.add(t.untyped_storage().data_ptr())
    seen: dict[tuple[int, str], int] = {}

    def pack(t: Tensor) -> Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in exclude:
            seen[(ptr, str(t.device))] = st.nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return int(sum(seen.values()))
