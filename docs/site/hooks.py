"""mkdocs hooks: pages filled in at build time from the package and the README, so the site
never holds a second copy of what the code and the README already say.

Markers (an HTML comment alone on a line):

* ``<!-- pool-catalogue -->`` — every pooling method of the registry
  (``cnnjax.layers.pool_specs.METHODS``): its spec grammar, family, what is learned or
  random, and the op's docstring up to its arguments (formula and paper);
* ``<!-- readme: HEADING -->`` — the README section under ``HEADING`` (to the next heading
  of the same or a higher level), links rewritten for the page's place;
* ``<!-- if-exists: PATH | TEXT -->`` — ``TEXT`` (Markdown) only if ``PATH`` (relative to
  ``docs/``) exists, so a page can link a report that a later run adds.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # document this checkout, whatever cnnjax is installed

_MARKER = re.compile(r"^<!-- (pool-catalogue|readme: (?P<heading>.+?)|if-exists: "
                     r"(?P<path>.+?) \| (?P<text>.+?)) -->$", re.M)


def _doc_until_args(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    lines = []
    for line in doc.splitlines():
        if re.match(r"^(Args|Arguments|Returns|Raises|Example|Examples):\s*$", line):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def pool_catalogue() -> str:
    import cnnjax
    from cnnjax.layers import pool_specs

    out = ["| spec | family | summary | learned | random |", "|---|---|---|---|---|"]
    for m in pool_specs.METHODS:
        specs = ", ".join(f"`{s}`" for s in pool_specs.POOL_SPECS
                          if s.partition(":")[0] == (m.name or ""))
        out.append(f"| {specs or f'`{m.name}`'} | {m.family} | {m.summary} | "
                   f"{'yes' if m.learned else ''} | {'yes' if m.stochastic else ''} |")
    out.append("")
    for m in pool_specs.METHODS:
        out.append(f"## `{m.name}` — {m.summary}")
        out.append("")
        options = ", ".join(f"`{o.key}`" for o in m.options)
        out.append(f"Family: {m.family}. Module: `{m.module}`; op: `cnnjax.{m.op}`"
                   + (f"; spec options: {options}" if options else "") + ".")
        out.append("")
        op = getattr(cnnjax, m.op, None)
        if op is not None:
            out.append(_doc_until_args(op))
            out.append("")
    return "\n".join(out)


def readme_section(heading: str, page_path: str = "site/page.md") -> str:
    text = (ROOT / "README.md").read_text()
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == heading.strip())
    end = len(lines)
    for j in range(start + 1, len(lines)):
        m = re.match(r"^(#+) ", lines[j])
        if m and len(m.group(1)) <= level and not _in_code(lines, j):
            end = j
            break
    body = "\n".join(lines[start + 1:end]).strip()
    # README links are relative to the repository root; the page's to its place in docs/.
    return body.replace("](docs/", "](" + "../" * page_path.count("/"))


def _in_code(lines, j) -> bool:
    return sum(l.startswith("```") for l in lines[:j]) % 2 == 1


def on_page_markdown(markdown: str, page, config, files) -> str:
    def fill(m: re.Match) -> str:
        if m.group(1) == "pool-catalogue":
            return pool_catalogue()
        if m.group("heading"):
            return readme_section(m.group("heading"), page.file.src_uri)
        return m.group("text") if (DOCS / m.group("path")).exists() else ""
    return _MARKER.sub(fill, markdown)
