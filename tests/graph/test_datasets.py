import pytest
import torch

from manifres.errors import GraphError, UnknownChoiceError
from manifres.graph.datasets import GRAPH_NAMES, named_graph, read_edge_list


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_named_graphs_are_symmetric(name):
    g = named_graph(name, 9)
    ei = g.edge_index
    assert ei.dtype == torch.long and ei.shape[0] == 2
    pairs = set(map(tuple, ei.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs)
    assert int(ei.max()) < g.num_nodes


def test_named_graph_sizes():
    assert named_graph("grid", 10).num_nodes == 9
    assert named_graph("complete", 5).edge_index.shape[1] == 20
    assert named_graph("bipartite", 5).edge_index.shape[1] == 12
    assert named_graph("karate", 3).num_nodes == 34
    with pytest.raises(UnknownChoiceError, match="karate"):
        named_graph("petersen")
    with pytest.raises(GraphError):
        named_graph("cycle", 2)


def test_read_edge_list(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# comment\n0 1 2.0\n1,2,0.5  # trailing\n\n2\t0\t1\n1 0 2.0\n")
    g = read_edge_list(p)
    assert g.num_nodes == 3 and g.edge_index.shape == (2, 6)
    w = {tuple(e): float(x) for e, x in zip(g.edge_index.T.tolist(), g.edge_weight, strict=True)}
    assert w[(0, 1)] == 2.0 and w[(2, 1)] == 0.5 and w[(0, 2)] == 1.0
    assert read_edge_list(p, num_nodes=5).num_nodes == 5
    q = tmp_path / "u.txt"
    q.write_text("0 1\n1 2\n")
    assert read_edge_list(q).edge_weight is None


@pytest.mark.parametrize(
    "text, match",
    [
        ("0 1\n1\n", "line 2"),
        ("0 x\n", "integers"),
        ("0 1 -1\n", "non-negative"),
        ("0 1 nan\n", "finite"),
        ("0 1 1\n1 2\n", "columns"),
        ("-1 2\n", "negative node"),
        ("0 1 1\n1 0 2\n", "listed again"),
        ("# nothing\n\n", "no edges"),
        ("0 1 abc\n", "number"),
    ],
)
def test_read_edge_list_errors(tmp_path, text, match):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(GraphError, match=match):
        read_edge_list(p)


def test_read_edge_list_missing_file_and_small_num_nodes(tmp_path):
    with pytest.raises(OSError):
        read_edge_list(tmp_path / "missing.txt")
    p = tmp_path / "g.txt"
    p.write_text("0 4\n")
    with pytest.raises(GraphError, match="num_nodes"):
        read_edge_list(p, num_nodes=3)
