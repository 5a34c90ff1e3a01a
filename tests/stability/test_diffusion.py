import math

import pytest
import torch

from manifres.errors import GraphError
from manifres.graph.datasets import named_graph
from manifres.stability import diffusion_stability

N = 8


def _closed_form(name, n):
    """Combinatorial Laplacian spectra in closed form."""
    k = torch.arange(n, dtype=torch.float64)
    if name == "path":
        return 2 - 2 * torch.cos(math.pi * k / n)
    if name == "cycle":
        return 2 - 2 * torch.cos(2 * math.pi * k / n)
    if name == "complete":
        return torch.cat(
            [torch.zeros(1, dtype=torch.float64), torch.full((n - 1,), float(n), dtype=torch.float64)]
        )
    if name == "star":
        return torch.cat(
            [
                torch.zeros(1, dtype=torch.float64),
                torch.ones(n - 2, dtype=torch.float64),
                torch.full((1,), float(n), dtype=torch.float64),
            ]
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["path", "cycle", "complete", "star"])
def test_closed_form_spectra_and_step(name):
    g = named_graph(name, N)
    lam = _closed_form(name, N).sort().values
    lmax, l2 = float(lam[-1]), float(lam[1])
    alpha = 0.9 * 2 / lmax
    ds = diffusion_stability(g.edge_index, alpha, None)
    assert ds.lambda_max == pytest.approx(lmax, abs=1e-12)
    assert ds.lambda_2 == pytest.approx(l2, abs=1e-12)
    assert ds.max_step == pytest.approx(2 / lmax, rel=1e-12)
    assert ds.consensus_rate == pytest.approx(max(abs(1 - alpha * l2), abs(1 - alpha * lmax)), abs=1e-12)
    assert ds.stable
    torch.testing.assert_close(ds.eigenvalues, lam, atol=1e-12, rtol=0)
    assert ds.num_nodes == N


def test_stability_threshold_just_below_and_above():
    g = named_graph("cycle", N)  # lambda_max = 4, max step 0.5
    assert diffusion_stability(g.edge_index, 0.5 * (1 - 1e-6)).stable
    assert diffusion_stability(g.edge_index, 0.5).stable
    unstable = diffusion_stability(g.edge_index, 0.5 * (1 + 1e-6))
    assert not unstable.stable and unstable.consensus_rate > 1


def test_sym_bipartite_attains_two_and_decay_follows_the_rate():
    g = named_graph("bipartite", 6)
    ds = diffusion_stability(g.edge_index, 1.0, "sym", simulate=12)
    assert ds.lambda_max == pytest.approx(2.0, abs=1e-12)
    assert ds.stable  # h * lambda_max = 2 exactly: the boundary counts as stable
    g = named_graph("karate")
    ds = diffusion_stability(g.edge_index, 0.8, "sym", simulate=25)
    k = torch.arange(26, dtype=torch.float64)
    assert ds.decay.shape == (26,) and float(ds.decay[0]) == pytest.approx(1.0)
    assert (ds.decay <= ds.consensus_rate**k * (1 + 1e-9)).all()
    bad = diffusion_stability(g.edge_index, 1.5, "sym", simulate=25)
    assert not bad.stable and float(bad.decay[-1]) > 1


def test_karate_against_scipy_and_networkx():
    nx = pytest.importorskip("networkx")
    sp = pytest.importorskip("scipy.sparse.csgraph")
    ref = nx.karate_club_graph()
    g = named_graph("karate")
    edges = {tuple(sorted(e)) for e in g.edge_index.T.tolist()}
    assert edges == {tuple(sorted(e)) for e in ref.edges()}
    a = torch.zeros(34, 34, dtype=torch.float64)
    a[g.edge_index[0], g.edge_index[1]] = 1.0
    lap = torch.as_tensor(sp.laplacian(a.numpy(), normed=True))
    ev = torch.linalg.eigvalsh(lap)
    ds = diffusion_stability(g.edge_index, 1.0, "sym")
    assert ds.lambda_max == pytest.approx(float(ev[-1]), abs=1e-12)
    assert ds.lambda_2 == pytest.approx(float(ev[1]), abs=1e-12)
    assert ds.num_edges == 78


def test_disconnected_graph_has_no_consensus():
    ei = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    ds = diffusion_stability(ei, 0.5, None, num_nodes=5)
    assert ds.lambda_2 == 0.0 and ds.consensus_rate == pytest.approx(1.0)
    assert int((ds.eigenvalues == 0).sum()) == 3


def test_bad_graph_raises_graph_error():
    with pytest.raises(GraphError):
        diffusion_stability(torch.tensor([[0, 1], [1, 2]]), 0.5, "sym")  # directed


def test_deprecated_alpha_and_steps_keywords():
    ring = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    with pytest.warns(DeprecationWarning, match="alpha"):
        ds = diffusion_stability(ring, alpha=0.25)
    assert ds.step == 0.25
    with pytest.warns(DeprecationWarning, match="steps"):
        ds = diffusion_stability(ring, 0.25, steps=3)
    assert ds.decay.shape == (4,)
    with pytest.warns(DeprecationWarning, match="alpha"):
        assert ds.alpha == 0.25
