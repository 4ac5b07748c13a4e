"""`kflpcap run` with Kubernetes names: scripts see them, a missing API server never stops capture
and says so (one console line, the stale metric, the summary)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from runtime.cli.metrics import Metrics
from runtime.cli.report import summary
from runtime.engine.pipeline import Pipeline, PipelineConfig
from runtime.helpers.console import Console
from tests.k8s.test_cli import _setup, _three
from tests.k8s.test_items import POD_IP

SCRIPT = """
var POD_IP = "POD_IP_HERE";
var shown = false;
function onItemCaptured(data) {
  console.log(JSON.stringify({port: data.src.port, dst: data.dst.name, ns: data.dst.namespace,
                              app: data.dst.pod ? data.dst.pod.labels.app : null, src: data.src.name}));
  if (!shown) {
    shown = true;
    var history = pcap.nameResolutionHistory();
    var keys = Object.keys(history);
    console.log("history " + JSON.stringify(history[keys[keys.length - 1]][POD_IP].name));
  }
}
""".replace("POD_IP_HERE", POD_IP)


def _run(tmp_path: Path, kubeconfig: str) -> tuple[list[str], Pipeline]:
    (tmp_path / "s.js").write_text(SCRIPT)
    out = io.StringIO()
    config = PipelineConfig(sources=[str(_three(tmp_path))], scripts=[str(tmp_path / "s.js")],
                            data_dir=tmp_path / "data", node="node-1", watch=False,
                            k8s=(kubeconfig, None, 0.5))
    pipeline = Pipeline(config, console=Console(out, io.StringIO()))
    try:
        pipeline.run()
    finally:
        pipeline.close()
    return out.getvalue().splitlines(), pipeline


def test_scripts_see_pods_services_and_the_name_history(api, tmp_path):
    _setup(api)
    lines, pipeline = _run(tmp_path, str(api.kubeconfig(tmp_path / "kc")))
    seen = {r["port"]: r for r in (json.loads(line.split("] ", 1)[1]) for line in lines if '"port"' in line)}
    assert {p: (r["dst"], r["ns"], r["app"], r["src"]) for p, r in seen.items()} == {
        "40001": ("web-a", "payments", "web", "frontend-7d9f"),
        "40002": ("web-a", "payments", "web", "frontend-7d9f"),
        "40003": ("web", "payments", None, "frontend-7d9f")}
    assert any(line.endswith('history "web-a"') for line in lines)
    assert pipeline.stats.k8s["stale"] == 0
    assert b"kflpcap_k8s_stale 0.0" in Metrics(pipeline.stats.snapshot).render()


def test_an_api_server_down_at_start_does_not_stop_capture_and_is_visible(api, tmp_path):
    _setup(api)
    kubeconfig = str(api.kubeconfig(tmp_path / "kc"))
    api.stop()
    lines, pipeline = _run(tmp_path, kubeconfig)
    assert pipeline.counters["items"] == 3
    seen = [json.loads(line.split("] ", 1)[1]) for line in lines if '"port"' in line]
    assert [(r["dst"], r["ns"], r["src"]) for r in seen] == [("web.payments", "", "")] * 3  # Host only
    unreachable = [line for line in lines if "unreachable" in line]
    assert len(unreachable) == 1 and unreachable[0].startswith("kflpcap] kubernetes:")
    assert pipeline.stats.k8s["stale"] == 1 and pipeline.stats.k8s["errors"] >= 1
    assert b"kflpcap_k8s_stale 1.0" in Metrics(pipeline.stats.snapshot).render()
    text = io.StringIO()
    from rich.console import Console as RichConsole

    RichConsole(file=text, width=200).print(summary(pipeline.stats.snapshot()))
    assert "names stale (names as last known)" in text.getvalue()
