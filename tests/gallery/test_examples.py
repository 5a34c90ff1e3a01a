"""The gallery (manifres/gallery): every example runs at quick size, draws a figure and sets
its SUMMARY.

Examples run in this process through :func:`manifres.cli.tour.run_example` (the Agg backend,
``MANIFRES_QUICK=1``), with pytest's ``filterwarnings = error``: a warning inside an example
fails it. torch runs on one intra-op thread here: the examples use small tensors, and on a
busy two-core machine two threads wait for each other (measured up to 30x slower).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

import manifres
from manifres.cli.tour import example_name, find_examples, list_examples, run_example

ROOT = Path(__file__).resolve().parents[2]
GALLERY = Path(manifres.__file__).resolve().parent / "gallery"
EXAMPLES = list_examples(find_examples(GALLERY))


@pytest.fixture
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_name)
def test_example_runs_at_quick_size(path, tmp_path, one_thread):
    result = run_example(path, tmp_path, quick=True)
    assert result.ok, f"{result.name} failed:\n{result.error}"
    assert result.summary.strip()
    assert result.figures
    for png in result.figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", EXAMPLES, ids=example_name)
def test_example_layout(path):
    """sphinx-gallery layout: a docstring with an '=' title, the quick switch, a SUMMARY."""
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source), clean=True)
    assert doc, f"{path.name} has no module docstring"
    title, underline = doc.splitlines()[:2]
    assert title.strip() and set(underline.strip()) == {"="} and len(underline.strip()) >= len(title.strip())
    assert 'os.environ.get("MANIFRES_QUICK", "0") == "1"' in source
    assert re.search(r"^SUMMARY = ", source, flags=re.MULTILINE)


def test_gallery_sections():
    """At least the thirteen stories of the issue, in sections that each have a README.txt."""
    root = find_examples(GALLERY)
    assert (root / "README.txt").is_file()
    sections = {p.parent for p in EXAMPLES}
    for section in sections:
        assert (section / "README.txt").is_file(), f"{section.name} has no README.txt"
    assert len(EXAMPLES) >= 13
    assert len({example_name(p) for p in EXAMPLES}) == len(EXAMPLES)


def _quick_start() -> str:
    text = (ROOT / "docs" / "getting_started.rst").read_text(encoding="utf-8")
    block = text.split(":name: quick-start", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.strip() and not line.startswith("   "):
            break
        lines.append(line[3:])
    return "\n".join(lines).strip() + "\n"


@pytest.mark.skipif(not (ROOT / "docs" / "getting_started.rst").is_file(), reason="no docs/ in this checkout")
def test_docs_quick_start_runs():
    """The 15-line quick start of the getting-started page runs and prints what it says."""
    code = _quick_start()
    assert 10 <= len(code.splitlines()) <= 15
    out = io.StringIO()
    saved = torch.random.get_rng_state()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "getting_started.rst", "exec"), {"__name__": "quick_start"})
    finally:
        torch.random.set_rng_state(saved)
    printed = out.getvalue().splitlines()
    assert printed == ["True", "torch.Size([128, 3]) True"]
