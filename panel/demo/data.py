"""The demo carrier's objects: companies, users, gateways, a code deck, rate tables, clients, accounts and
routing plans with rules of every type, each with its "created" entry in the change history.

Everything is made with a fixed random seed, so two loads give the same objects.
"""

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select

from panel import audit
from panel.auth.passwords import hash_password
from panel.crypto import encrypt
from panel.extensions import db
from panel.models import (
    Account,
    AccountNetwork,
    Client,
    Code,
    CodeDeck,
    Company,
    Did,
    Gateway,
    Policy,
    Rate,
    RateTable,
    RoutingPlan,
    RoutingRule,
    TimeProfile,
    User,
)
from panel.models.types import utcnow
from panel.policies.defaults import ensure_default_policies

# (username, password, company key, role): listed in the README and printed by `make run`.
DEMO_USERS = [
    ("admin", "demo-admin-2026", "root", "admin"),
    ("noc", "demo-operator-2026", "root", "operator"),
    ("auditor", "demo-viewer-2026", "root", "viewer"),
    ("atlas", "demo-atlas-2026", "atlas", "admin"),
    ("atlas-ops", "demo-atlas-ops-2026", "atlas", "operator"),
    ("atlas-retail", "demo-retail-2026", "atlas_retail", "operator"),
    ("borealis", "demo-borealis-2026", "borealis", "admin"),
    ("borealis-view", "demo-borealis-view-2026", "borealis", "viewer"),
]

COMPANY_NAMES = {
    "root": "Meridian Carrier",
    "atlas": "Atlas Voice",
    "atlas_retail": "Atlas Retail",
    "borealis": "Borealis Telecom",
}

LOGIN_HELP = "Demo logins (username, password, company, role):\n" + "\n".join(
    f"  {u:<14} {p:<24} {COMPANY_NAMES[c]:<17} {r}" for u, p, c, r in DEMO_USERS
)

# Country, country code, base cost per minute, mobile prefixes after the country code.
COUNTRIES = [
    ("United Kingdom", "44", "0.0040", ["71", "73", "74", "75", "77", "78", "79"]),
    (
        "Germany",
        "49",
        "0.0045",
        ["151", "152", "157", "159", "160", "162", "170", "171", "172", "175", "176", "177"],
    ),
    ("France", "33", "0.0050", ["6", "7"]),
    ("Spain", "34", "0.0060", ["6", "7"]),
    ("Italy", "39", "0.0070", ["31", "32", "33", "34", "35", "36", "37", "38", "39"]),
    ("Netherlands", "31", "0.0065", ["6"]),
    ("Poland", "48", "0.0055", ["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"]),
    ("United States", "1", "0.0030", []),
    ("Mexico", "52", "0.0120", ["1"]),
    ("Brazil", "55", "0.0150", ["119", "219", "319"]),
    ("Argentina", "54", "0.0200", ["9"]),
    ("India", "91", "0.0110", ["7", "8", "9"]),
    ("Pakistan", "92", "0.0350", ["30", "31", "32", "33", "34"]),
    ("Bangladesh", "880", "0.0180", ["13", "14", "15", "16", "17", "18", "19"]),
    ("Philippines", "63", "0.0900", ["9"]),
    ("Nigeria", "234", "0.0800", ["70", "80", "81", "90"]),
    ("Kenya", "254", "0.0600", ["7", "1"]),
    ("South Africa", "27", "0.0250", ["6", "7", "8"]),
    ("Egypt", "20", "0.0700", ["10", "11", "12", "15"]),
    ("Turkey", "90", "0.0100", ["5"]),
    ("Ukraine", "380", "0.0900", ["50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98", "99"]),
    ("Romania", "40", "0.0080", ["7"]),
    ("Vietnam", "84", "0.0450", ["3", "5", "7", "8", "9"]),
    ("Indonesia", "62", "0.0400", ["8"]),
    ("Australia", "61", "0.0120", ["4"]),
    ("Japan", "81", "0.0300", ["70", "80", "90"]),
    ("China", "86", "0.0080", ["13", "15", "17", "18"]),
    ("Saudi Arabia", "966", "0.0900", ["5"]),
    ("United Arab Emirates", "971", "0.1100", ["50", "52", "54", "55", "56", "58"]),
    ("Morocco", "212", "0.1200", ["6", "7"]),
]


def _codes() -> list[tuple[str, str, str, Decimal]]:
    """The demo code deck: (code, name, country, base cost); a few thousand codes."""
    rows = []
    for country, cc, base, mobiles in COUNTRIES:
        base = Decimal(base)
        rows.append((cc, f"{country} Fixed", country, base))
        for area in range(10):
            for sub in range(10):
                rows.append((f"{cc}{area}{sub}", f"{country} Fixed {area}{sub}", country, base))
        for mobile in mobiles:
            mob_base = (base * Decimal("2.4")).quantize(Decimal("0.0001"))
            rows.append((f"{cc}{mobile}", f"{country} Mobile", country, mob_base))
            for sub in range(10):
                rows.append((f"{cc}{mobile}{sub}", f"{country} Mobile {mobile}{sub}", country, mob_base))
    # Keep codes unique (a mobile prefix can equal a fixed area code: the mobile name wins).
    unique: dict[str, tuple[str, str, str, Decimal]] = {}
    for row in rows:
        unique[row[0]] = row
    return sorted(unique.values())


def _bulk(model, rows: list[dict]) -> None:
    """Insert many rows at once (rates and codes: thousands)."""
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(model), rows[start : start + 5000])


def _rate_table(company, name, codes, rng, markup, min_time=1, interval=1, skip=0.0, currency="USD"):
    """A rate table pricing the deck's codes at base cost × markup with some noise."""
    table = RateTable(company_id=company.id, name=name, currency=currency)
    db.session.add(table)
    db.session.flush()
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    rows = []
    for code, code_name, _country, base in codes:
        if skip and rng.random() < skip:
            continue
        price = (base * Decimal(str(markup)) * Decimal(str(rng.uniform(0.9, 1.15)))).quantize(
            Decimal("0.000001")
        )
        rows.append(
            dict(
                rate_table_id=table.id,
                code=code,
                name=code_name,
                rate=price,
                effective_from=start,
                end=None,
                setup_fee=Decimal("0"),
                min_time=min_time,
                interval=interval,
            )
        )
    _bulk(Rate, rows)
    return table


def _account(client, name, ident_by, ident_value, **fields):
    """An account with its networks (ident by IP) parsed from the `;`-separated ident value."""
    account = Account(client_id=client.id, name=name, ident_by=ident_by, ident_value=ident_value, **fields)
    if ident_by == "ip":
        for pos, part in enumerate(p.strip() for p in ident_value.split(";") if p.strip()):
            network = part if "/" in part else f"{part}/32"
            account.networks.append(AccountNetwork(network=network, position=pos))
    db.session.add(account)
    return account


def default_policies(company_id: int) -> list[Policy]:
    """The four policies of SPEC §5 step 8 for the company (created when missing)."""
    ensure_default_policies(company_id)
    db.session.flush()
    return list(db.session.scalars(select(Policy).where(Policy.company_id == company_id)))


def has_demo_users() -> bool:
    """True when the demo's admin user exists (so `make run` can remind where to log in)."""
    return (
        db.session.scalar(select(func.count()).select_from(User).where(User.username == DEMO_USERS[0][0])) > 0
    )


def load(if_empty: bool = False) -> bool:
    """Load the demo carrier; returns False (and does nothing) when `if_empty` and data exists."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Company)):
        return False
    rng = random.Random(2026)

    # Companies and users.
    root = Company(name=COMPANY_NAMES["root"], kind="root", notes="The operator running this panel.")
    db.session.add(root)
    db.session.flush()
    atlas = Company(name=COMPANY_NAMES["atlas"], kind="reseller", parent_id=root.id)
    borealis = Company(name=COMPANY_NAMES["borealis"], kind="reseller", parent_id=root.id)
    db.session.add_all([atlas, borealis])
    db.session.flush()
    atlas_retail = Company(name=COMPANY_NAMES["atlas_retail"], kind="sub_reseller", parent_id=atlas.id)
    borealis_desk = Company(name="Borealis Sales Desk", kind="manager", parent_id=borealis.id)
    db.session.add_all([atlas_retail, borealis_desk])
    db.session.flush()
    companies = {"root": root, "atlas": atlas, "borealis": borealis, "atlas_retail": atlas_retail}
    for username, password, key, role in DEMO_USERS:
        db.session.add(
            User(
                company_id=companies[key].id,
                username=username,
                role=role,
                password_hash=hash_password(password),
            )
        )

    # Gateways (switch nodes).
    fra = Gateway(company_id=root.id, name="sbc-fra-1", address="203.0.113.10", notes="Frankfurt edge")
    nyc = Gateway(company_id=root.id, name="sbc-nyc-1", address="203.0.113.20", notes="New York edge")
    db.session.add_all([fra, nyc])

    # Code deck and rate tables.
    codes = _codes()
    deck = CodeDeck(company_id=root.id, name="Meridian World Deck", notes="Country, fixed and mobile codes.")
    db.session.add(deck)
    db.session.flush()
    _bulk(Code, [dict(code_deck_id=deck.id, code=c, name=n, country=k) for c, n, k, _ in codes])

    vendor_tables = {
        "Globex Wholesale": _rate_table(root, "Globex Wholesale A-Z", codes, rng, 1.00, 1, 1),
        "Hermes Transit": _rate_table(root, "Hermes Transit Premium", codes, rng, 1.20, 1, 1, skip=0.05),
        "Ionic Telecom": _rate_table(root, "Ionic CLI Route", codes, rng, 0.95, 30, 6, skip=0.10),
        "Juno Routes": _rate_table(root, "Juno Budget", codes, rng, 0.80, 60, 60, skip=0.25),
        "Kappa Exchange": _rate_table(root, "Kappa Exchange Vendor", codes, rng, 1.05, 1, 1, skip=0.30),
    }
    retail = _rate_table(root, "Customers Standard", codes, rng, 1.45, 1, 1)
    premium = _rate_table(root, "Customers Premium", codes, rng, 1.70, 1, 1)
    atlas_sell = _rate_table(atlas, "Atlas Sell", codes, rng, 1.60, 30, 6)

    # Time profiles and policies.
    business = TimeProfile(
        company_id=root.id,
        name="Business hours Berlin",
        weekdays="12345",
        ranges="08:00-18:00",
        timezone="Europe/Berlin",
    )
    night = TimeProfile(
        company_id=root.id, name="Nights UTC", weekdays="1234567", ranges="22:00-06:00", timezone="UTC"
    )
    weekend = TimeProfile(
        company_id=root.id, name="Weekend", weekdays="67", ranges="00:00-24:00", timezone="UTC"
    )
    db.session.add_all([business, night, weekend])
    policies = {p.name: p for p in default_policies(root.id)}

    # Clients: vendors (terminators) and customers (originators); Kappa is both.
    clients: dict[str, Client] = {}

    def client(name, company=root, **fields):
        clients[name] = Client(company_id=company.id, name=name, **fields)
        db.session.add(clients[name])
        db.session.flush()
        return clients[name]

    vendor_hosts = {
        "Globex Wholesale": ["198.51.100.10", "198.51.100.11"],
        "Hermes Transit": ["198.51.100.20"],
        "Ionic Telecom": ["198.51.100.30", "198.51.100.31"],
        "Juno Routes": ["198.51.100.40"],
    }
    vendor_tags = {
        "Globex Wholesale": "",
        "Hermes Transit": "premium",
        "Ionic Telecom": "cli",
        "Juno Routes": "",
    }
    terminators: dict[str, list[Account]] = {}
    for name, hosts in vendor_hosts.items():
        c = client(name, term_rate_table_id=vendor_tables[name].id, notes="Vendor")
        terminators[name] = []
        for i, host in enumerate(hosts, start=1):
            acc = _account(
                c,
                f"{name.split()[0].lower()}-out-{i}",
                "ip",
                host,
                term_enabled=True,
                term_tags=vendor_tags[name],
                term_capacity=200 * i,
                tech_prefix="",
            )
            acc.gateways = [fra] if i == 1 else []
            terminators[name].append(acc)
    kappa = client(
        "Kappa Exchange",
        orig_rate_table_id=retail.id,
        term_rate_table_id=vendor_tables["Kappa Exchange"].id,
        balance=Decimal("2500"),
        notes="Trades both ways",
    )
    kappa_in = _account(
        kappa, "kappa-in", "ip", "192.0.2.128/25", orig_enabled=True, orig_capacity=300, tech_prefix="77#"
    )
    kappa_out = _account(kappa, "kappa-out", "ip", "192.0.2.200", term_enabled=True, port=5080)
    terminators["Kappa Exchange"] = [kappa_out]

    customers = [
        ("Acme Calls", "ip", "192.0.2.10; 192.0.2.11", "", retail, 5000),
        ("Blue Sky VoIP", "ip", "10.20.0.0/24; 10.21.0.0/16", "", retail, 1200),
        ("Cedar Comms", "name", "cedar-pbx", "", premium, 800),
        ("Delta Dial", "ani", "4420794600000", "", retail, 15),
        ("Echo Tel", "ip", "192.0.2.40", "123#", premium, 3000),
        ("Fjord Net", "ip", "2001:db8:100::/48", "", retail, 900),
        ("Gamma Contact Center", "name", "gamma-cc", "9", premium, 10000),
    ]
    originators: list[Account] = [kappa_in]
    for name, ident_by, value, prefix, table, balance in customers:
        c = client(name, orig_rate_table_id=table.id, balance=Decimal(balance))
        acc = _account(
            c,
            f"{name.split()[0].lower()}-main",
            ident_by,
            value,
            orig_enabled=True,
            orig_capacity=100,
            tech_prefix=prefix,
            orig_tags="wholesale" if table is retail else "premium",
        )
        if ident_by == "name":
            acc.password_encrypted = encrypt(f"{name.split()[0].lower()}-Sip-2026")
        acc.gateways = [fra] if name != "Fjord Net" else [nyc]
        originators.append(acc)
    # Reseller clients.
    atlas_client = client(
        "Atlas Customer One", company=atlas, orig_rate_table_id=atlas_sell.id, balance=Decimal("400")
    )
    originators.append(
        _account(
            atlas_client,
            "a1-main",
            "ip",
            "192.0.2.60",
            orig_enabled=True,
            orig_capacity=30,
            orig_tags="wholesale",
        )
    )
    retail_client = client(
        "Retail Shop Ltd", company=atlas_retail, orig_rate_table_id=atlas_sell.id, balance=Decimal("75")
    )
    originators.append(
        _account(retail_client, "shop-ani", "ani", "4915112345678", orig_enabled=True, orig_capacity=5)
    )
    boreal_client = client(
        "Northern Lights Telecom", company=borealis, orig_rate_table_id=retail.id, balance=Decimal("650")
    )
    originators.append(
        _account(boreal_client, "nl-main", "ip", "192.0.2.80", orig_enabled=True, orig_capacity=50)
    )
    db.session.flush()

    # Routing plans with rules of every type.
    standard = RoutingPlan(
        company_id=root.id, name="Standard LCR", code_deck_id=deck.id, pm_value=Decimal("10"), pm_percent=True
    )
    quality = RoutingPlan(
        company_id=root.id,
        name="Premium Quality",
        code_deck_id=deck.id,
        rules_hunting="all_matching",
        dr_order="appeal_code",
        match_increments="dynamic",
        vendor_limit=2,
        tags="premium",
    )
    fallback = RoutingPlan(company_id=root.id, name="Fallback Any", code_deck_id=deck.id)
    atlas_plan = RoutingPlan(
        company_id=atlas.id, name="Atlas Retail Plan", code_deck_id=deck.id, pm_value=Decimal("0.002")
    )
    db.session.add_all([standard, quality, fallback, atlas_plan])
    db.session.flush()
    standard.additional_plan_id = fallback.id
    atlas_plan.origination_limits = [atlas_retail]

    def rule(plan, code, type_, priority=10, **fields):
        db.session.add(RoutingRule(plan_id=plan.id, code=code, type=type_, priority=priority, **fields))

    globex, hermes, ionic, juno = (
        clients[n] for n in ("Globex Wholesale", "Hermes Transit", "Ionic Telecom", "Juno Routes")
    )
    rule(standard, "44", "dynamic", 10, policy_id=policies["Simple LCR"].id)
    rule(standard, "447", "static_client", 5, terminator_client_id=hermes.id, stop_hunt=False)
    rule(standard, "447", "static_client", 10, terminator_client_id=globex.id, balancing=50)
    rule(standard, "447", "static_client", 10, terminator_client_id=ionic.id, balancing=50)
    rule(standard, "49", "dynamic", 10, policy_id=policies["Proportional"].id)
    rule(
        standard,
        "491*",
        "static_account",
        5,
        terminator_account_id=terminators["Globex Wholesale"][0].id,
        time_profile_id=business.id,
    )
    rule(standard, "1", "dynamic", 10, policy_id=policies["Simple LCR"].id, min_length=11, max_length=11)
    rule(
        standard,
        "234",
        "static_client",
        10,
        terminator_client_id=juno.id,
        orig_tags="wholesale",
        orig_tags_mode="any",
    )
    rule(standard, "880", "dynamic", 20, policy_id=policies["Random"].id, term_tags="cli")
    rule(standard, "", "did", 0)
    rule(
        standard,
        "33*6",
        "static_client",
        10,
        terminator_client_id=globex.id,
        pm_value=Decimal("5"),
        pm_percent=True,
    )
    rule(
        standard,
        "39",
        "static_client",
        10,
        terminator_client_id=juno.id,
        expires_at=utcnow() + timedelta(days=3, hours=2),
        capacity=50,
    )
    # A promotion that ends tomorrow and one that ends in three weeks: the rules tab marks the first in amber.
    promotions = [
        ("4420", clients["Kappa Exchange"], timedelta(hours=30)),
        ("4915", hermes, timedelta(days=21)),
    ]
    for code, vendor, ends_in in promotions:
        promotion = {"terminator_client_id": vendor.id, "stop_hunt": False, "expires_at": utcnow() + ends_in}
        rule(standard, code, "static_client", 5, **promotion)
    rule(
        standard,
        "90",
        "static_client",
        10,
        terminator_client_id=hermes.id,
        min_asr=Decimal("30"),
        min_acd=Decimal("1.5"),
    )
    for code in (
        "48",
        "31",
        "34",
        "91",
        "92",
        "63",
        "254",
        "27",
        "20",
        "380",
        "40",
        "84",
        "62",
        "61",
        "81",
        "86",
    ):
        rule(standard, code, "dynamic", 10, policy_id=policies["Simple LCR"].id)
    rule(fallback, "*", "dynamic", 100, policy_id=policies["Simple LCR"].id)
    rule(quality, "*", "dynamic", 50, policy_id=policies["Simple Quality"].id)
    rule(quality, "44", "static_client", 10, terminator_client_id=hermes.id, stop_hunt=True)
    rule(quality, "49", "dynamic", 10, policy_id=policies["Proportional"].id, term_tags="premium cli")
    rule(atlas_plan, "*", "dynamic", 10, policy_id=policies["Simple LCR"].id)
    rule(atlas_plan, "49", "static_client", 5, terminator_client_id=globex.id, time_profile_id=night.id)

    # Plans assigned: client defaults and one account override.
    for name in (
        "Acme Calls",
        "Blue Sky VoIP",
        "Delta Dial",
        "Fjord Net",
        "Kappa Exchange",
        "Northern Lights Telecom",
    ):
        clients[name].routing_plan_id = standard.id
    for name in ("Cedar Comms", "Echo Tel", "Gamma Contact Center"):
        clients[name].routing_plan_id = quality.id
    atlas_client.routing_plan_id = standard.id
    retail_client.routing_plan_id = atlas_plan.id

    # DIDs terminated to Kappa.
    for number in ("4420300000001", "4420300000002", "4930123456789"):
        db.session.add(Did(number=number, account_id=kappa_out.id, notes="Inbound DID"))

    db.session.flush()
    _history(db.session.scalar(select(User).where(User.username == DEMO_USERS[0][0])))
    db.session.commit()
    return True


# The objects whose creation the change history lists, in the order they were made.
HISTORY_MODELS = (
    Company,
    User,
    Gateway,
    CodeDeck,
    RateTable,
    TimeProfile,
    Policy,
    Client,
    Account,
    RoutingPlan,
    RoutingRule,
    Did,
)


def _history(admin: User) -> None:
    """A "created" audit entry for every demo object, by the demo admin, so "Change history" has a story."""
    rates = dict(
        db.session.execute(select(Rate.rate_table_id, func.count()).group_by(Rate.rate_table_id)).all()
    )
    for model in HISTORY_MODELS:
        for obj in db.session.scalars(select(model).order_by(model.id)):
            note = "demo data"
            if isinstance(obj, RateTable):
                note = f"demo data: {rates.get(obj.id, 0):,} rates"
            audit.record("create", obj, note=note, user=admin)
