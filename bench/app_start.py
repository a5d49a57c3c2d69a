"""App start: `streamlit run` to a healthy server, to the first complete Playground render, and a rerun.

Each is printed in seconds and as a ratio to a hello-world Streamlit app started
and measured the same way in the same run (the floor Streamlit itself sets).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support import free_port, launch_chromium, start_app, stop_app, wait_healthy

ROUNDS = 3
HELLO = "\n".join(
    [
        "import streamlit as st",
        'st.title("Hello")',
        'single = "One model × N samples"',
        'mode = st.segmented_control("Mode", [single, "Teacher pool"], default=single)',
        'if mode == "Teacher pool":',
        '    st.text_area("Teachers (one litellm model per line)")',
        'st.button("Run")',
    ]
)
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def measure(script: str, env: dict[str, str], browser) -> dict[str, float]:
    """Seconds to health, to the first full render (the Run button), and for one rerun (switching the mode)."""
    port = free_port()
    started = time.perf_counter()
    process = start_app(port, env, script)
    try:
        health = wait_healthy(port, process)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("button", name="Run").wait_for(timeout=60_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        first = time.perf_counter() - started
        t = time.perf_counter()
        page.get_by_text("Teacher pool", exact=True).click()  # a rerun that changes the page
        page.get_by_label("Teachers (one litellm model per line)").wait_for(timeout=60_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        rerun = time.perf_counter() - t
        page.close()
    finally:
        stop_app(process)
    return {"health": health, "first render": first, "rerun": rerun}


def main() -> None:
    """Median of ROUNDS cold starts of the app and of hello-world."""
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        hello = Path(tmp) / "hello.py"
        hello.write_text(HELLO)
        env = {"FUSION_DATA_DIR": tmp, "FUSION_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        browser = launch_chromium(playwright)
        ours = [measure("app.py", env, browser) for _ in range(ROUNDS)]
        base = [measure(str(hello), env, browser) for _ in range(ROUNDS)]
        browser.close()
    print(f"App start (median of {ROUNDS} cold starts; ratio to a hello-world Streamlit app)")
    for key in ("health", "first render", "rerun"):
        a, b = statistics.median(r[key] for r in ours), statistics.median(r[key] for r in base)
        print(f"  {key:13} {a:6.2f}s   hello-world {b:6.2f}s   ratio {a / b:5.2f}×")


if __name__ == "__main__":
    main()
