"""report.html: what it shows from an output's files, `python -m jobs.report`, and the page in a real browser.

The browser tests open the page in Debian's headless Chromium (driven by Playwright, which downloads
nothing when given the browser's path) with the network off, check that every chart was drawn by
plotly, that no request left the page, and keep a screenshot in test-artifacts/.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from synthetic_output import write_synthetic_output

from cluster import evaluate
from cluster.report import REPORT, write_report
from jobs.report import main as report_main

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Debian's Chromium as CI runs it: no sandbox (root), no GPU, and none of its own background traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _page(out: Path) -> str:
    return (out / REPORT).read_text()


@pytest.fixture(scope="module")
def multi_model_output(tmp_path_factory) -> Path:
    """Two models, slices, calibration, intervals, a comparison, three workers and a timed shard table."""
    out = write_synthetic_output(tmp_path_factory.mktemp("report") / "multi")
    write_report(str(out))
    return out


def test_the_report_is_written_beside_the_outputs_with_nothing_half_written_left(tmp_path):
    out = write_synthetic_output(tmp_path / "out", models=("convnet",))
    assert write_report(str(out)) == str(out / REPORT)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["_SUCCESS", "job.json", "metrics.json", "workers.parquet", "shards.parquet", REPORT])


def test_every_section_with_data_is_shown(multi_model_output):
    page = _page(multi_model_output)
    for section in ('id="model-1"', 'id="model-2"', 'id="comparisons"', 'id="slices"', 'id="run"', 'id="timeline"'):
        assert section in page
    assert "Model convnet" in page and "Model mlp" in page and "By source,even" in page and "scan / 1" in page


def test_sections_without_data_are_left_out(tmp_path):
    out = write_synthetic_output(tmp_path / "out", models=("convnet",))
    metrics = json.loads((out / "metrics.json").read_text())
    regression = {k: metrics[k] for k in ("rows", "wall_s", "rows_per_s", "skipped_shards")}
    (out / "metrics.json").write_text(json.dumps({**regression, "mse": 0.25, "mae": 0.4, "r2": 0.9}))
    write_report(str(out))
    page = _page(out)
    assert "mean squared error" in page and 'id="run"' in page
    for absent in ('id="comparisons"', 'id="slices"', "Confusion matrix", "Reliability diagram", "Accuracy per model"):
        assert absent not in page


def test_without_shard_times_the_page_says_the_timeline_needs_them(tmp_path):
    out = write_synthetic_output(tmp_path / "out", timed=False)
    write_report(str(out))
    assert 'id="no-timeline"' in _page(out) and 'id="timeline"' not in _page(out)


def test_a_thousand_class_confusion_matrix_keeps_the_page_small_and_says_what_it_shows(tmp_path):
    out = write_synthetic_output(tmp_path / "out", models=("convnet",))
    metrics = json.loads((out / "metrics.json").read_text())
    classes = 1000
    matrix = [[(37 if i == j else (i * 7 + j * 13) % 3) for j in range(classes)] for i in range(classes)]
    per_class = [{"class": c, "precision": 0.9, "recall": (c % 97) / 97, "support": 40} for c in range(classes)]
    (out / "metrics.json").write_text(json.dumps({**metrics, "confusion_matrix": matrix, "per_class": per_class}))
    write_report(str(out))
    from plotly.offline import get_plotlyjs
    assert (out / REPORT).stat().st_size < len(get_plotlyjs()) + 1_000_000  # the matrix alone is ~4 MB of JSON
    assert "1,000 classes: showing the 30 with the most misclassified rows" in _page(out)
    assert "showing the 50 classes with the lowest recall" in _page(out)


def test_text_from_the_data_is_escaped(tmp_path):
    out = write_synthetic_output(tmp_path / "out", models=("convnet",))
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["slices"]["source"][0]["value"] = "<script>alert(1)</script>"
    (out / "metrics.json").write_text(json.dumps(metrics))
    write_report(str(out))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _page(out) and "<script>alert(1)" not in _page(out)


def test_jobs_report_rebuilds_the_report_of_a_finished_output(tmp_path, capsys):
    out = write_synthetic_output(tmp_path / "out")
    assert report_main([str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / REPORT) and (out / REPORT).stat().st_size > 0


def test_jobs_report_refuses_an_unfinished_output_with_one_line_naming_it(tmp_path, capsys):
    out = write_synthetic_output(tmp_path / "out")
    (out / "_SUCCESS").unlink()
    assert report_main([str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(out) in err and "not a finished output" in err
    assert not (out / REPORT).exists()


# --- in a real browser ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium under Playwright, for the module. CI installs it (.ci/run): missing is a failure."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium), as .ci/run does")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def real_output(ray_cluster, tmp_path_factory) -> Path:
    """The bundled ConvNet on the bundled digits, run as a job: the job itself writes report.html."""
    return Path(evaluate(output=str(tmp_path_factory.mktemp("report") / "digits"), top_k=3, workers=2,
                         shard_rows=100).output)


def _open(browser, report: Path, screenshot: str) -> dict:
    """Open the page offline; what it drew, every request it made and every error it raised; keep a screenshot."""
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    page, requests, errors = context.new_page(), [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(report.as_uri(), wait_until="load")
    drawn = page.evaluate("""() => ({
        charts: document.querySelectorAll('.plotly-graph-div').length,
        drawn: Array.from(document.querySelectorAll('.plotly-graph-div'))
                    .filter(d => d.classList.contains('js-plotly-plot') && d.querySelector('svg.main-svg')).length,
        bars: document.querySelectorAll('.plotly-graph-div g.point, .plotly-graph-div g.hm').length,
        uploads: document.querySelectorAll('.modebar-btn[data-title^="Share"]').length})""")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    context.close()
    return {**drawn, "requests": requests, "errors": errors}


@pytest.fixture(scope="module")
def real_page(chromium, real_output) -> dict:
    return _open(chromium, real_output / REPORT, "report-digits.png")


@pytest.fixture(scope="module")
def multi_model_page(chromium, multi_model_output) -> dict:
    return _open(chromium, multi_model_output / REPORT, "report-models-slices.png")


def test_the_report_of_a_real_run_draws_every_chart_in_chromium_offline(real_page):
    assert real_page["charts"] >= 4 and real_page["drawn"] == real_page["charts"] and real_page["bars"] > 0, real_page
    assert real_page["errors"] == []


def test_the_report_of_several_models_with_slices_draws_every_chart_in_chromium_offline(multi_model_page):
    # per model: confusion, per class, reliability; accuracy per model; two slicings; work, memory, timeline
    seen = multi_model_page
    assert seen["charts"] == 2 * 3 + 1 + 2 + 3 and seen["drawn"] == seen["charts"] and seen["bars"] > 0, seen
    assert seen["errors"] == []


@pytest.mark.parametrize("which", ["real_page", "multi_model_page"])
def test_opening_the_report_sends_no_request_off_the_page(which, request):
    requests = request.getfixturevalue(which)["requests"]
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), requests


@pytest.mark.parametrize("which", ["real_page", "multi_model_page"])
def test_the_charts_offer_no_button_that_uploads_them(which, request):
    assert request.getfixturevalue(which)["uploads"] == 0
