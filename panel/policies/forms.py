"""The policy form: a name and the weight of each appeal factor (0 = the factor is not used)."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from panel.forms import IntegerField
from panel.forms import strip as _strip


def _weight(label: str, help_text: str) -> IntegerField:
    """A factor's weight: a whole number from 0 (not used) to 100."""
    return IntegerField(
        label,
        default=0,
        validators=[
            InputRequired("Give a weight (0 leaves the factor out)."),
            NumberRange(min=0, max=100, message="Use a whole number from 0 to 100."),
        ],
        description=help_text,
    )


class PolicyForm(FlaskForm):
    """Name, owner, weights, notes."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give the policy a name."), Length(max=120)]
    )
    company_id = SelectField("Company", coerce=int, validate_choice=True)
    rate_weight = _weight("Rate", "Lower vendor rate is better.")
    asr_weight = _weight("ASR", "Higher answer-seizure ratio is better.")
    acd_weight = _weight("ACD", "Longer average call duration is better.")
    pdd_weight = _weight("PDD", "Shorter post-dial delay is better.")
    notes = TextAreaField("Notes", filters=[_strip], validators=[Length(max=5000)])
