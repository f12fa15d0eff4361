"""Fixtures of the switch tests: a lab whose processes are all stopped at the end, and the running switch.

`switch` (module scope) serves the panel with gunicorn against this run's test database (SQLite or
PostgreSQL, seeded and committed first), runs Kamailio with docs/kamailio/kamailio.cfg rendered for it, and
two sipp vendors: Vendor One answers 503, Vendor Two answers. Everything listens on loopback; the caller
sends from 127.0.0.2 (Acme's address) or from any other address.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from panel.extensions import db
from tests.conftest import _empty_tables, make_test_app
from tests.e2e import switchlab

CALLER_IP = "127.0.0.2"
STRANGER_IP = "127.0.0.3"
VENDOR_IPS = ("127.0.0.11", "127.0.0.12")
# The test's panel timeout: a hung panel costs a call this long before its 503.
PANEL_TIMEOUT_S = 2


@dataclass
class Switch:
    """The running switch of the module's tests."""

    lab: switchlab.Lab
    app: object
    carrier: switchlab.Carrier
    panel: switchlab.Proc
    panel_port: int
    kamailio: switchlab.Proc
    proxy: tuple[str, int]
    vendor_one: switchlab.Vendor
    vendor_two: switchlab.Vendor

    def call(self, name: str, number: str, src_ip: str = CALLER_IP, **options) -> switchlab.CallerRun:
        """Place calls through Kamailio with sipp (see switchlab.run_caller for the options)."""
        options.setdefault("timeout", 15)
        return switchlab.run_caller(self.lab, name, self.proxy, number, "3312345678", src_ip, **options)

    def logs(self) -> str:
        """The tail of Kamailio's and the panel's output, for failure messages."""
        return f"--- kamailio\n{self.kamailio.output()[-4000:]}\n--- panel\n{self.panel.output()[-4000:]}"


@contextmanager
def lab_and_app(schema: str, workdir):
    """A lab in `workdir` and the test app on `schema` (its context pushed); at the end every process of the
    lab is stopped and the tables are emptied."""
    lab = switchlab.Lab(workdir)
    app = make_test_app(schema)
    context = app.app_context()
    context.push()
    try:
        yield lab, app
    finally:
        lab.stop_all()
        db.session.remove()
        _empty_tables()
        db.engine.dispose()
        context.pop()


def start_panel(lab: switchlab.Lab, schema: str, port: int, workers: int = 2, **env) -> switchlab.Proc:
    """The panel under gunicorn (4 threads a worker) with the tests' secrets, its manager off unless `env`
    turns it on."""
    settings = {"PANEL_MANAGER_ENABLED": 0, "SECRET_KEY": "e2e-secret"}
    settings["ACCOUNT_PASSWORD_KEY"] = "e2e-account-key"
    return switchlab.start_panel(lab, schema, port, workers=workers, threads=4, **(settings | env))


@pytest.fixture(scope="module")
def switch(_schema, tmp_path_factory):
    """Panel (gunicorn), Kamailio and two vendors, started once for the module and stopped at its end."""
    missing = switchlab.tools_missing()
    if missing:
        pytest.skip(missing)
    with lab_and_app(_schema, tmp_path_factory.mktemp("switch")) as (lab, app):
        vendor_ports = [switchlab.free_sip_port(ip) for ip in VENDOR_IPS]
        carrier = switchlab.seed_carrier(CALLER_IP, list(zip(VENDOR_IPS, vendor_ports, strict=True)))
        panel_port = switchlab.free_port()
        panel = start_panel(lab, _schema, panel_port)
        switchlab.warm_up_panel(panel_port, carrier.token, {"number": "441234567", "src_ip": CALLER_IP})
        kamailio, proxy = switchlab.start_switch(
            lab, (panel_port,), carrier.token, PANEL_TIMEOUT=PANEL_TIMEOUT_S, NO_ANSWER_MS=2000
        )
        one = switchlab.start_vendor(lab, "vendor-one", "vendor_fails", VENDOR_IPS[0], vendor_ports[0])
        two = switchlab.start_vendor(lab, "vendor-two", "vendor_answers", VENDOR_IPS[1], vendor_ports[1])
        yield Switch(lab, app, carrier, panel, panel_port, kamailio, proxy, one, two)
