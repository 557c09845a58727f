"""Safe loading of spec files (YAML or JSON) into plain Python data, with every value's position.

Spec files may come from anyone, so loading is bounded and never crashes:

* the file may hold at most :data:`MAX_SPEC_BYTES` bytes, checked before it is decoded;
* mappings and sequences may nest at most :data:`MAX_DEPTH` deep, and a document may hold at most
  :data:`MAX_NODES` nodes (scalars, keys and collections), checked while reading, before anything
  deeper is built;
* YAML is read event by event from PyYAML's pure-Python parser, and the objects are built here with
  an explicit stack, so no step recurses on the input's nesting. Anchors, aliases, tags, merge keys,
  duplicate keys and several documents are rejected, and plain scalars are resolved with the YAML
  1.2 core schema (``yes``/``no``/``on``/``off`` stay strings);
* JSON is first walked by a small iterative tokenizer here (limits, positions, duplicate keys,
  numbers) and then parsed by :func:`json.loads` with hooks that refuse what the tokenizer refused;
* NaN, infinity, floats that overflow and integers of more than 30 digits are rejected in both.

Every problem is raised as :class:`~specgen.errors.SpecErrors`, each :class:`SpecError` located at
``file:line:col``. Errors carry their own :class:`Source` in which their path is mapped to the exact
position of the problem, so they render at that spot even where the path has no value.
"""

from __future__ import annotations

import bisect
import codecs
import json
import math
import os
import re
import stat

import yaml

from specgen.errors import Path, Pos, Source, SpecError, SpecErrors

MAX_SPEC_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000
#: Integers (and the integer part of hex/octal literals) may have at most this many digits.
MAX_INT_DIGITS = 30
#: Loading stops after this many errors.
MAX_ERRORS = 200
#: Spec files are read as bytes on every platform.
_O_BINARY = getattr(os, "O_BINARY", 0)

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT_DEC = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF_NAN = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")

_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_JSON_WORD = re.compile(r"true|false|null|NaN|-?Infinity")

#: Exceptions that odd input may provoke deep inside a parser; they become located errors.
_INPUT_FAILURES = (RecursionError, MemoryError, ValueError, OverflowError, UnicodeError)

_NAN_INF_HINT = "specs may not contain NaN or infinity; write a finite number"


class _Stop(Exception):
    """Internal: loading cannot go on; the errors gathered so far are raised."""


class _Refused(Exception):
    """Internal: a json.loads hook refused a value (the tokenizer reports it with its position)."""


class _Lines:
    """Maps character offsets to 1-based line/column, breaking lines as :meth:`str.splitlines`."""

    def __init__(self, text: str):
        self.length = len(text)
        self.starts = [0]
        parts = text.splitlines(keepends=True)
        total = 0
        for index, part in enumerate(parts):
            total += len(part)
            if index < len(parts) - 1 or part.splitlines() != [part]:
                self.starts.append(total)

    def pos(self, offset: int) -> Pos:
        offset = max(0, min(offset, self.length))
        line = bisect.bisect_right(self.starts, offset) - 1
        return Pos(line + 1, offset - self.starts[line] + 1)


def line_col(text: str, offset: int) -> Pos:
    """The 1-based line and column of character ``offset`` in ``text``."""
    return _Lines(text).pos(offset)


def _describe(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Loader:
    """State shared by the YAML and JSON loaders: positions and the errors found."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.value_pos: dict[Path, Pos] = {}
        self.key_pos: dict[Path, Pos] = {}
        self.errors: list[SpecError] = []
        self.nodes = 0

    def record(
        self,
        message: str,
        pos: Pos,
        path: Path = (),
        *,
        key: bool = False,
        hint: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        """Add an error located at ``pos``: its own Source maps ``path`` to that position."""
        where = {path: pos}
        src = Source(self.filename, self.text, where, where)
        self.errors.append(SpecError(message, path, hint, key, notes, src))

    def error(
        self,
        message: str,
        pos: Pos,
        path: Path = (),
        *,
        key: bool = False,
        hint: str | None = None,
        fatal: bool = False,
    ) -> None:
        """Record an error; raise :class:`_Stop` if it is fatal or there are too many."""
        self.record(message, pos, path, key=key, hint=hint)
        if fatal or len(self.errors) >= MAX_ERRORS:
            raise _Stop

    def count_node(self, pos: Pos) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.error(f"spec is too large: more than {MAX_NODES} values", pos, fatal=True)

    def check_depth(self, depth: int, pos: Pos, path: Path) -> None:
        if depth >= MAX_DEPTH:
            self.error(
                f"spec is nested too deeply (more than {MAX_DEPTH} levels)", pos, path, fatal=True
            )

    def check_str(self, value: str, pos: Pos, path: Path, key: bool = False) -> None:
        if _has_surrogate(value):
            self.error("string contains an unpaired surrogate escape", pos, path, key=key)

    def check_int(self, digits: str, pos: Pos, path: Path) -> bool:
        if len(digits) > MAX_INT_DIGITS:
            self.error(f"integer too large (more than {MAX_INT_DIGITS} digits)", pos, path)
            return False
        return True

    def finish(self, root: object, root_empty: bool) -> tuple[object, Source]:
        if not self.errors:
            pos = self.value_pos.get((), Pos(1, 1))
            if root_empty:
                self.record("spec is empty", pos, hint="a spec is a mapping of keys to values")
            elif not isinstance(root, dict):
                what = _describe(root)
                self.record(f"a spec must be a mapping at the top level, not {what}", pos)
        source = Source(self.filename, self.text, self.value_pos, self.key_pos)
        if self.errors:
            raise SpecErrors(self.errors, source)
        return root, source


class _Frame:
    """One open mapping or sequence while loading."""

    __slots__ = ("path", "container", "keys", "key", "dup")

    def __init__(self, path: Path, container: dict | list):
        self.path = path
        self.container = container
        self.keys: dict[str, Pos] = {}  # key -> position of its first occurrence
        self.key: str | None = None  # the key waiting for its value (mappings only)
        self.dup = False  # the waiting key is a duplicate; its value is not stored


def _mark_pos(mark) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else Pos(1, 1)


class _YamlLoader(_Loader):
    def load(self) -> tuple[object, Source]:
        self.stack: list[_Frame] = []
        self.root: object = None
        self.root_empty = True
        self.documents = 0
        events = yaml.parse(self.text, Loader=yaml.SafeLoader)
        try:
            for event in events:
                self.feed(event)
        except _Stop:
            pass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = exc.problem or exc.context or "invalid YAML"
            notes = ()
            if exc.context and exc.problem and exc.context_mark is not None:
                notes = (f"{exc.context} (line {_mark_pos(exc.context_mark).line})",)
            hint = None
            if "\\t" in str(exc.problem) or "tab" in str(exc.problem).lower():
                hint = "indent with spaces; YAML does not allow tabs for indentation"
            self.record(f"invalid YAML: {message}", _mark_pos(mark), notes=notes, hint=hint)
        except yaml.reader.ReaderError as exc:
            char = exc.character
            if not isinstance(char, int):
                char = ord(char[:1] or "\0")
            self.record(
                f"the character U+{char:04X} is not allowed in YAML",
                line_col(self.text, exc.position),
            )
        except (yaml.YAMLError, *_INPUT_FAILURES) as exc:
            self.record(f"invalid YAML: {exc}", Pos(1, 1))
        finally:
            events.close()
        return self.finish(self.root, self.root_empty)

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.error(
                    "a spec file must hold exactly one YAML document",
                    _mark_pos(event.start_mark),
                    hint="remove the second '---' and everything after it, or split the file",
                    fatal=True,
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.stack.pop()
        elif isinstance(event, yaml.NodeEvent):
            self.node(event)

    def node(self, event: yaml.NodeEvent) -> None:
        pos = _mark_pos(event.start_mark)
        self.count_node(pos)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.key is None:
            self.key(top, event, pos)
            return
        if top is None:
            path: Path = ()
        elif isinstance(top.container, dict):
            path = top.path + (top.key,)
        else:
            path = top.path + (len(top.container),)
        self.value_pos[path] = pos
        self.check_node(event, pos, path)
        value: object = None
        if isinstance(event, yaml.ScalarEvent):
            value = self.scalar(event, pos, path)
            if top is None and event.style is None and event.value == "":
                return  # an empty document: the root stays None and counts as empty
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self.check_depth(len(self.stack), pos, path)
            value = {} if isinstance(event, yaml.MappingStartEvent) else []
            self.stack.append(_Frame(path, value))
        if top is None:
            self.root, self.root_empty = value, False
        elif isinstance(top.container, list):
            top.container.append(value)
        else:
            if not top.dup:
                top.container[top.key] = value
            top.key = None

    def check_node(self, event: yaml.NodeEvent, pos: Pos, path: Path, key: bool = False) -> None:
        hint = "write the value out in full where it is used"
        if isinstance(event, yaml.AliasEvent):
            self.error(
                f"anchors and aliases are not supported in specs (found alias '*{event.anchor}')",
                pos,
                path,
                key=key,
                hint=hint,
            )
            return
        if event.anchor is not None:
            self.error(
                f"anchors and aliases are not supported in specs (found anchor '&{event.anchor}')",
                pos,
                path,
                key=key,
                hint=hint,
            )
        if event.tag is not None:
            self.error(
                f"YAML tags are not supported in specs (found tag '{event.tag}')",
                pos,
                path,
                key=key,
                hint="remove the tag",
            )

    def key(self, top: _Frame, event: yaml.NodeEvent, pos: Pos) -> None:
        self.check_node(event, pos, top.path, key=True)
        if not isinstance(event, yaml.ScalarEvent):
            self.error("mapping keys must be plain or quoted strings", pos, top.path, fatal=True)
        name = event.value
        path = top.path + (name,)
        if event.style is None and name == "<<":
            self.error(
                "merge keys ('<<') are not supported in specs",
                pos,
                path,
                key=True,
                hint="write the merged keys out in full",
            )
        elif event.style is None and name == "":
            self.error("mapping key is empty", pos, path, key=True)
        self.check_str(name, pos, path, key=True)
        first = top.keys.get(name)
        top.dup = first is not None
        if first is not None:
            self.error(
                f"duplicate key '{name}' on line {pos.line} (first defined on line {first.line})",
                pos,
                path,
                key=True,
                hint="remove one of the two entries",
            )
        else:
            top.keys[name] = pos
            self.key_pos[path] = pos
        top.key = name

    def scalar(self, event: yaml.ScalarEvent, pos: Pos, path: Path) -> object:
        text = event.value
        if event.style is not None:  # quoted, literal or folded: always a string
            self.check_str(text, pos, path)
            return text
        if text in _NULLS:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if _INT_DEC.fullmatch(text):
            return int(text) if self.check_int(text.lstrip("+-"), pos, path) else None
        if _INT_OCT.fullmatch(text):
            return int(text[2:], 8) if self.check_int(text[2:], pos, path) else None
        if _INT_HEX.fullmatch(text):
            return int(text[2:], 16) if self.check_int(text[2:], pos, path) else None
        if _FLOAT.fullmatch(text):
            number = float(text)
            if math.isinf(number):
                self.error(f"number too large: {text}", pos, path)
                return None
            return number
        if _INF_NAN.fullmatch(text):
            self.error(f"'{text}' is not allowed", pos, path, hint=_NAN_INF_HINT)
            return None
        return text


class _JsonLoader(_Loader):
    def load(self) -> tuple[object, Source]:
        try:
            empty = self.scan()
        except _Stop:
            raise SpecErrors(
                self.errors, Source(self.filename, self.text, self.value_pos, self.key_pos)
            ) from None
        if empty:
            return self.finish(None, True)
        root: object = None
        try:
            root = json.loads(
                self.text,
                object_pairs_hook=_json_object,
                parse_constant=_json_constant,
                parse_int=_json_int,
                parse_float=_json_float,
            )
        except json.JSONDecodeError as exc:
            self.record(f"invalid JSON: {exc.msg}", self.lines.pos(exc.pos))
        except _Refused as exc:
            if not self.errors:  # the tokenizer has already reported it with its position
                self.record(str(exc), Pos(1, 1))
        except _INPUT_FAILURES as exc:
            self.record(f"invalid JSON: {exc}", Pos(1, 1))
        else:
            if self.stopped is not None and not self.errors:
                offset, message = self.stopped
                self.record(f"invalid JSON: {message}", self.lines.pos(offset))
        return self.finish(root, False)

    def scan(self) -> bool:
        """Walk the tokens once, iteratively; returns True when the text holds no token at all.

        Records positions and reports limits, duplicate keys and bad numbers. At the first
        token that does not fit the JSON grammar it stops and leaves the report to json.loads.
        """
        text, n, i = self.text, len(self.text), 0
        self.lines = _Lines(text)
        self.stopped: tuple[int, str] | None = None
        stack: list[_Frame] = []
        expect = "value"  # value | value_or_end | key | key_or_end | colon | comma_or_end | eof
        while True:
            i = _JSON_WS.match(text, i).end()
            if i >= n:
                if expect != "eof":
                    if self.nodes == 0:
                        return True
                    self.stopped = (i, "unexpected end of file")
                return False
            c = text[i]
            top = stack[-1] if stack else None
            closer = "}" if top is not None and isinstance(top.container, dict) else "]"
            if expect == "eof":
                self.stopped = (i, "extra data after the document")
                return False
            if expect == "comma_or_end" or (c == closer and expect.endswith("_or_end")):
                if c == ",":
                    expect = "key" if closer == "}" else "value"
                elif c == closer:
                    stack.pop()
                    expect = "comma_or_end" if stack else "eof"
                else:
                    self.stopped = (i, f"expected ',' or '{closer}'")
                    return False
                i += 1
                continue
            if expect == "colon":
                if c != ":":
                    self.stopped = (i, "expected ':'")
                    return False
                expect, i = "value", i + 1
                continue
            pos = self.lines.pos(i)
            self.count_node(pos)
            if expect in ("key", "key_or_end"):
                match = _JSON_STRING.match(text, i) if c == '"' else None
                if match is None or not self.json_key(top, match.group(), pos):
                    self.stopped = (i, "expected a quoted key")
                    return False
                expect, i = "colon", match.end()
                continue
            if top is None:
                path: Path = ()
            elif isinstance(top.container, dict):
                path = top.path + (top.key,)
            else:
                path = top.path + (len(top.container),)
                top.container.append(None)
            self.value_pos[path] = pos
            if c in "{[":
                self.check_depth(len(stack), pos, path)
                stack.append(_Frame(path, {} if c == "{" else []))
                expect, i = ("key_or_end" if c == "{" else "value_or_end"), i + 1
                continue
            match = (
                _JSON_STRING.match(text, i)
                if c == '"'
                else _JSON_WORD.match(text, i) or _JSON_NUMBER.match(text, i)
            )
            if match is None:
                self.stopped = (i, "expected a value")
                return False
            self.json_scalar(match.group(), pos, path)
            expect, i = ("comma_or_end" if stack else "eof"), match.end()

    def json_key(self, top: _Frame, token: str, pos: Pos) -> bool:
        try:
            name = json.loads(token)
        except _INPUT_FAILURES:
            return False
        path = top.path + (name,)
        self.check_str(name, pos, path, key=True)
        first = top.keys.get(name)
        if first is not None:
            self.error(
                f"duplicate key '{name}' on line {pos.line} (first defined on line {first.line})",
                pos,
                path,
                key=True,
                hint="remove one of the two entries",
            )
        else:
            top.keys[name] = pos
            self.key_pos[path] = pos
        top.key = name
        return True

    def json_scalar(self, token: str, pos: Pos, path: Path) -> None:
        if token.startswith('"'):
            if "\\u" in token:
                try:
                    self.check_str(json.loads(token), pos, path)
                except _INPUT_FAILURES:
                    pass  # json.loads reports it with its own position
        elif token in ("NaN", "Infinity", "-Infinity"):
            self.error(f"'{token}' is not allowed", pos, path, hint=_NAN_INF_HINT)
        elif token[0] in "-0123456789":
            if "." in token or "e" in token or "E" in token:
                if math.isinf(float(token)):
                    self.error(f"number too large: {token}", pos, path)
            else:
                self.check_int(token.lstrip("-"), pos, path)


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refused("duplicate key in JSON object")
    return result


def _json_constant(name: str) -> float:
    raise _Refused(f"'{name}' is not allowed")


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused("integer too large")
    return int(text)


def _json_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Refused("number too large")
    return number


def _too_large(filename: str, size: int) -> SpecErrors:
    source = Source(filename, "")
    message = f"spec file is too large ({size} bytes; the limit is {MAX_SPEC_BYTES} bytes)"
    return SpecErrors([SpecError(message, source=source)], source)


def file_kind(mode: int) -> str | None:
    """What a file that is not a regular file is (``a FIFO``), for messages; None for a regular
    file."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((what for test, what in kinds if test(mode)), "a special file")


def _not_a_file(filename: str, mode: int) -> SpecErrors:
    source = Source(filename, "")
    message = f"cannot read spec file '{filename}': it is {file_kind(mode)}, not a regular file"
    return SpecErrors([SpecError(message, source=source)], source)


def load_text(text: str, filename: str) -> tuple[object, Source]:
    """Load spec ``text``; JSON if ``filename`` ends in ``.json``, YAML otherwise.

    Returns the data (dicts, lists, str, int, float, bool, None) and its :class:`Source`.
    Raises :class:`SpecErrors` for every problem, and nothing else.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise _too_large(filename, len(text.encode("utf-8", "surrogatepass")))
    kind = _JsonLoader if filename.lower().endswith(".json") else _YamlLoader
    loader = kind(text, filename)
    try:
        return loader.load()
    except SpecErrors:
        raise
    except _INPUT_FAILURES as exc:  # defensive: a failure not caught nearer to its cause
        source = Source(filename, text)
        error = SpecError(f"could not load spec: {type(exc).__name__}", source=source)
        raise SpecErrors([error], source) from None


def load_file(path: str | os.PathLike) -> tuple[object, Source]:
    """Read and load the spec file at ``path`` (UTF-8, a BOM allowed); see :func:`load_text`."""
    filename = os.fspath(path)
    if isinstance(filename, bytes):
        filename = os.fsdecode(filename)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; what was opened is then checked
        # on the descriptor itself, so it cannot be swapped after a check of the path
        fd = os.open(filename, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _O_BINARY)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _not_a_file(filename, info.st_mode)
            if info.st_size > MAX_SPEC_BYTES:
                raise _too_large(filename, info.st_size)
            handle = open(fd, "rb")  # takes fd over; closed by the with below
        except BaseException:
            os.close(fd)
            raise
        with handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        source = Source(filename, "")
        error = SpecError(f"cannot read spec file '{filename}': {reason}", source=source)
        raise SpecErrors([error], source) from None
    if len(data) > MAX_SPEC_BYTES:
        raise _too_large(filename, len(data))
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = data.decode("utf-8", "replace")
        pos = line_col(shown, len(data[: exc.start].decode("utf-8")))
        source = Source(filename, shown, {(): pos}, {})
        error = SpecError(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save the file as UTF-8",
            source=source,
        )
        raise SpecErrors([error], source) from None
    return load_text(text, filename)
