"""SpecialOrthogonal(3).exp under torch.compile(fullgraph=True): no graph break from the
validation switch (``get_validation`` reads a ContextVar), forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo as dynamo

import manifres
from manifres import SpecialOrthogonal


def _inputs():
    G = SpecialOrthogonal(3)
    g = torch.Generator().manual_seed(0)
    X = G.random(8, generator=g)
    V = torch.randn(8, 3, 3, generator=g)
    return G, X, V


def _run(backend: str) -> None:
    G, X, V = _inputs()
    fn = lambda X, V: G.exp(X, V)  # noqa: E731
    dynamo.reset()
    explained = dynamo.explain(fn)(X, V)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend=backend)
    Vc = V.clone().requires_grad_(True)
    Ve = V.clone().requires_grad_(True)
    out = compiled(X, Vc)
    ref = fn(X, Ve)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(Vc.grad, Ve.grad, rtol=1e-5, atol=1e-6)
    dynamo.reset()


def test_exp_compiles_fullgraph_forward_backward():
    _run("aot_eager")


@pytest.mark.slow
def test_exp_compiles_fullgraph_inductor():
    _run("inductor")


def test_validation_inside_compiled_function_uses_the_setting_at_compile_time():
    """Value checks read tensors (data-dependent), so with validation on the graph breaks
    (no fullgraph); the checks still run in the compiled function."""
    G, X, V = _inputs()
    dynamo.reset()
    with manifres.validation():
        compiled = torch.compile(lambda X, V: G.exp(X, V), backend="eager")
        bad = X.clone()
        bad[0, 0, 0] += 1.0
        with pytest.raises(manifres.errors.ManifoldError):
            compiled(bad, V)
    dynamo.reset()
