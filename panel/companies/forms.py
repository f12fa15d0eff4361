"""Forms of the companies section: create a company under one of the admin's companies, rename it."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from panel.forms import VersionField, no_control_characters, no_nul, strip
from panel.models.companies import COMPANY_KIND_LABELS

# Which kinds a company may hold (SPEC §1): resellers under the operator; sub-resellers and managers under
# resellers and sub-resellers; a manager holds no companies (and owns no balance or rate tables).
CHILD_KINDS: dict[str, tuple[str, ...]] = {
    "root": ("reseller",),
    "reseller": ("sub_reseller", "manager"),
    "sub_reseller": ("sub_reseller", "manager"),
    "manager": (),
}


def kinds_label(kinds: tuple[str, ...]) -> str:
    """`Sub-resellers and Managers` in the operator's words."""
    names = [COMPANY_KIND_LABELS[k] + "s" for k in kinds]
    return " and ".join(names) if names else "no companies"


class CompanyForm(FlaskForm):
    """A new company: its name, kind, parent and notes."""

    name = StringField(
        "Name", validators=[DataRequired(), Length(max=120), no_control_characters], filters=[strip]
    )
    parent_id = SelectField("Parent company", coerce=int, validate_choice=False)
    kind = SelectField(
        "Kind",
        choices=[SelectChoice(k, COMPANY_KIND_LABELS[k]) for k in ("reseller", "sub_reseller", "manager")],
        description="Operator > Resellers > Sub-resellers and Managers. A manager holds no companies, "
        "balances or rate tables.",
    )
    notes = TextAreaField("Notes", validators=[Length(max=2000), no_nul])


class CompanyEditForm(FlaskForm):
    """Rename a company or change its notes (kind and parent stay as created)."""

    # The object's version when the form was drawn: a save on a stale form is a conflict.
    version = VersionField()

    name = StringField(
        "Name", validators=[DataRequired(), Length(max=120), no_control_characters], filters=[strip]
    )
    notes = TextAreaField("Notes", validators=[Length(max=2000), no_nul])
