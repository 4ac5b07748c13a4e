"""Acceptance 2 (HTTP/1.x): scapy-built conversations through the real Capture and dissectors."""

from __future__ import annotations

import base64
import gzip
import zlib

from tests.items.schema import check_item
from tests.items.util import Talk, run_frames


def http(talk: Talk) -> list[dict]:
    items = run_frames(talk.close())
    for item in items:
        check_item(item)
    return items


def codes(items: list[dict]) -> list[int]:
    """The response status of each item; 0: no response (the item says why in `error`)."""
    return [it["response"]["status"] for it in items]


def body(item: dict) -> bytes:
    return base64.b64decode(item["response"]["content"].get("text", ""))


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: shop\r\n{extra}\r\n".encode()


def ok(payload: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(payload)}\r\n{extra}\r\n".encode() + payload


def test_keep_alive_three_requests_pair_in_order() -> None:
    t = Talk()
    for i, status in enumerate(("200 OK", "404 Not Found", "500 Internal Server Error")):
        t.send(0, get(f"/item/{i}")).wait(0.002).send(1, ok(b"x" * (i + 1), status)).wait(1)
    items = http(t)
    assert [it["request"]["path"] for it in items] == ["/item/0", "/item/1", "/item/2"]
    assert codes(items) == [200, 404, 500]
    assert [it["index"] for it in items] == [0, 1, 2]
    assert [body(it) for it in items] == [b"x", b"xx", b"xxx"]
    # request, ack, 2 ms wait, response: the frames are 1 ms apart
    assert all(it["elapsedTime"] == 4 and "error" not in it for it in items)
    first = items[0]
    assert first["id"] == f"node-a/{first['stream']}-0" and first["worker"] == "10.1.1.1:0"
    assert (first["src"]["ip"], first["src"]["port"], first["dst"]["port"]) == ("10.0.0.1", "40000", "80")
    assert first["protocol"]["abbr"] == "HTTP" and first["protocol"]["version"] == "1.1"
    assert first["response"]["statusText"] == "OK"
    assert items[2]["response"]["statusText"] == "Internal Server Error"
    assert first["requestSize"] == len(get("/item/0")) and first["responseSize"] == len(ok(b"x"))


def test_pipelined_three_requests_in_one_segment() -> None:
    t = Talk().send(0, get("/a") + get("/b") + get("/c"))
    t.send(1, ok(b"A") + ok(b"", "204 No Content") + ok(b"C", "503 Service Unavailable"))
    items = http(t)
    assert [it["request"]["url"] for it in items] == ["/a", "/b", "/c"]
    assert codes(items) == [200, 204, 503]
    assert [body(it) for it in items] == [b"A", b"", b"C"]


def test_chunked_response_with_trailers() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
               b"5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n")
    items = http(Talk().send(0, get("/c")).send(1, chunked, mss=9).send(0, get("/next")).send(1, ok(b"n")))
    assert codes(items) == [200, 200]
    resp = items[0]["response"]
    assert body(items[0]) == b"hello, world" and resp["bodySize"] == 12 and resp["content"]["size"] == 12
    assert resp["headers"]["X-Checksum"] == "abc"
    assert items[0]["responseSize"] == len(chunked)
    assert body(items[1]) == b"n"


def test_gzip_and_deflate_bodies_are_decoded() -> None:
    text = b'{"user": 7, "items": [1, 2, 3]}' * 20
    gz, defl = gzip.compress(text), zlib.compress(text)
    t = Talk().send(0, get("/gz"))
    t.send(1, ok(gz, extra="Content-Encoding: gzip\r\nContent-Type: application/json\r\n"))
    t.send(0, get("/deflate")).send(1, ok(defl, extra="Content-Encoding: deflate\r\n"))
    items = http(t)
    assert [body(it) for it in items] == [text, text]
    assert items[0]["response"]["content"]["size"] == len(text)
    assert items[0]["response"]["bodySize"] == len(gz)
    assert items[0]["response"]["content"]["mimeType"] == "application/json"


def test_100_continue_is_skipped_not_paired() -> None:
    t = Talk().send(0, b"POST /up HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    t.send(1, b"HTTP/1.1 100 Continue\r\n\r\n").send(0, b"data").send(1, ok(b"done", "201 Created"))
    t.send(0, get("/after")).send(1, ok(b"z"))
    items = http(t)
    assert codes(items) == [201, 200]
    assert items[0]["request"]["postData"]["text"] == "data" and items[0]["request"]["bodySize"] == 4
    assert items[1]["request"]["url"] == "/after"


def test_head_response_has_no_body_even_with_content_length() -> None:
    t = Talk().send(0, b"HEAD /big HTTP/1.1\r\nHost: s\r\n\r\n")
    t.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n").send(0, get("/small")).send(1, ok(b"s"))
    t.send(0, b"HEAD /x HTTP/1.1\r\nHost: s\r\n\r\n" + get("/y"))
    t.send(1, b"HTTP/1.1 404 Not Found\r\nContent-Length: 99\r\n\r\n" + ok(b"yy"))
    items = http(t)
    assert [it["request"]["method"] for it in items] == ["HEAD", "GET", "HEAD", "GET"]
    assert codes(items) == [200, 200, 404, 200]
    assert [body(it) for it in items] == [b"", b"s", b"", b"yy"]
    assert items[0]["response"]["headers"]["Content-Length"] == "5000"


def test_304_without_body_then_next_exchange() -> None:
    t = Talk().send(0, get("/cached", "If-None-Match: \"v1\"\r\n"))
    t.send(1, b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n").send(0, get("/n")).send(1, ok(b"1"))
    items = http(t)
    assert codes(items) == [304, 200] and body(items[1]) == b"1"


def test_body_delimited_by_connection_close() -> None:
    payload = b"<html>" + b"y" * 5000 + b"</html>"
    t = Talk().send(0, b"GET / HTTP/1.0\r\n\r\n")
    t.send(1, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + payload)
    items = http(t)
    assert codes(items) == [200] and body(items[0]) == payload and "error" not in items[0]
    assert items[0]["protocol"]["version"] == "1.0" and items[0]["response"]["httpVersion"] == "HTTP/1.0"


def test_request_without_response_is_emitted_at_stream_end() -> None:
    items = http(Talk().send(0, get("/a")).send(1, ok(b"a")).send(0, get("/lost")))
    assert codes(items) == [200, 0]
    lost = items[1]
    assert lost["request"]["path"] == "/lost"
    resp = lost["response"]
    assert resp["statusText"] == "" and resp["headers"] == {} == resp["cookies"]
    assert resp["content"]["size"] == 0 and resp["content"]["text"] == ""
    assert items[1]["error"]["type"] == "connection"
    t = Talk().send(0, get("/open"))
    items = run_frames(t.frames)  # no FIN: the capture ends
    assert items[0]["error"]["type"] == "timeout"


def test_garbage_on_port_80_is_a_generic_tcp_item() -> None:
    items = http(Talk().send(0, b"\x16\x03\x01\x02\x00garbage").send(1, b"\x00\x01nonsense"))
    assert len(items) == 1 and items[0]["protocol"]["name"] == "tcp"
    assert items[0]["data"]["payload"].startswith("\x16\x03\x01")


def test_get_answered_by_ssh_banner_is_not_http() -> None:
    t = Talk(server=("10.0.0.2", 22)).send(0, get("/")).send(1, b"SSH-2.0-OpenSSH_8.9\r\n")
    items = http(t)
    assert [it["protocol"]["name"] for it in items] == ["tcp"]


def test_http_on_any_port_by_content() -> None:
    t = Talk(server=("10.0.0.2", 8002)).send(0, get("/x"))
    items = http(t.send(1, ok(b"", "500 Internal Server Error")))
    assert codes(items) == [500]


def test_body_cap_64k_flags_truncation() -> None:
    big = bytes(range(256)) * 400  # 100 KiB
    items = http(Talk().send(0, get("/big")).send(1, ok(big)))
    content = items[0]["response"]["content"]
    assert body(items[0]) == big[:65536] and content["truncated"] is True
    assert content["size"] == len(big) and items[0]["response"]["bodySize"] == len(big)


def test_lost_segment_inside_a_body_keeps_pairing() -> None:
    big = b"z" * 5000
    t = Talk().send(0, get("/lossy")).send(1, ok(big), lost=(1,)).send(0, get("/fine")).send(1, ok(b"f"))
    items = http(t)
    assert codes(items) == [200, 200]
    assert items[0]["error"]["type"] == "dissection" and "missing" in items[0]["error"]["msg"]
    assert "error" not in items[1] and body(items[1]) == b"f"


def test_lost_head_resyncs_at_next_message() -> None:
    t = Talk().send(0, get("/a")).send(1, ok(b"a" * 3000, extra="X-Pad: " + "p" * 1500 + "\r\n"), lost=(0,))
    t.send(0, get("/b")).send(1, ok(b"b"))
    items = http(t)
    assert [it["request"]["path"] for it in items] == ["/a", "/b"]
    assert codes(items) == [0, 200]
    assert items[0]["error"]["type"] == "dissection"


def test_capture_starting_mid_connection_with_a_response() -> None:
    t = Talk(handshake=False).send(1, ok(b"late")).send(0, get("/next")).send(1, ok(b"n", "404 Not Found"))
    items = http(t)
    assert codes(items) == [200, 404]
    assert items[0]["error"]["type"] == "pair-not-found" and items[0]["request"]["method"] == ""
    assert items[1]["request"]["path"] == "/next" and "error" not in items[1]


def test_requests_seen_from_the_server_side_are_swapped() -> None:
    # No SYN and the client's port is the lower one: the capture guesses the roles the wrong way round.
    t = Talk(client=("10.0.0.1", 1080), server=("10.0.0.2", 40000), handshake=False)
    items = http(t.send(0, get("/swapped")).send(1, ok(b"s")))
    assert codes(items) == [200]
    assert (items[0]["src"]["port"], items[0]["dst"]["port"]) == ("1080", "40000")


def test_upgrade_to_websocket_stops_parsing() -> None:
    t = Talk().send(0, get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    t.send(1, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    t.send(0, b"\x81\x85abcd\x00\x00\x00\x00\x00").send(1, b"\x81\x05hello")
    items = http(t)
    assert codes(items) == [101] and len(items) == 1 and "error" not in items[0]


def test_refused_upgrade_keeps_parsing() -> None:
    t = Talk().send(0, b"CONNECT host:443 HTTP/1.1\r\nHost: host\r\n\r\n")
    t.send(1, ok(b"no", "403 Forbidden")).send(0, get("/then")).send(1, ok(b"t"))
    items = http(t)
    assert codes(items) == [403, 200] and items[1]["request"]["path"] == "/then"


def test_request_fields() -> None:
    req = (b"POST /a%20b/c?x=1&x=2&y=&z=%C3%A9 HTTP/1.1\r\nhost: shop\r\ncookie: s=1; t=2\r\n"
           b"content-type: application/x-www-form-urlencoded\r\nX-Multi: a\r\nx-multi: b\r\n"
           b"Content-Length: 7\r\n\r\nk=v&w=1")
    answer = ok(b"", "302 Found", "Location: /there\r\nSet-Cookie: id=9; Path=/\r\n")
    items = http(Talk().send(0, req).send(1, answer))
    r = items[0]["request"]
    assert r["method"] == "POST" and r["url"] == r["targetUri"] == "/a%20b/c?x=1&x=2&y=&z=%C3%A9"
    assert r["path"] == "/a b/c" and r["pathSegments"] == ["a b", "c"]
    assert r["queryString"] == {"x": ["1", "2"], "y": "", "z": "é"}
    assert r["headers"]["Host"] == "shop" and r["headers"]["X-Multi"] == "a,b"
    assert r["cookies"] == {"s": "1", "t": "2"}
    assert r["postData"]["text"] == "k=v&w=1" and r["postData"]["params"] == [
        {"name": "k", "value": "v"}, {"name": "w", "value": "1"}]
    resp = items[0]["response"]
    assert resp["redirectURL"] == "/there" and resp["cookies"] == {"id": "9"}


def test_binary_post_body_is_base64() -> None:
    blob = bytes(range(200, 256))
    req = b"PUT /bin HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(blob) + blob
    items = http(Talk().send(0, req).send(1, ok(b"")))
    post = items[0]["request"]["postData"]
    assert post["encoding"] == "base64" and base64.b64decode(post["text"]) == blob


def test_requests_never_answered_are_bounded() -> None:
    from capture.dissect.http1 import MAX_WAITING

    t = Talk().send(0, b"".join(get(f"/{i}") for i in range(MAX_WAITING + 10)))
    items = http(t.send(1, ok(b"late")))
    assert len(items) == MAX_WAITING + 10
    assert [it["request"]["path"] for it in items[:10]] == [f"/{i}" for i in range(10)]
    assert all(it["error"]["type"] == "timeout" and it["response"]["status"] == 0 for it in items[:10])
    assert items[10]["response"]["status"] == 200 and items[10]["request"]["path"] == "/10"


def test_pickup_inside_a_body_still_yields_the_later_exchanges() -> None:
    # No SYN; the first server bytes are the end of a body whose head was before the capture.
    t = Talk(handshake=False).send(1, b"...end of an earlier body</html>")
    t.send(0, get("/next")).send(1, ok(b"n", "404 Not Found")).send(0, get("/last")).send(1, ok(b"l"))
    items = http(t)
    got = [(it["request"]["path"], it["response"]["status"]) for it in items]
    assert got == [("/next", 404), ("/last", 200)]


def test_pickup_inside_a_body_on_another_port_with_a_later_message_start() -> None:
    t = Talk(server=("10.0.0.2", 9000), handshake=False)
    t.send(1, b"tail of a body\r\nHTTP/1.1 204 No Content\r\n\r\n")
    items = http(t.send(0, get("/x")).send(1, ok(b"x")))
    assert [it["response"]["status"] for it in items] == [204, 200]
    assert items[0]["error"]["type"] == "pair-not-found" and items[1]["request"]["path"] == "/x"
