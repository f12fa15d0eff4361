"""Forms of the code decks section: the deck, one code (inline grid row or the add form) and the import."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from panel.forms import choices as as_choices
from panel.forms import strip as _strip
from panel.values import Parsed, parse_digits, parse_name

# The import's modes (panel.codedecks.importer reads them from here: the importer uses this module's form).
MODES = {"only_new": "Only new codes", "add_update": "Add and update", "purge": "Purge and import"}


class CodeDeckForm(FlaskForm):
    """Name, owner company and notes of a code deck."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give the deck a name."), Length(max=120)]
    )
    company_id = SelectField("Company", coerce=int, validate_choice=True)
    notes = TextAreaField("Notes", filters=[_strip], validators=[Length(max=5000)])


class CodeForm(FlaskForm):
    """One code of a deck (the CSV import applies the same rules)."""

    class Meta:
        csrf = False  # htmx sends the token in a header; CSRFProtect checks every POST.

    code = StringField("Code", validators=[Parsed(parse_digits)])
    name = StringField("Code name", validators=[Parsed(parse_name)])
    country = StringField("Country", validators=[Parsed(lambda text: parse_name(text, "country"))])

    # The add form's placeholders and the inline edit row's input widths (panel.reference.views.InlineGrid).
    hints = {
        "code": {"placeholder": "4420"},
        "name": {"placeholder": "UK London"},
        "country": {"placeholder": "United Kingdom"},
    }
    widths = {"code": 10, "name": 24, "country": 18}


class CodeImportForm(FlaskForm):
    """Upload a code deck."""

    file = FileField("CSV file", description="UTF-8, header line required: code,name,country.")
    mode = RadioField("Mode", choices=as_choices(MODES.items()), default="add_update")
