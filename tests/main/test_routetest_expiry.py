"""The route test marks a matched rule that expires soon, as the rules tab does."""

from datetime import UTC, datetime, timedelta

from panel.extensions import db
from tests.routing.test_routetest import carrier  # noqa: F401 - the route test's fixture


def test_route_test_marks_a_rule_expiring_soon(carrier, login):  # noqa: F811
    """The rule that routed the call expires in 3 days: amber "expires in 3 d" in the rules and routes."""
    carrier.rule.expires_at = datetime.now(UTC) + timedelta(days=3, hours=1)
    db.session.commit()
    html = (
        login(carrier.alpha_operator)
        .get(f"/route-test/?account_id={carrier.account.id}&number=447700900123&refresh=1")
        .get_data(as_text=True)
    )
    matched = html[html.index('id="matched-rules"') : html.index('id="routes"')]
    assert '<span class="expiry soon"' in matched and "expires in 3 d" in matched
    routes = html[html.index('id="routes"') :]
    assert "expires in 3 d" in routes.split("</table>")[0]


def test_route_test_leaves_a_distant_expiry_unmarked(carrier, login):  # noqa: F811
    """Beyond the horizon there is nothing to warn about."""
    carrier.rule.expires_at = datetime.now(UTC) + timedelta(days=40)
    db.session.commit()
    html = (
        login(carrier.alpha_operator)
        .get(f"/route-test/?account_id={carrier.account.id}&number=447700900123&refresh=1")
        .get_data(as_text=True)
    )
    assert "routed</span>" in html and "expires in" not in html
