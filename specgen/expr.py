"""The ``${...}`` expression language of spec values.

A spec value such as ``filters: ${8 * 2 ** level}`` or ``from: encoder.level${level}.blocks`` is
evaluated against a mapping of variables. The text inside ``${...}`` is turned into a syntax tree
with :func:`ast.parse` and that tree is walked by a small evaluator that accepts only an explicit
allow-list of constructs; nothing is compiled or executed. Every intermediate value is bounded
(integer size, sequence length, finite floats) and every failure is raised as :class:`ExprError`.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import warnings
from collections.abc import Mapping
from typing import Any

from specgen.errors import choices_hint, suggest

MAX_EXPR_CHARS = 500
MAX_INT_BITS = 64
MAX_SEQ_LEN = 10_000
MAX_AST_NODES = 200
#: Names compared with a misspelt one when looking for a suggestion (the hint stays cheap when a
#: spec defines thousands of parameters).
MAX_HINT_NAMES = 500

_INT_LIMIT = 2 ** (MAX_INT_BITS - 1)
_UNEXPECTED = (ArithmeticError, TypeError, ValueError, LookupError, RecursionError, MemoryError)

FUNCTIONS = tuple("abs float int len list max min prod range reversed round sum".split())
# ``True``, ``False`` and ``None`` are parsed as constants; these are their lowercase spellings.
_CONSTANT_NAMES = {"true": True, "false": False, "none": None}

_BINOPS = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", None),
}
_BITWISE = {ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
_ORDER = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_REJECTED = [
    (ast.Attribute, "attribute access is"),
    (ast.Lambda, "lambda is"),
    ((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions are"),
    ((ast.JoinedStr, ast.FormattedValue), "f-strings are"),
    (ast.NamedExpr, "assignment expressions (:=) are"),
    (ast.Dict, "dict literals are"),
    (ast.Set, "set literals are"),
    (ast.Starred, "starred arguments are"),
    ((ast.Await, ast.Yield, ast.YieldFrom), "'await' and 'yield' are"),
]


class ExprError(Exception):
    """A spec expression that cannot be parsed or evaluated; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def is_template(value: object) -> bool:
    """True if ``value`` is a string containing ``${``."""
    return isinstance(value, str) and "${" in value


def evaluate(value: object, variables: Mapping[str, object]) -> object:
    """Evaluate every ``${...}`` in ``value``; lists and dict values are handled recursively."""
    if isinstance(value, list):
        return [evaluate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: evaluate(item, variables) for key, item in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value
    stripped = value.strip()
    if stripped.startswith("${"):
        pieces = _split(stripped)
        if len(pieces) == 1 and pieces[0][0]:
            return evaluate_expression(pieces[0][1], variables)
    out = []
    for is_expr, text in _split(value):
        out.append(_format(evaluate_expression(text, variables), text) if is_expr else text)
    return "".join(out)


def evaluate_expression(src: str, variables: Mapping[str, object]) -> object:
    """Evaluate the text of one ``${...}`` (without the braces)."""
    text = src.strip()
    tree = _parse(text)
    try:
        return _copy(_Evaluator(variables).eval(tree.body))
    except ExprError as err:
        glue = ":" if err.message.endswith("in expressions") else " in"
        raise ExprError(f"{err.message}{glue} '{_short(text)}'", err.hint) from None
    except _UNEXPECTED as err:
        raise ExprError(f"cannot evaluate '{_short(text)}': {type(err).__name__}") from None


def names_used(value: object) -> set[str]:
    """The variable names referenced by the ``${...}`` pieces of ``value`` (recursively)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= names_used(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= names_used(item)
    elif is_template(value):
        for is_expr, text in _split(value):
            if is_expr:
                tree = _parse(text.strip())
                nodes = list(ast.walk(tree))
                called = {
                    id(n.func)
                    for n in nodes
                    if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Name)
                    and n.func.id in FUNCTIONS
                }
                found |= {
                    n.id
                    for n in nodes
                    if isinstance(n, ast.Name)
                    and id(n) not in called
                    and n.id not in _CONSTANT_NAMES
                }
    return found


# --- templates -----------------------------------------------------------------------------------


def _split(text: str) -> list[tuple[bool, str]]:
    """Split a template into ``(is_expression, text)`` pieces; ``$${`` is a literal ``${``."""
    pieces: list[tuple[bool, str]] = []
    literal, i = "", 0
    while (start := text.find("${", i)) >= 0:
        if start > i and text[start - 1] == "$":
            literal += text[i : start - 1] + "${"
            i = start + 2
            continue
        end = _closing_brace(text, start + 2)
        literal += text[i:start]
        if literal:
            pieces.append((False, literal))
        pieces.append((True, text[start + 2 : end]))
        literal, i = "", end + 1
    literal += text[i:]
    return pieces + [(False, literal)] if literal else pieces


def _closing_brace(text: str, pos: int) -> int:
    """Index of the ``}`` closing a ``${`` whose expression starts at ``pos``."""
    depth, quote, i = 0, "", pos
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ExprError(
        f"unterminated '${{' in '{_short(text)}'",
        hint="close the expression with '}' (write '$${' for a literal '${')",
    )


def _format(value: object, text: str) -> str:
    """How an expression result is written into a surrounding string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise ExprError(
        f"cannot put a {_tname(value)} into a string in '${{{_short(text.strip())}}}'",
        hint="use the ${...} alone as the whole value to get a non-text result",
    )


# --- parsing and checks --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """The syntax tree of one expression (cached: loops evaluate the same text many times;
    the trees are only read)."""
    if not text:
        raise ExprError("empty expression '${}'", hint="write an expression, e.g. ${level + 1}")
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(
            f"expression '{_short(text)}' is too long ({len(text)} characters, "
            f"at most {MAX_EXPR_CHARS})",
            hint="split it into smaller parameters",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ExprError(
            f"invalid expression '{_short(text)}': {err.msg} at column {err.offset}",
            hint="expressions use Python syntax, e.g. ${2 ** level}",
        ) from None
    except (ValueError, OverflowError, RecursionError, MemoryError):
        message = f"invalid expression '{_short(text)}': too large or too deeply nested"
        raise ExprError(message) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_AST_NODES:
        raise ExprError(
            f"expression '{_short(text)}' is too complex (more than {MAX_AST_NODES} syntax nodes)",
            hint="split it into smaller parameters",
        )
    return tree


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tname(value: object) -> str:
    return "none" if value is None else type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(value: Any) -> Any:
    """Reject integers beyond +-2**(MAX_INT_BITS - 1) and non-finite floats."""
    if _is_int(value) and not -_INT_LIMIT <= value <= _INT_LIMIT:
        raise ExprError(f"integer is out of range (beyond +-2**{MAX_INT_BITS - 1})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("result is not a finite number")
    return value


def _size(value: object) -> int:
    """Length of a string, or number of items in a list counting nested lists' items too."""
    if isinstance(value, list):
        return len(value) + sum(_size(item) for item in value if isinstance(item, list))
    return len(value) if isinstance(value, str) else 0


def _check_len(length: int, what: str) -> None:
    if length > MAX_SEQ_LEN:
        raise ExprError(f"{what} would have {length} items, more than the limit of {MAX_SEQ_LEN}")


def _copy(value: Any) -> Any:
    """Lists (and tuples) become fresh lists, so that results never alias the variables."""
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def _numbers(sym: str, *values: object) -> None:
    if any(isinstance(v, bool) for v in values):
        raise ExprError("cannot do arithmetic on a boolean", hint="use int(x) to get 0 or 1")
    if not all(_is_number(v) for v in values):
        kinds = " and ".join(_tname(v) for v in values)
        raise ExprError(f"unsupported operand type for {sym}: {kinds}")


# --- evaluation ----------------------------------------------------------------------------------


class _Evaluator:
    def __init__(self, variables: Mapping[str, object]):
        self.variables = variables

    def eval(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            found = (what for kinds, what in _REJECTED if isinstance(node, kinds))
            what = next(found, f"'{type(node).__name__}' is")
            raise ExprError(f"{what} not allowed in expressions")
        return _check(method(node))

    def visit_Constant(self, node: ast.Constant) -> Any:
        if node.value is None or isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise ExprError(f"{type(node.value).__name__} constants are not allowed in expressions")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id]
        if node.id in self.variables:
            return _copy(self.variables[node.id])
        hint = _unknown_name_hint(node.id, self.variables)
        if node.id in FUNCTIONS:
            hint = f"'{node.id}' is a function; call it, e.g. {node.id}(x)"
        raise ExprError(f"unknown name '{node.id}'", hint=hint)

    def visit_List(self, node: ast.List | ast.Tuple) -> list:
        items = [self.eval(item) for item in node.elts]
        _check_len(_size(items), "the list")
        return items

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        if isinstance(node.op, ast.Invert):
            raise ExprError("operator '~' is not allowed in expressions")
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        sym = "-" if isinstance(node.op, ast.USub) else "+"
        _numbers("unary " + sym, value)
        return -value if sym == "-" else +value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        if type(node.op) not in _BINOPS:
            sym = _BITWISE.get(type(node.op), "@")
            raise ExprError(f"operator '{sym}' is not allowed in expressions")
        sym, func = _BINOPS[type(node.op)]
        left, right = self.eval(node.left), self.eval(node.right)
        seq = (list, str)
        if sym == "+" and type(left) is type(right) and isinstance(left, seq):
            _check_len(_size(left) + _size(right), "the concatenation")
            return left + right
        items, count = (left, right) if isinstance(left, seq) else (right, left)
        if sym == "*" and isinstance(items, seq) and _is_int(count):
            _check_len(_size(items) * max(count, 0), "the repetition")
            return items * count
        _numbers(sym, left, right)
        if sym == "**":
            return _power(left, right)
        if sym in ("/", "//", "%") and right == 0:
            raise ExprError("division by zero")
        return func(left, right)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        want = isinstance(node.op, ast.Or)
        value = None
        for operand in node.values:
            value = self.eval(operand)
            if bool(value) == want:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, operand in zip(node.ops, node.comparators, strict=True):
            right = self.eval(operand)
            if not _compare(op, left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        target = self.eval(node.value)
        if not isinstance(target, (list, str)):
            raise ExprError(f"cannot index a {_tname(target)}; only lists and strings have items")
        if isinstance(node.slice, ast.Slice):
            parts = [
                None if p is None else self.eval(p)
                for p in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            if not all(p is None or _is_int(p) for p in parts):
                raise ExprError("slice bounds must be integers")
            if parts[2] == 0:
                raise ExprError("slice step cannot be zero")
            return target[slice(*parts)]
        index = self.eval(node.slice)
        if not _is_int(index):
            raise ExprError(f"index must be an integer, not {_tname(index)}")
        if not -len(target) <= index < len(target):
            raise ExprError(
                f"index {index} is out of range for a {_tname(target)} of length {len(target)}"
            )
        return target[index]

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            self.eval(node.func)
            raise ExprError(
                "only built-in functions can be called",
                hint="allowed functions: " + ", ".join(FUNCTIONS),
            )
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExprError(
                f"function '{name}' is not allowed in expressions",
                hint=choices_hint(name, FUNCTIONS, "allowed functions"),
            )
        if node.keywords:
            raise ExprError("keyword arguments are not allowed in expressions")
        return _call(name, [self.eval(arg) for arg in node.args])


def _unknown_name_hint(name: str, variables: Mapping[str, object]) -> str:
    known = [k for k in variables if isinstance(k, str) and not k.startswith("_")]
    if not known:
        return "no names are defined here"
    if len(known) <= MAX_HINT_NAMES:
        return choices_hint(name, known, "known names")
    # names of about the same length, the same length first: the others are rarely close
    alike = sorted((abs(len(k) - len(name)), k) for k in known if abs(len(k) - len(name)) <= 1)
    alike = [k for _, k in alike[:MAX_HINT_NAMES]]
    near = suggest(name, alike)
    count = f"{len(known):,} names are defined here"
    return f"did you mean '{near}'? {count}" if near else count


def _power(base: int | float, exp: int | float) -> int | float:
    if _is_int(base) and _is_int(exp):
        if exp < 0:
            raise ExprError("negative exponent on an integer", hint="use a float, e.g. 2.0 ** -1")
        if abs(base) > 1 and (abs(base).bit_length() - 1) * exp >= MAX_INT_BITS:
            raise ExprError(f"integer power is too large (beyond +-2**{MAX_INT_BITS - 1})")
        return base**exp
    try:
        result = base**exp
    except ZeroDivisionError:
        raise ExprError("division by zero") from None
    except OverflowError:
        raise ExprError("float overflow in '**'") from None
    if isinstance(result, complex):
        raise ExprError("'**' result is not a real number")
    return result


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, (ast.Eq, ast.NotEq)):
        return (left == right) == isinstance(op, ast.Eq)
    if isinstance(op, (ast.In, ast.NotIn)):
        if isinstance(right, str) and not isinstance(left, str):
            raise ExprError(f"'in' on a string needs a string on the left, not {_tname(left)}")
        if not isinstance(right, (list, str)):
            raise ExprError(f"'in' needs a list or string on the right, not {_tname(right)}")
        return (left in right) == isinstance(op, ast.In)
    if type(op) not in _ORDER:
        raise ExprError("'is' is not allowed in expressions", hint="use == or != instead")
    sym, func = _ORDER[type(op)]
    kinds = ((int, float), str, list)
    try:
        if any(isinstance(left, kind) and isinstance(right, kind) for kind in kinds):
            return bool(func(left, right))
    except TypeError:
        pass
    raise ExprError(f"cannot compare {_tname(left)} and {_tname(right)} with '{sym}'")


def _call(name: str, args: list) -> Any:
    """Apply one of the allowed functions to already evaluated arguments."""
    if name == "range":
        if not 1 <= len(args) <= 3 or not all(_is_int(a) for a in args):
            raise ExprError("range() takes 1 to 3 integer arguments")
        if len(args) == 3 and args[2] == 0:
            raise ExprError("range() step cannot be zero")
        span = range(*args)
        try:
            _check_len(len(span), "range()")
        except OverflowError:
            _check_len(MAX_SEQ_LEN + 1, "range()")
        return list(span)
    if name == "list" and not args:
        return []
    if name in ("min", "max") and len(args) > 1:
        args = [args]
    if len(args) != 1:
        raise ExprError(f"{name}() takes exactly one argument")
    (arg,) = args
    if name in ("len", "list", "reversed"):
        if not isinstance(arg, (list, str)):
            raise ExprError(f"{name}() needs a list or string, not {_tname(arg)}")
        if name == "len":
            return len(arg)
        return list(reversed(arg)) if name == "reversed" else list(arg)
    if name in ("min", "max"):
        if not isinstance(arg, list) or not arg:
            raise ExprError(f"{name}() needs a non-empty list or several arguments")
        try:
            return (min if name == "min" else max)(arg)
        except TypeError:
            raise ExprError(f"{name}() needs items of one kind (numbers, strings, lists)") from None
    if name == "sum":
        if not isinstance(arg, list) or not all(_is_number(item) for item in arg):
            raise ExprError("sum() needs a list of numbers (booleans are not numbers here)")
        return sum(arg)
    if name == "prod":
        if not isinstance(arg, list) or not all(_is_number(item) for item in arg):
            raise ExprError("prod() needs a list of numbers (booleans are not numbers here)")
        result = 1
        for item in arg:  # checked at every step, so that a long list cannot grow it unbounded
            result = _check(result * item)
        return result
    if name in ("int", "float"):
        if not isinstance(arg, (int, float)):
            raise ExprError(f"{name}() needs a number or boolean, not {_tname(arg)}")
        return int(arg) if name == "int" else float(arg)
    _numbers(name + "()", arg)
    return abs(arg) if name == "abs" else int(round(arg))
