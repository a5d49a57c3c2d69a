"""HTML for an attributed fused answer, its legend and a diff, plus plain text for the terminal.

Everything that comes from a model is escaped with html.escape(quote=True);
styling is inline (Streamlit's st.html sanitizes with DOMPurify, which keeps
`style`, `title` and `dir` but drops scripts, event handlers and external
resources, none of which we emit). Line breaks are kept with pre-wrap, and
dir="auto" lets right-to-left answers read right to left.
"""

from __future__ import annotations

from html import escape

from .attribution import Attribution, Segment
from .diffview import DiffOp, diff_texts

# Light, distinguishable backgrounds, one per candidate (they repeat after 20).
PALETTE = (
    "#ffd8a8", "#b2f2bb", "#a5d8ff", "#fcc2d7", "#ffec99", "#d0bfff", "#99e9f2", "#ffc9c9", "#c0eb75", "#eebefa",
    "#bac8ff", "#96f2d7", "#ffe066", "#e9ecef", "#f4c7a1", "#c5e1a5", "#b3cde0", "#f8bbd0", "#d7ccc8", "#cfd8dc",
)  # fmt: skip
_TEXT = "white-space:pre-wrap;line-height:1.6"  # text colour inherited: novel text must read in dark themes too
_ON_COLOUR = "color:#1a1a1a;border-radius:3px"
_NOVEL = "border-bottom:2px dotted #868e96"


def colour(index: int) -> str:
    """The background colour of candidate `index`."""
    return PALETTE[index % len(PALETTE)]


def labels(n: int, names: list[str] | None = None) -> list[str]:
    """Human labels: "Candidate 1" .. "Candidate n", with a model name when one is given."""
    names = names or []
    out = []
    for i in range(n):
        name = names[i] if i < len(names) and names[i] else ""
        out.append(f"Candidate {i + 1}" + (f" ({name})" if name else ""))
    return out


def attributed_html(fused: str, attribution: Attribution, names: list[str]) -> str:
    """The fused answer, each segment on its candidate's colour with its source(s) on hover."""
    spans = [_segment_html(fused, seg, names) for seg in attribution.segments]
    return f'<div dir="auto" style="{_TEXT};padding:0.5em 0">{"".join(spans)}</div>'


def _segment_html(fused: str, seg: Segment, names: list[str]) -> str:
    text = escape(fused[seg.start : seg.end], quote=True)
    if seg.source is None:
        return f'<span style="{_NOVEL}" title="Novel: in no candidate">{text}</span>'
    others = [_name(names, c) for c in seg.sources if c != seg.source]
    tip = _name(names, seg.source) + (f"; also in {', '.join(others)}" if others else "")
    style = f"background:{colour(seg.source)};{_ON_COLOUR}"
    return f'<span style="{style}" title="{escape(tip, quote=True)}">{text}</span>'


def _name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else f"Candidate {index + 1}"


def legend_html(attribution: Attribution, names: list[str]) -> str:
    """One chip per candidate with its share of the fused answer, and one for novel text."""
    chip = "display:inline-block;margin:0 0.4em 0.3em 0;padding:0.1em 0.5em"
    items = [
        f'<span style="{chip};background:{colour(i)};{_ON_COLOUR}">{escape(name, quote=True)}: {share:.0%}</span>'
        for i, (name, share) in enumerate(zip(names, attribution.shares, strict=False))
    ]
    items.append(
        f'<span style="{chip};{_NOVEL}" title="Text found in no candidate">Novel: {attribution.novel:.0%}</span>'
    )
    return f'<div style="font-size:0.9em">{"".join(items)}</div>'


def diff_html(ops: list[DiffOp]) -> str:
    """A diff: deleted text struck through on red, inserted text underlined on green."""
    styles = {
        "insert": f"background:#d3f9d8;text-decoration:underline;{_ON_COLOUR}",
        "delete": f"background:#ffe3e3;text-decoration:line-through;{_ON_COLOUR}",
    }
    parts = []
    for op in ops:
        text = escape(op.text, quote=True)
        tag = {"insert": "ins", "delete": "del"}.get(op.op)
        parts.append(f'<{tag} style="{styles[op.op]}">{text}</{tag}>' if tag else text)
    return f'<div dir="auto" style="{_TEXT};font-size:0.95em">{"".join(parts)}</div>'


def page(title: str, *parts: str) -> str:
    """A self-contained HTML document (no scripts, no external resources) around the given fragments."""
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title, quote=True)}</title></head>\n"
        '<body style="font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em">\n'
        f'<h1 style="font-size:1.3em">{escape(title, quote=True)}</h1>\n{body}\n</body></html>\n'
    )


def report_html(fused: str, candidates: list[str], attribution: Attribution, names: list[str]) -> str:
    """A whole page: legend, attributed answer, and a folded diff against each candidate."""
    diffs = [
        f"<details><summary>Diff against {escape(name, quote=True)}</summary>{diff_html(diff_texts(text, fused))}"
        "</details>"
        for name, text in zip(names, candidates, strict=True)
    ]
    body = [legend_html(attribution, names), attributed_html(fused, attribution, names), *diffs]
    return page("Fused answer, attributed", *body)


def attribution_text(fused: str, attribution: Attribution, names: list[str]) -> str:
    """Plain text for the terminal: the shares, then each segment under its source."""
    shares = [f"{name} {share:.1%}" for name, share in zip(names, attribution.shares, strict=False)]
    lines = ["Shares: " + ", ".join([*shares, f"novel {attribution.novel:.1%}"]), ""]
    for seg in attribution.segments:
        if seg.source is None:
            head = "[novel]"
        else:
            others = [str(c + 1) for c in seg.sources if c != seg.source]
            head = f"[{seg.source + 1}" + (f", also in {', '.join(others)}" if others else "") + "]"
        body = fused[seg.start : seg.end].strip("\n")
        lines += [head, *("    " + line for line in body.splitlines() or [""])]
    return "\n".join(lines)
