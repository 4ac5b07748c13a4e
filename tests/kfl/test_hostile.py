"""Hostile KFL text: regexes with RE2 semantics (no catastrophic backtracking, no warnings), numbers
too long for Python's int, and a fuzz over regex and number text: every compile failure is a
KFLSyntaxError and no evaluation raises."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kfl

from .conftest import ITEMS

ITEMS_TO_MATCH = [*ITEMS, {"request": {"path": "/" + "a" * 40 + "!"}}, {"a": "\ud800x", "b": ["٣", 3]}]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def warnings_are_errors():
    """A query must not print warnings (Python's `re` printed FutureWarnings for `[[`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        yield


@pytest.mark.timeout(60)
def test_a_nested_quantifier_does_not_backtrack():
    # Python's `re` takes 2^n steps on this (9 s for n = 26, years for n = 60); RE2 is linear
    query = kfl.compile('request.path == r"^/(a+)+$"')
    assert query.match({"request": {"path": "/" + "a" * 60 + "!"}}) is False
    assert query.match({"request": {"path": "/" + "a" * 60}}) is True
    bomb = kfl.compile('a == r"(x+x+)+y" or a == r"(.*a){20}$" or a == r"^(\\w+\\s?)*$"')
    assert bomb.match({"a": "x" * 5000 + "!"}) is False
    assert bomb.match({"a": ["x" * 5000 + "!", "x" * 3000 + "y"]}) is True


@pytest.mark.parametrize("query, item, expected", [
    ('a == r"\\d"', {"a": "٣"}, False),  # \d is ASCII in RE2 (Python's `re` matches other digits)
    ('a == r"\\pN"', {"a": "٣"}, True),  # Unicode classes are written \p{...}
    ('a == r"^[[:digit:]]+$"', {"a": "2024"}, True),  # POSIX classes (a FutureWarning and no match in `re`)
    ('a == r"(?i)ÉTÉ"', {"a": "un été"}, True),
    ('a == r"^abc$"', {"a": "abc\n"}, False),  # $ is the end of the text only (`re`: also before a \n)
    ('a == r"(?U)a+"', {"a": "caaat"}, True),
])
def test_regexes_have_re2_semantics(query, item, expected):
    assert kfl.compile(query).match(item) is expected


@pytest.mark.parametrize("query, fragment", [
    ('a == r"(a)\\1"', "invalid escape sequence"),  # no backreferences
    ('a == r"a(?=b)"', "invalid perl operator"),  # no lookaround
    ('a == r"(?<!a)b"', "invalid perl operator"),
    ('a == r"a{1001}"', "invalid repetition size"),
    ('a == r"((a{1000}){1000}){1000}"', "invalid repetition size"),
    ('a == r"(?x) a b"', "invalid perl operator"),  # no verbose mode
])
def test_what_re2_does_not_have_is_a_syntax_error(query, fragment):
    with pytest.raises(kfl.KFLSyntaxError, match=fragment):
        kfl.compile(query)


@pytest.mark.parametrize("query", [
    "response.status == " + "5" * 5000,
    "response.status == -" + "5" * 4301,
    "a[" + "1" * 5000 + "]",
    "a.limit(" + "9" * 4500 + ")",
])
def test_numbers_over_the_int_limit_are_syntax_errors(query):
    with pytest.raises(kfl.KFLSyntaxError) as info:
        kfl.compile(query)
    with pytest.raises(kfl.KFLSyntaxError):
        kfl.validate(query)
    assert info.value.line == 1 and 1 <= info.value.column <= len(query)


REGEX_PIECES = [
    "a", "b", ".", "*", "+", "?", "{2}", "{1,3}", "{1000}", "{1001}", "(", ")", "[", "]", "^", "$", "|",
    "\\", "\\d", "\\w", "\\s", "\\b", "\\1", "\\pL", "\\p{Greek}", "\\z", "\\Z", "(?i)", "(?s)",
    "(?=", "(?!", "(?<=", "(?P<n>", "(?P=n)", "(?:", "[[:alpha:]]", "[[", "&&", "--", "é", "\ud800",
    "\x00", "'", '"', '\\"', "\n",
]
REGEX_TEXT = st.lists(st.sampled_from(REGEX_PIECES), max_size=16).map("".join)
NUMBERS = st.one_of(
    st.integers(1, 6000).map(lambda n: "7" * n),
    st.integers(1, 400).map(lambda n: "1e" + "9" * n),
    st.integers(1, 5000).map(lambda n: "0." + "3" * n),
)


def check(query: str) -> None:
    try:
        compiled = kfl.compile(query)
    except kfl.KFLSyntaxError as exc:
        assert exc.query == query and exc.line >= 1
        return
    for item in ITEMS_TO_MATCH:
        assert type(compiled.match(item, now_ms=1_700_000_000_000)) is bool


@FUZZ
@given(REGEX_TEXT, st.sampled_from(['a == r"{}"', "r'{}' == request.path", 'b != r"{}" or a == r"{}"',
                                    'a.contains(r"{}")']))
def test_fuzzed_regex_text_compiles_or_is_a_syntax_error(pattern, shape):
    check(shape.replace("{}", pattern))


@FUZZ
@given(NUMBERS, st.sampled_from(["a == {}", "a < -{}", "a[{}]", "limit({})", "a == {} and b",
                                  "timestamp > now() - seconds({})", "t < datetime({})", "a.contains({})"]))
def test_fuzzed_numbers_compile_or_are_syntax_errors(number, shape):
    check(shape.format(number))


@FUZZ
@given(st.lists(st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(REGEX_PIECES),
                max_size=40).map("".join))
def test_fuzzed_text_inside_a_regex_literal(text):
    check('request.path == r"' + text + '"')
