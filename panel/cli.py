"""Command-line commands: `flask --app wsgi create-admin`, `demo-data`, `rebuild-call-hours`."""

import click
from flask import Flask


def register(app: Flask) -> None:
    """Attach the commands to the app."""

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.option("--company", default="Operator", show_default=True, help="Name of the root company.")
    @click.password_option()
    def create_admin(username: str, company: str, password: str) -> None:
        """Create the root company (if missing) and its first admin user."""
        from panel.auth.passwords import hash_password, password_problem
        from panel.extensions import db
        from panel.models import Company, User
        from panel.policies.defaults import ensure_default_policies

        problem = password_problem(password)
        if problem:
            raise click.ClickException(problem)
        root = db.session.scalar(db.select(Company).where(Company.parent_id.is_(None)))
        if root is None:
            root = Company(name=company, kind="root")
            db.session.add(root)
            db.session.flush()
        if db.session.scalar(db.select(User).where(User.username == username)):
            raise click.ClickException(f"A user named {username!r} exists already.")
        db.session.add(
            User(company_id=root.id, username=username, role="admin", password_hash=hash_password(password))
        )
        # Every install ships the routing policies of SPEC §5 step 8.
        ensure_default_policies(root.id)
        db.session.commit()
        click.echo(f"Admin {username} created in {root.name}.")

    @app.cli.command("demo-data")
    @click.option("--if-empty", is_flag=True, help="Do nothing when the database already has companies.")
    @click.option("--days", default=3, show_default=True, help="Days of routed and billed calls to seed.")
    def demo_data(if_empty: bool, days: int) -> None:
        """Load a believable carrier: companies, users, clients, accounts, rates, routing plans and calls."""
        from panel import demo

        if demo.load(if_empty=if_empty, history_days=max(0, days)):
            click.echo(f"Demo data loaded, with {max(0, days)} days of calls.")
        else:
            click.echo("The database has data already; demo data not loaded again.")
        if demo.has_demo_users():
            click.echo(demo.LOGIN_HELP)

    @app.cli.command("rebuild-call-hours")
    def rebuild_call_hours() -> None:
        """Compute the hourly and daily call figures (statistics totals) afresh from the call records: after a
        bulk load that bypassed the API, or for a database whose records predate the figures."""
        from panel.extensions import db
        from panel.stats import rollup

        rows = rollup.rebuild()
        db.session.commit()
        click.echo(f"Hourly and daily call figures rebuilt: {rows:,} hourly rows.")
