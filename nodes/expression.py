"""Safe evaluation of small math expressions (ComfyUI's Math Expression node), without Python's eval.

The text is parsed with `ast` and walked by hand; only this grammar is accepted, as in the
simpleeval library ComfyUI uses: numbers and booleans, the given names, arithmetic (+ - * / // %
**), bitwise operators (& | ^ ~ << >>), comparisons (chains too), `and` / `or` / `not`,
`x if c else y`, indexing (`values[0]`) and calls of the functions in MATH_FUNCTIONS. Anything
else (attributes, strings, lambdas, comprehensions, unknown names or functions) is an
ExpressionError that quotes the offending part of the text.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable, Mapping

# simpleeval refuses ** when either side exceeds this (so 9 ** 9 ** 9 cannot hang a run)...
MAX_POWER = 4_000_000
# ...and ComfyUI caps pow()'s exponent, which bypasses that guard, at this.
MAX_POW_EXPONENT = 4000


class ExpressionError(ValueError):
    """An expression that is not allowed or cannot be evaluated."""


def _power(base: Any, exponent: Any) -> Any:
    if abs(base) > MAX_POWER or abs(exponent) > MAX_POWER:
        raise ExpressionError(f"{base} ** {exponent} is too large to evaluate (limit {MAX_POWER})")
    return base ** exponent


def _pow(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_POW_EXPONENT:
        raise ExpressionError(f"exponent {exponent} exceeds the maximum allowed ({MAX_POW_EXPONENT})")
    return pow(base, exponent)


def _shift(shift: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def guarded(value: Any, bits: Any) -> Any:
        if abs(bits) > MAX_POWER:
            raise ExpressionError(f"a shift by {bits} bits is too large to evaluate (limit {MAX_POWER})")
        return shift(value, bits)
    return guarded


def _sum(*args: Any) -> Any:
    """sum(values) and sum(a, b, c) alike."""
    return sum(args[0]) if len(args) == 1 and hasattr(args[0], "__iter__") else sum(args)


MATH_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": _sum, "min": min, "max": max, "abs": abs, "round": round, "pow": _pow, "sqrt": math.sqrt,
    "ceil": math.ceil, "floor": math.floor, "log": math.log, "log2": math.log2, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "int": int, "float": float,
}

BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: _power, ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.LShift: _shift(operator.lshift),
    ast.RShift: _shift(operator.rshift),
}
UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert,
}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


class _Evaluator:
    def __init__(self, text: str, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]):
        self.text, self.names, self.functions = text, names, functions

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        token = ast.get_source_segment(self.text, node) or type(node).__name__
        return ExpressionError(f"{reason}: {token!r} in {self.text!r}")

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int, float)):
                return node.value
            raise self.fail(node, "only numbers and booleans are allowed as literals")
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise self.fail(node, f"unknown name (defined here: {', '.join(self.names) or 'none'})")
            return self.names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            return BINARY[type(node.op)](self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node)
        if isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
            left = self.eval(node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = self.eval(comparator)
                if not COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            return self.eval(node.value)[self.eval(node.slice)]
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(node, "not allowed in a math expression")

    def _bool_op(self, node: ast.BoolOp) -> Any:
        value = None
        for operand in node.values:  # Python's short-circuit: the first falsy (and) / truthy (or) operand
            value = self.eval(operand)
            if bool(value) != isinstance(node.op, ast.And):
                return value
        return value

    def _call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions:
            raise self.fail(node.func, f"unknown function (allowed: {', '.join(self.functions)})")
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
            raise self.fail(node, "* and ** arguments are not allowed")
        args = [self.eval(arg) for arg in node.args]
        return self.functions[node.func.id](*args, **{k.arg: self.eval(k.value) for k in node.keywords})


def evaluate(text: str, names: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] = MATH_FUNCTIONS) -> Any:
    """The value of an expression over `names` (raises ExpressionError, naming the bad part)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"invalid expression {text!r}: {e.msg} at column {e.offset}") from None
    evaluator = _Evaluator(text.strip(), names, functions)
    try:
        return evaluator.eval(tree)
    except ExpressionError:
        raise
    except (ArithmeticError, TypeError, ValueError, IndexError) as e:
        raise ExpressionError(f"{text!r} could not be evaluated: {type(e).__name__}: {e}") from None
