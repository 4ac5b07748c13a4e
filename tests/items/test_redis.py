"""Redis items from real traffic: Debian's redis-server and redis-py (tests/items/redis_peer.py) in
network namespaces, captured by dumpcap on the veth, compared with tshark's RESP dissector on the
same capture.

tshark 4.0's RESP dissector reads RESP2 only, so the oracle takes from it every connection's commands
(client side, always RESP2) and, for RESP2 connections, the error replies and pushed messages.
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

import kfl
from tests.items.live import captured, tshark_rows
from tests.items.schema import check_item
from tests.items.util import dissect_events, items_of

PEER = str(Path(__file__).with_name("redis_peer.py"))
PORT = 6379
pytestmark = pytest.mark.live


def record_redis(pcap: Path) -> dict:
    """Capture every scenario of redis_peer.py against a fresh redis-server; what the client saw."""
    with captured(pcap) as link:
        link.b.popen(["redis-server", "--port", str(PORT), "--bind", link.b_ip, "--save", "",
                      "--appendonly", "no", "--protected-mode", "no"])
        link.b.wait_tcp(link.b_ip, PORT)
        done = link.a.run([sys.executable, PEER, link.b_ip, str(PORT)])
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def redis_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    pcap = tmp_path_factory.mktemp("redis") / "redis.pcap"
    return pcap, record_redis(pcap)


@cache
def connections(pcap: Path) -> dict[str, list[dict]]:
    """Our items per connection, named by the scenario (`CLIENT SETNAME` / `HELLO ... SETNAME`)."""
    by_port: dict[str, list[dict]] = defaultdict(list)
    for item in items_of(pcap):
        assert item["protocol"]["name"] == "redis", item["protocol"]
        check_item(item)
        by_port[item["src"]["port"]].append(item)
    named = {}
    for items in by_port.values():
        setname = [i["request"]["args"][1] for i in items if "request" in i
                   and i["request"]["command"] == "CLIENT" and i["request"]["args"][0] == "SETNAME"]
        named[setname[0]] = items
    return named


def tshark_view(pcap: Path) -> dict[str, dict[str, list]]:
    """Per client port: the commands (client side) and, from the server side, error texts and the
    pushed `message`/`pmessage` arrays, in order."""
    fields = ["tcp.srcport", "tcp.dstport", "resp.array.length", "resp.bulk_string.value", "resp.error"]
    view: dict[str, dict[str, list]] = defaultdict(lambda: {"commands": [], "errors": [], "pushes": 0})
    for sport, dport, lengths, bulks, errors in tshark_rows(pcap, "resp", fields, joiner="\x1f"):
        values = [bytes.fromhex(b).decode("utf-8", "backslashreplace") for b in bulks.split("\x1f") if b]
        if int(dport) == PORT:
            for n in (int(x) for x in lengths.split("\x1f") if x):
                view[sport]["commands"].append(values[:n])
                values = values[n:]
        else:
            view[dport]["errors"] += [e for e in errors.split("\x1f") if e]
            view[dport]["pushes"] += sum(v in ("message", "pmessage") for v in values)
    return view


def _errors(value: object) -> list[str]:
    """Error texts inside a reply's decoded value (errors nested in EXEC's array)."""
    if isinstance(value, list):
        return [e for v in value for e in _errors(v)]
    if isinstance(value, str) and value.startswith("DataError: "):
        return [value.removeprefix("DataError: ")]
    return []


def test_redis_commands_errors_and_pushes_equal_tshark(redis_capture: tuple[Path, dict]) -> None:
    pcap, _ = redis_capture
    theirs = tshark_view(pcap)
    named = connections(pcap)
    assert len(named) == len(theirs) == 10  # 4 scenarios and a publisher, RESP2 and RESP3
    for name, items in named.items():
        port = items[0]["src"]["port"]
        commands = [[i["request"]["command"], *i["request"]["args"]] for i in items if "request" in i]
        assert [[c[0].upper(), *c[1:]] for c in theirs[port]["commands"]] == commands, name
        if name.endswith("2"):
            errors = [e for i in items for e in ([i["response"]["error"]] if "error" in i["response"]
                                                 else _errors(i["response"]["value"]))]
            assert errors == theirs[port]["errors"], name
            assert sum(i["response"].get("push", False) for i in items) == theirs[port]["pushes"], name


def test_every_command_is_answered_and_nothing_is_an_item_error(redis_capture: tuple[Path, dict]) -> None:
    pcap, _ = redis_capture
    for name, items in connections(pcap).items():
        assert all("error" not in i and "response" in i for i in items), name


def test_basic_replies(redis_capture: tuple[Path, dict]) -> None:
    pcap, seen = redis_capture
    for proto in "23":
        items = connections(pcap)[f"basic{proto}"]
        by = {(i["request"]["command"], i["request"]["key"]): i["response"] for i in items}
        assert by[("GET", "user:1")]["value"] == seen[f"basic{proto}"]["get"] == "alice"
        assert by[("GET", "missing")]["nil"] is True
        assert by[("GET", "missing")]["type"] == ("Bulk String" if proto == "2" else "Null")
        assert by[("TYPE", "h")]["keyword"] == "HASH"
        hgetall = by[("HGETALL", "h")]
        assert (hgetall.get("array") or hgetall.get("map")) == (["a", "1", "b", "2"] if proto == "2"
                                                                 else {"a": "1", "b": "2"})
        assert by[("GET", "bin")]["value"] == "a\r\nb\x00\\xff$3\r\n"  # length-framed: \r\n inside is safe
        incr = by[("INCRBY", "user:1")]
        assert incr["type"] == "Error" and incr["error"] == "ERR " + seen[f"basic{proto}"]["error"]
        assert incr["value"] == "DataError: " + incr["error"]
        assert by[("NOSUCHCMD", "x")]["error"].startswith("ERR unknown command 'NOSUCHCMD'")


def test_pipelining_pairs_every_reply_with_its_command(redis_capture: tuple[Path, dict]) -> None:
    pcap, seen = redis_capture
    for proto in "23":
        items = [i for i in connections(pcap)[f"pipeline{proto}"] if i["request"]["key"].startswith("p:")]
        assert len(items) == seen[f"pipeline{proto}"]["replies"] == 80
        for item in items:
            req, resp = item["request"], item["response"]
            if req["command"] == "SET":
                assert resp["keyword"] == "OK"
            else:
                assert resp["value"] == "v" + req["key"].removeprefix("p:")


def test_multi_exec_replies_decoded_fully(redis_capture: tuple[Path, dict]) -> None:
    pcap, seen = redis_capture
    for proto in "23":
        items = connections(pcap)[f"multi{proto}"]
        start = [i["request"]["command"] for i in items].index("MULTI")
        block = items[start:]
        commands = [i["request"]["command"] for i in block]
        assert commands == ["MULTI", "SET", "INCRBY", "INCRBY", "HGETALL", "EXEC"]
        assert [i["response"]["keyword"] for i in block[:5]] == ["OK", "QUEUED", "QUEUED", "QUEUED", "QUEUED"]
        exec_value = block[-1]["response"]["array"]
        assert exec_value[:3] == ["OK", int(seen[f"multi{proto}"]["exec"][1]),
                                  "DataError: ERR " + seen[f"multi{proto}"]["exec"][2]]
        assert exec_value[3] == (["a", "1", "b", "2"] if proto == "2" else {"a": "1", "b": "2"})


def test_pubsub_pushes_do_not_shift_pairing(redis_capture: tuple[Path, dict]) -> None:
    pcap, _ = redis_capture
    for proto in "23":
        items = connections(pcap)[f"pubsub{proto}"]
        pushes = [i["response"] for i in items if "request" not in i]
        assert [(p["kind"], p.get("pattern"), p["channel"], p["message"]) for p in pushes] == [
            ("message", None, "news", "hello"), ("message", None, "alerts", "fire"),
            ("pmessage", "metrics.*", "metrics.cpu", "93")]
        assert all(p["push"] for p in pushes)
        paired = {i["request"]["command"]: i["response"] for i in items if "request" in i}
        assert paired["SUBSCRIBE"]["value"][:2] == ["subscribe", "news"]  # the first confirmation
        assert paired["PSUBSCRIBE"]["value"][:2] == ["psubscribe", "metrics.*"]
        assert paired["PING"]["value"] in (["pong", ""], "PONG")
        assert paired["UNSUBSCRIBE"]["value"][0] == "unsubscribe"
        assert paired["GET"]["value"] == "alice"  # after the pub/sub exchange, pairing still holds


def test_kfl_queries_on_redis_items(redis_capture: tuple[Path, dict]) -> None:
    pcap, _ = redis_capture
    items = [i for group in connections(pcap).values() for i in group]
    misses = kfl.compile('redis and request.command == "GET" and response.nil')
    assert [i["request"]["key"] for i in items if misses.match(i)] == ["missing", "missing"]
    errors = kfl.compile('redis and response.error.contains("not an integer")')
    assert len([i for i in items if errors.match(i)]) == 2  # INCRBY in basic2/basic3; EXEC's is nested
    pushes = kfl.compile('redis and response.push and response.channel == "news"')
    assert len([i for i in items if pushes.match(i)]) == 2


def _streams(pcap: Path) -> list[list[tuple[int, bytes]]]:
    from scapy.all import TCP, rdpcap

    conns: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for pkt in rdpcap(str(pcap)):
        if TCP in pkt and bytes(pkt[TCP].payload):
            tcp = pkt[TCP]
            client = tcp.dport if tcp.sport == PORT else tcp.sport
            conns[client].append((int(tcp.sport == PORT), bytes(tcp.payload)))
    return list(conns.values())


def _dissect(events: list[tuple[int, bytes]], gap_at: int = -1) -> list[dict]:
    items = dissect_events(events, PORT, gap_at)
    for item in items:
        check_item(item)
    return items


def test_truncated_gapped_and_fuzzed_streams_never_crash_and_count_errors(
        redis_capture: tuple[Path, dict]) -> None:
    pcap, _ = redis_capture
    rng = random.Random(6379)
    for events in _streams(pcap):
        whole = _dissect(events)
        assert not any("error" in i for i in whole)
        for cut in range(1, len(events), 3):  # the stream ends inside: the unanswered are errors
            cut_at = len(events[cut][1]) // 2
            items = _dissect([*events[:cut], (events[cut][0], events[cut][1][:cut_at])])
            if events[cut][0] == 0:  # a command cut short, or its reply never came
                assert any("error" in i for i in items)
        for gap in range(0, len(events), 4):  # bytes lost: errors, never a wrong reply value
            items = _dissect(events, gap_at=gap)
            assert any("error" in i for i in items)
        for _ in range(20):
            mutated = [(d, bytes(b ^ rng.randrange(256) if rng.random() < 0.03 else b for b in data))
                       for d, data in events]
            _dissect(mutated)


def test_a_large_array_reply_over_many_segments_is_one_decoded_reply() -> None:
    fields = [f"field{i}" for i in range(2000)]
    reply = b"*%d\r\n" % len(fields) + b"".join(b"$%d\r\n%s\r\n" % (len(f), f.encode()) for f in fields)
    command = b"*2\r\n$7\r\nHGETALL\r\n$3\r\nbig\r\n"
    events = [(0, command)] + [(1, reply[i:i + 7]) for i in range(0, len(reply), 7)]
    items = _dissect(events)
    assert len(items) == 1 and "error" not in items[0]
    assert items[0]["response"]["array"] == fields
    assert items[0]["responseSize"] == len(reply)
