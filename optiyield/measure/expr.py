"""Measure expressions: arithmetic over other measures, as a testbench writes them in ``expr:``.

An expression is Python arithmetic syntax (``+ - * / **``, unary minus, numbers, parentheses) over
measure names, the testbench's sweep parameter, and the functions of :data:`FUNCTIONS`. Values are numpy
arrays: one value per sample (K, 1), or one per sample and sweep point (K, J) in a sweep testbench; the
sweep parameter is its values (1, J). Functions of :data:`SWEEP_REDUCERS` collapse the sweep axis.

Only this grammar is accepted (no attribute access, subscripts, comprehensions, keywords other than
numbers), so a spec file cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from optiyield.measure import vga
from optiyield.measure.tran import from_dbm, to_dbm


class ExprError(ValueError):
    """An expression that does not parse, or uses a name or function that does not exist."""


def _db10(x: NDArray) -> NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.abs(x))


def _db20(x: NDArray) -> NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 20.0 * np.log10(np.abs(x))


def reduce_sweep(values: NDArray, how: str) -> NDArray:
    """Reduce (K, J) values over the sweep axis, ignoring NaN points: ``max``, ``min``, ``mean`` or
    ``span`` (max − min). Returns (K, 1); an all-NaN sample gives NaN, quietly."""
    x = np.atleast_2d(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "span":
            return np.nanmax(x, axis=1, keepdims=True) - np.nanmin(x, axis=1, keepdims=True)
        return {"max": np.nanmax, "min": np.nanmin, "mean": np.nanmean}[how](x, axis=1, keepdims=True)


def compression_point(pin_dbm: NDArray, pout_dbm: NDArray, db: float = 1.0, output: bool = True) -> NDArray:
    """The ``db``-dB compression point of a power sweep, dBm, one per sample (K, 1).

    ``pin_dbm`` and ``pout_dbm`` are (K, J) (input and output power per sweep point). The reference gain
    is the gain at the lowest input power; the point where the gain has fallen by ``db`` is interpolated
    linearly in dB. ``output`` selects the output-referred power (else input-referred). NaN when the gain
    never falls that far within the sweep.
    """
    pin = np.atleast_2d(np.asarray(pin_dbm, dtype=float))
    pout = np.atleast_2d(np.asarray(pout_dbm, dtype=float))
    pin, pout = np.broadcast_arrays(pin, pout)
    out = np.full((pin.shape[0], 1), np.nan)
    for k in range(pin.shape[0]):
        ok = np.isfinite(pin[k]) & np.isfinite(pout[k])
        if ok.sum() < 2:
            continue
        order = np.argsort(pin[k][ok])
        x, y = pin[k][ok][order], pout[k][ok][order]
        drop = (y - x) - (y[0] - x[0]) + db      # > 0 until compressed by `db`
        below = np.flatnonzero(drop <= 0)
        if below.size == 0 or below[0] == 0:
            continue
        j = below[0]
        frac = drop[j - 1] / (drop[j - 1] - drop[j])
        xi = x[j - 1] + frac * (x[j] - x[j - 1])
        yi = y[j - 1] + frac * (y[j] - y[j - 1])
        out[k, 0] = yi if output else xi
    return out


FUNCTIONS: dict[str, Callable[..., NDArray]] = {
    "db10": _db10,
    "db20": _db20,
    "dbm": to_dbm,
    "dbm_to_w": from_dbm,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "exp": np.exp,
    "maximum": np.fmax,
    "minimum": np.fmin,
    "sweep_max": lambda x: reduce_sweep(x, "max"),
    "sweep_min": lambda x: reduce_sweep(x, "min"),
    "sweep_mean": lambda x: reduce_sweep(x, "mean"),
    "compression_point_out": lambda pin, pout, db=1.0: compression_point(pin, pout, db, output=True),
    "compression_point_in": lambda pin, pout, db=1.0: compression_point(pin, pout, db, output=False),
    **vga.EXPRESSION_FUNCTIONS,  # VGA state figures (optiyield/measure/vga.py)
}
#: Functions that take the sweep axis away (their result is one value per sample).
SWEEP_REDUCERS = {"sweep_max", "sweep_min", "sweep_mean", "compression_point_out", "compression_point_in",
                  *vga.SWEEP_REDUCERS}

_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> ast.Expression:
    """Parse and check an expression; raises :class:`ExprError` naming what is not allowed.

    Cached: a testbench evaluates the same expressions for every batch. The tree is never modified."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExprError(f"unknown function {name!r} in {text!r}; expected one of {', '.join(FUNCTIONS)}")
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
            if node.func.id in SWEEP_REDUCERS:  # type: ignore[attr-defined]
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
            return np.asarray(FUNCTIONS[node.func.id](*(visit(a) for a in node.args)))  # type: ignore[attr-defined]
        raise ExprError(f"{type(node).__name__} is not allowed")  # parse() rules this out
    with np.errstate(all="ignore"):
        return np.asarray(visit(tree), dtype=float)
