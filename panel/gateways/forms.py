"""The gateway form."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from panel.accounts import idents
from panel.forms import VersionField, strip
from panel.forms import optional_id as optional_int


class GatewayForm(FlaskForm):
    """A switch node: its company, a name and the address it calls from."""

    # The object's version when the form was drawn: a save on a stale form is a conflict.
    version = VersionField()

    company_id = SelectField(
        "Company", coerce=optional_int, validators=[InputRequired("Choose the company.")]
    )
    name = StringField("Name", filters=[strip], validators=[DataRequired("Enter a name."), Length(max=120)])
    address = StringField(
        "Address",
        filters=[strip],
        validators=[Length(max=255)],
        description="The node's host or IP, optionally with :port (192.0.2.10, sbc1.example.net:5060).",
    )
    notes = TextAreaField("Notes", validators=[Length(max=5000)])

    def validate_address(self, field) -> None:
        """A host name or IP address with an optional port (the proxy syntax)."""
        from wtforms.validators import ValidationError

        try:
            field.data = idents.normalise_proxy(field.data)
        except idents.IdentError as error:
            raise ValidationError(str(error)) from error
