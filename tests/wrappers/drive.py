"""Drive `KflPcapS3` from Python over a capture file: capture.Capture + items, no JavaScript.

`synthetic_items(truth)` builds Kubeshark-shaped items from a generated capture's ground truth (one
item per stream, emitted mid-stream when the server first answers, so matched streams keep getting
packets after the match); `real_items()` uses the dissectors of `capture.dissect`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture import Capture, StreamMeta, open_sources
from wrappers import KflPcapS3, Outbox, ScriptContext
from wrappers.context import NoEvents

SEED_QUERIES = ["http and response.status == 500", "dns"]
NODE = {"name": "node-1", "ip": "10.1.2.3"}

OnItem = Callable[[dict[str, Any]], None]


def _endpoint(ip: str, port: int) -> dict[str, Any]:
    return {"ip": ip, "port": str(port), "name": "", "namespace": ""}


class _OneItem:
    """Emits one item for its stream when the server first sends data (DNS: the first datagram),
    else when the stream closes."""

    def __init__(self, meta: StreamMeta, on_item: OnItem, http500: set[tuple]) -> None:
        self.meta = meta
        self.on_item = on_item
        self.http500 = http500
        self.sent = False

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        dns = self.meta.server_port == 53
        if self.sent or not data or (direction == 0 and not (dns and self.meta.l4 == "udp")):
            return
        self.emit(ts_ns)

    def emit(self, ts_ns: int) -> None:
        m = self.meta
        dns = m.server_port == 53
        self.sent = True
        item: dict[str, Any] = {
            "id": f"{NODE['name']}/{m.stream_id}-0",
            "index": 0,
            "stream": m.stream_id,
            "node": NODE,
            "src": _endpoint(m.client_ip, m.client_port),
            "dst": _endpoint(m.server_ip, m.server_port),
            "timestamp": ts_ns // 1_000_000,
        }
        if dns:
            item["protocol"] = {"name": "dns", "abbr": "DNS", "macro": "dns", "layer4": m.l4}
            item["request"] = {"opCode": "QUERY", "questions": []}
        else:
            tup = (m.client_ip, m.client_port, m.server_ip, m.server_port)
            item["protocol"] = {"name": "http", "abbr": "HTTP", "macro": "http", "layer4": "tcp"}
            item["request"] = {"method": "GET", "path": "/"}
            item["response"] = {"status": 500 if tup in self.http500 else 200}
        self.on_item(item)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        pass

    def on_close(self, ts_ns: int, reason: str) -> None:
        if not self.sent:  # every stream gets an item (a connection split by the idle timeout too)
            self.emit(ts_ns)


def synthetic_items(
    truth: dict[str, Any], emitted: list[dict[str, Any]] | None = None
) -> Callable[[OnItem], Callable[[StreamMeta], _OneItem]]:
    """Items from ground truth; every item is also appended to `emitted` when given."""
    http500 = {tuple(t) for t in truth["http500_streams"]}

    def factory(on_item: OnItem) -> Callable[[StreamMeta], _OneItem]:
        def record(item: dict[str, Any]) -> None:
            if emitted is not None:
                emitted.append(item)
            on_item(item)

        return lambda meta: _OneItem(meta, record, http500)

    return factory


@dataclass
class Run:
    data_dir: Path
    wrapper: KflPcapS3
    capture: Capture
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    left_spooled: int = 0


class _Lost(NoEvents):
    def __init__(self, lost: Callable[[], int]) -> None:
        self.lost = lost  # type: ignore[method-assign]


def drive(
    pcap: Path,
    data_dir: Path,
    options: dict[str, Any],
    items: Callable[[OnItem], Callable[[StreamMeta], Any]],
    env: dict[str, str] | None = None,
    close_timeout: float = 60,
    outbox: Outbox | None = None,
    echo: bool = False,
    on_error: Callable[[str], None] | None = None,
    retry_s: float | None = None,
    before_close: Callable[[KflPcapS3, Capture], None] | None = None,
    reload_at: int | None = None,
    after_reload: Callable[[KflPcapS3, Capture], None] | None = None,
    lost: Callable[[int], int] | None = None,
) -> Run:
    """Replay `pcap` through Capture → items → KflPcapS3 (ticked once per second of capture time).

    `echo` also prints every console/error/spool line to stdout as it happens (for child processes).
    `lost(now_ns)`: the packets the capture had lost by then (kernel drops), as the wrapper asks.
    """
    lines: list[str] = []
    errors: list[str] = []
    say, err = lines.append, errors.append
    if echo:
        say = lambda text: (lines.append(text), print(text, flush=True))  # noqa: E731
        err = lambda text: (errors.append(text), print(f"ERROR {text}", flush=True))  # noqa: E731
    if on_error is not None:
        err = lambda text: (errors.append(text), on_error(text))  # noqa: E731
    own_outbox = outbox is None
    box = outbox or Outbox(data_dir, log=say)
    wrapper_box: list[KflPcapS3] = []
    cap = Capture(handler_factory=items(lambda item: wrapper_box[0].handle(item, options)))
    ctx = ScriptContext(
        title="kflPcapS3 test",
        source_sha256=hashlib.sha256(repr(options).encode()).hexdigest(),
        env=env or {},
        node=NODE,
        data_dir=data_dir,
        store=cap.store,
        names=lambda: {"10.0.0.53": {"name": "dns", "namespace": "kube-system"}},
        clock=lambda: cap.now_ns,
        console=say,
        error=err,
        outbox=box,
    )
    if lost is not None:
        ctx.events = _Lost(lambda: lost(cap.now_ns))
    wrapper = KflPcapS3(ctx)
    if retry_s is not None:
        wrapper.retry_s = retry_s
    wrapper_box.append(wrapper)
    source = open_sources([str(pcap)])
    cap.use_snaplens(source)
    next_tick = 0
    for n, pkt in enumerate(source):
        if n == reload_at:  # the script is reloaded: the old wrapper flushes, a new one takes over
            wrapper.close("reload")
            wrapper = wrapper_box[0] = KflPcapS3(ctx)
            if after_reload is not None:
                after_reload(wrapper, cap)
        cap.feed_packet(pkt)
        if pkt[0] >= next_tick:
            wrapper.tick(cap.now_ns)
            next_tick = pkt[0] + 1_000_000_000
    cap.finish()
    wrapper.tick(cap.now_ns)
    if before_close is not None:
        before_close(wrapper, cap)
    wrapper.close("end")
    run = Run(data_dir, wrapper, cap, lines, errors)
    if own_outbox:
        run.left_spooled = box.close(close_timeout)
    return run
