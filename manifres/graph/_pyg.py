"""torch-geometric, imported only where it is needed, and shielded from its import warnings.

Only :mod:`manifres.graph.diffusion` (``LaplacianResidual`` is a ``MessagePassing``) imports
torch-geometric (2-3 s): the Laplacians, spectra, opinion models and named graphs do not, so
``import manifres.graph.datasets`` (the stability studies, the command line) stays light.
:func:`is_data` recognises a ``Data``/``Batch`` object without importing torch-geometric (an
object can only be one if torch-geometric is already loaded).

torch-geometric 2.8 calls ``torch.jit.script`` at import time, which torch >= 2.10 reports with
a ``DeprecationWarning``; under ``python -W error`` (or pytest's ``filterwarnings = error``)
that would make the import fail. :func:`message_passing` imports it inside a
``warnings.catch_warnings`` block that ignores exactly that warning; later imports are cached.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = ["is_data", "message_passing"]


def is_data(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch_geometric.data.Data`` (or ``Batch``)."""
    module = sys.modules.get("torch_geometric.data")
    return module is not None and isinstance(obj, module.Data)


def message_passing() -> type:
    """``torch_geometric.nn.MessagePassing``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*jit.*deprecated.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
        from torch_geometric.nn import MessagePassing
    return MessagePassing
