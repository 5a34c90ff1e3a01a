"""docs/_mathml.py: the docs render math as MathML at build time (offline, no CDN)."""

from pathlib import Path
from xml.etree import ElementTree

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def _mathml(monkeypatch):
    """docs/_mathml.py (it needs latex2mathml, from the docs extra)."""
    pytest.importorskip("latex2mathml")
    monkeypatch.syspath_prepend(str(DOCS))
    import _mathml

    return _mathml

# Spellings the docstrings use (and the ones latex2mathml needs rewritten).
FORMULAS = [
    r"\operatorname{Exp}_x(v) = \cos(\|v\|)\,x + \operatorname{sinc}(\|v\|)\,v",
    r"x \in \mathbb{R}^{n+1}, \quad \mathfrak{so}(n), \quad \mathcal{O}(h^2)",
    r"\hat\omega = \begin{pmatrix} 0 & -\omega_3 \\ \omega_3 & 0 \end{pmatrix}",
    r"\tfrac{1}{2}\,\theta^2 \le \tfrac{\pi}{2}",
    r"\begin{aligned} a &= b \\ c &= d \end{aligned}",
    r"\omega = \begin{cases} [\|x\| \le \varepsilon] & \text{hard} \\ \sigma(x) & \text{soft}\end{cases}",
    r"E = \frac12 \Big\| \frac{x_i}{s_i} \Big\|^2 + \Big\langle a, b \Big\rangle",
    r"q = \texttt{to\_quaternion}(R), \quad \lfloor\sqrt{n}\rfloor",
]


@pytest.mark.parametrize("latex", FORMULAS)
def test_formula_converts_to_mathml_without_urls(_mathml, latex):
    mathml = _mathml.to_mathml(latex, display=True)
    tree = ElementTree.fromstring(mathml)
    assert tree.tag == "math" and tree.get("display") == "block"
    assert "http" not in mathml and "\\" not in "".join(tree.itertext())


def test_unknown_command_is_an_error(_mathml):
    with pytest.raises(ValueError, match=r"\\notacommand"):
        _mathml.to_mathml(r"\notacommand x", display=False)


def test_normalize_rewrites_only_what_latex2mathml_cannot_read(_mathml):
    assert _mathml.normalize(r"\bigl\langle x \bigr\rangle") == "\\bigl\u27e8 x \\bigr\u27e9"
    assert _mathml.normalize(r"\text{a\_b} + a\_b") == r"\text{a_b} + a\_b"
    assert _mathml.normalize(r"\begin{cases} [x] & 1 \end{cases}") == r"\begin{cases}{} [x] & 1 \end{cases}"
    assert _mathml.normalize(r"\langle x \rangle") == r"\langle x \rangle"


def test_docs_use_the_mathml_renderer():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert '"_mathml"' in conf and 'html_math_renderer = "mathml"' in conf
    assert "sphinx.ext.mathjax" not in conf
