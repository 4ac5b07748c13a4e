"""Error messages a user can act on: position, what was expected, the caret line."""

from __future__ import annotations

import pickle

import pytest

import kfl


def error(query: str) -> kfl.KFLSyntaxError:
    with pytest.raises(kfl.KFLSyntaxError) as err:
        kfl.compile(query)
    with pytest.raises(kfl.KFLSyntaxError):
        kfl.validate(query)
    return err.value


def test_the_rendering_shown_in_the_spec():
    err = error("http and response.status ==")
    assert str(err) == (
        "1:28: expected a value after '==', found end of query\n"
        "  http and response.status ==\n"
        "                             ^"
    )
    assert isinstance(err, ValueError)
    assert (err.line, err.column, err.query) == (1, 28, "http and response.status ==")


@pytest.mark.parametrize("query, column, message", [
    ("a b", 3, "expected an operator or end of query after 'a', found 'b'"),
    ("a == 1 b", 8, "expected an operator or end of query after '1', found 'b'"),
    ("and", 1, "expected a value, found 'and'"),
    ("a == and", 6, "expected a value after '==', found 'and'"),
    ("()", 2, "expected a value after '(', found ')'"),
    ("f(x: )", 6, "expected a value after ':', found ')'"),
    ("a.", 3, "expected a field name or '*' after '.', found end of query"),
    ("a..", 4, "expected a field name after '..', found end of query"),
    ("a.1", 3, "expected a field name or '*' after '.', found '1'"),
    ("a[", 3, "expected a quoted key, an index or '*' after '[', found end of query"),
    ("a[b]", 3, "expected a quoted key, an index or '*' after '[', found 'b'"),
    ("f(a,", 5, "expected a value after ',', found end of query"),
    ("a == ,", 6, "expected a value after '==', found ','"),
])
def test_expected_and_found(query, column, message):
    err = error(query)
    assert (err.column, err.message) == (column, message)


@pytest.mark.parametrize("query, column", [
    ("(a == 1", 1), ("x and (a or (b)", 7), ("f(a", 2), ('a.startsWith("x"', 13), ("((a)", 1),
    ("(a\n or b", 1),
])
def test_unclosed_parenthesis_points_at_the_opening_one(query, column):
    err = error(query)
    assert err.message == "'(' is never closed (no matching ')')"
    assert (err.line, err.column) == (1, column)


def test_unclosed_bracket_points_at_the_opening_one():
    err = error('request.headers["Host"')
    assert (err.column, err.message) == (16, "'[' is never closed (no matching ']')")


def test_stray_closing_parenthesis():
    err = error("a == 1)")
    assert (err.column, err.message) == (7, "unbalanced ')': there is no '(' before it to close")


@pytest.mark.parametrize("query, column", [("1 < 2 < 3", 7), ("a == b == c", 8), ("!a != 1 >= 2", 9),
                                           ("x == 1 and a < b <= c", 18)])
def test_comparisons_do_not_chain(query, column):
    err = error(query)
    assert err.column == column
    assert err.message.startswith("comparisons do not chain")


@pytest.mark.parametrize("query, column, message", [
    ("a = 1", 3, "'=' is not an operator; compare with '=='"),
    ('src.namespace==="x"', 14, "'===' is not an operator; compare with '=='"),
    ("a & b", 3, "'&' is not an operator; use 'and' (or '&&')"),
    ("a | b", 3, "'|' is not an operator; use 'or' (or '||')"),
    ('a == "abc', 6, 'string is not closed (no matching ")'),
    ("a == 'abc", 6, "string is not closed (no matching ')"),
    ('a == r"abc', 6, 'regex is not closed (no matching ")'),
    ("a == 1 # x", 8, "unexpected character '#'; expected an operator or end of query"),
])
def test_bad_characters(query, column, message):
    err = error(query)
    assert (err.column, err.message) == (column, message)


@pytest.mark.parametrize("query, column, fragment", [
    ("a[-1]", 3, "index must be a whole number"),
    ("a[1.5]", 3, "index must be a whole number"),
    ("a[1e2]", 3, "index must be a whole number"),
    (r'a == "\d"', 7, "unknown escape '\\d'"),
    ('a == r"("', 8, "invalid regex: missing ): ("),
    ('a == r"ab(?=c)"', 10, "invalid regex: invalid perl operator: (?="),
    (r'a == r"(a)\1"', 11, r"invalid regex: invalid escape sequence: \1"),
    ('a == r"x[" or b', 9, "invalid regex"),
    ('t > datetime("yesterday")', 14, "datetime() cannot read 'yesterday'"),
])
def test_bad_literals(query, column, fragment):
    err = error(query)
    assert err.column == column and fragment in err.message


def test_multiline_queries_report_line_and_column():
    err = error("http and\n  response.status ==\n")
    assert (err.line, err.column) == (2, 21)
    assert str(err).splitlines()[1:] == ["    response.status ==", "                      ^"]


def test_tabs_keep_the_caret_aligned():
    err = error("a ==\t\t")
    assert str(err).splitlines()[2] == "      ^"
    err = error("\ta b")
    assert str(err).splitlines()[2] == "  \t  ^"


def test_unknown_names_after_a_dot_are_fields_not_errors():
    assert kfl.compile("request.whatever.deep.down").unknown_helpers == ()


def test_errors_pickle():
    err = error("a ==")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.column == err.column


def test_deep_nesting_is_an_error_not_a_crash():
    for query in ["not " * 3000 + "a", "-" * 3000 + "a"]:
        assert error(query).message == "the query is nested too deeply"
    assert kfl.compile("(" * 3000 + "a" + ")" * 3000).match({"a": 1})
    assert kfl.compile(" or ".join(["a"] * 5000) + " or b").match({"b": 1})
