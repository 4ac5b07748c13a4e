"""History: intervals as of a time, late dating, linger, bounds, and the --names list format."""

from __future__ import annotations

import json

from capture.k8s.history import LINGER_NS, History
from capture.k8s.objects import timestamp_ns
from capture.names import NameTable

S = 1_000_000_000


def test_lookup_answers_as_of_a_time_and_says_how_long_the_answer_holds() -> None:
    h = History()
    h.set("10.0.0.5", {"name": "a"}, 100 * S)
    h.set("10.0.0.5", None, 200 * S)
    h.set("10.0.0.5", {"name": "b"}, 300 * S)
    assert h.lookup("10.0.0.5", 99 * S) == (None, 0, 100 * S)
    assert h.lookup("10.0.0.5", 150 * S) == ({"name": "a"}, 100 * S, 200 * S)
    assert h.lookup("10.0.0.5", 200 * S)[0] == {"name": "a"}  # lingers a little after the end
    assert h.lookup("10.0.0.5", 200 * S + LINGER_NS)[0] is None
    assert h.lookup("10.0.0.5", 10_000 * S)[0] == {"name": "b"}


def test_history_is_never_rewritten_and_is_bounded() -> None:
    h = History(max_intervals=3)
    h.set("k", {"name": "a"}, 100 * S)
    h.set("k", {"name": "b"}, 50 * S)  # earlier than the open interval: starts where it ends
    assert [(iv["since"], iv["name"]) for iv in h.dump()["k"]] == [(100 * S, "a"), (100 * S + 1, "b")]
    for i in range(10):
        h.set("k", {"name": f"n{i}"}, (200 + i) * S)
    assert len(h.dump()["k"]) == 3
    assert h.prune(10_000 * S) == 2 and [iv["name"] for iv in h.dump()["k"]] == ["n9"]


def test_names_file_with_intervals_resolves_by_time_and_plain_entries_win(tmp_path) -> None:
    path = tmp_path / "names.json"
    path.write_text(json.dumps({
        "10.0.0.5": [{"since": "2026-12-06T10:00:00Z", "until": "2026-12-06T12:00:00Z", "name": "a",
                      "namespace": "ns", "pod": {"labels": {"app": "x"}}},
                     {"since": "2026-12-06T12:05:00Z", "until": None, "name": "b", "namespace": "ns"}],
        "10.0.0.6:80": {"name": "static", "namespace": "s"},
    }))
    names = NameTable.load(path)
    at = timestamp_ns
    assert names.endpoint("10.0.0.5", 1, at("2026-12-06T11:00:00Z"))[0]["pod"] == {"labels": {"app": "x"}}
    assert names.endpoint("10.0.0.5", 1, at("2026-12-06T13:00:00Z"))[0]["name"] == "b"
    assert names.endpoint("10.0.0.5", 1, at("2026-12-06T12:02:00Z"))[0]["resolutionMechanism"] == "none"
    assert names.endpoint("10.0.0.6", 80, 0)[0]["name"] == "static"
