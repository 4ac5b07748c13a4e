"""Symlink and hard-link tricks planted in the data folder, against every file and pcap helper:
nothing outside the data folder is read or written (a canary tree beside it keeps its hashes and
gets no new file), and what the helpers write inside is a regular file of the data folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from runtime.helpers import snapshots
from runtime.helpers.files import DataDir, HelperError
from tests.runtime.conftest import DEMO_PCAP, Recorder


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def canary(tmp_path: Path):
    """A tree outside the data folder (a sibling whose name starts like it, too) and its hashes."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (outside / "victim.txt").write_text("victim")
    (outside / "sub" / "deep.txt").write_text("deep")
    shutil.copy(DEMO_PCAP, outside / "outside.pcap")
    sibling = tmp_path / "data-evil"  # `data` + "-evil": a prefix check on strings would let it in
    sibling.mkdir()
    (sibling / "x").write_text("sibling")
    before = {"outside": tree_hashes(outside), "sibling": tree_hashes(sibling)}
    yield outside
    assert tree_hashes(outside) == before["outside"]
    assert tree_hashes(sibling) == before["sibling"]


@pytest.fixture
def planted(rec: Recorder, canary: Path) -> Path:
    """The data folder with links into the canary tree where helpers read and write."""
    data = rec.services.data.root
    (data / "in").mkdir()
    shutil.copy(DEMO_PCAP, data / "in" / "real.pcap")
    (data / "in" / "evil.pcap").symlink_to(canary / "outside.pcap")  # a snapshot's directory scan
    os.link(canary / "secret.txt", data / "hard.txt")  # a hard link to an outside file
    (data / "out.txt").symlink_to(canary / "victim.txt")  # a final target that is a link
    (data / "out.pcap.part").symlink_to(canary / "victim.txt")  # the old fixed temporary name
    (data / "name_resolution_history.json.part").symlink_to(canary / "victim.txt")
    (data / "dirlink").symlink_to(canary)  # a folder that is a link
    (data / "filelink").symlink_to(canary / "secret.txt")
    (data / "tree").mkdir()
    (data / "tree" / "ok.txt").write_text("ok")
    (data / "tree" / "link.txt").symlink_to(canary / "secret.txt")
    (data / "tree" / "linkdir").symlink_to(canary / "sub")
    os.link(canary / "sub" / "deep.txt", data / "tree" / "hard.txt")
    return data


def test_hostile_script_reaches_nothing_outside(rec: Recorder, planted: Path) -> None:
    script = """// Hostile
    var out = [];
    function attempt(label, f) {
      try { f(); out.push(label + ": ok"); } catch (e) { out.push(label + ": " + e.message); }
    }
    attempt("write sibling", function () { file.write("../data-evil/x", "pwned"); });
    attempt("copy sibling", function () { file.copy("../data-evil/x", "stolen.txt"); });
    file.write("out.txt", "replaced, not written through");
    file.write("dirlink/victim.txt", "pwned");
    file.append("filelink", "pwned");
    file.append("hard.txt", "pwned");
    file.copy("filelink", "stolen1.txt");
    file.copy("hard.txt", "stolen2.txt");
    file.copy("dirlink/secret.txt", "stolen3.txt");
    file.copy("tree/ok.txt", "dirlink");
    file.move("filelink", "moved");
    file.move("tree/ok.txt", "dirlink/sub");
    file.mkdir("dirlink/new");
    file.delete("dirlink/sub");
    file.tar("dirlink");
    out.push(file.tar("tree"));
    console.log(JSON.stringify(out));
    """
    with rec.host(script):
        pass
    *thrown, tar_name = json.loads(rec.lines_of("Hostile")[0])
    assert thrown == [
        'write sibling: file.write: path "../data-evil/x" escapes the data folder',
        'copy sibling: file.copy: path "../data-evil/x" escapes the data folder',
    ]
    errors = [line.removeprefix("Hostile:ERROR] ") for line in rec.stderr]
    through = "escapes the data folder (through the symbolic link"
    assert errors == [
        f"file.write: path 'dirlink/victim.txt' {through} 'dirlink', which is not followed)",
        "file.append: path 'filelink' escapes the data folder (through the symbolic link 'filelink', "
        "which is not followed)",
        "file.append: path 'hard.txt' is not a regular file of its own (refused)",
        "file.copy: path 'filelink' escapes the data folder (through the symbolic link 'filelink', "
        "which is not followed)",
        "file.copy: path 'hard.txt' has other hard links (refused)",
        f"file.copy: path 'dirlink/secret.txt' {through} 'dirlink', which is not followed)",
        f"file.copy: path 'dirlink' {through} 'dirlink', which is not followed)",
        "file.move: path 'filelink' is a symbolic link (not followed)",
        f"file.move: path 'dirlink/sub' {through} 'dirlink', which is not followed)",
        f"file.mkdir: path 'dirlink/new' {through} 'dirlink', which is not followed)",
        f"file.delete: path 'dirlink/sub' {through} 'dirlink', which is not followed)",
        f"file.tar: path 'dirlink' {through} 'dirlink', which is not followed)",
    ]
    out = planted / "out.txt"
    assert not out.is_symlink() and out.read_text() == "replaced, not written through"
    with tarfile.open(planted / tar_name) as tar:
        assert sorted(tar.getnames()) == ["ok.txt"]  # no link, no hard-linked file
    assert not [p for p in planted.rglob("*.part") if not p.is_symlink()]  # no temporary left behind


def test_snapshot_and_materialize_write_inside_and_scan_no_link(rec: Recorder, planted: Path) -> None:
    s = rec.services
    s.name_history = lambda: {"10.0.0.1": ["a"]}
    snapshots.snapshot(s, "out.pcap", None, "in")
    snapshots.materialize(s, snapshots.NAME_HISTORY)
    made = planted / "out.pcap"
    assert not made.is_symlink() and made.read_bytes()[:4] != b"vict"
    assert made.stat().st_size < DEMO_PCAP.stat().st_size * 1.1  # real.pcap only, not the linked one
    assert json.loads((planted / snapshots.NAME_HISTORY).read_text()) == {"10.0.0.1": ["a"]}
    with pytest.raises(HelperError, match="not followed"):
        snapshots.snapshot(s, "x.pcap", None, "dirlink")
    with pytest.raises(HelperError, match="escapes the data folder"):
        snapshots.snapshot(s, "../data-evil/x.pcap", None, "in")
    with pytest.raises(HelperError, match="not followed"):
        snapshots.snapshot(s, "dirlink/x.pcap", None, "in")


@pytest.mark.parametrize("rel", ["../data-evil/x", "a/../../data-evil/x", "/../data-evil/x", "..", "a/../.."])
def test_every_way_up_is_refused(tmp_path: Path, rel: str) -> None:
    data = DataDir(tmp_path / "data")
    (tmp_path / "data-evil").mkdir()
    for call in (lambda: data.write(rel, "x"), lambda: data.append(rel, "x"), lambda: data.mkdir(rel),
                 lambda: data.create_empty(rel), lambda: data.delete(rel), lambda: data.copy(rel, "y"),
                 lambda: data.tar(rel, "t.tgz"), lambda: data.entries(rel)):
        with pytest.raises(HelperError, match="escapes the data folder"):
            call()
    assert list((tmp_path / "data-evil").iterdir()) == []
