"""Hot reload with real files in a watched folder (watchdog): create, edit, syntax error, delete, rename."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.engine.scripts import Scripts
from tests.runtime.conftest import Recorder
from tests.runtime.items import http_item

SEED = """// Seed
var KFL_PCAP_S3_KFL_ARR = ["http and response.status == 500", "dns"];
function onItemCaptured(data) { wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR }); }
"""


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Recorder, Scripts, Path]]:
    rec = Recorder(tmp_path)
    folder = tmp_path / "scripts"
    folder.mkdir()
    scripts = Scripts(rec.services, [folder], watch=True)
    scripts.start()
    try:
        yield rec, scripts, folder
    finally:
        scripts.close()


def wait_for(scripts: Scripts, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll until `cond()` (generous: the test waits for the event, bench/bench_live.py times it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scripts.poll()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s")


def counter(version: str) -> str:
    return f"""// Counter
var n = 0;
console.log("version {version}");
function onItemCaptured(data) {{ n++; }}
jobs.schedule("count-{version}", "0 0 0 1 1 *", function () {{ console.log("{version} saw", n); }});
"""


def test_create_edit_error_delete(watched: tuple[Recorder, Scripts, Path]) -> None:
    rec, scripts, folder = watched
    path = folder / "counter.js"
    path.write_text(counter("one"))
    wait_for(scripts, lambda: scripts.by_title("Counter") is not None)
    first = scripts.by_title("Counter")
    rec.feed(first, [http_item(1), http_item(2)])
    assert first.run_job("count-one") == (True, None)

    path.write_text(counter("two"))
    wait_for(scripts, lambda: scripts.by_title("Counter") is not first)
    second = scripts.by_title("Counter")
    assert first.state == "closed"
    assert rec.services.scheduler.tags() == ["count-two"]  # the old version's job is gone
    rec.feed(second, [http_item(3)])
    second.run_job("count-two")
    assert "Counter] one saw 2" in rec.stdout and "Counter] two saw 1" in rec.stdout  # state was reset

    path.write_text("// Counter\nvar n = 0;\nfunction onItemCaptured(data) {\n  n++;\n  if (\n}\n")
    wait_for(scripts, lambda: any("SyntaxError" in ln for ln in rec.stderr))
    error = next(ln for ln in rec.stderr if "SyntaxError" in ln)
    assert error.startswith("Counter:ERROR] counter.js:6: SyntaxError")
    assert error.endswith("the previous version keeps running")
    assert scripts.by_title("Counter") is second and second.loaded
    assert rec.services.scheduler.tags() == ["count-two"]

    path.unlink()
    wait_for(scripts, lambda: scripts.by_title("Counter") is None)
    assert second.state == "closed" and rec.services.scheduler.tags() == []
    assert rec.stdout[-1] == "Counter] unloaded (counter.js removed)"


def test_rename_away_and_within(watched: tuple[Recorder, Scripts, Path]) -> None:
    rec, scripts, folder = watched
    (folder / "a.js").write_text("// Alpha\nvar x = 1;\n")
    (folder / "b.js").write_text("// Beta\nvar y = 1;\n")
    wait_for(scripts, lambda: len(scripts.loaded()) == 2)
    os.rename(folder / "a.js", folder / "a.js.bak")
    wait_for(scripts, lambda: scripts.by_title("Alpha") is None)
    os.rename(folder / "b.js", folder / "c.js")
    wait_for(scripts, lambda: folder / "c.js" in scripts.hosts and folder / "b.js" not in scripts.hosts)
    assert [h.title for h in scripts.loaded()] == ["Beta"]


def test_same_title_replaces_the_other_file(watched: tuple[Recorder, Scripts, Path]) -> None:
    rec, scripts, folder = watched
    (folder / "one.js").write_text("// Shared Title\nconsole.log('one');\n")
    wait_for(scripts, lambda: scripts.by_title("Shared Title") is not None)
    (folder / "two.js").write_text("// Shared Title\nconsole.log('two');\n")
    wait_for(scripts, lambda: folder / "two.js" in scripts.hosts)
    assert [h.source.path.name for h in scripts.loaded()] == ["two.js"]
    assert "Shared Title] replaces the script of the same title from one.js" in rec.stdout


def test_unload_flushes_the_scripts_repositories(
    watched: tuple[Recorder, Scripts, Path], tmp_path: Path
) -> None:
    from capture import Capture, make_handler_factory, open_sources

    rec, scripts, folder = watched
    # a real store with real streams, so the repository has packets to write
    items: list[dict] = []

    def on_item(item: dict) -> None:  # items in flight pin their stream, as in the pipeline
        items.append(item)
        cap.store.pin(item["stream"])

    cap = Capture(handler_factory=make_handler_factory(on_item))
    demo = Path(__file__).resolve().parents[2] / "runtime" / "demo" / "demo.pcap"
    cap.consume(open_sources([str(demo)]))
    cap.finish()
    rec.services.store = cap.store
    (folder / "seed.js").write_text(SEED)
    wait_for(scripts, lambda: scripts.by_title("Seed") is not None)
    rec.feed(scripts.by_title("Seed"), items)
    for item in items:
        cap.store.unpin(item["stream"])
    repos = rec.services.data.root / "repositories"
    assert not repos.exists() or not list(repos.rglob("*.pcap.gz"))
    (folder / "seed.js").unlink()
    wait_for(scripts, lambda: scripts.by_title("Seed") is None)
    assert rec.services.close_outbox(10.0) == 0  # the spool hands repositories to the store in the background
    written = {p.parent.name for p in repos.rglob("*.pcap.gz")}
    assert written == {"kfl_0", "kfl_1"}, rec.stdout + rec.stderr
