"""The routing effect on the import flow's replace preview (panel/whatif/import_hooks.py)."""

import io

import pytest

from panel.whatif import import_hooks
from tests.whatif.test_preview_views import alpha  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(import_hooks.flow is None, reason="the import flow has no preview hook yet")


def test_rules_replace_preview_shows_the_routing_effect(alpha, login):  # noqa: F811
    web = login(alpha.alpha_operator)
    csv = b"priority,code,type,terminator\n0,33,static_client,V2\n"
    response = web.post(
        f"/plans/{alpha.plan.id}/import",
        data={"file": (io.BytesIO(csv), "rules.csv"), "mode": "replace"},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert "Effect on routing" in html and "lose every route" in html and 'data-code="44"' in html


def test_rate_replace_preview_shows_the_routing_effect(alpha, login):  # noqa: F811
    web = login(alpha.alpha_operator)
    response = web.post(
        f"/rate-tables/{alpha.v1.table.id}/import",
        data={"file": (io.BytesIO(b"code,rate\n44,0.09\n"), "deck.csv"), "mode": "replace"},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert "Effect on routing" in html and "0.05 → 0.01" in html
