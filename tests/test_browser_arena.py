"""End to end in Debian's Chromium: vote in the Arena of the real app on a prepared SQLite queue."""

import pytest
from playwright.sync_api import expect, sync_playwright

from fusion_core.store import Store
from fusion_core.votes import VoteStore
from tests.support import ROOT, launch_chromium, running_app
from tests.vote_data import make_run

pytestmark = pytest.mark.integration
SHOTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arena")
    with Store(f"sqlite:///{folder / 'fusion.db'}") as store:
        runs = [make_run(f"Arena prompt {i}") for i in range(2)]
        for run in runs:
            store.save_run(run)
        VoteStore(store).build_queue(runs, queue="demo")
    with running_app(folder) as served:
        yield served


def test_a_vote_reveals_the_systems_and_next_shows_another_pair(app):
    base, url = app
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(base + "/arena")  # a voter's shared link, the fresh server's first visit
            expect(page.get_by_role("heading", name="Arena")).to_be_visible(timeout=60_000)
            nav = page.get_by_test_id("stSidebarNav")  # app.py's navigation, not pages auto-discovered
            for title in ("Playground", "Arena", "Leaderboard", "Experiments"):
                expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible(timeout=30_000)
            assert page.url.endswith("/arena")
            expect(page.get_by_text("Arena prompt", exact=False).first).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="A is better").click()
            reveal = page.get_by_text("was written by", exact=False)
            expect(reveal).to_be_visible(timeout=30_000)
            assert "fusion" in reveal.inner_text() and "bon" in reveal.inner_text()
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "arena.png"), full_page=True)
            page.get_by_role("button", name="Next").click()
            expect(reveal).to_have_count(0, timeout=30_000)
            expect(page.get_by_role("button", name="A is better")).to_be_visible()
        finally:
            browser.close()
    with Store(url) as store:
        frame = VoteStore(store).votes_frame("demo")
    assert len(frame) == 1 and frame["winner"].tolist() == ["left"]
