"""KFL, the Kubeshark Filter Language: parse, validate and evaluate queries against items. No I/O."""

from .api import MACROS, MacroTable, add_macro, cached, compile, match, validate
from .compiler import Query
from .errors import KFLSyntaxError

__all__ = [
    "MACROS",
    "KFLSyntaxError",
    "MacroTable",
    "Query",
    "add_macro",
    "cached",
    "compile",
    "match",
    "validate",
]
