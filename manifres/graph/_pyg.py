"""torch-geometric imports, shielded from the warnings its import raises on recent torch.

torch-geometric 2.8 calls ``torch.jit.script`` at import time, which torch >= 2.10 reports with a
``DeprecationWarning``; under ``python -W error`` (or pytest's ``filterwarnings = error``) that
would make ``import manifres.graph`` fail. The first import happens here, inside a
``warnings.catch_warnings`` block that ignores exactly that warning; later imports are cached.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*jit.*deprecated.*", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    from torch_geometric.data import Data
    from torch_geometric.nn import MessagePassing
    from torch_geometric.utils import scatter

__all__ = ["Data", "MessagePassing", "scatter"]
