"""Rendering: Jinja templates configured for code, fed one view-model each.

Templates only print what their view-model holds; every decision is taken in Python before. The
environment is strict (an undefined name is an error), keeps the template's own layout
(``trim_blocks``, ``lstrip_blocks``, a trailing newline) and never autoescapes.

Templates live in the top-level ``templates/`` folder of a source checkout and ship inside the
wheel as ``specgen/templates``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .codegen.layout import rank_neutral
from .codegen.pyliteral import literal


def templates_dir() -> Path:
    """``specgen/templates`` in an installed wheel, else the checkout's ``templates/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "torch").is_dir():
            return candidate
    raise FileNotFoundError("specgen's templates folder is missing from this installation")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = literal
    env.filters["rank_neutral"] = rank_neutral
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
