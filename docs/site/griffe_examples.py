"""A griffe extension for the site's API reference: cnnjax's docstrings head their doctests
``Example:`` (singular), which griffe's Google parser reads as a Markdown admonition; as
``Examples:`` they render as code, so ``x[0]["key"]`` is not taken for a Markdown link."""
from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
