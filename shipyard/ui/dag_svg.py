"""A laid-out DAG as one inline ``<svg>`` string, styled only by CSS classes.

The page's Content-Security-Policy forbids inline script and style, so the SVG has no ``style`` attribute,
no ``<style>`` element and no event handler: a node is ``<g class="step-<status>" data-step="<id>">`` (a
rect, its label, and its full text in ``<title>`` when the label is cut), and the page's stylesheet colours
it; a poller updates a step by swapping the class of its ``data-step``. Every label and id is XML-escaped and
stripped of the characters XML cannot hold, so any text makes a well-formed document. Coordinates are
rounded to whole px, one ``<path>`` per edge, to keep a 2,000-step run's SVG small.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from shipyard.ui.dag_layout import CHAR_WIDTH, LABEL_PADDING, DagLayout, EdgePath

_MARGIN = 8  # px around the drawing, so strokes at its edge are not clipped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_CLASS = re.compile(r"[^a-z0-9_-]+")


def render_dag_svg(
    layout: DagLayout,
    *,
    statuses: Mapping[str, str] | None = None,
    css_class: str = "dag",
    marker_id: str = "dag-arrow",
) -> str:
    """The SVG for ``layout``.

    Args:
        layout: from :func:`~shipyard.ui.dag_layout.layout_dag`.
        statuses: node id → status (e.g. ``"succeeded"``); a node with none gets no status class.
        css_class: the ``<svg>`` element's class, for the stylesheet.
        marker_id: the arrowhead's element id; give each SVG on one page its own.
    """
    statuses = statuses or {}
    lr = layout.direction == "LR"
    width, height = round(layout.width), round(layout.height)
    marker = _text(marker_id)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{_text(css_class)}" role="img" '
        f'viewBox="{-_MARGIN} {-_MARGIN} {width + 2 * _MARGIN} {height + 2 * _MARGIN}" '
        f'width="{width + 2 * _MARGIN}" height="{height + 2 * _MARGIN}">'
        f'<defs><marker id="{marker}" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" '
        f'markerHeight="8" orient="auto"><path d="M0 0L8 4L0 8z"/></marker></defs>'
        # fill="none" is a presentation attribute, not inline style: edges stay lines even without CSS.
        f'<g class="dag-edges" fill="none" marker-end="url(#{marker})">'
    ]
    out.extend(f'<path d="{_edge_path(edge, lr)}"/>' for edge in layout.edges)
    out.append('</g><g class="dag-nodes">')
    for box in layout.nodes.values():
        node = box.node
        classes = []
        status = statuses.get(node.id)
        if status is not None:
            classes.append(f"step-{_NOT_CLASS.sub('-', str(status).lower())}")
        extra = ""
        if node.count > 1:
            classes.append("step-group")
            extra = f' data-count="{node.count}"'
        class_attr = f' class="{" ".join(classes)}"' if classes else ""
        full = _clean(node.text)
        cut = _truncate(full, box.w)
        title = _clean(node.title) or (full if cut != full else "")
        w, h = round(box.w), round(box.h)
        out.append(
            f'<g{class_attr} data-step="{_text(_clean(node.id))}"{extra} '
            f'transform="translate({round(box.x)},{round(box.y)})">'
            + (f"<title>{_text(title)}</title>" if title else "")
            + f'<rect width="{w}" height="{h}" rx="4"/>'
            f'<text x="{round(LABEL_PADDING)}" y="{h // 2 + 4}">{_text(cut)}</text></g>'
        )
    out.append("</g></svg>")
    return "".join(out)


def _edge_path(edge: EdgePath, lr: bool) -> str:
    """One path: a cubic curve across each gap between layers, a straight run through each layer passed."""
    pts = [(round(x), round(y)) for x, y in edge.points]
    x0, y0 = pts[0]
    parts = [f"M{x0} {y0}"]
    for x, y in pts[1:]:
        if lr and y == y0:
            parts.append(f"H{x}")
        elif not lr and x == x0:
            parts.append(f"V{y}")
        elif lr:
            mid = (x0 + x) // 2
            parts.append(f"C{mid} {y0} {mid} {y} {x} {y}")
        else:
            mid = (y0 + y) // 2
            parts.append(f"C{x0} {mid} {x} {mid} {x} {y}")
        x0, y0 = x, y
    return "".join(parts)


def _truncate(label: str, width: float) -> str:
    """``label`` cut with an ellipsis to what fits in a box ``width`` px wide."""
    fits = max(1, int((width - 2 * LABEL_PADDING) / CHAR_WIDTH))
    return label if len(label) <= fits else label[: fits - 1] + "…"


def _clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (control characters, lone surrogates)."""
    return _NOT_XML.sub("\ufffd", text)


def _text(text: str) -> str:
    return html.escape(text, quote=True)


__all__ = ["render_dag_svg"]
