"""The bundled scripts: the seed verbatim, titles, valid JavaScript, ES5 style, known helpers, valid KFL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from py_mini_racer import MiniRacer

import kfl

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "scripts").glob("*.js"))
SEED = REPO / "scripts" / "kfl_pcap_s3.js"
# the product specification's seed script, copied verbatim (the specification is not part of the repository)
SPEC_SEED = Path(__file__).parent / "seed_script.js"

# docs/scripts.md (helpers) and §7 (wrapper): the only namespaced calls a bundled script may make.
HELPERS = {
    "console": {"log", "error"},
    "test": {"pass", "fail"},
    "kfl": {"match", "validate"},
    "jobs": {"schedule", "remove", "removeAll", "list", "run", "runAll", "scheduler.isRunning",
             "scheduler.start", "scheduler.stop"},
    "pcap": {"path", "snapshot", "nameResolutionHistory"},
    "file": {"write", "append", "copy", "move", "delete", "mkdir", "mkdirTemp", "temp", "tar"},
    "vendor": {"s3.put", "webhook", "slack"},
    "utils": {"nodeName"},
    "wrapper": {"kflPcapS3"},
}
CALL = re.compile(r"\b(" + "|".join(HELPERS) + r")\.([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*\(")
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
COMMENT = re.compile(r"(?m)^\s*//.*$|\s//.*$")
NOT_ES5 = re.compile(r"\blet\b|\bconst\b|=>|`|\bclass\b|\.\.\.|\basync\b|\bawait\b")


def code_of(script: Path) -> str:
    """The script without comments and with every string literal emptied."""
    return STRING.sub('""', COMMENT.sub("", script.read_text()))


def title_of(script: Path) -> str:
    first = script.read_text().lstrip().splitlines()[0]
    assert first.startswith("//"), f"{script.name} must start with its title comment"
    return first[2:].strip()


def test_the_seed_script_is_verbatim() -> None:
    assert title_of(SEED) == "KFL PCAP S3"
    seed = SPEC_SEED.read_text()
    assert "wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR });" in seed
    assert seed in SEED.read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_script_has_a_title_and_compiles_in_v8(script: Path) -> None:
    assert title_of(script)
    with MiniRacer() as ctx:
        assert ctx.eval(f"typeof new Function({json.dumps(script.read_text())})") == "function"


def test_titles_are_unique() -> None:
    titles = [title_of(s) for s in SCRIPTS]
    assert len(titles) == len(set(titles)) >= 4


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_es5_style_and_spec_helpers_only(script: Path) -> None:
    code = code_of(script)
    assert not NOT_ES5.findall(code), "Kubeshark scripts are ES5: var, function, no arrows or templates"
    for namespace, member in CALL.findall(code):
        assert member in HELPERS[namespace], f"{namespace}.{member} is not a documented helper"


def test_examples_show_hooks_jobs_and_helpers() -> None:
    code = "\n".join(code_of(s) for s in SCRIPTS)
    for hook in ("onItemCaptured", "onPacketCaptured", "onJobFailed"):
        assert re.search(rf"\bfunction {hook}\(", code), hook
    used = {f"{ns}.{member}" for ns, member in CALL.findall(code)}
    assert {"jobs.schedule", "file.write", "kfl.match", "kfl.validate", "test.pass", "test.fail",
            "console.log", "wrapper.kflPcapS3", "pcap.path"} <= used


def test_kfl_queries_in_scripts_and_deploy_env_are_valid() -> None:
    seed = re.search(r"KFL_PCAP_S3_KFL_ARR = \[(.*?)\];", SEED.read_text(), re.S).group(1)
    queries = re.findall(r'"([^"]+)"', seed)
    queries += re.findall(r'env\.WATCH_KFL \|\| "([^"]+)"', (REPO / "scripts" / "kfl_watch.js").read_text())
    queries += re.findall(r"--env WATCH_KFL='([^']+)'", (REPO / "scripts" / "kfl_watch.js").read_text())
    for doc in yaml.safe_load_all((REPO / "deploy" / "daemonset.yaml").read_text()):
        if doc["metadata"]["name"] == "kflpcap-script-env":
            queries += re.findall(r"^WATCH_KFL=(.+)$", doc["data"]["script.env"], re.M)
    protocols = (REPO / "scripts" / "protocol_queries.js").read_text()
    listed = re.search(r"PROTOCOL_QUERIES = \[(.*?)\];", protocols, re.S).group(1)
    queries += [q[1:-1] for q in re.findall(r"\"[^\"]+\"|'[^']+'", listed)]
    assert len(queries) == 9 and any("endsWith" in q for q in queries)
    for query in queries:
        kfl.validate(query)
