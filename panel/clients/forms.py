"""Client forms: the client itself, a balance adjustment, and the list's search."""

from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from panel.forms import CompanyObjectForm, strip
from panel.forms import optional_id as optional_int


def upper(value):
    """Currency codes are written in capitals."""
    return value.strip().upper() if isinstance(value, str) else value


class ClientForm(CompanyObjectForm):
    """Name, owning company, currency and the defaults its accounts inherit."""

    currency = StringField(
        "Currency",
        default="USD",
        filters=[upper],
        validators=[Regexp(r"^[A-Z]{3}$", message="A currency is a three-letter code such as USD.")],
    )
    orig_rate_table_id = SelectField(
        "Originator rate table",
        coerce=optional_int,
        validate_choice=False,
        description="Accounts may override it.",
    )
    term_rate_table_id = SelectField(
        "Terminator rate table",
        coerce=optional_int,
        validate_choice=False,
        description="Accounts may override it.",
    )
    routing_plan_id = SelectField(
        "Routing plan", coerce=optional_int, validate_choice=False, description="Accounts may override it."
    )
    notes = TextAreaField("Notes", validators=[Length(max=5000)])


class BalanceForm(FlaskForm):
    """A manual credit (positive) or debit (negative) of the balance, with the reason."""

    amount = DecimalField(
        "Amount",
        places=None,
        validators=[InputRequired("Enter an amount, e.g. 100 or -25.50.")],
        description="Positive credits the client, negative debits it.",
    )
    note = StringField(
        "Reason",
        filters=[strip],
        validators=[DataRequired("Say why (it goes to the audit log)."), Length(max=500)],
    )

    def validate_amount(self, field) -> None:
        """Not zero, at most 6 decimals, within the balance column's range."""
        from wtforms.validators import ValidationError

        value: Decimal = field.data
        if value is None or not value.is_finite():
            raise ValidationError("Enter an amount, e.g. 100 or -25.50.")
        if value == 0:
            raise ValidationError("An adjustment of zero changes nothing.")
        if value.as_tuple().exponent < -6:
            raise ValidationError("At most 6 decimals.")
        if abs(value) >= Decimal("1e11"):
            raise ValidationError("The amount is too large.")


class ClientSearchForm(FlaskForm):
    """Search of the clients list (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Search")
    company_id = SelectField("Company", coerce=optional_int, validate_choice=False)
