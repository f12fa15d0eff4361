"""The account form (every field of the seed's table) and the list's search form."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from panel.accounts import idents
from panel.forms import IntegerField, VersionField, strip
from panel.forms import optional_id as optional_int
from panel.models.accounts import IDENT_BY_LABELS, PROTOCOLS


def _tags_field() -> StringField:
    """An originator's or terminator's tags."""
    return StringField("Tags", description="Words separated by spaces.")


def _capacity_field() -> IntegerField:
    """An originator's or terminator's concurrent-call limit."""
    return IntegerField(
        "Capacity",
        validators=[Optional(), NumberRange(min=1, max=1_000_000)],
        description="Concurrent calls; empty for no limit.",
    )


class AccountForm(FlaskForm):
    """General, originator and terminator settings of one account (SPEC §2).

    The view fills the choices (clients in scope; rate tables, plans and gateways usable by the client's
    company) before validating, so a posted id outside them is refused.
    """

    # The object's version when the form was drawn: a save on a stale form is a conflict.
    version = VersionField()

    client_id = SelectField("Client", coerce=optional_int, validators=[InputRequired("Choose the client.")])
    name = StringField("Name", filters=[strip], validators=[DataRequired("Enter a name."), Length(max=120)])
    ident_by = SelectField(
        "Ident by", choices=[SelectChoice(k, v) for k, v in IDENT_BY_LABELS.items()], default="ip"
    )
    ident_value = StringField(
        "Name / ANI / IP",
        description="IP: addresses or CIDR networks separated by “;” (10.0.0.0/24; 198.51.100.7). "
        "Name: the login. ANI: the caller's number.",
    )
    tech_prefix = StringField(
        "Tech prefix", filters=[strip], description="Digits, optionally ending in #; empty for none."
    )
    password = StringField("Password", validators=[Length(max=128)])
    clear_password = BooleanField("Remove the password")
    gateway_ids = SelectMultipleField(
        "Gateways", coerce=int, description="None selected: the account is identified on every gateway."
    )
    notes = TextAreaField("Notes", validators=[Length(max=5000)])

    orig_enabled = BooleanField("Originator enabled", default=True)
    orig_rate_table_id = SelectField("Rate table", coerce=optional_int, validate_choice=False)
    orig_routing_plan_id = SelectField("Routing plan", coerce=optional_int, validate_choice=False)
    orig_tags = _tags_field()
    orig_capacity = _capacity_field()

    term_enabled = BooleanField("Terminator enabled")
    term_rate_table_id = SelectField("Rate table", coerce=optional_int, validate_choice=False)
    term_tags = _tags_field()
    term_capacity = _capacity_field()
    protocol = SelectField("Protocol", choices=[SelectChoice(p, p.upper()) for p in PROTOCOLS], default="sip")
    proxy = StringField(
        "Proxy", filters=[strip], description="host[:port]; empty to send to the first ident IP."
    )
    port = IntegerField(
        "Port", default=5060, validators=[InputRequired("Enter the port."), NumberRange(1, 65535)]
    )

    # Filled by validate(): the normalised values the view stores.
    ident_text: str = ""
    networks: list = []

    def validate(self, extra_validators=None) -> bool:
        """Field checks, then the ident, tech prefix, tags and proxy rules; the view checks conflicts."""
        valid = super().validate(extra_validators)
        for field, check in (
            (self.tech_prefix, idents.normalise_tech_prefix),
            (self.orig_tags, idents.normalise_tags),
            (self.term_tags, idents.normalise_tags),
            (self.proxy, idents.normalise_proxy),
        ):
            try:
                field.data = check(field.data)
            except idents.IdentError as error:
                field.errors.append(str(error))
                valid = False
        try:
            self.ident_text, self.networks = idents.normalise_ident(self.ident_by.data, self.ident_value.data)
        except idents.IdentError as error:
            self.ident_value.errors.append(str(error))
            valid = False
        else:
            self.ident_value.data = self.ident_text
            if self.term_enabled.data and not idents.terminator_address(self.networks, self.proxy.data):
                self.proxy.errors.append(
                    "A terminator needs an address: list a single IP address in the ident (not only "
                    "networks) or enter a proxy."
                )
                valid = False
        password = self.password.data or ""
        if password and (password != password.strip() or not password.isprintable()):
            self.password.errors.append("A password may not hold spaces at its ends or control characters.")
            valid = False
        return valid


class AccountSearchForm(FlaskForm):
    """Quick and advanced search of the accounts list (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Search")
    # How the text matches (panel.accounts.listing.MATCHES); empty: the database's default.
    match = SelectField(
        "Match",
        choices=[SelectChoice("start", "starts with"), SelectChoice("contains", "contains")],
        validate_choice=False,
    )
    client_id = SelectField("Client", coerce=optional_int, validate_choice=False)
    # Narrows the client filter's options (by a part of the name); not a condition on the accounts.
    client_q = StringField("Find a client")
    ident_by = SelectField(
        "Ident by",
        choices=[SelectChoice("", "Any")] + [SelectChoice(k, v) for k, v in IDENT_BY_LABELS.items()],
        validate_choice=False,
    )
    rate_table_id = SelectField("Rate table", coerce=optional_int, validate_choice=False)
    routing_plan_id = SelectField("Routing plan", coerce=optional_int, validate_choice=False)
    tag = StringField("Tag")
    state = SelectField(
        "Enabled",
        choices=[
            SelectChoice("", "Any"),
            SelectChoice("orig", "Originator enabled"),
            SelectChoice("term", "Terminator enabled"),
            SelectChoice("both", "Both enabled"),
            SelectChoice("off", "Deactivated (neither)"),
        ],
        validate_choice=False,
    )
