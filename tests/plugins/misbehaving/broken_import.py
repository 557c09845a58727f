"""A plugin whose module fails to import (it needs a package that is not installed)."""

from __future__ import annotations

import specgen_no_such_dependency  # noqa: F401
