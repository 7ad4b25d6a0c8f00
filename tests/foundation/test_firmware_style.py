"""One comment style in firmware/: a module, class or function says what it is in a docstring,
never in a leading `#` block (quotes are held to double by ruff's Q rules, pyproject.toml)."""

import ast

import pytest
from urelief.paths import FIRMWARE

SOURCES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def leading_comment_blocks(path):
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    if ast.get_docstring(tree) is None and lines and lines[0].startswith("#"):
        yield 1
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if ast.get_docstring(node) is not None:
                continue
            first = node.body[0].lineno - 1
            if first >= 1 and lines[first - 1].strip().startswith("#") and \
                    not lines[first - 1].strip().startswith("# type:"):
                j = first - 1
                while j >= 1 and lines[j - 1].strip().startswith("#"):
                    j -= 1
                if lines[j - 1].rstrip().endswith(":"):
                    yield j + 1


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_docstrings_not_leading_comments(path):
    assert list(leading_comment_blocks(path)) == [], "a leading # block: make it the docstring"
