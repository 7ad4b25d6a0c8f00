"""hw/README.md's wiring tables stay in step with the board files."""

import json
import re

import pytest
from urelief import boards
from urelief.paths import BOARDS, ROOT

README = (ROOT / "hw" / "README.md").read_text()
REAL = [p.stem for p in boards.board_files() if p.stem != "sim"]


def section(name: str) -> str:
    m = re.search(rf"^## {re.escape(name)}\b.*?(?=^## |\Z)", README, re.S | re.M)
    assert m, f"hw/README.md has no section for {name}"
    return m.group(0)


@pytest.mark.parametrize("name", REAL)
def test_every_wired_pin_is_in_the_readme(name):
    text = section(name)
    board = json.loads((BOARDS / f"{name}.json").read_text())
    for role, gpio, _ in boards.uses(board):
        assert re.search(rf"GPIO{gpio}\b", text), f"{name}: {role} GPIO{gpio} not in hw/README.md"
