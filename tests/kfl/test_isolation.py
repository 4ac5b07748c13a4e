"""`kfl` imports nothing from capture, runtime or wrappers, and does no I/O while compiling and matching."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import kfl

KFL_DIR = Path(kfl.__file__).parent
FORBIDDEN = ("capture", "runtime", "wrappers")

# Runs in a fresh interpreter: the other packages cannot be imported at all, and an audit hook
# records every file, socket, process or directory operation made after `import kfl`.
PROBE = r"""
import importlib.abc, json, sys

FORBIDDEN = ("capture", "runtime", "wrappers")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"kfl must not import {name}")
        return None

sys.meta_path.insert(0, Block())
import kfl

IO_EVENTS = ("open", "socket.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
             "os.fork", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir",
             "os.truncate", "os.chmod", "os.chown", "os.link", "os.symlink", "os.utime", "shutil.",
             "tempfile.", "urllib.", "http.client.", "ftplib.", "smtplib.", "import", "ctypes.", "mmap.")
events = []

def hook(event, args):
    if event.startswith(IO_EVENTS):
        events.append(event + " " + repr(args)[:120])

items = [json.loads(line) for line in sys.stdin]
sys.addaudithook(hook)
queries = [
    "http and response.status == 500",
    'dns or request.headers["User-Agent"] == r"^curl/\\d+" and dst.port == 80',
    "response.content.text.json().user.id == 7 and response.content.text.json()..name == \"ann\"",
    'response.content.text.xml().bookstore.book[1].title == "Harry Potter"',
    'request.postData.text.xml()..title.startsWith("Harry") or src.name.contains("front")',
    'timestamp >= datetime("10/19/2021, 6:29:02.593 PM") and timestamp > days(-3650)',
    'timestamp < now() and timestamp == datetime(startTime) and timestamp > datetime("2021-10-19T18:29:02Z")',
    'redact("request.headers.Authorization", "..ip", "response.content.text.json().user.name") and limit(3)',
    'unknown(x: 1) or request.pathSegments.*.endsWith("logue") or a..b[0].*[*] != nil',
    "not (1 < 2) || !true && -request.bodySize >= 0",
]
for query in queries:
    compiled = kfl.compile(query)
    kfl.validate(query)
    for item in items:
        compiled.apply(item)
        kfl.match(query, item)
for bad in ["a ==", "(a", "1 < 2 < 3", 'a == "x', "a[-1]", 'datetime("no")']:
    try:
        kfl.compile(bad)
    except kfl.KFLSyntaxError as exc:
        str(exc)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
print(json.dumps({"events": events, "loaded": loaded}))
"""


def test_no_import_of_other_packages_in_the_source():
    for path in sorted(KFL_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_compile_and_match_do_no_io_and_need_no_other_package():
    items = (Path(__file__).parent / "items.jsonl").read_text()
    done = subprocess.run([sys.executable, "-c", PROBE], input=items, capture_output=True, text=True,
                          timeout=120, cwd=KFL_DIR.parent)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"events": [], "loaded": []}
