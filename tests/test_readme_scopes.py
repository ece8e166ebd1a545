"""The README's ``hf_oauth_scopes`` (what a Space asks people to grant at sign-in) are each documented in its
"Sign-in scopes" table, and the table documents nothing the front matter does not ask for."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.fixtures.space_app import readme_scopes


def test_each_requested_scope_is_documented_and_nothing_else():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("Sign-in scopes", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, re.M)
    assert documented, "no scope table after 'Sign-in scopes'"
    assert sorted(documented) == sorted(readme_scopes())
    assert set(readme_scopes()) == {"read-repos", "write-repos", "manage-repos", "inference-api"}
