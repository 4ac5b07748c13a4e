"""Acceptance 2 (DNS): scapy-built UDP/TCP traffic with dnspython-made messages, through the real
Capture and dissectors; the wire parser cross-checked against dnspython on every sample's DNS."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from capture.dissect.dnswire import parse
from capture.names import NameTable
from tests.capture.tcpbuild import T0
from tests.items.schema import check_item
from tests.items.util import Talk, run_frames, sample_items, udp

CLIENT, SERVER = ("10.0.0.1", 33333), ("10.0.0.53", 53)
MS = 1_000_000


def query(name: str, rdtype: str = "A", qid: int = 1) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    q.id = qid
    return q


def answer(q: dns.message.Message, *records: tuple[str, str, str], rcode: int = 0) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for owner, rdtype, text in records:
        r.answer.append(dns.rrset.from_text(owner, 300, "IN", rdtype, text))
    return r


def dns_items(frames: list, names: NameTable | None = None) -> list[dict]:
    items = run_frames(frames, names)
    for item in items:
        check_item(item)
    return [it for it in items if it["protocol"]["name"] == "dns"]


def test_udp_query_and_answer_with_cname_chain_a_and_aaaa() -> None:
    q = query("www.shop.example", "A", 7)
    r = answer(q, ("www.shop.example.", "CNAME", "edge.cdn.example."),
               ("edge.cdn.example.", "CNAME", "e1.cdn.example."),
               ("e1.cdn.example.", "A", "192.0.2.10"), ("e1.cdn.example.", "AAAA", "2001:db8::10"))
    items = dns_items([udp(CLIENT, SERVER, q.to_wire(), T0), udp(SERVER, CLIENT, r.to_wire(), T0 + 3 * MS)])
    assert len(items) == 1
    it = items[0]
    assert it["stream"].endswith("_udp.pcap") and it["protocol"]["layer4"] == "udp"
    assert it["request"] == {"opCode": "Query", "questions": [{"name": "www.shop.example", "type": "A",
                                                              "class": "IN"}]}
    resp = it["response"]
    assert resp["code"] == "No Error" and resp["authorities"] == [] and resp["additionals"] == []
    assert [(a["name"], a["type"], a["cname"], a["ip"]) for a in resp["answers"]] == [
        ("www.shop.example", "CNAME", "edge.cdn.example", "<nil>"),
        ("edge.cdn.example", "CNAME", "e1.cdn.example", "<nil>"),
        ("e1.cdn.example", "A", "", "192.0.2.10"),
        ("e1.cdn.example", "AAAA", "", "2001:db8::10"),
    ]
    assert all(a["ttl"] == 300 and a["class"] == "IN" for a in resp["answers"])
    assert it["elapsedTime"] == 3
    assert (it["requestSize"], it["responseSize"]) == (len(q.to_wire()), len(r.to_wire()))
    assert (it["src"]["port"], it["dst"]["port"]) == ("33333", "53")


def test_nxdomain_with_soa_authority() -> None:
    q = query("nope.example", "AAAA", 9)
    r = answer(q, rcode=dns.rcode.NXDOMAIN)
    r.authority.append(dns.rrset.from_text("example.", 60, "IN", "SOA",
                                           "ns1.example. hostmaster.example. 1 7200 900 1209600 60"))
    it = dns_items([udp(CLIENT, SERVER, q.to_wire(), T0), udp(SERVER, CLIENT, r.to_wire(), T0 + MS)])[0]
    assert it["response"]["code"] == "Non-Existent Domain" and it["response"]["answers"] == []
    soa = it["response"]["authorities"][0]
    assert (soa["type"], soa["soa"], soa["ttl"]) == ("SOA", "hostmaster.example", 60)


@pytest.mark.parametrize("rcode, text", [(1, "Format Error"), (2, "Server Failure"), (4, "Not Implemented"),
                                         (5, "Query Refused")])
def test_rcode_texts(rcode: int, text: str) -> None:
    q = query("x.example")
    r = answer(q, rcode=rcode)
    assert dns_items([udp(CLIENT, SERVER, q.to_wire(), T0),
                      udp(SERVER, CLIENT, r.to_wire(), T0 + MS)])[0]["response"]["code"] == text


def test_dns_over_tcp_two_queries_in_one_segment_answers_split() -> None:
    q1, q2 = query("a.example", "A", 11), query("b.example", "MX", 12)
    r1 = answer(q1, ("a.example.", "A", "198.51.100.1"))
    r2 = answer(q2, ("b.example.", "MX", "10 mail.b.example."))
    framed = [struct.pack("!H", len(m)) + m for m in (q1.to_wire(), q2.to_wire(), r2.to_wire(), r1.to_wire())]
    t = Talk(server=("10.0.0.53", 53)).send(0, framed[0] + framed[1])
    answers = framed[2] + framed[3]
    t.send(1, answers, mss=7)  # length prefixes and messages cut across segments
    items = dns_items(t.close())
    assert [it["request"]["questions"][0]["name"] for it in items] == ["b.example", "a.example"]
    assert items[0]["response"]["answers"][0]["mx"] == "mail.b.example"
    assert items[1]["response"]["answers"][0]["ip"] == "198.51.100.1"
    assert all(it["protocol"]["layer4"] == "tcp" and "error" not in it for it in items)
    assert len({it["stream"] for it in items}) == 1 and [it["index"] for it in items] == [0, 1]


def test_malformed_messages_become_items_with_errors() -> None:
    loop = struct.pack("!6H", 5, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # pointer to itself
    cut = query("cut.example", "A", 6).to_wire()[:20]
    tiny = b"\x00\x07\x01"
    payloads = (loop, cut, tiny)
    frames = [udp(("10.0.0.1", 40001 + i), SERVER, p, T0 + i * MS) for i, p in enumerate(payloads)]
    items = dns_items(frames)
    assert len(items) == 3
    assert all(it["error"]["type"] == "dissection" for it in items)
    assert all("malformed DNS query" in it["error"]["msg"] for it in items)
    assert "loop" in items[0]["error"]["msg"]
    assert items[2]["request"]["questions"] == []


def test_compression_loop_in_an_answer() -> None:
    q = query("l.example", "A", 21)
    wire = bytearray(answer(q, ("l.example.", "CNAME", "x.l.example.")).to_wire())
    rdata_name = wire.rindex(b"\x01x") + 2  # the CNAME target's pointer to the question name
    wire[rdata_name:rdata_name + 2] = struct.pack("!H", 0xC000 | rdata_name)  # points at itself
    it = dns_items([udp(CLIENT, SERVER, q.to_wire(), T0), udp(SERVER, CLIENT, bytes(wire), T0 + MS)])[0]
    assert it["error"]["type"] == "dissection" and "loop" in it["error"]["msg"]
    assert it["response"]["code"] == "No Error"


def test_unanswered_query_is_emitted_after_the_idle_timeout() -> None:
    q = query("slow.example")
    other = (("10.0.0.9", 5000), ("10.0.0.8", 6000))
    later = [udp(*other, b"tick", T0 + 61 * 10**9), udp(*other, b"tock", T0 + 62 * 10**9)]
    items = run_frames([udp(CLIENT, SERVER, q.to_wire(), T0), *later])
    assert [it["protocol"]["name"] for it in items] == ["dns", "udp"]  # the DNS flow idled out first
    assert items[0]["error"]["type"] == "timeout" and "idle" in items[0]["error"]["msg"]
    assert items[0]["response"] == {"code": "", "answers": [], "authorities": [], "additionals": []}


def test_answer_without_query_takes_its_question() -> None:
    r = answer(query("orphan.example", "A", 3), ("orphan.example.", "A", "203.0.113.5"))
    it = dns_items([udp(SERVER, CLIENT, r.to_wire(), T0)])[0]
    assert it["error"]["type"] == "pair-not-found"
    assert it["request"]["questions"][0]["name"] == "orphan.example"
    assert it["src"]["port"] == "33333" and it["response"]["answers"][0]["ip"] == "203.0.113.5"


def test_answers_name_later_items() -> None:
    q = query("web.shop.svc.cluster.local", "A", 4)
    r = answer(q, ("web.shop.svc.cluster.local.", "A", "10.96.0.20"))
    frames = [udp(CLIENT, SERVER, q.to_wire(), T0), udp(SERVER, CLIENT, r.to_wire(), T0 + MS)]
    t = Talk(client=("10.0.0.1", 41000), server=("10.96.0.20", 80), t0=T0 + 5 * MS)
    t.send(0, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    names = NameTable({"10.0.0.1": {"name": "client-pod", "namespace": "shop"}})
    items = run_frames(frames + t.close(), names)
    http = [it for it in items if it["protocol"]["name"] == "http"][0]
    assert (http["dst"]["name"], http["dst"]["namespace"]) == ("web", "shop")
    assert (http["src"]["name"], http["src"]["namespace"]) == ("client-pod", "shop")
    assert names.snapshot()["10.96.0.20"]["source"] == "dns"


def _sample_dns_payloads() -> list[bytes]:
    from capture import Capture, CaptureConfig, open_sources
    from tests.conftest import PCAPS

    payloads: list[bytes] = []

    class Keep:
        def __init__(self, meta):
            self.udp = meta.l4 == "udp" and 53 in (meta.client_port, meta.server_port)

        def on_data(self, direction, data, ts):
            if self.udp:
                payloads.append(bytes(data))

        def on_gap(self, *a):
            pass

        def on_close(self, *a):
            pass

    for name in ("zeek_dns_udp-tcp_ipv4-ipv6.pcap", "zeek_mixed_http-dns_wikipedia.pcap",
                 "sv_mixed_tls-dns-http404_1.6MB.pcap", "ndpi_dns_big-endian_fuzzed-malformed.pcap"):
        cap = Capture(CaptureConfig(), Keep)
        cap.warn = lambda _t: None
        cap.consume(open_sources([str(PCAPS / name)], on_error=lambda _t: None))
        cap.finish()
    return payloads


def test_wire_parser_agrees_with_dnspython_on_sample_traffic() -> None:
    agreed = malformed = 0
    for wire in _sample_dns_payloads():
        ours = parse(wire)
        try:
            ref = dns.message.from_wire(wire, ignore_trailing=True)
        except Exception:
            ours_ok = ours.error is None
            malformed += 1
            if ours_ok:  # dnspython is stricter about rdata contents; the structure must still hold
                assert ours.id == struct.unpack("!H", wire[:2])[0]
            continue
        assert ours.error is None, (ours.error, wire.hex())
        assert (ours.id, ours.qr, ours.rcode) == (ref.id, bool(ref.flags & dns.flags.QR), ref.rcode() & 0xF)
        assert [q["name"] for q in ours.questions] == [str(r.name).rstrip(".") for r in ref.question]
        ref_answers = [(str(rrset.name).rstrip("."), rd) for rrset in ref.answer for rd in rrset]
        assert len(ours.answers) == len(ref_answers)
        for ans, (owner, rd) in zip(ours.answers, ref_answers, strict=True):
            assert ans["name"] == owner and ans["type"] == dns.rdatatype.to_text(rd.rdtype)
            if ans["type"] in ("A", "AAAA"):
                assert ans["ip"] == rd.address
            elif ans["type"] == "CNAME":
                assert ans["cname"] == str(rd.target).rstrip(".")
        agreed += 1
    assert agreed > 100 and malformed > 10


def test_every_sample_dns_item_is_well_formed() -> None:
    fuzzed = sample_items("ndpi_dns_big-endian_fuzzed-malformed.pcap")
    items = [it for it in fuzzed if it["protocol"]["name"] == "dns"]
    errors = {it["error"]["type"] for it in items if "error" in it}
    assert {"dissection", "pair-not-found", "timeout"} <= errors
    for it in items:
        check_item(it)


def test_unanswered_queries_are_bounded_per_flow() -> None:
    from capture.dissect.dns import MAX_PENDING

    frames = [udp(CLIENT, SERVER, query(f"q{i}.example", qid=i).to_wire(), T0 + i * 1000)
              for i in range(MAX_PENDING + 5)]
    frames.append(udp(SERVER, CLIENT, answer(query("q7.example", qid=7)).to_wire(), T0 + MS * 10))
    items = dns_items(frames)
    assert len(items) == MAX_PENDING + 5
    first = [it["request"]["questions"][0]["name"] for it in items[:5]]
    assert first == [f"q{i}.example" for i in range(5)]
    assert all("waited" in it["error"]["msg"] for it in items[:5])
    answered = items[5]
    assert answered["request"]["questions"][0]["name"] == "q7.example"
    assert answered["response"]["code"] == "No Error"
