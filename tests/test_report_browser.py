"""End to end: a tiny real grid -> `lnmbench report` -> report.html opened in headless Chromium."""

from __future__ import annotations

import io

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from chromium_page import check_page, chromium_binary
from lnmbench.cli import app

runner = CliRunner()


def _grid_and_report(small_npz, root):
    """2 methods × 2 rates × 2 seeds × 2 epochs of the tiny CNN on a subset of the demo set
    (240/80/80 images), then `lnmbench report`; returns the report folder."""
    spec = {
        "name": "e2e",
        "preset": "fast",
        "out": str(root / "runs"),
        "methods": ["ce", "sce"],
        "datasets": [str(small_npz)],
        "noise": "symmetric",
        "rates": [0.2, 0.5],
        "seeds": [0, 1],
        "overrides": {"epochs": 2, "model": "cnn-tiny"},
    }
    (root / "grid.yaml").write_text(yaml.safe_dump(spec))
    res = runner.invoke(app, ["grid", str(root / "grid.yaml")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["report", str(root / "runs"), "--out", str(root / "report"), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "8 runs (8 done, 0 failed, 0 running, 0 interrupted): 8 run folders read" in said
    return root / "report"


def test_report_cli_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path), "--no-progress"])
    assert res.exit_code == 2 and "no run folders under" in res.output
    res = runner.invoke(app, ["report", str(tmp_path), "--metric", "acc", "--no-progress"])
    assert res.exit_code == 2 and "unknown metric 'acc'; known: accuracy" in res.output


@pytest.mark.slow
def test_grid_report_and_headless_chromium(small_npz, tmp_path):
    """One test, so that the grid runs once: the report's files, then the page in Chromium."""
    report_dir = _grid_and_report(small_npz, tmp_path)
    for name in (
        "report.html",
        "report.md",
        "report.tex",
        "tables/cells.csv",
        "figures/rate_curves.png",
        "figures/rate_curves.pdf",
    ):
        assert (report_dir / name).stat().st_size > 0, name
    assert len(list((report_dir / "runs").glob("*.html"))) == 8
    md = (report_dir / "report.md").read_text()
    assert "### small — symmetric" in md and "| ce |" in md and "| sce |" in md
    if chromium_binary() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium; .ci/run installs it)")
    page = check_page(report_dir / "report.html")
    assert page.errors == []
    assert page.width <= 1280 and page.wide_tables == 0  # nothing overflows the window
    assert page.title.startswith("lnmbench report")
    names = {img["name"] for img in page.images}
    assert names == {
        "pattern_summary",
        "rate_curves",
        "forest_baseline",
        "class_sensitivity_small_symmetric",
    }  # 2 methods: no Friedman / CD diagram
    for img in page.images:  # every embedded figure decoded
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    assert all(w > 0 for w in page.svg_widths)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot)).convert("L"), dtype=float)
    assert shot.shape == (1600, 1280)
    assert shot.std() > 10 and (shot < 128).mean() > 0.01  # text and figures, not a blank page
    run_page = check_page(next((report_dir / "runs").glob("*.html")))
    assert run_page.errors == [] and run_page.images and run_page.images[0]["w"] > 0
