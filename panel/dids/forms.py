"""Forms of the DIDs section: one DID and the CSV import."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from panel.forms import choices as as_choices
from panel.forms import strip as _strip
from panel.values import Parsed, parse_digits

# The import's modes (panel.dids.importer reads them and parse_number from here: it uses this module's form).
MODES = {"add_update": "Add and update", "only_new": "Only new numbers"}


def parse_number(text: str) -> str:
    """A DID number: digits; a leading `+` and spaces are dropped."""
    cleaned = text.strip().replace(" ", "")
    if cleaned.startswith("+"):
        cleaned = cleaned[1:]
    return parse_digits(cleaned, "number")


class DidForm(FlaskForm):
    """Number, terminator account and notes."""

    number = StringField(
        "Number",
        validators=[Parsed(parse_number)],
        description="Digits as the switch receives them; a leading + and spaces are dropped.",
    )
    account_id = SelectField(
        "Terminator account", coerce=int, validate_choice=True, description="Terminator-enabled accounts."
    )
    notes = TextAreaField("Notes", filters=[_strip], validators=[Length(max=2000)])


class DidImportForm(FlaskForm):
    """Upload DIDs."""

    file = FileField("CSV file", description="UTF-8, header line required: number,account,notes.")
    mode = RadioField("Mode", choices=as_choices(MODES.items()), default="add_update")
