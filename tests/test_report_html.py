"""The HTML report opened in a real browser (headless Chromium over the DevTools protocol).

A real DAVIS clip pair (a swan shot, then a car shot) is colorized with the default model through
the CLI, from a preset whose second shot has no reference of its own: the colorist's classic
mistake. The report must open without console errors or network requests, show decodable plots,
point at the uncovered shot as the worst one, suggest its first frame as a keyframe, and show
exactly the JSON report's numbers.
"""

from __future__ import annotations

import base64
import fcntl
import json
import math
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidcolor.report import measure as report, html as report_html
from vidcolor.cli import main
from vidcolor.errors import OutputError
from vidcolor.run.pipeline import RunSummary
from vidcolor.references import load_reference
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import color_frames, shared_path, write_clip

SHOT_LENGTH = 10
SCENE_MIN_LENGTH = 5  # PySceneDetect's default minimum shot (15 frames) is longer than these shots
SIZE = (256, 144)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def colorized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real shots (blackswan, car-shadow), gray input and truth as PNG sequences, colorized
    with the default model from a preset that gives only the first shot a reference."""
    root = tmp_path_factory.mktemp("html-report")
    gray_dir, truth_dir = root / "gray", root / "truth"
    gray_dir.mkdir()
    truth_dir.mkdir()
    index = 0
    for clip in ("blackswan", "car-shadow"):
        for path in sorted(shared_path(f"clips/davis/{clip}/JPEGImages").glob("*.jpg"))[:SHOT_LENGTH]:
            bgr = cv2.resize(cv2.imread(str(path)), SIZE, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(truth_dir / f"{index:05d}.png"), bgr)
            cv2.imwrite(str(gray_dir / f"{index:05d}.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            index += 1
    shutil.copy(truth_dir / "00000.png", root / "swan.png")  # the painted reference of shot 1
    preset = root / "film.toml"
    preset.write_text('version = 1\n\n[[shot]]\nname = "swan"\nstart = 0\nreference = "swan.png"\n\n'
                      f'[[shot]]\nname = "car"\nstart = {SHOT_LENGTH}\n', encoding="utf-8")
    output = root / "out" / "%05d.png"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny clip: one thread is as fast, and kinder to a shared CI machine
    try:
        run_cli("colorize", str(gray_dir), "-o", str(output), "--preset", str(preset), "--model", "default",
                "--size", "96", "--stats", "-q")
    finally:
        torch.set_num_threads(threads)
    page = root / "report" / "report.html"
    page.parent.mkdir()
    text = run_cli("report", str(output), "--source", str(gray_dir), "--ground-truth", str(truth_dir), "--preset",
                   str(preset), "--json", str(root / "report" / "report.json"), "-o", str(page))
    return {"root": root, "gray": gray_dir, "truth": truth_dir, "output": output, "preset": preset, "page": page,
            "json": root / "report" / "report.json", "cli": text}


def _high_fd(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or more (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """A minimal Chrome DevTools protocol client over ``--remote-debugging-pipe`` (fds 3 and 4):
    no websocket library, no browser download; the system Chromium."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child's ends above fd 9, so they cannot collide with the 3 and 4 Chromium expects
        to_chrome_r, from_chrome_w = (_high_fd(to_chrome_r), _high_fd(from_chrome_w))
        # bash, not sh: dash cannot redirect file descriptors above 9
        shell = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.process = subprocess.Popen(
            ["bash", "-c", shell, str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id, timeout)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        return self._wait(lambda m: m.get("method") == method, timeout)

    def _wait(self, wanted: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                assert chunk, "Chromium closed the DevTools pipe"
                self._buffer += chunk

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except AssertionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


PAGE_PROBE = """(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  return {
    title: document.title,
    images: q('img').map(i => ({id: i.id, cls: i.className, w: i.naturalWidth, h: i.naturalHeight, ok: i.complete})),
    cells: q('[data-key]').map(c => [c.dataset.key, c.dataset.value, c.textContent]),
    suggestions: q('#suggestions-table tr.suggestion').map(r => [Number(r.dataset.frame), r.querySelector('.ref-option').textContent]),
    worstShots: q('#worst-shots-list li').map(li => [Number(li.dataset.shot), li.textContent]),
    worstBadges: q('#shots-table tr.worst').map(r => Number(r.dataset.shot)),
    strips: q('.strip').map(s => s.querySelectorAll('img').length),
    embedded: JSON.parse(document.getElementById('vidcolor-report').textContent),
    height: document.documentElement.scrollHeight,
  };
})()"""


def browse(page: Path, profile: Path, probe: str, screenshot: Path | None = None) -> dict[str, Any]:
    """Open ``page`` in headless Chromium: the ``probe`` expression's value, every DevTools event
    (console, log, network) and, when asked, a full-page screenshot."""
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install -y chromium; .ci/run installs it)")
    browser = DevTools(profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired")
        result = browser.call("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)
        assert "exceptionDetails" not in result, result
        shown = result["result"]["value"]
        if screenshot is not None:
            shot = browser.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1200, "height": shown["height"], "scale": 1}}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
    return {"shown": shown, "events": browser.events, "screenshot": screenshot}


def page_errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Uncaught exceptions, console errors/warnings, browser log errors and failed loads."""
    return [e for e in events if e["method"] == "Runtime.exceptionThrown"
            or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning", "assert"))
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))
            or e["method"] == "Network.loadingFailed"]


@pytest.fixture(scope="module")
def browsed(colorized: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report in the browser; the screenshot is kept beside the report (the test's output folder)."""
    return browse(colorized["page"], tmp_path_factory.mktemp("chromium-profile"), PAGE_PROBE,
                  colorized["page"].parent / "report-screenshot.png")


def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    """The checks below could fail: a page with a console error, a script error and a remote
    image is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img src="http://127.0.0.1:9/missing.png"><script>console.error("boom"); undefinedCall();</script>'
                    "</body></html>", encoding="utf-8")
    seen = browse(page, tmp_path / "profile", "({height: document.documentElement.scrollHeight})")
    methods = {e["method"] for e in page_errors(seen["events"])}
    assert {"Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Network.loadingFailed"} <= methods
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e["method"] == "Network.requestWillBeSent"]
    assert "http://127.0.0.1:9/missing.png" in requested


def test_page_opens_without_errors_or_network(browsed: dict[str, Any], colorized: dict[str, Any]) -> None:
    events = browsed["events"]
    assert page_errors(events) == []
    page_uri = colorized["page"].resolve().as_uri()
    requested = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requested and all(url == page_uri or url.startswith("data:") for url in requested), requested
    shown = browsed["shown"]
    plots = [i for i in shown["images"] if i["cls"] == "plot"]
    assert {p["id"] for p in plots} == {"plot-warp", "plot-confidence", "plot-psnr", "plot-trouble"}
    assert all(i["ok"] and i["w"] > 100 and i["h"] > 50 for i in shown["images"]), shown["images"]
    assert shown["strips"] and all(n == 3 for n in shown["strips"])  # gray | colorized | ground truth
    screenshot = cv2.imread(str(browsed["screenshot"]))
    assert screenshot is not None and screenshot.shape[1] == 1200 and screenshot.shape[0] > 2000
    assert screenshot.std() > 20  # rendered content, not a blank page


def test_colorist_finds_the_worst_shot_and_the_keyframe(browsed: dict[str, Any], colorized: dict[str, Any]) -> None:
    shown = browsed["shown"]
    # Shot 2 (the car) was coloured from the swan's reference: the worst shot, listed first.
    assert shown["worstShots"][0][0] == 2 and "car" in shown["worstShots"][0][1]
    assert sorted(shown["worstBadges"]) == [1, 2]
    frame, line = shown["suggestions"][0]
    assert frame == SHOT_LENGTH and line == f"--ref {SHOT_LENGTH}=keyframes/gray_f{SHOT_LENGTH:06d}.png"  # film "gray"
    painted = colorized["page"].parent / "keyframes" / f"gray_f{SHOT_LENGTH:06d}.png"
    gray = cv2.imread(str(colorized["gray"] / f"{SHOT_LENGTH:05d}.png"), cv2.IMREAD_GRAYSCALE)
    image = cv2.imread(str(painted))
    assert image is not None and image.shape == (SIZE[1], SIZE[0], 3)
    assert abs(image[..., 0].astype(int) - gray).max() <= 1  # the gray source frame, ready to paint
    assert f"suggested keyframe 1: frame {SHOT_LENGTH}" in colorized["cli"]


def test_page_numbers_equal_the_json_report(browsed: dict[str, Any], colorized: dict[str, Any]) -> None:
    saved = json.loads(colorized["json"].read_text())
    shown = browsed["shown"]
    assert shown["embedded"] == saved
    cells = shown["cells"]
    keys = {key.split(".")[0] for key, _, _ in cells}
    assert keys == {"summary", "shots", "frames", "suggestions"}
    assert len(cells) > 150
    for key, exact, text in cells:
        value: Any = saved
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert json.loads(exact) == value, key
        if isinstance(value, float):
            digits = len(text.split(".")[1]) if "." in text else 0
            assert float(text) == pytest.approx(value, abs=0.51 * 10 ** -digits), key
        elif value is not None:
            assert text == str(value), key
    assert saved["summary"]["frames"] == 2 * SHOT_LENGTH and len(saved["shots"]) == 2
    swan, car = saved["shots"]
    assert (swan["start"], swan["end"], car["start"], car["end"]) == (0, SHOT_LENGTH - 1, SHOT_LENGTH, 2 * SHOT_LENGTH - 1)
    assert car["psnr"] < swan["psnr"] - 3  # wrong colours from the swan's reference


def test_scene_cuts_give_the_shots_without_a_preset(colorized: dict[str, Any], tmp_path: Path) -> None:
    result, plan = report_html.measure_with_shots(colorized["output"], colorized["gray"],
                                                  scene_min_length=SCENE_MIN_LENGTH)
    assert plan.origin.startswith("scene cuts") and plan.starts == (0, SHOT_LENGTH)
    assert plan.keyframes == frozenset({0})  # from the run's stats: the preset pinned only frame 0
    assert [s["start"] for s in result["shots"]] == [0, SHOT_LENGTH]
    assert "psnr" not in result["shots"][0]
    page = report_html.render_html(result, tmp_path / "r.html", source_path=colorized["gray"],
                                   colorized_path=colorized["output"], plan=plan, write_keyframes=False)
    text = page.read_text()
    assert "scene cuts" in text and 'id="plot-psnr"' not in text and not (tmp_path / "keyframes").exists()
    with pytest.raises(OutputError, match="should end in .html"):
        report_html.render_html(result, tmp_path / "r.txt", source_path=colorized["gray"],
                                colorized_path=colorized["output"], plan=plan)


def test_run_metadata_names_the_model_and_finds_the_uncovered_cut(colorized: dict[str, Any], tmp_path: Path) -> None:
    """A stats file with run metadata (what ``colorize --stats`` writes once wired): the page shows
    model and speed, and without ground truth the shot that kept the swan's reference is suggested."""
    stats = tmp_path / "run.stats.jsonl"
    rows = report.read_run_stats(report.run_stats_path(colorized["output"]))
    summary = RunSummary(str(colorized["gray"]), str(colorized["output"]), 2 * SHOT_LENGTH, 8.0, (170, 96), "default")
    schedule = ReferenceSchedule([Keyframe(0, load_reference(colorized["root"] / "swan.png"))], cuts=[SHOT_LENGTH])
    report.write_run_stats(stats, rows.values(), run=report.run_metadata(summary, schedule, settings={"size": "96"}))
    assert report.read_run_stats(stats) == rows  # the metadata line is not a frame
    result, plan = report_html.measure_with_shots(colorized["output"], colorized["gray"], run_stats=stats,
                                                  scene_min_length=SCENE_MIN_LENGTH)
    assert plan.keyframes == {0} and result["run"]["fps"] == pytest.approx(2 * SHOT_LENGTH / 8.0)
    assert [s["frame"] for s in result["suggestions"]][:1] == [SHOT_LENGTH]
    assert "without a reference" in result["suggestions"][0]["reason"]
    page = report_html.render_html(result, tmp_path / "r.html", source_path=colorized["gray"],
                                   colorized_path=colorized["output"], plan=plan)
    text = page.read_text()
    assert "default (vidcolor" in text and "20 frames in 8.0 s (2.50 fps)" in text and "size 96" in text
    assert (tmp_path / "keyframes" / f"gray_f{SHOT_LENGTH:06d}.png").is_file()


def synthetic_report(warp: list[float], flagged: set[int], starts: list[int]) -> dict[str, Any]:
    frames = [{"frame": i, "timecode": f"t{i}", "warp_error": None if i == 0 else w, "occluded": 0.0,
               "confidence": None, "flagged": i in flagged, "colorfulness": 20.0} for i, w in enumerate(warp)]
    bounds = [*starts, len(warp)]
    shots = [{"shot": n + 1, "start": a, "end": b - 1, "warp_error": 0.0} for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    return {"summary": {}, "frames": frames, "shots": shots}


def test_suggestions_mark_sustained_trouble_once_not_blips() -> None:
    warp = [1.0] * 60
    warp[10] = 9.0  # a one-frame blip: not sustained
    for t in range(30, 40):
        warp[t] = 4.0  # a sustained stretch
    report = synthetic_report(warp, {33, 34}, [0, 50])
    suggestions = report_html.suggest_keyframes(report, film="reel1")
    assert [s["frame"] for s in suggestions] == [30]
    assert suggestions[0]["stretch"][0] == 30 and "2 flagged" in suggestions[0]["reason"]
    assert suggestions[0]["ref_option"] == "--ref 30=keyframes/reel1_f000030.png"
    # Known keyframes: the shot at 50 has none of its own, so it is suggested too, and first.
    known = report_html.suggest_keyframes(report, keyframes={0})
    assert [s["frame"] for s in known] == [50, 30] and "without a reference" in known[0]["reason"]
    assert [s["rank"] for s in known] == [1, 2]
    assert report_html.rank_shots(report) == [1, 2]
    steady = report_html.suggest_keyframes(synthetic_report([1.0] * 20, set(), [0]))
    assert steady == [] and math.isclose(max(report_html.trouble_scores(synthetic_report([1.0] * 20, set(), [0]))), 0.0)


def test_keyframe_images_are_each_films_own_frames(tmp_path: Path) -> None:
    """Reports of two films into one folder wrote both films' suggested frames as
    keyframes/frame_NNNNNN.png and kept the first: film.mp4's page said ``--ref 0=keyframes/frame_000000.png``,
    the other film's 1280x720 frame. Names now carry the film (as ``vidcolor scenes`` does), and an
    existing image that is not this film's frame is refused; a painted copy of the frame is kept."""
    pages = tmp_path / "reports"
    other = write_clip(tmp_path / "bigbuckbunny.mp4", color_frames(6, 128, 96, seed=3))
    film = write_clip(tmp_path / "film.mp4", color_frames(6, 96, 64))

    def render(clip: Path, page: str) -> dict[str, Any]:
        result, plan = report_html.measure_with_shots(clip, clip, detect=False)
        suggestion = report_html.suggest_keyframes(result, keyframes=set(), film=clip.stem)[0]  # frame 0: uncovered
        report_html.render_html(result, pages / page, source_path=clip, colorized_path=clip, plan=plan,
                                suggestions=[suggestion])
        return suggestion

    render(other, "bunny.html")
    bunny_image = pages / "keyframes" / "bigbuckbunny_f000000.png"
    bunny_bytes = bunny_image.read_bytes()
    suggestion = render(film, "film.html")
    assert suggestion["ref_option"] == "--ref 0=keyframes/film_f000000.png"
    first = report_html._gray_frames(film, {0})[0]
    written = cv2.imread(str(pages / suggestion["image"]))
    assert written.shape == (64, 96, 3) and abs(written[..., 1].astype(int) - first).max() <= 1
    assert bunny_image.read_bytes() == bunny_bytes
    # A painted copy (warm on the left, cool on the right, over the same shading) is the user's work: kept.
    wash = np.where(np.arange(96)[None, :, None] < 48, (0.6, 0.9, 1.3), (1.3, 0.9, 0.6))
    painted = np.clip(written.astype(float) * wash, 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(pages / suggestion["image"]), painted)
    painted_bytes = (pages / suggestion["image"]).read_bytes()
    render(film, "film-again.html")
    assert (pages / suggestion["image"]).read_bytes() == painted_bytes
    # Another film of the same name (another size, then another picture of the same size): refused.
    (tmp_path / "elsewhere").mkdir()
    for frames in (color_frames(6, 128, 96, seed=3), [np.ascontiguousarray(f[::-1, ::-1]) for f in color_frames(6, 96, 64)]):
        namesake = write_clip(tmp_path / "elsewhere" / "film.mp4", frames)
        with pytest.raises(OutputError, match=r"keyframe image .*film_f000000\.png.* is not frame 0 of .*elsewhere.*"
                                              r"move it away"):
            render(namesake, "namesake.html")
        assert not (pages / "namesake.html").exists()
        assert (pages / suggestion["image"]).read_bytes() == painted_bytes


def _frame_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """An image-sequence film ``folder/%06d.png``: the scans a film archive hands over."""
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{index:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder / "%06d.png"


def test_pattern_films_in_two_folders_get_their_own_keyframe_names(tmp_path: Path) -> None:
    """Every ``scans/%06d.png`` film was named ``06d``: the second film's report into the same folder
    met the first one's keyframe image and stopped. The pattern's folder names the film now, in the
    report and in ``vidcolor scenes`` alike."""
    from vidcolor.schedule.scenes import film_stem

    pages = tmp_path / "reports"
    images = {}
    for reel, seed in (("reel1", 1), ("reel2", 2)):
        pattern = _frame_folder(tmp_path / reel, color_frames(4, 96, 64, seed=seed))
        assert film_stem(pattern) == film_stem(tmp_path / reel) == reel
        result, plan = report_html.measure_with_shots(pattern, pattern, detect=False)
        suggestion = report_html.suggest_keyframes(result, keyframes=set(), film=film_stem(pattern))[0]
        report_html.render_html(result, pages / f"{reel}.html", source_path=pattern, colorized_path=pattern, plan=plan,
                                suggestions=[suggestion])
        images[reel] = pages / suggestion["image"]
        written = cv2.imread(str(images[reel]), cv2.IMREAD_GRAYSCALE)
        assert written is not None and abs(written.astype(int) - report_html._gray_frames(pattern, {0})[0]).max() <= 1
    assert images == {"reel1": pages / "keyframes" / "reel1_f000000.png", "reel2": pages / "keyframes" / "reel2_f000000.png"}


def test_a_taken_keyframe_name_is_marked_not_fatal_without_images(tmp_path: Path) -> None:
    """With ``--no-keyframe-images`` nothing is written, so another film's image under a suggested name
    does not stop the report: the page marks the name as taken. ``colorize --report`` (``on_taken``)
    warns and writes its page without keyframe images instead of failing after the colorization."""
    pages = tmp_path / "reports"
    film = write_clip(tmp_path / "film.mp4", color_frames(6, 96, 64))
    (pages / "keyframes").mkdir(parents=True)
    other = pages / "keyframes" / "film_f000000.png"  # another film.mp4's frame 0: another size
    assert cv2.imwrite(str(other), color_frames(1, 128, 96, seed=3)[0])
    other_bytes = other.read_bytes()
    result, plan = report_html.measure_with_shots(film, film, detect=False)
    suggestions = [report_html.suggest_keyframes(result, keyframes=set(), film="film")[0]]
    assert suggestions[0]["image"] == "keyframes/film_f000000.png"
    with pytest.raises(report_html.KeyframeImageConflict, match="is not frame 0 of"):
        report_html.render_html(result, pages / "with-images.html", source_path=film, colorized_path=film, plan=plan,
                                suggestions=suggestions)
    page = report_html.render_html(result, pages / "no-images.html", source_path=film, colorized_path=film, plan=plan,
                                   suggestions=suggestions, write_keyframes=False)
    assert 'class="taken">keyframes/film_f000000.png exists beside this report and is not this frame (it is 128x96' \
        in page.read_text()
    # colorize --report: an output that flickers over frames 13-20 gets frame 13 suggested; its name is taken.
    frames = color_frames(30, 96, 64)
    gray = write_clip(tmp_path / "gray.mp4", frames)
    output = write_clip(tmp_path / "out.mp4", [255 - f if 12 < i < 20 and i % 2 else f for i, f in enumerate(frames)])
    taken = pages / "keyframes" / "gray_f000013.png"
    assert cv2.imwrite(str(taken), color_frames(1, 96, 64, seed=5)[0][::-1])  # same size, another picture
    taken_bytes = taken.read_bytes()
    warnings: list[str] = []
    result = report_html.write_html_report(output, gray, pages / "colorize.html", detect=False, on_taken=warnings.append)
    assert [s["image"] for s in result["suggestions"]] == ["keyframes/gray_f000013.png"]
    assert len(warnings) == 1 and "gray_f000013.png" in warnings[0] and "picture is not the frame's" in warnings[0]
    assert 'class="taken">keyframes/gray_f000013.png exists' in (pages / "colorize.html").read_text()
    with pytest.raises(report_html.KeyframeImageConflict):
        report_html.write_html_report(output, gray, pages / "library.html", detect=False)
    assert not (pages / "library.html").exists()
    assert other.read_bytes() == other_bytes and taken.read_bytes() == taken_bytes
    assert sorted(p.name for p in (pages / "keyframes").iterdir()) == [other.name, taken.name]
    # The frame's own image (or a painted copy) is this frame: no mark.
    other.unlink()
    report_html.render_html(result, pages / "own.html", source_path=film, colorized_path=film, plan=plan,
                            suggestions=suggestions)
    page = report_html.render_html(result, pages / "own-again.html", source_path=film, colorized_path=film, plan=plan,
                                   suggestions=suggestions, write_keyframes=False)
    assert 'class="taken"' not in page.read_text()
