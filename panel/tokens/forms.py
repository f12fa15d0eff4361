"""The new-token form."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length


class TokenForm(FlaskForm):
    """A token's name (which switch uses it) and the company whose accounts it may route."""

    name = StringField(
        "Name",
        validators=[
            DataRequired("Give the token a name, such as the switch that will use it."),
            Length(max=120),
        ],
        description="Which switch or gateway uses it, so you know what to revoke.",
    )
    company_id = SelectField(
        "Company",
        coerce=int,
        description="The token identifies only accounts of this company and the companies below it.",
    )
