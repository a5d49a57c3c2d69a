"""End to end in Debian's Chromium: the Experiments page of the real app on a finished experiment."""

import asyncio
import json
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from fusion_core.batch import BatchRunner, open_experiment
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import load_items
from fusion_core.experiments import ExperimentStore
from fusion_core.settings import PROJECT_ROOT
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter
from tests.support import ROOT, launch_chromium, running_app

pytestmark = pytest.mark.integration
SHOTS = ROOT / "artifacts"


def reply(model, messages, params):
    text = messages[-1]["content"]
    if model == "judge":
        return "[[A]]" if (params.seed or 0) % 2 else "Both are similar. [[C]]"
    words = text.split()
    return " ".join(words[(params.seed or 0) % 3 :][:12]) or "answer"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiments")
    rows = [json.loads(line) for line in (PROJECT_ROOT / "data/experiments/translation.jsonl").open()][:6]
    path = folder / "in.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = BatchConfig(models=["m"], fusor_model="fusor", n=3, selector="mbr", scaling=[1, 2, 3],
                         eval_judge_model="judge", name="browser")  # fmt: skip
    with Store(f"sqlite:///{folder / 'fusion.db'}") as store:
        experiments = ExperimentStore(store)
        experiment_id, config, _ = open_experiment(experiments, config, loaded=load_items(path), out_dir=folder / "o")
        runner = BatchRunner(experiments, experiment_id, config, FakeCompleter(default=reply), store=store)
        asyncio.run(runner.run())
    with running_app(folder) as served:
        yield served


def test_scaling_curves_win_rates_and_an_sft_export(app, tmp_path):
    base, _url = app
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
            page.goto(base + "/experiments")
            expect(page.get_by_role("heading", name="Experiments")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("6 of 6 prompts finished")).to_be_visible(timeout=30_000)
            page.get_by_role("tab", name="Win rates").click()
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("fusion vs bon").first).to_be_visible()
            page.get_by_role("tab", name="N-scaling").click()
            charts = page.get_by_role("tabpanel", name="N-scaling").locator(".js-plotly-plot")
            expect(charts.first).to_be_visible(timeout=30_000)
            assert charts.count() >= 2  # judge win rate and chrF++ against N
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "experiments.png"), full_page=True)
            page.get_by_role("tab", name="Export").click()
            with page.expect_download(timeout=30_000) as download:
                page.get_by_role("button", name=re.compile("SFT data")).click()
            saved = tmp_path / "sft.jsonl"
            download.value.save_as(saved)
        finally:
            browser.close()
    rows = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6
    assert all([m["role"] for m in row["messages"]] == ["user", "assistant"] for row in rows)
    assert rows[0]["messages"][0]["content"].startswith("Translate into")
