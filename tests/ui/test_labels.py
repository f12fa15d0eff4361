"""Icons say what they do (issue 14.9): every icon link of the lists has a tooltip and an accessible name."""

import re

from panel.extensions import db
from tests import factories

ICON_LINK = re.compile(r'<a class="icon"[^>]*>[^<]*</a>')


def test_icon_links_have_a_title_and_a_label(tree, login):
    """The ⛃ (this client's accounts) and ↺ (change history) icons of the accounts list are named."""
    factories.account(factories.client(tree.alpha, "Acme"), "acme-1", ident_by="name", ident_value="acme")
    db.session.commit()
    page = login(tree.alpha_operator).get("/accounts/").get_data(as_text=True)
    icons = ICON_LINK.findall(page)
    assert {"⛃", "↺"} <= {re.sub(r"<[^>]+>", "", icon) for icon in icons}, icons
    for icon in icons:
        assert re.search(r'title="[^"]{5,}"', icon) and re.search(r'aria-label="[^"]{5,}"', icon), icon
