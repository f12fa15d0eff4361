"""The time profile form: the rules of `panel.timeprofile` (the routing engine's own) check every field."""

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from panel.forms import choices as as_choices
from panel.forms import strip as _strip
from panel.timeprofile import (
    WEEKDAY_NAMES,
    TimeProfileError,
    format_ranges,
    parse_ranges,
    parse_weekdays,
    zone,
)


class WeekdaysField(SelectMultipleField):
    """Seven checkboxes, Monday first; the value is the model's string of ISO weekday numbers (`12345`)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def process_data(self, value):
        """Accept the model's `12345` as well as a list."""
        if isinstance(value, str):
            value = list(value)
        super().process_data(value)

    def pre_validate(self, form):
        """Only the seven weekdays, at least one."""
        try:
            parse_weekdays("".join(self.data or []))
        except TimeProfileError as exc:
            raise StopValidation(str(exc)) from None

    def populate_obj(self, obj, name):
        """Store the days in order: `12345`."""
        setattr(obj, name, "".join(sorted(set(self.data or []))))


class TimeProfileForm(FlaskForm):
    """Name, owner, weekdays, ranges and time zone."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give the profile a name."), Length(max=120)]
    )
    company_id = SelectField("Company", coerce=int, validate_choice=True)
    weekdays = WeekdaysField("Weekdays", choices=as_choices((str(d), n) for d, n in WEEKDAY_NAMES.items()))
    ranges = StringField(
        "Time ranges",
        default="08:00-18:00",
        filters=[_strip],
        description="HH:MM-HH:MM, several separated by ';'. The start is included, the end excluded; "
        "24:00 may end a range; an end before the start wraps past midnight (22:00-06:00).",
    )
    timezone = StringField(
        "Time zone",
        default="UTC",
        filters=[_strip],
        description="IANA name such as Europe/London or America/New_York; daylight saving time is followed.",
    )

    def validate_ranges(self, field) -> None:
        """Parse the ranges and write them back in the standard form (08:00-18:00; 22:00-02:00)."""
        try:
            field.data = format_ranges(parse_ranges(field.data or ""))
        except TimeProfileError as exc:
            raise StopValidation(str(exc)) from None
        if len(field.data) > 500:
            raise StopValidation("Too many ranges.")

    def validate_timezone(self, field) -> None:
        """An IANA zone the system knows."""
        try:
            zone(field.data or "")
        except TimeProfileError as exc:
            raise StopValidation(str(exc)) from None
