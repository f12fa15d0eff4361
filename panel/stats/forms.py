"""The Statistics section's filter forms (GET, no CSRF)."""

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import NumberRange, Optional, Regexp

from panel.forms import IntegerField, choices
from panel.forms import optional_id as optional_int

DIRECTIONS = [("", "either side"), ("orig", "as originator (customer)"), ("term", "as terminator (vendor)")]
ANSWERED_CHOICES = [("", "all calls"), ("yes", "answered"), ("no", "not answered")]
WINDOWS = [
    (1, "last hour"),
    (6, "last 6 hours"),
    (24, "last 24 hours"),
    (72, "last 3 days"),
    (168, "last 7 days"),
]


class CallFilterForm(FlaskForm):
    """Which calls the list shows: client, account, direction, dates (UTC), answered, number."""

    class Meta:
        csrf = False

    client_id = SelectField("Client", coerce=optional_int, validate_choice=False)
    client_q = StringField("Find a client")  # narrows the client choices (panel.accounts' client filter)
    account_id = SelectField("Account", coerce=optional_int, validate_choice=False)
    direction = SelectField("Direction", choices=choices(DIRECTIONS), validate_choice=False)
    date_from = DateField("From (UTC)", validators=[Optional()])
    date_to = DateField("To (UTC, inclusive)", validators=[Optional()])
    answered = SelectField("Answered", choices=choices(ANSWERED_CHOICES), validate_choice=False)
    number = StringField(
        "Number starts with",
        validators=[Optional(), Regexp(r"^\+?[0-9]{1,64}$", message="Digits only.")],
    )


class QualityFilterForm(FlaskForm):
    """Which vendors and destinations the quality view shows, over which window."""

    class Meta:
        csrf = False

    client_id = SelectField("Vendor (client)", coerce=optional_int, validate_choice=False)
    client_q = StringField("Find a client")  # narrows the client choices (panel.accounts' client filter)
    account_id = SelectField("Terminator account", coerce=optional_int, validate_choice=False)
    code = StringField(
        "Code starts with", validators=[Optional(), Regexp(r"^[0-9]{1,32}$", message="Digits only.")]
    )
    hours = SelectField("Window", coerce=optional_int, choices=choices(WINDOWS), validate_choice=False)
    min_attempts = IntegerField(
        "At least attempts", validators=[Optional(), NumberRange(min=0, max=1_000_000)]
    )
