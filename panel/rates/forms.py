"""Forms of the rate tables section: the table, one rate (inline grid row or the add form) and the import."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from panel.forms import choices as as_choices
from panel.forms import strip as _strip
from panel.values import (
    MOMENT_HELP,
    Parsed,
    parse_digits,
    parse_moment,
    parse_money,
    parse_name,
    parse_seconds,
)


def _upper(value):
    """Currency codes are upper case."""
    return value.strip().upper() if isinstance(value, str) else value


# The import's modes (panel.rates.importer reads them from here: the importer uses this module's form).
MODES = {"add_update": "Add and update", "replace": "Replace table"}


class RateTableForm(FlaskForm):
    """Name, currency, owner company and notes of a rate table."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give the table a name."), Length(max=120)]
    )
    currency = StringField(
        "Currency",
        default="USD",
        filters=[_upper],
        validators=[
            DataRequired("Give the currency."),
            Regexp(r"^[A-Z]{3}$", message="Use a 3-letter code such as USD."),
        ],
        description="ISO 4217 code: USD, EUR, GBP…",
    )
    company_id = SelectField("Company", coerce=int, validate_choice=True)
    notes = TextAreaField("Notes", filters=[_strip], validators=[Length(max=5000)])


class RateForm(FlaskForm):
    """One rate: the grid's inline edit and the add form share it (and the CSV import shares its rules)."""

    class Meta:
        csrf = False  # htmx sends the token in a header; Flask-WTF's CSRFProtect checks it for every POST.

    code = StringField("Code", validators=[Parsed(parse_digits)])
    name = StringField("Code name", validators=[Parsed(parse_name)])
    rate = StringField("Rate", validators=[Parsed(parse_money)], description="Per minute, up to 6 decimals.")
    effective_from = StringField(
        "Effective from",
        validators=[Parsed(lambda text: parse_moment(text, "effective_from"))],
        description=f"{MOMENT_HELP}; empty: now.",
    )
    end = StringField(
        "End", validators=[Parsed(lambda text: parse_moment(text, "end"))], description="Optional."
    )
    setup_fee = StringField(
        "Setup fee",
        default="0",
        validators=[Parsed(lambda text: parse_money(text, "setup fee", required=False))],
    )
    min_time = StringField(
        "Min time",
        default="1",
        validators=[Parsed(lambda t: parse_seconds(t, "min time", minimum=0, default=1))],
    )
    interval = StringField(
        "Interval",
        default="1",
        validators=[Parsed(lambda t: parse_seconds(t, "interval", minimum=1, default=1))],
    )

    # The add form's placeholders and help, the inline edit row's input widths (panel.reference.views).
    hints = {
        "code": {"placeholder": "4420"},
        "name": {"placeholder": "UK London"},
        "rate": {"placeholder": "0.0125"},
        "effective_from": {"placeholder": "YYYY-MM-DD HH:MM"},
        "end": {"placeholder": "YYYY-MM-DD HH:MM"},
        "min_time": {"help": "Seconds billed at least."},
        "interval": {"help": "Seconds per increment after the min time."},
    }
    widths = {
        "code": 8,
        "name": 16,
        "rate": 8,
        "effective_from": 17,
        "end": 17,
        "setup_fee": 6,
        "min_time": 4,
        "interval": 4,
    }


class RateImportForm(FlaskForm):
    """Upload a rate deck."""

    file = FileField("CSV file", description="UTF-8, header line required; see the columns below.")
    mode = RadioField("Mode", choices=as_choices(MODES.items()), default="add_update")
    effective_from = StringField(
        "Effective from, for rows without a date",
        validators=[Parsed(lambda text: parse_moment(text, "effective_from"))],
        render_kw={"placeholder": "YYYY-MM-DD HH:MM"},
        description=f"{MOMENT_HELP}. Empty: the moment the import starts.",
    )
