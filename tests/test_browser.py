"""End to end in Debian's Chromium: the real app (`make run`'s command) on the embedded model."""

import pytest
from playwright.sync_api import expect, sync_playwright

from fusion_core.store import Store
from fusion_core.types import Candidate, FusionResult, RunConfig, RunResult, Selection
from tests.support import ROOT, launch_chromium, running_app

pytestmark = pytest.mark.integration
SHOTS = ROOT / "artifacts"
EVIL = [
    "<script>window.__xss = 1; alert('script')</script> plain words",
    "<img src=x onerror=\"window.__xss = 2; alert('img')\"> more words",
    "</span></div><b>bold?</b> \"quotes\" and 'apostrophes'",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("app")) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 2600})
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def test_a_fusion_on_the_embedded_model_shows_candidates_bon_and_the_attributed_fusion(app, page):
    base, _ = app
    page.goto(base)
    expect(page.get_by_role("heading", name="Playground")).to_be_visible(timeout=60_000)
    tokens = page.get_by_label("Max tokens per candidate")
    tokens.fill("32")
    tokens.press("Enter")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", name="Fusion-of-N")).to_be_visible(timeout=240_000)
    expect(page.get_by_role("heading", name="Candidates (4)")).to_be_visible()
    badges = page.locator("span.stMarkdownBadge", has_text="Best-of-N")
    expect(badges.first).to_be_visible()
    assert badges.count() == 1
    # What the 135M fusor writes varies between machines (continuous batching is not bit-exact), so here we
    # check that the answer is attributed end to end; which colours appear is checked on a fixed run below.
    legend = page.locator("span", has_text="Novel:").filter(has_not_text="Candidate")
    expect(legend.first).to_be_visible()
    for i in range(1, 5):
        expect(page.locator("span", has_text=f"Candidate {i}").filter(has_text="%").first).to_be_visible()
    segments = page.locator("span[title^='Candidate'], span[title^='Novel: in no candidate']")
    expect(segments.first).to_be_visible()
    assert "".join(segments.all_inner_texts()).strip()
    assert "run=" in page.url
    page.get_by_text("Done", exact=True).click()  # the collapsed status box keeps what streamed
    for i in range(1, 5):
        expect(page.get_by_text(f"candidate {i} · local/smollm2-135m")).to_be_visible()
    expect(page.get_by_text("✅ fusor local/smollm2-135m ·")).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "playground.png"), full_page=True)


def test_hostile_candidate_text_is_shown_as_text_and_never_runs(app, page):
    base, url = app
    candidates = [Candidate(i, "evil/model", text=t) for i, t in enumerate(EVIL)]
    run = RunResult(
        config=RunConfig(prompt="<script>window.__xss = 3</script>?", models=["evil/model"], n=3),
        candidates=candidates,
        bon=Selection(index=0, method="mbr", scores=[0.5, 0.4, 0.3], rationale="<b>why</b>"),
        fusion=FusionResult(text=EVIL[0] + "\n" + EVIL[1], model="evil/fusor", messages=[], order=[0, 1, 2]),
    )
    with Store(url) as store:
        run_id = store.save_run(run)
    page.goto(f"{base}/?run={run_id}")
    expect(page.get_by_role("heading", name="Fusion-of-N")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("<script>window.__xss = 1;", exact=False).first).to_be_visible()
    expect(page.get_by_text("onerror=", exact=False).first).to_be_visible()
    expect(page.get_by_text("</span></div><b>bold?</b>", exact=False).first).to_be_visible()
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "hostile.png"), full_page=True)


def test_each_copied_segment_is_coloured_and_titled_with_its_candidate(app, page):
    base, url = app
    texts = [
        "Rayleigh scattering sends short blue wavelengths across the whole sky.",
        "The ocean reflects the sky, which is a common myth about its colour.",
        "At sunset light crosses more air, so the reds and oranges remain.",
    ]
    fused = f"{texts[0]} Something written only by the fusor itself here. {texts[2]}"
    run = RunResult(
        config=RunConfig(prompt="Why is the sky blue?", models=["m"], n=3),
        candidates=[Candidate(i, "m", text=t) for i, t in enumerate(texts)],
        bon=Selection(index=1, method="mbr", scores=[0.2, 0.5, 0.3]),
        fusion=FusionResult(text=fused, model="f", messages=[], order=[0, 1, 2]),
    )
    with Store(url) as store:
        run_id = store.save_run(run)
    page.goto(f"{base}/?run={run_id}")
    expect(page.get_by_role("heading", name="Fusion-of-N")).to_be_visible(timeout=60_000)
    first = page.locator("span[title^='Candidate 1']")
    third = page.locator("span[title^='Candidate 3']")
    expect(first.first).to_be_visible()
    assert "Rayleigh scattering" in "".join(first.all_inner_texts())
    assert "reds and oranges" in "".join(third.all_inner_texts())
    assert page.locator("span[title^='Candidate 2']").count() == 0
    novel = "".join(page.locator("span[title^='Novel: in no candidate']").all_inner_texts())
    assert "only by the fusor" in novel
    assert "Rayleigh" not in novel
