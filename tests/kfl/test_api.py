"""The public API: compile/match/apply/limit/validate, the cache, macros."""

from __future__ import annotations

import pytest

import kfl


def test_compile_match_and_attributes(http_item, dns_item):
    query = kfl.compile("http and response.status == 500")
    assert query.match(http_item) is True
    assert query.match(dns_item) is False
    assert query.query == "http and response.status == 500"
    assert query.limit is None
    assert query.unknown_helpers == ()


def test_module_match_uses_the_cache(http_item):
    text = 'http and request.method == "GET"'
    assert kfl.match(text, http_item) is True
    assert kfl.cached(text) is kfl.cached(text)
    assert kfl.match(kfl.compile(text), http_item) is True


def test_validate_raises_like_compile():
    assert kfl.validate("http") is None
    with pytest.raises(kfl.KFLSyntaxError) as err:
        kfl.validate("http and")
    assert isinstance(err.value, ValueError)
    assert (err.value.line, err.value.column, err.value.query) == (1, 9, "http and")


def test_non_dict_items_match_like_empty_items():
    assert kfl.match("", None) is True
    assert kfl.match("a == 1", [1, 2]) is False
    assert kfl.compile("!a").apply("text") == (True, "text")
