"""The gateway form."""

from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from panel.accounts import idents
from panel.forms import CompanyObjectForm, strip


class GatewayForm(CompanyObjectForm):
    """A switch node: its company, a name and the address it calls from."""

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
