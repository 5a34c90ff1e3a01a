r"""Sphinx extension: render math as MathML at build time, so formulas display offline.

``sphinx.ext.mathjax`` leaves LaTeX in the pages and loads MathJax from a CDN: without the
network every formula stays raw LaTeX. This renderer converts each ``:math:`` role and
``.. math::`` block with `latex2mathml <https://pypi.org/project/latex2mathml/>`_ while the
site is built; browsers display MathML natively, with no JavaScript and no download.

Before converting, :func:`normalize` rewrites four valid LaTeX spellings that latex2mathml
3.81 does not read: ``\_`` inside ``\text{...}`` (and ``\texttt``, ...), a named delimiter after
``\big``/``\Big``/... (``\Big\|``, ``\bigl\langle``: the character itself), ``[`` right
after ``\begin{cases}`` (taken for an optional argument), and the ``aligned`` environment
(as ``align``, same columns). As in ``sphinx.ext.mathjax``, a displayed equation with line
breaks ``\\`` is set as a ``split``, and equations separated by a blank line one below the
other. A formula that still does not
convert cleanly is a build warning (``-W`` makes it an error): the converter raised, its output
is not well-formed XML, or a LaTeX command came through unconverted (a backslash left in the
output's text). The page then shows the LaTeX source.
"""

from __future__ import annotations

import html
import re
from xml.etree import ElementTree

from docutils import nodes
from latex2mathml.converter import convert
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

__all__ = ["normalize", "to_mathml", "setup"]

logger = logging.getLogger(__name__)

_TEXT_GROUP = re.compile(r"(\\(?:text|texttt|textrm|textit|textbf|textsf|mbox)\{)([^{}]*)\}")
_DELIMITERS = {
    r"\|": "\u2016",
    r"\Vert": "\u2016",
    r"\lVert": "\u2016",
    r"\rVert": "\u2016",
    r"\vert": "|",
    r"\lvert": "|",
    r"\rvert": "|",
    r"\langle": "\u27e8",
    r"\rangle": "\u27e9",
    r"\lfloor": "\u230a",
    r"\rfloor": "\u230b",
    r"\lceil": "\u2308",
    r"\rceil": "\u2309",
}
_NAMED = "|".join(re.escape(d) for d in sorted(_DELIMITERS, key=len, reverse=True))
_SIZED = re.compile(r"(\\[bB]igg?[lrm]?)\s*(" + _NAMED + r")(?![A-Za-z])")
_BRACKET_AFTER_BEGIN = re.compile(r"(\\begin\{[A-Za-z*]+\})(\s*)\[")
_ALIGNED = re.compile(r"\\(begin|end)\{aligned\}")


def normalize(latex: str) -> str:
    r"""Rewrite the LaTeX spellings latex2mathml does not read (see the module notes).

    >>> normalize(r"\Big\| x \Big\|")
    '\\Big‖ x \\Big‖'
    """
    latex = _TEXT_GROUP.sub(lambda m: m[1] + m[2].replace(r"\_", "_") + "}", latex)
    latex = _SIZED.sub(lambda m: m[1] + _DELIMITERS[m[2]], latex)
    latex = _ALIGNED.sub(r"\\\1{align}", latex)
    return _BRACKET_AFTER_BEGIN.sub(r"\1{}\2[", latex)


def to_mathml(latex: str, display: bool) -> str:
    """The MathML of ``latex`` for an HTML page; raises ``ValueError`` if it does not convert
    cleanly."""
    try:
        mathml = convert(normalize(latex.strip()), display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises plain exceptions of several kinds
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    try:
        tree = ElementTree.fromstring(mathml)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the MathML is not well-formed ({exc})") from None
    left = [t for t in tree.itertext() if "\\" in t]
    if left:
        raise ValueError(f"unconverted LaTeX command(s) {left}")
    # HTML puts <math> in the MathML namespace by itself: no namespace URL in the pages
    return mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1)


def _render(translator, node: nodes.Element, latex: str, display: bool) -> str:
    try:
        return to_mathml(latex, display)
    except ValueError as exc:
        logger.warning("math %r cannot be rendered as MathML: %s", latex, exc, location=node)
        return f'<code class="math-source">{html.escape(latex)}</code>'


def visit_math(translator, node: nodes.math) -> None:
    translator.body.append(translator.starttag(node, "span", "", CLASS="math notranslate nohighlight"))
    translator.body.append(_render(translator, node, node.astext(), display=False))
    translator.body.append("</span>")
    raise nodes.SkipNode


def visit_math_block(translator, node: nodes.math_block) -> None:
    translator.body.append(translator.starttag(node, "div", CLASS="math notranslate nohighlight"))
    if node["number"]:
        number = get_node_equation_number(translator, node)
        translator.body.append(f'<span class="eqno">({number})')
        translator.add_permalink_ref(node, _("Link to this equation"))
        translator.body.append("</span>")
    for part in (p for p in node.astext().split("\n\n") if p.strip()):
        if "\\\\" in part:
            part = r"\begin{split}" + part + r"\end{split}"
        translator.body.append(_render(translator, node, part, display=True))
    translator.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app) -> dict:
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_math_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
