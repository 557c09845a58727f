"""Tests for specgen.load: safe YAML/JSON loading with positions."""

from __future__ import annotations

import os
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specgen import load
from specgen.errors import Pos, SpecErrors
from specgen.load import MAX_DEPTH, MAX_SPEC_BYTES, line_col, load_file, load_text

RENDERED = re.compile(r"^[^\n]+:\d+:\d+: error: ")


def errors_of(text: str, filename: str = "spec.yaml") -> SpecErrors:
    with pytest.raises(SpecErrors) as info:
        load_text(text, filename)
    rendered = info.value.render()
    assert RENDERED.match(rendered), rendered
    assert rendered.startswith(filename + ":")
    return info.value


def first_location(exc: SpecErrors) -> tuple[int, int]:
    head = exc.render().splitlines()[0]
    match = re.match(r"^.*?:(\d+):(\d+): error: ", head)
    assert match, head
    return int(match.group(1)), int(match.group(2))


def messages(exc: SpecErrors) -> list[str]:
    return [e.message for e in exc.errors]


# ------------------------------------------------------------------ positions


def test_yaml_block_positions():
    text = "name: ae\nencoder:\n  - filters: 16\n    kernel: 3\n  - filters: 32\n"
    data, src = load_text(text, "s.yaml")
    assert data == {"name": "ae", "encoder": [{"filters": 16, "kernel": 3}, {"filters": 32}]}
    assert src.filename == "s.yaml" and src.text == text
    assert src.value_pos[()] == Pos(1, 1)
    assert src.key_pos[("name",)] == Pos(1, 1)
    assert src.value_pos[("name",)] == Pos(1, 7)
    assert src.key_pos[("encoder",)] == Pos(2, 1)
    assert src.value_pos[("encoder", 0)] == Pos(3, 5)
    assert src.key_pos[("encoder", 1, "filters")] == Pos(5, 5)
    assert src.value_pos[("encoder", 1, "filters")] == Pos(5, 14)
    assert src.value_pos[("encoder", 0, "kernel")] == Pos(4, 13)


def test_yaml_flow_positions():
    text = "layers: [conv, {filters: 8, act: relu}]\n"
    data, src = load_text(text, "s.yml")
    assert data == {"layers": ["conv", {"filters": 8, "act": "relu"}]}
    assert src.value_pos[("layers",)] == Pos(1, 9)
    assert src.value_pos[("layers", 0)] == Pos(1, 10)
    assert src.value_pos[("layers", 1)] == Pos(1, 16)
    assert src.key_pos[("layers", 1, "act")] == Pos(1, 29)
    assert src.value_pos[("layers", 1, "act")] == Pos(1, 34)


def test_json_positions():
    text = '{\n  "name": "ae",\n  "encoder": [\n    {"filters": 16},\n    [1, 2.5]\n  ]\n}\n'
    data, src = load_text(text, "s.json")
    assert data == {"name": "ae", "encoder": [{"filters": 16}, [1, 2.5]]}
    assert src.value_pos[()] == Pos(1, 1)
    assert src.key_pos[("name",)] == Pos(2, 3)
    assert src.value_pos[("name",)] == Pos(2, 11)
    assert src.value_pos[("encoder", 0)] == Pos(4, 5)
    assert src.key_pos[("encoder", 0, "filters")] == Pos(4, 6)
    assert src.value_pos[("encoder", 0, "filters")] == Pos(4, 17)
    assert src.value_pos[("encoder", 1, 1)] == Pos(5, 9)


def test_json_key_with_escape_is_decoded():
    data, src = load_text('{"a\\u0062": "x\\ny"}', "s.json")
    assert data == {"ab": "x\ny"}
    assert src.key_pos[("ab",)] == Pos(1, 2)


def test_line_col():
    assert line_col("ab\ncd", 0) == Pos(1, 1)
    assert line_col("ab\ncd", 4) == Pos(2, 2)
    assert line_col("ab\r\ncd", 4) == Pos(2, 1)
    assert line_col("ab\n", 3) == Pos(2, 1)


def test_bom_is_skipped(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    data, src = load_file(path)
    assert data == {"a": 1}
    assert src.key_pos[("a",)] == Pos(1, 1)
    assert load_text('\ufeff{"a": 1}', "s.json")[0] == {"a": 1}


# ------------------------------------------------------------------ YAML 1.2 scalars


def test_yaml_core_schema_scalars():
    text = (
        "a: no\nb: yes\nc: true\nd: FALSE\ne: on\nf: ~\ng:\nh: Null\ni: 42\nj: -7\nk: 0x1F\n"
        "l: 0o17\nm: 1.5\nn: .5\no: 1e3\np: '12'\nq: \"true\"\nr: 2021-01-01\ns: 1_000\n"
        "t: 0b101\nu: 1:30\nv: |\n  12\n"
    )
    data, _ = load_text(text, "s.yaml")
    assert data == {
        "a": "no",
        "b": "yes",
        "c": True,
        "d": False,
        "e": "on",
        "f": None,
        "g": None,
        "h": None,
        "i": 42,
        "j": -7,
        "k": 31,
        "l": 15,
        "m": 1.5,
        "n": 0.5,
        "o": 1000.0,
        "p": "12",
        "q": "true",
        "r": "2021-01-01",
        "s": "1_000",
        "t": "0b101",
        "u": "1:30",
        "v": "12\n",
    }
    assert type(data["c"]) is bool and type(data["i"]) is int and type(data["o"]) is float


def test_plain_keys_stay_strings():
    data, _ = load_text("1: a\ntrue: b\nnull: c\n", "s.yaml")
    assert data == {"1": "a", "true": "b", "null": "c"}


# ------------------------------------------------------------------ rejected YAML


def test_yaml_duplicate_key_names_both_lines():
    exc = errors_of("name: x\nencoder:\n  filters: 3\n  kernel: 2\n  filters: 4\n")
    assert messages(exc) == ["duplicate key 'filters' on line 5 (first defined on line 3)"]
    assert first_location(exc) == (5, 3)
    assert exc.errors[0].path == ("encoder", "filters")


def test_yaml_duplicate_keys_all_reported():
    exc = errors_of("a: 1\nb: 2\na: 3\nb: 4\n")
    assert len(exc.errors) == 2
    assert "'a'" in exc.errors[0].message and "'b'" in exc.errors[1].message


def test_yaml_anchor_and_alias_rejected():
    exc = errors_of("base: &b {filters: 3}\nother: *b\n")
    assert all("anchors and aliases are not supported" in m for m in messages(exc))
    assert first_location(exc) == (1, 7)
    assert len(exc.errors) == 2


def test_yaml_alias_bomb_rejected_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    exc = errors_of("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1.0
    assert "anchors and aliases are not supported" in exc.errors[0].message


@pytest.mark.parametrize(
    "text",
    [
        "a: !!str 5\n",
        "a: !foo x\n",
        "a: ! x\n",
        "a: !!map {b: 1}\n",
        "a: !!python/object:os.system {}\n",
    ],
)
def test_yaml_tags_rejected(text):
    exc = errors_of(text)
    assert "tags are not supported" in exc.errors[0].message
    assert first_location(exc) == (1, 4)


def test_yaml_multi_document_rejected():
    exc = errors_of("a: 1\n---\nb: 2\n")
    assert "exactly one YAML document" in exc.errors[0].message
    assert first_location(exc) == (2, 1)


def test_yaml_merge_key_rejected():
    exc = errors_of("a: {x: 1}\nb:\n  <<: {x: 1}\n")
    assert "merge keys" in exc.errors[0].message
    assert first_location(exc) == (3, 3)


def test_yaml_complex_key_rejected():
    exc = errors_of("? [a, b]\n: 1\n")
    assert "mapping keys must be" in exc.errors[0].message


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.Inf", "+.INF"])
def test_yaml_nan_inf_rejected(value):
    exc = errors_of(f"lr: {value}\n")
    assert f"'{value}' is not allowed" in exc.errors[0].message
    assert "NaN or infinity" in exc.errors[0].hint


def test_yaml_number_limits():
    exc = errors_of("a: " + "9" * 31 + "\nb: 1e400\nc: 0x" + "f" * 31 + "\nd: " + "9" * 30 + "\n")
    assert messages(exc) == [
        "integer too large (more than 30 digits)",
        "number too large: 1e400",
        "integer too large (more than 30 digits)",
    ]
    assert load_text("a: " + "9" * 30, "s.yaml")[0] == {"a": int("9" * 30)}


def test_yaml_syntax_error_located():
    exc = errors_of("a: 1\nb: [1, 2\nc: 3\n")
    assert exc.errors[0].message.startswith("invalid YAML: ")
    exc = errors_of("a: b: c\n")
    assert first_location(exc) == (1, 5)
    assert "mapping values are not allowed here" in exc.errors[0].message


def test_yaml_control_character_rejected():
    exc = errors_of("a: 1\nb: x\x07y\n")
    assert "U+0007" in exc.errors[0].message
    assert first_location(exc) == (2, 5)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_yaml_empty(text):
    assert messages(errors_of(text)) == ["spec is empty"]


@pytest.mark.parametrize(
    "text,what", [("- 1\n", "a list"), ("hello\n", "a string"), ("3\n", "a number")]
)
def test_root_must_be_mapping(text, what):
    assert messages(errors_of(text)) == [f"a spec must be a mapping at the top level, not {what}"]


# ------------------------------------------------------------------ JSON


def test_json_duplicate_key_names_both_lines():
    exc = errors_of('{\n "a": 1,\n "b": {"c": 1,\n  "c": 2}\n}', "s.json")
    assert messages(exc) == ["duplicate key 'c' on line 4 (first defined on line 3)"]
    assert first_location(exc) == (4, 3)


def test_json_duplicate_key_after_escape_decoding():
    exc = errors_of('{"a": 1, "\\u0061": 2}', "s.json")
    assert "duplicate key 'a'" in exc.errors[0].message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_inf_rejected(value):
    exc = errors_of('{"lr": ' + value + "}", "s.json")
    assert messages(exc) == [f"'{value}' is not allowed"]
    assert first_location(exc) == (1, 8)


def test_json_number_limits():
    exc = errors_of('{"a": ' + "9" * 31 + ', "b": -1e999}', "s.json")
    assert messages(exc) == ["integer too large (more than 30 digits)", "number too large: -1e999"]
    exc = errors_of('{"a": ' + "9" * 5000 + "}", "s.json")
    assert messages(exc) == ["integer too large (more than 30 digits)"]


@pytest.mark.parametrize(
    "text,loc",
    [
        ('{"a": 1,}', (1, 9)),
        ('{"a" 1}', (1, 6)),
        ('{"a": 1}\n x', (2, 2)),
        ('{"a": "\\q"}', (1, 8)),
        ('{"a": [1, 2}', (1, 12)),
        ("{'a': 1}", (1, 2)),
    ],
)
def test_json_syntax_errors_located(text, loc):
    exc = errors_of(text, "s.json")
    assert exc.errors[0].message.startswith("invalid JSON: ")
    assert first_location(exc) == loc


def test_json_empty_and_non_mapping():
    assert messages(errors_of("  \n", "s.json")) == ["spec is empty"]
    assert messages(errors_of("[1, 2]", "s.json")) == [
        "a spec must be a mapping at the top level, not a list"
    ]
    assert "not null" in errors_of("null", "s.json").errors[0].message


def test_json_values():
    data, _ = load_text('{"a": [true, false, null, -0, 1.5e2, "no"]}', "S.JSON")
    assert data == {"a": [True, False, None, 0, 150.0, "no"]}


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize("filename", ["deep.yaml", "deep.json"])
def test_deep_flow_nesting_fails_fast(filename):
    start = time.perf_counter()
    exc = errors_of("[" * 100_000, filename)
    assert time.perf_counter() - start < 1.0
    assert messages(exc) == [f"spec is nested too deeply (more than {MAX_DEPTH} levels)"]
    assert first_location(exc) == (1, MAX_DEPTH + 1)


def test_deep_block_mappings_fail_fast():
    text = "".join(" " * i + "a:\n" for i in range(1_000))
    start = time.perf_counter()
    exc = errors_of(text)
    assert time.perf_counter() - start < 1.0
    assert "nested too deeply" in exc.errors[0].message
    assert first_location(exc) == (MAX_DEPTH + 1, MAX_DEPTH + 1)


def test_ten_thousand_nested_block_mappings_fail_fast():
    # Ten thousand levels of block indentation exceed the size limit before the parser starts.
    text = "".join(" " * i + "a:\n" for i in range(10_000))
    start = time.perf_counter()
    exc = errors_of(text)
    assert time.perf_counter() - start < 1.0
    assert "too large" in exc.errors[0].message


def test_deep_block_sequences_fail_fast():
    start = time.perf_counter()
    exc = errors_of("- " * 10_000 + "x\n")
    assert time.perf_counter() - start < 1.0
    assert "nested too deeply" in exc.errors[0].message


def test_depth_limit_is_exact():
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_text(ok, "s.yaml")[0]["a"] is not None
    too_deep = errors_of("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert "nested too deeply" in too_deep.errors[0].message
    ok_json = '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert load_text(ok_json, "s.json")[0]["a"] is not None


@pytest.mark.parametrize("filename", ["s.yaml", "s.json"])
def test_node_limit(monkeypatch, filename):
    monkeypatch.setattr(load, "MAX_NODES", 10)
    assert load_text('{"a": [1, 2, 3]}', filename)[0] == {"a": [1, 2, 3]}
    exc = errors_of('{"a": [' + ", ".join(["1"] * 20) + "]}", filename)
    assert messages(exc) == ["spec is too large: more than 10 values"]


# ------------------------------------------------------------------ files


def test_load_file_ok(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    data, src = load_file(path)
    assert data == {"a": 1} and src.filename == str(path)


def test_load_file_bad_utf8(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecErrors) as info:
        load_file(path)
    rendered = info.value.render()
    assert rendered.startswith(f"{path}:2:7: error: file is not valid UTF-8 (byte 0xe9")


def test_load_file_too_big_rejected_before_parsing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the parser must not run")

    monkeypatch.setattr(load, "load_text", fail)
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: [" + b"\xff" * MAX_SPEC_BYTES + b"]\n")  # not even valid UTF-8
    with pytest.raises(SpecErrors) as info:
        load_file(path)
    rendered = info.value.render()
    assert rendered.startswith(f"{path}:1:1: error: spec file is too large")
    assert str(MAX_SPEC_BYTES) in rendered


def test_load_text_too_big():
    exc = errors_of("a: " + "x" * MAX_SPEC_BYTES)
    assert "too large" in exc.errors[0].message


@pytest.mark.parametrize("make", [lambda p: p / "missing.yaml", lambda p: p])
def test_load_file_unreadable(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(SpecErrors) as info:
        load_file(path)
    rendered = info.value.render()
    assert RENDERED.match(rendered)
    assert f"cannot read spec file '{path}'" in rendered


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_load_file_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        load_file(fifo)
    assert time.perf_counter() - started < 5
    assert "it is a FIFO (named pipe), not a regular file" in info.value.render()


def test_load_file_refuses_a_folder(tmp_path):
    with pytest.raises(SpecErrors) as info:
        load_file(tmp_path)
    assert "it is a folder, not a regular file" in info.value.render()


# ------------------------------------------------------------------ robustness


@settings(max_examples=300, deadline=None)
@given(text=st.text(), filename=st.sampled_from(["f.yaml", "f.json"]))
def test_random_text_only_raises_spec_errors(text, filename):
    try:
        data, src = load_text(text, filename)
    except SpecErrors as exc:
        assert exc.errors
        assert RENDERED.match(exc.render())
    else:
        assert isinstance(data, dict)
        assert src.value_pos[()] is not None


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="{}[]:,\"\\ -0123456789eE.aNtrufls\n&*!|>#?'~"),
    filename=st.sampled_from(["f.yaml", "f.json"]),
)
def test_random_syntax_soup_only_raises_spec_errors(text, filename):
    try:
        load_text(text, filename)
    except SpecErrors as exc:
        assert RENDERED.match(exc.render())
