"""Form helpers shared by every section: id coercion, text filters and validators, select choices."""

import unicodedata

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField
from wtforms import IntegerField as _IntegerField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from panel.extensions import db
from panel.scope import MAX_ID


def parse_id(text: str | None) -> int | None:
    """An id written as ASCII digits within the id range, else None (no exception, no overflow)."""
    text = (text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def optional_id(value) -> int | None:
    """Coerce a select's value to an id: empty means "not set"; anything but an id in range is a ValueError.

    WTForms turns the ValueError into a field error, so a forged or huge id never reaches the database.
    """
    if value in (None, "", "None"):
        return None
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError("not an id")
    return number


class IntegerField(_IntegerField):
    """An integer field that refuses numbers beyond 64 bits before any validator sees them.

    WTForms' NumberRange calls math.isnan() on the value, which raises OverflowError for a huge int (a 500);
    no count, capacity or weight in the panel comes near 2**63.
    """

    def process_formdata(self, valuelist):
        """Parse as WTForms does, then refuse out-of-range numbers with a field error."""
        super().process_formdata(valuelist)
        if isinstance(self.data, int) and abs(self.data) >= 2**63:
            self.data = None
            raise ValueError(self.gettext("Number too large."))


def strip(value):
    """Trim surrounding white space from text input."""
    return value.strip() if isinstance(value, str) else value


def no_control_characters(_form, field) -> None:
    """Refuse control characters (NUL and friends) in one-line names; PostgreSQL cannot store NUL at all."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in field.data or ""):
        raise ValidationError("Use printable characters only.")


def no_nul(_form, field) -> None:
    """Refuse the NUL character in free text (notes), which PostgreSQL cannot store."""
    if "\x00" in (field.data or ""):
        raise ValidationError("The text contains a NUL character.")


def choices(pairs, blank: str | None = None, optgroup: str | None = None) -> list[SelectChoice]:
    """(value, label) pairs as select choices, after a first empty option labelled `blank` when given."""
    items = [SelectChoice("", blank)] if blank is not None else []
    return items + [SelectChoice(value, label, optgroup=optgroup) for value, label in pairs]


def choice_values(field) -> set:
    """The values a select field offers."""
    return {choice.value for choice in field.choices}


def name_taken(form, model, obj, what: str, company_id: int | None = None) -> bool:
    """True, with the message on the name field, when the owner already has another `what` of that name.

    `company_id` defaults to the form's owner field; names are unique per company (a database constraint too).
    """
    owner = company_id if company_id is not None else form.company_id.data
    stmt = select(model.id).where(model.company_id == owner, model.name == form.name.data)
    if obj is not None:
        stmt = stmt.where(model.id != obj.id)
    if db.session.scalar(stmt.limit(1)) is not None:
        form.name.errors.append(f"This company already has a {what} with this name.")
        return True
    return False


class VersionField(HiddenField):
    """The version of the object the form was drawn from (panel.writes checks it: a stale form is a conflict).

    Never copied onto the object: SQLAlchemy counts versions itself (`populate_obj` leaves it alone).
    """

    def populate_obj(self, obj, name) -> None:
        """Leave the object's version to SQLAlchemy."""


class CompanyObjectForm(FlaskForm):
    """The start of a form of an object a company owns: its version, its company and its name.

    The view fills `company_id.choices` with the companies the user may choose (clients and gateways).
    """

    # The object's version when the form was drawn: a save on a stale form is a conflict.
    version = VersionField()

    company_id = SelectField("Company", coerce=optional_id, validators=[InputRequired("Choose the company.")])
    name = StringField("Name", filters=[strip], validators=[DataRequired("Enter a name."), Length(max=120)])
