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


def test_a_fusion_on_the_embedded_model_shows_candidates_bon_and_coloured_fusion(app, page):
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
    coloured = page.locator("span[title^='Candidate']")
    expect(coloured.first).to_be_visible()
    assert coloured.count() >= 1
    expect(page.get_by_text("novel", exact=False).first).to_be_visible()
    assert "run=" in page.url
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
