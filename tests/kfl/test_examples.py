"""Every query example in docs/kfl.md and Kubeshark's documented examples, on docs/items.md items."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kfl

# Kubeshark's documentation and official scripts (issue 4, reference notes §9): all must parse.
KUBESHARK_EXAMPLES = [
    'http and response.status == r"4.*"',
    'http and request.headers["Accept"] == r"application/json.*"',
    '(http and request.method == "PUT") or (amqp and request.queue.startsWith("test"))',
    'http and (request.query["x"] == response.headers["y"] or '
    'response.content.text.contains(request.query["x"]))',
    'timestamp >= datetime("10/19/2021, 6:29:02.593 PM")',
    'response.body.xml().bookstore.book[1].title == "x"',
    "http and response.status == 500",
    "dns",
    "http or dns",
    'dst.name==r"cata.*" or src.name==r"cata.*"',
    'node==r"my-node.*" and src.namespace=="my-namespace"',
    'dst.port==443 and dst.namespace==""',
    "(http) and (timestamp > 1700000000000)",
    'tcp and data.payload.startsWith("GET")',
    'http and request.method=="GET"',
    "gql and (src.name == 'my-pod-name' or dst.name == 'my-pod-name')",
    'request.questions[0].name == "catalogue.shop.svc.cluster.local"',
    'response.answers.*.name == "catalogue.shop.svc.cluster.local"',
    'request.pathSegments[0] == "api"',
    'redact("request.headers.Authorization") and http',
    "limit(100) and http",
    "timestamp > seconds(-30) and timestamp < now()",
]


@pytest.mark.parametrize("query", KUBESHARK_EXAMPLES)
def test_kubeshark_examples_parse(query):
    assert kfl.validate(query) is None
    assert isinstance(kfl.compile(query), kfl.Query)


@pytest.mark.parametrize("query, matching", [
    ('http and response.status == r"4.*"', [1]),
    ('http and request.headers["Accept"] == r"application/json.*"', [0]),
    ('(http and request.method == "PUT") or (amqp and request.queue.startsWith("test"))', [1]),
    ('timestamp >= datetime("10/19/2021, 6:29:02.593 PM")', [0, 1, 2, 3]),
    ('timestamp >= datetime("11/14/2023, 10:13:20.500 PM")', [1, 2, 3]),
    ('response.content.text.xml().bookstore.book[1].title == "Harry Potter"', [1]),
    ("http and response.status == 500", [0]),
    ("dns", [2]),
    ("http or dns", [0, 1, 2]),
    ('dst.name==r"cata.*" or src.name==r"cata.*"', [0]),
    ('node.name==r"node-.*" and src.namespace=="shop"', [0, 1, 2]),
    ('dst.port==443 and dst.namespace==""', [3]),
    ("(http) and (timestamp > 1700000000500)", [1]),
    ('tcp and data.payload.startsWith("GET")', [3]),
    ('http and request.method=="GET"', [0]),
    ("http and (src.name == 'front-end' or dst.name == 'front-end')", [0, 1]),
    ('request.questions[0].name == "catalogue.shop.svc.cluster.local"', [2]),
    ('response.answers.*.ip == "172.20.40.12"', [2]),
    ('!request.headers["User-Agent"] == r"^kube-probe"', [0, 2, 3]),
    ("dst.port == 443", [3]),
    ("http and response.content.text.json().user.id == 7", [0]),
    ('http and (request.queryString["size"] == response.headers["Content-Length"] or '
     'response.statusText.contains(request.queryString["size"]))', []),
    ('http and (request.queryString["size"] == response.headers["Content-Length"] or '
     'request.url.contains(request.queryString["size"]))', [0]),
    ('http and request.headers["Host"] == dst.name', [0]),
])
def test_examples_select_the_right_items(items, query, matching):
    q = kfl.compile(query)
    assert [i for i, item in enumerate(items) if q.match(item)] == matching


def test_kfl_md_examples(http_item):
    """The examples in docs/kfl.md's text, one by one."""
    item = {
        "request": {"headers": {"User-Agent": "curl", "user-agent": "kube-probe"}, "path": "/x",
                    "pathSegments": ["api", "v1"]},
        "a": {"b": [{"c": 1}], "x": "abc"},
        "dst": {"port": "443"},
        "response": {"status": 404, "content": {"text": '{"user": {"id": 7}, "x": "ab"}'}},
        "nums": [1, 2, 3],
    }

    def m(query: str) -> bool:
        return kfl.compile(query).match(item)

    assert m('request.headers["User-Agent"] == "curl"')
    assert m("a.b[0].c == 1") and m("a.* == \"abc\"") and m("a.b[*].c == 1") and m("a..c == 1")
    assert m('a.x.startsWith("a")')
    assert kfl.compile('rule(description: "slow calls", query: elapsedTime > 100)').match(item) is False
    assert not m('!request.headers["user-agent"] == "kube-probe"')
    assert not m("request.path.*.x == 1") and m("!(request.path.*.x == 1)")
    assert m('request.pathSegments == "api"')
    assert not m('missing != "x"') and m('!(missing != "x")') and m("missing == 1 or true")
    assert m("1 == 1.0") and m("dst.port == 443")
    assert m('response.status == r"4.*"')
    assert kfl.match('response.status == r"4.*"', {"response": {"status": 140}})
    assert not m("nums[*] >= nums[*]")
    assert m("response.content.text.json().user.id == 7")
    assert kfl.match("x.json()[0] == 1", {"x": "[1, 2]"})
    assert kfl.match('x.json()..name == "n"', {"x": '{"a": {"name": "n"}}'})
    assert m('response.content.text.json().x.startsWith("a")')
    xml = ('<bookstore><book><title>A</title></book>'
           '<book><title lang="en">Harry Potter</title></book></bookstore>')
    assert kfl.match('b.xml().bookstore.book[1].title == "Harry Potter"', {"b": xml})
    assert kfl.match('t == datetime("10/19/2021, 6:29:02.593 PM")', {"t": 1634668142593})
    with pytest.raises(kfl.KFLSyntaxError, match="comparisons do not chain"):
        kfl.compile("1 < 2 < 3")
    assert http_item["response"]["status"] == 500 and kfl.match("http and response.status == 500", http_item)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "kfl.md"


def doc_examples() -> list[str]:
    """The queries of docs/kfl.md: its first example block and the example column of its helper table."""
    text = DOCS.read_text()
    block = text.split("```text\n", 1)[1].split("```", 1)[0]
    queries = [line for line in block.splitlines() if line.strip()]
    table = text.split("## Helpers", 1)[1].split("\n\n", 2)[1]
    for row in table.splitlines()[2:]:
        example = row.rstrip("|").rsplit("|", 1)[1]
        queries += re.findall(r"`([^`]+)`", example)
    return queries


def test_docs_examples_compile():
    examples = doc_examples()
    assert len(examples) >= 12
    for query in examples:
        assert kfl.compile(query).unknown_helpers == (), query
