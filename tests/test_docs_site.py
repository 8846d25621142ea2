"""The documentation site's build-time pages (docs/site/hooks.py): every registry method in
the pooling catalogue, README sections found, optional links only when their target exists.
``mkdocs build --strict`` itself runs in CI (.ci/run)."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnjax.layers import pool_specs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("site_hooks", ROOT / "docs/site/hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(src_uri):
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_catalogue_has_every_method_with_its_op_docstring(hooks):
    text = hooks.pool_catalogue()
    for m in pool_specs.METHODS:
        assert f"## `{m.name}` — {m.summary}" in text
    assert "Zeiler" in text and "Rippel" in text  # papers, from the ops' docstrings
    assert "Args:" not in text


def test_markers_are_filled(hooks, tmp_path):
    md = "<!-- readme: ## Logs, reuse, configs -->\n"
    out = hooks.on_page_markdown(md, _page("site/x.md"), None, None)
    assert "cnnjax eval --workdir" in out and "<!--" not in out
    missing = "<!-- if-exists: no/such/report.md | [report](no/such/report.md) -->\n"
    assert hooks.on_page_markdown(missing, _page("site/x.md"), None, None).strip() == ""
    present = "<!-- if-exists: api.md | [api](../api.md) -->\n"
    assert hooks.on_page_markdown(present, _page("site/x.md"), None, None).strip() == \
        "[api](../api.md)"


def test_readme_links_are_rewritten_for_the_page(hooks):
    body = hooks.readme_section("## The pooling ablation (the main job)", "site/ablation.md")
    assert "](../figures/" in body and "](docs/" not in body
