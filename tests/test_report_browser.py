"""The report in a real browser: headless Chromium with the network off.

Chromium loads the page through a proxy on a closed port, so any request
outside the file fails; a script put in front of the page records script
errors, console errors and every resource the page fetched into an element
that `--dump-dom` prints. A screenshot goes to test-artifacts/report.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import write_report
from harness.store import Store

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FIGURES = (
    "fig-flops",
    "fig-latency",
    "fig-families",
    "fig-curves",
    "fig-confusion",
    "fig-optuna-search-0",
    "fig-optuna-search-1",
)

# Put first in <head>: collects what went wrong, then writes it into the page.
PROBE = """<script>
window.__probe = [];
window.addEventListener("error", function (e) {
  var where = e.filename || (e.target && (e.target.src || e.target.href)) || "";
  window.__probe.push("error: " + (e.message || e.type) + " " + where);
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__probe.push("unhandled rejection: " + e.reason);
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__probe.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  setTimeout(function () {
    var fetched = performance.getEntriesByType("resource")
      .map(function (r) { return r.name; })
      .filter(function (name) { return !/^(data|blob|file):/.test(name); });
    var out = document.createElement("pre");
    out.id = "probe-result";
    out.textContent = JSON.stringify({errors: window.__probe, fetched: fetched});
    document.body.appendChild(out);
  }, 1000);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # tests may run as root in containers
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--proxy-server=127.0.0.1:9",  # the network is off: every request fails
        "--proxy-bypass-list=<-loopback>",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return binary


@pytest.fixture(scope="module")
def report(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    from test_report import filled_db

    url = filled_db(tmp_path_factory.getbasetemp())
    folder = tmp_path_factory.mktemp("browser")
    with Store(url, create=False) as store:
        path = write_report(store, ["orderings", "search"], folder / "report.html")
        frame = store.trials_frame(status="complete")
    # Leaderboard rows: complete trials that differ only by seed share one.
    expected_rows = len(
        {
            (row.study, int(row.candidate_id), json.dumps(row.hyperparameters, sort_keys=True))
            for row in frame.itertuples()
        }
    )
    page = path.read_text(encoding="utf-8")
    probed = folder / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = _run_chromium(chromium, "--dump-dom", probed.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return path, result.stdout, expected_rows


def test_no_errors_and_no_requests(report: tuple[Path, str, int]) -> None:
    _, dom, _ = report
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert match, "the probe did not report: the page's scripts did not finish"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["errors"] == []
    assert probe["fetched"] == []


def test_every_figure_rendered(report: tuple[Path, str, int]) -> None:
    _, dom, _ = report
    starts = sorted((dom.index(f'id="{name}"'), name) for name in FIGURES)
    ends = [start for start, _ in starts[1:]] + [len(dom)]
    for (start, name), end in zip(starts, ends, strict=True):
        chunk = dom[start:end]
        assert chunk.count('class="main-svg"') >= 1, f"{name} has no rendered SVG"
        # Drawn data, not only empty axes: markers, lines, boxes, bars or heatmap cells.
        assert re.search(r'class="(point|js-line|box|bars|hm|trace[^"]*)"', chunk), name


def test_table_has_the_expected_rows(report: tuple[Path, str, int]) -> None:
    _, dom, expected = report
    table = re.search(r'<table id="leaderboard">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert table
    assert table.group(1).count("<tr") == expected == 10


def test_screenshot(report: tuple[Path, str, int], chromium: str) -> None:
    path, _, _ = report
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = _run_chromium(
        chromium, "--window-size=1280,7200", f"--screenshot={shot}", path.as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few kB
