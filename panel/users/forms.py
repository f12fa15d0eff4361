"""Forms of the users section: create a user, change its details and role, reset its password."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp

from panel.forms import choices, no_control_characters, strip
from panel.models.companies import ROLES

ROLE_LABELS = {
    "admin": "Admin: edits data and manages users and companies",
    "operator": "Operator: edits data",
    "viewer": "Viewer: reads only",
}
USERNAME_RULE = Regexp(r"^[A-Za-z0-9._@-]+$", message="Use letters, digits and . _ @ - only.")
EMAIL_RULE = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an e-mail address like name@example.com.")


class UserEditForm(FlaskForm):
    """A user's name, e-mail, company and role."""

    full_name = StringField("Full name", validators=[Length(max=120), no_control_characters], filters=[strip])
    email = StringField("E-mail", validators=[Optional(), Length(max=200), EMAIL_RULE], filters=[strip])
    company_id = SelectField("Company", coerce=int, validate_choice=False)
    role = SelectField("Role", choices=choices([(r, ROLE_LABELS[r]) for r in ROLES]), default="viewer")


class UserForm(UserEditForm):
    """A new user: the edit fields plus a username and a first password."""

    username = StringField(
        "Username", validators=[DataRequired(), Length(min=3, max=80), USERNAME_RULE], filters=[strip]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")]
    )


class PasswordResetForm(FlaskForm):
    """An admin sets a new password for a user; the user's sessions end."""

    new = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("new", "The passwords differ.")]
    )
