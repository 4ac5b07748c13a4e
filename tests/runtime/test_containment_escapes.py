"""Every path helper stays inside the data folder: `..` into a sibling folder whose name starts with the
data folder's (`../data-evil/x.txt` next to `data`) and symlinks out of the folder (to the sibling, to
elsewhere) are refused, and nothing outside changes. Directly on the Python side (DataDir, snapshots)
and from a script (where the prelude normalises `..` first, so only symlinks reach Python)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.helpers import snapshots
from runtime.helpers.files import DataDir, HelperError
from tests.runtime.conftest import Recorder

PCAP = Path(__file__).resolve().parents[1] / "pcaps" / "zeek_http_pipelined.pcap"


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry below `folder` (None for folders), to show nothing there changed."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Recorder, Path, Path]:
    """The recorder's data folder `<tmp>/data` with `a.txt` and a `pcaps/` folder holding a capture;
    the sibling `<tmp>/data-evil` (a secret, a folder with a capture) and `<tmp>/elsewhere`."""
    rec = Recorder(tmp_path)
    data = rec.services.data.root
    (data / "a.txt").write_text("inside")
    (data / "pcaps").mkdir()
    shutil.copy(PCAP, data / "pcaps" / "one.pcap")
    evil = tmp_path / "data-evil"
    (evil / "caps").mkdir(parents=True)
    (evil / "secret.txt").write_text("secret")
    shutil.copy(PCAP, evil / "caps" / "two.pcap")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("secret")
    (elsewhere / "caps").mkdir()
    shutil.copy(PCAP, elsewhere / "caps" / "two.pcap")
    return rec, evil, elsewhere


def _calls(d: DataDir, services, out: str) -> dict[str, Callable[[], object]]:
    """Every helper entry point that takes a data path, each aimed at `out` (a path leaving the folder,
    whose own folder holds `secret.txt` and `caps/two.pcap`)."""
    return {
        "write": lambda: d.write(f"{out}/x.txt", "x"),
        "append": lambda: d.append(f"{out}/secret.txt", "x"),
        "copy-to": lambda: d.copy("a.txt", f"{out}/x.txt"),
        "copy-from": lambda: d.copy(f"{out}/secret.txt", "stolen.txt"),
        "move-to": lambda: d.move("a.txt", f"{out}/x.txt"),
        "move-from": lambda: d.move(f"{out}/secret.txt", "stolen.txt"),
        "delete": lambda: d.delete(f"{out}/secret.txt"),
        "delete-folder": lambda: d.delete(f"{out}/caps"),
        "mkdir": lambda: d.mkdir(f"{out}/new"),
        "mkdir_new": lambda: d.mkdir_new(f"{out}/new"),
        "create_empty": lambda: d.create_empty(f"{out}/new.txt"),
        "tar-from": lambda: d.tar(out, "stolen.tar.gz"),
        "tar-to": lambda: d.tar("pcaps", f"{out}/x.tar.gz"),
        "snapshot-from": lambda: snapshots.snapshot(services, "stolen.pcap", None, f"{out}/caps"),
        "snapshot-to": lambda: snapshots.snapshot(services, f"{out}/x.pcap", None, "pcaps"),
    }


CALLS = list(_calls(DataDir.__new__(DataDir), None, "x"))


def _refused(rec: Recorder, outside: Path, out: str, call: str, match: str | None = None) -> None:
    data = rec.services.data.root
    before, before_data = _tree(outside), _tree(data)
    with pytest.raises(HelperError, match=match):
        _calls(rec.services.data, rec.services, out)[call]()
    assert _tree(outside) == before
    assert _tree(data) == before_data


@pytest.mark.parametrize("call", CALLS)
def test_dotdot_into_a_sibling_whose_name_starts_with_the_data_folders(layout, call: str) -> None:
    rec, evil, _elsewhere = layout
    _refused(rec, evil, "../data-evil", call, match="escapes the data folder")


@pytest.mark.parametrize("target", ["sibling", "elsewhere"])
@pytest.mark.parametrize("call", CALLS)
def test_symlink_out_of_the_data_folder(layout, call: str, target: str) -> None:
    rec, evil, elsewhere = layout
    outside = evil if target == "sibling" else elsewhere
    (rec.services.data.root / "link").symlink_to(outside, target_is_directory=True)
    _refused(rec, outside, "link", call)


def test_symlinked_file_out_of_the_data_folder(layout) -> None:
    rec, _evil, elsewhere = layout
    data = rec.services.data
    link = data.root / "secret-link.txt"
    calls = (lambda: data.write("secret-link.txt", "x"), lambda: data.append("secret-link.txt", "x"),
             lambda: data.copy("secret-link.txt", "stolen.txt"),
             lambda: data.copy("a.txt", "secret-link.txt"))
    for call in calls:
        link.unlink(missing_ok=True)
        link.symlink_to(elsewhere / "secret.txt")
        try:
            call()
        except HelperError:
            continue  # refused
        assert not link.is_symlink() and link.is_file()  # or the link was replaced by a file inside
    assert not (data.root / "stolen.txt").exists()
    assert (elsewhere / "secret.txt").read_text() == "secret"


SCRIPT = """// Escape
var said = [];
function attempt(name, f) {
  try { f(); said.push(name + " returned"); } catch (e) { said.push(name + " threw"); }
}
attempt("write", function () { file.write("link/x.txt", "x"); });
attempt("append", function () { file.append("link/secret.txt", "x"); });
attempt("copy-to", function () { file.copy("a.txt", "link/x.txt"); });
attempt("copy-from", function () { file.copy("link/secret.txt", "stolen.txt"); });
attempt("move-to", function () { file.move("a.txt", "link/x.txt"); });
attempt("move-from", function () { file.move("link/secret.txt", "stolen.txt"); });
attempt("delete", function () { file.delete("link/secret.txt"); });
attempt("mkdir", function () { file.mkdir("link/new"); });
attempt("mkdirTemp", function () { file.mkdirTemp("new", "link"); });
attempt("temp", function () { file.temp("new", "link", ".txt"); });
attempt("tar", function () { file.tar("link"); });
attempt("snapshot", function () { pcap.snapshot([], "link/caps"); });
attempt("s3.put", function () { vendor.s3.put("bucket", "link/secret.txt"); });
console.log(JSON.stringify(said));
"""
HELPERS = ["file.write", "file.append", "file.copy", "file.copy", "file.move", "file.move", "file.delete",
           "file.mkdir", "file.mkdirTemp", "file.temp", "file.tar", "pcap.snapshot", "vendor.s3.put"]


@pytest.mark.parametrize("target", ["sibling", "elsewhere"])
def test_scripts_cannot_leave_the_data_folder_through_a_symlink(layout, target: str) -> None:
    rec, evil, elsewhere = layout
    outside = evil if target == "sibling" else elsewhere
    (rec.services.data.root / "link").symlink_to(outside, target_is_directory=True)
    before, before_data = _tree(outside), _tree(rec.services.data.root)
    with rec.host(SCRIPT):
        pass
    assert _tree(outside) == before
    after_data = {k: v for k, v in _tree(rec.services.data.root).items() if not k.startswith("spool")}
    assert after_data == before_data  # (vendor.s3.put opened the outbox's spool folder)
    errors = rec.stderr
    assert len(errors) == len(HELPERS), errors
    for line, helper in zip(errors, HELPERS, strict=True):
        assert line.startswith(f"Escape:ERROR] {helper}: "), line  # refused, whatever the wording
