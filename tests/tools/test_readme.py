"""The README's configuration example is a configuration the meter accepts, with the defaults it claims."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT
from bijli.tools.node import config


def test_readme_config_example_is_valid_and_matches_the_defaults():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    documented = config.parse(tomllib.loads(block))
    defaults = config.parse({})
    assert documented.meter == defaults.meter
    assert documented.hal == defaults.hal
    assert documented.upgrade == defaults.upgrade


def test_readme_opens_with_the_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split("\n## ", 1)[0]
    assert "make run" in head and "make test" in head
