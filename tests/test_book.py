"""The book builds in strict mode (execution is tested per chapter in test_notebooks.py)."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_strictly(tmp_path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config_path = tmp_path / "_config.yml"
    config_path.write_text(yaml.safe_dump(config))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--config", str(config_path),
         "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    assert (html / "book" / "intro.html").is_file()
    assert (html / "notebooks" / "01_weighted_mask.html").is_file()
    intro = (html / "book" / "intro.html").read_text()
    # The OAENet citation rendered as author and year.
    assert "Wang" in intro
    assert "2021" in intro
