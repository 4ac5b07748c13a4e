"""Every comparison operator at, below and above its boundary: field against number (the fused closures
for short static paths), number against field (flipped), longer paths and field against field (the
generic closures), integers and floats."""

from __future__ import annotations

import operator

import pytest

import kfl

OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
       ">=": operator.ge}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
BOUNDARY = 499


def status_item(value: int | float) -> dict:
    return {"response": {"status": value}, "deep": {"a": {"b": {"c": value}}}, "limit": BOUNDARY}


@pytest.mark.parametrize("value", [BOUNDARY - 1, BOUNDARY, BOUNDARY + 1, BOUNDARY - 0.5, BOUNDARY + 0.5,
                                   float(BOUNDARY)])
@pytest.mark.parametrize("op", list(OPS))
def test_field_against_number_at_below_and_above_the_boundary(op: str, value: int | float) -> None:
    item = status_item(value)
    expected = OPS[op](value, BOUNDARY)
    queries = [
        f"response.status {op} {BOUNDARY}",  # fused: a short static path and an int literal
        f"{BOUNDARY} {FLIPPED[op]} response.status",  # the literal first: flipped, then fused
        f"deep.a.b.c {op} {BOUNDARY}",  # a path too long to fuse: the generic closure
        f"response.status {op} {BOUNDARY}.0",  # a float literal: the generic closure
        f"response.status {op} limit",  # field against field
        f"-response.status {FLIPPED[op]} -{BOUNDARY}",  # a computed value against a literal
    ]
    for query in queries:
        assert kfl.compile(query).match(item) is expected, (query, value)


@pytest.mark.parametrize("op", list(OPS))
def test_the_boundary_query_a_user_writes(op: str) -> None:
    """`response.status <= 499` and friends on 498, 499 and 500: the answers spelled out."""
    answers = {  # value: (==, !=, <, <=, >, >=)
        498: (False, True, True, True, False, False),
        499: (True, False, False, True, False, True),
        500: (False, True, False, False, True, True),
    }
    column = list(OPS).index(op)
    for value, row in answers.items():
        assert kfl.compile(f"http and response.status {op} 499").match(
            {"protocol": {"abbr": "HTTP"}, "response": {"status": value}}) is row[column], (op, value)
