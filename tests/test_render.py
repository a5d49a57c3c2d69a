"""HTML rendering of attributions and diffs: escaping of untrusted text, colours, legend; the Streamlit component."""

from html.parser import HTMLParser

from streamlit.testing.v1 import AppTest

from fusion_core import render
from fusion_core.attribution import attribute
from fusion_core.diffview import diff_texts

NASTY = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</span></div><b>bold</b>",
    'He said "hi" & left',
    "it's <i>fine</i>",
]
CANDIDATES = [
    f"The sky is blue because air scatters light. {NASTY[0]} {NASTY[2]}",
    f"Water boils at one hundred degrees. {NASTY[1]} {NASTY[3]}",
    "Plants turn light into sugar.",
]
FUSED = (
    f"Water boils at one hundred degrees. {NASTY[1]} The sky is blue because air scatters light. "
    f"{NASTY[0]} {NASTY[4]} {NASTY[2]} {NASTY[3]}\nA new line."
)
ALLOWED = {
    "html": set(), "head": set(), "meta": {"charset"}, "title": set(), "body": {"style"}, "h1": {"style"},
    "div": {"style", "dir"}, "span": {"style", "title"}, "ins": {"style"}, "del": {"style"},
    "details": set(), "summary": set(),
}  # fmt: skip


class Collector(HTMLParser):
    """Every tag with its attributes, and all text as a browser would read it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector


def test_untrusted_text_is_escaped_everywhere():
    names = render.labels(3, ['gpt"<script>x</script>', "", "m'odel"])
    attribution = attribute(FUSED, CANDIDATES)
    pieces = [
        render.attributed_html(FUSED, attribution, names),
        render.legend_html(attribution, names),
        render.diff_html(diff_texts(CANDIDATES[0], FUSED)),
        render.report_html(FUSED, CANDIDATES, attribution, names),
    ]
    for html in pieces:
        assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
        parsed = parse(html)
        for tag, attrs in parsed.tags:
            assert tag in ALLOWED and set(attrs) <= ALLOWED[tag], (tag, attrs)
            assert not any(name.startswith("on") for name in attrs)
    page = parse(pieces[3])
    for nasty in NASTY:
        assert nasty in page.text  # shown as text, exactly
    assert parse(pieces[0]).text == FUSED  # the attributed answer reads exactly as the fused text


def test_segments_are_coloured_by_candidate_with_sources_on_hover():
    shared = "Use a password manager for every account."
    candidates = [f"{shared} One.", "Different text about bread.", f"Two. {shared}"]
    fused = f"{shared} Something the fusor wrote itself."
    attribution = attribute(fused, candidates)
    names = render.labels(3, ["model-a", "model-b", "model-c"])
    first, novel = parse_spans(render.attributed_html(fused, attribution, names))
    text, rest = (fused[s.start : s.end] for s in attribution.segments)
    assert text.startswith(shared)
    primary = attribution.segments[0].source
    assert f"background:{render.colour(primary)}" in first["style"]
    assert first["title"] == f"{names[primary]}; also in {names[2 - primary]}"
    assert "dotted" in novel["style"] and "background" not in novel["style"] and novel["title"].startswith("Novel")
    assert rest == "Something the fusor wrote itself."


def parse_spans(html: str) -> list[dict]:
    return [attrs for tag, attrs in parse(html).tags if tag == "span"]


def test_palette_labels_and_legend():
    assert len(set(render.PALETTE)) >= 16
    assert [render.colour(i) for i in range(16)] == list(render.PALETTE[:16])
    assert render.labels(3, ["gpt-4o", ""]) == ["Candidate 1 (gpt-4o)", "Candidate 2", "Candidate 3"]
    attribution = attribute("Alpha beta gamma delta. Totally new words here.", ["Alpha beta gamma delta.", "x"])
    legend = parse(render.legend_html(attribution, render.labels(2)))
    assert legend.text == "Candidate 1: 50%Candidate 2: 0%Novel: 50%"


def test_line_breaks_and_right_to_left_text_survive():
    fused = "سطر أول\nسطر ثان"
    html = render.attributed_html(fused, attribute(fused, []), render.labels(0))
    assert 'dir="auto"' in html and "white-space:pre-wrap" in html and "سطر أول\nسطر ثان" in html


def test_diff_marks_insertions_and_deletions():
    html = render.diff_html(diff_texts("a red car", "a blue car"))
    assert "<del" in html and ">red</del>" in html and ">blue</ins>" in html


def test_page_is_self_contained():
    page = render.page('Title <"x">', "<p>body</p>")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "Title &lt;&quot;x&quot;&gt;" in page
    assert "http" not in page and "<script" not in page and "<link" not in page


def test_plain_text_view():
    fused = "Alpha beta gamma delta. Totally new words here."
    text = render.attribution_text(fused, attribute(fused, ["x", "Alpha beta gamma delta."]), render.labels(2))
    assert text.splitlines() == [
        "Shares: Candidate 1 0.0%, Candidate 2 50.0%, novel 50.0%",
        "",
        "[2]",
        "    Alpha beta gamma delta. ",
        "[novel]",
        "    Totally new words here.",
    ]


def component_app():
    from components.attribution_view import attribution_view

    attribution_view(
        "The cat sat on the mat. <script>alert(1)</script> A novel ending.",
        ["The cat sat on the mat.", "Dogs bark at night <img src=x onerror=alert(1)>."],
        labels=["Candidate 1", "Candidate 2"],
        key="t",
    )


def test_the_component_renders_html_and_a_diff():
    at = AppTest.from_function(component_app, default_timeout=30)
    at.run()
    assert not at.exception
    [html] = at.get("html")
    body = html.proto.body
    assert "Candidate 1: " in body and "&lt;script&gt;" in body and "<script" not in body
    assert at.selectbox[0].value is None
    at.selectbox[0].set_value(1).run()
    assert not at.exception
    diff = at.get("html")[1].proto.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in diff and "<img" not in diff
    assert "Candidate 2" in at.caption[0].value


def stored_app():
    from components.attribution_view import attribution_view

    stored = {"segments": [{"start": 0, "end": 5, "source": 1, "sources": [1]}], "shares": {"0": 0, "1": 1, "novel": 0}}
    attribution_view("Hello", ["", "Hello"], attribution=stored)


def test_the_component_shows_a_stored_attribution():
    at = AppTest.from_function(stored_app, default_timeout=30)
    at.run()
    assert not at.exception
    assert "Candidate 2: 100%" in at.get("html")[0].proto.body
