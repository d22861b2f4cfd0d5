"""Measure expressions: arithmetic over other measures, as a testbench writes them in ``expr:``.

An expression is Python arithmetic syntax (``+ - * / **``, unary minus, numbers, parentheses) over
measure names, the testbench's sweep parameter, and the functions of
:data:`optiyield.measure.registry.EXPRESSIONS`. Values are numpy arrays: one value per sample (K, 1), or one
per sample and sweep point (K, J) in a sweep testbench; the sweep parameter is its values (1, J). Functions
registered with ``reduces_sweep`` collapse the sweep axis.

Only this grammar is accepted (no attribute access, subscripts, comprehensions, keywords other than
numbers), so a spec file cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from optiyield.measure.registry import EXPRESSIONS


class ExprError(ValueError):
    """An expression that does not parse, or uses a name or function that does not exist."""


def reduces_sweep(name: str) -> bool:
    """True when the expression function ``name`` takes the sweep axis away."""
    return name in EXPRESSIONS and EXPRESSIONS.get(name).reduces_sweep


_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


#: Longest expression accepted (characters) and deepest nesting of operations.
MAX_LENGTH, MAX_DEPTH = 2000, 100


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> ast.Expression:
    """Parse and check an expression; raises :class:`ExprError` naming what is not allowed.

    Cached: a testbench evaluates the same expressions for every batch. The tree is never modified.
    Expressions longer than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH` are refused
    (a measure expression is a line of arithmetic; Python's parser would run out of stack or memory)."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression of {len(text):,} characters is too long (at most {MAX_LENGTH:,})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression {text[:200]!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExprError(f"expression nested too deeply: {text[:60]!r}…") from None
    if _depth(tree) > MAX_DEPTH:
        raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels: {text[:60]!r}…")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in EXPRESSIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExprError(f"unknown function {name!r} in {text!r}; expected one of "
                                f"{', '.join(EXPRESSIONS.names())}")
            if node.keywords:
                raise ExprError(f"keyword arguments are not supported in {text!r}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExprError(f"operator {type(node.op).__name__} is not supported in {text!r}")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise ExprError(f"operator {type(node.op).__name__} is not supported in {text!r}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise ExprError(f"only numbers are allowed as constants in {text!r}")
        elif not isinstance(node, ast.Expression | ast.Name | ast.Load | ast.operator | ast.unaryop):
            raise ExprError(f"{type(node).__name__} is not allowed in an expression ({text!r})")
    return tree


def names(tree: ast.Expression) -> set[str]:
    """Variable names an expression refers to (function names excluded)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def sweep_valued(tree: ast.Expression, valued: Callable[[str], bool]) -> bool:
    """True when the expression's result varies along the sweep axis (``valued(name)`` for its names)."""
    def visit(node: ast.AST) -> bool:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Name):
            return valued(node.id)
        if isinstance(node, ast.Call):
            if reduces_sweep(node.func.id):  # type: ignore[attr-defined]
                return False
            return any(visit(a) for a in node.args)
        if isinstance(node, ast.BinOp):
            return visit(node.left) or visit(node.right)
        if isinstance(node, ast.UnaryOp):
            return visit(node.operand)
        return False
    return visit(tree)


def evaluate(tree: ast.Expression, values: dict[str, NDArray]) -> NDArray:
    """Evaluate a parsed expression over ``values`` (name → array); NaN where undefined."""
    def visit(node: ast.AST) -> NDArray:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant):
            return np.asarray(float(node.value))
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = visit(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        if isinstance(node, ast.Call):
            function = EXPRESSIONS.get(node.func.id).function  # type: ignore[attr-defined]
            return np.asarray(function(*(visit(a) for a in node.args)))
        raise ExprError(f"{type(node).__name__} is not allowed")  # parse() rules this out
    with np.errstate(all="ignore"):
        return np.asarray(visit(tree), dtype=float)
