"""Forms of the Routing Plans section: the plan, one rule (edited inline), the import, the searches."""

from decimal import Decimal

from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from panel.extensions import db
from panel.forms import VersionField
from panel.forms import choices as options
from panel.forms import optional_id as optional_int
from panel.models import Account, Client, Company, RoutingPlan, RoutingRule
from panel.models.routing import RULE_TYPES
from panel.plans import fields, lookups, service
from panel.scope import descendant_ids, scoped, usable_plans, usable_plans_condition, visible_companies

RULES_HUNTING_CHOICES = [("longest_only", "Longest only"), ("all_matching", "All matching")]
DR_ORDER_CHOICES = [("code_appeal", "By code/appeal"), ("appeal_code", "By appeal/code")]
MATCH_INCREMENTS_CHOICES = [
    ("disabled", "Disabled"),
    ("dynamic", "Dynamic only"),
    ("dynamic_static", "Dynamic and static"),
]
RULE_TYPE_CHOICES = [(t, fields.TYPE_LABELS[t]) for t in RULE_TYPES]
TAG_MODE_CHOICES = [("all", "all"), ("any", "any")]
IMPORT_MODES = [
    ("append", "Append: add the file's rules to the plan's rules"),
    ("replace", "Replace: the plan's rules become the file's rules"),
]


class PlanForm(FlaskForm):
    """Every field of a routing plan (SPEC §4), with the seed's defaults."""

    # The object's version when the form was drawn: a save on a stale form is a conflict.
    version = VersionField()

    name = StringField("Name", validators=[DataRequired("Give the plan a name."), Length(max=120)])
    company_id = SelectField("Reseller", coerce=int, description="The company that owns the plan.")
    additional_plan_id = SelectField(
        "Additional routing plan",
        coerce=optional_int,
        description="Its routes follow this plan's routes (not after a stop-hunt rule).",
    )
    code_deck_id = SelectField(
        "Code deck", coerce=optional_int, description="Names the rule codes in the rules table."
    )
    origination_limits = SelectMultipleField(
        "Origination limits",
        coerce=optional_int,
        description="Companies that may use the plan, with the companies below them. None: every company of "
        "the owner's tree. Ctrl-click (⌘-click) to choose several.",
    )
    termination_limits = SelectMultipleField(
        "Termination limits",
        coerce=optional_int,
        description="The plan terminates only to clients of these companies (companies below them not "
        "included). None: no limit. Ctrl-click (⌘-click) to choose several.",
    )
    loop_protection = BooleanField(
        "Routing loop protection",
        default=True,
        description="Never route a call back to the originating client (or to its own address).",
    )
    rules_hunting = SelectField(
        "Rules hunting", choices=options(RULES_HUNTING_CHOICES), default="longest_only"
    )
    dr_order = SelectField("DR order", choices=options(DR_ORDER_CHOICES), default="code_appeal")
    match_increments = SelectField(
        "Match increments", choices=options(MATCH_INCREMENTS_CHOICES), default="disabled"
    )
    profit_margin = StringField(
        "Profit margin", description="16% (of the customer rate) or 5 (per minute). Empty: none."
    )
    vendor_limit = StringField(
        "Vendor limit", description="Most routes to the same terminator client. Empty: no limit."
    )
    tags = StringField("Tags", description="Words separated by spaces.")
    notes = TextAreaField("Notes", validators=[Length(max=5000)])

    def __init__(self, *args, plan: RoutingPlan | None = None, show_limits: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.show_limits = show_limits
        self.clean: dict = {}
        companies = db.session.scalars(visible_companies()).all()
        company_choices = [(c.id, f"{c.name} ({c.kind_label})") for c in companies]
        self.company_id.choices = options(company_choices)
        self.additional_plan_id.choices = options(self._plan_choices(), "— none —")
        self.code_deck_id.choices = options(lookups.code_decks(), "— none —")
        if show_limits:
            self.origination_limits.choices = options(company_choices)
            self.termination_limits.choices = options(company_choices)
        else:
            # Hidden limits are neither shown nor changed.
            del self.origination_limits
            del self.termination_limits

    def _plan_choices(self) -> list[tuple[int, str]]:
        """Plans the user may pick as additional: those of its companies and those its company may use."""
        names = dict(db.session.execute(select(Company.id, Company.name)).all())
        seen = {}
        for stmt in (scoped(RoutingPlan), usable_plans(current_user.company_id)):
            for plan in db.session.scalars(stmt):
                if self.plan is None or plan.id != self.plan.id:
                    seen[plan.id] = f"{plan.name} ({names.get(plan.company_id, '?')})"
        return sorted(seen.items(), key=lambda item: item[1].lower())

    def validate_name(self, field) -> None:
        """Unique within the owner company."""
        field.data = (field.data or "").strip()
        owner = self.company_id.data
        stmt = select(RoutingPlan.id).where(RoutingPlan.company_id == owner, RoutingPlan.name == field.data)
        if self.plan is not None and self.plan.id:
            stmt = stmt.where(RoutingPlan.id != self.plan.id)
        if db.session.scalar(stmt) is not None:
            raise ValidationError(f"This company already has a routing plan named {field.data}.")

    def validate_company_id(self, field) -> None:
        """A plan may move only where the clients and accounts that use it may still use it."""
        if self.plan is None or self.plan.id is None or field.data == self.plan.company_id:
            return
        subtree = descendant_ids(field.data)
        users = db.session.execute(
            select(Client.name, Client.company_id).where(Client.routing_plan_id == self.plan.id)
        ).all()
        users += db.session.execute(
            select(Client.name, Client.company_id)
            .join(Account, Account.client_id == Client.id)
            .where(Account.orig_routing_plan_id == self.plan.id)
        ).all()
        outside = sorted({name for name, company_id in users if company_id not in subtree})
        if outside:
            raise ValidationError(
                f"Clients outside that company use this plan ({', '.join(outside[:8])}); "
                "they could not use it any more."
            )

    def validate_additional_plan_id(self, field) -> None:
        """Usable by the owner, not the plan itself, and not leading back to it."""
        if field.data is None:
            return
        problem = service.cycle_problem(self.plan, field.data)
        if problem:
            raise ValidationError(problem)
        owner = self.company_id.data
        usable = db.session.scalar(
            select(RoutingPlan.id).where(RoutingPlan.id == field.data, usable_plans_condition(owner))
        )
        if owner and usable is None:
            owner_name = db.session.get(Company, owner).name
            raise ValidationError(
                f"{owner_name} may not use that plan (its owner or its origination limits)."
            )

    def validate_origination_limits(self, field) -> None:
        """Only companies of the owner's tree."""
        subtree = descendant_ids(self.company_id.data) if self.company_id.data else frozenset()
        outside = [cid for cid in field.data or [] if cid not in subtree]
        if outside:
            names = db.session.scalars(select(Company.name).where(Company.id.in_(outside))).all()
            raise ValidationError(f"Not in the owner's company tree: {', '.join(sorted(names))}.")

    def validate_profit_margin(self, field) -> None:
        """16% or 5."""
        try:
            self.clean["pm"] = fields.parse_profit_margin(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def validate_vendor_limit(self, field) -> None:
        """A whole number of at least 1, or empty."""
        try:
            self.clean["vendor_limit"] = fields.parse_int(field.data, minimum=1, maximum=1000)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def validate_tags(self, field) -> None:
        """Space-separated words."""
        try:
            self.clean["tags"] = fields.parse_tags(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def fill(self, plan: RoutingPlan) -> None:
        """Show a plan's values (GET)."""
        self.process(obj=plan)
        self.profit_margin.data = plan.profit_margin
        self.vendor_limit.data = "" if plan.vendor_limit is None else str(plan.vendor_limit)
        if self.show_limits:
            self.origination_limits.data = [c.id for c in plan.origination_limits]
            self.termination_limits.data = [c.id for c in plan.termination_limits]

    def apply(self, plan: RoutingPlan) -> None:
        """Copy the validated values into the plan."""
        plan.name = self.name.data
        plan.company_id = self.company_id.data
        plan.additional_plan_id = self.additional_plan_id.data
        plan.code_deck_id = self.code_deck_id.data
        plan.loop_protection = bool(self.loop_protection.data)
        plan.rules_hunting = self.rules_hunting.data
        plan.dr_order = self.dr_order.data
        plan.match_increments = self.match_increments.data
        plan.pm_value, plan.pm_percent = self.clean.get("pm", (None, False))
        plan.vendor_limit = self.clean.get("vendor_limit")
        plan.tags = self.clean.get("tags", "")
        plan.notes = self.notes.data or ""
        if self.show_limits:
            plan.origination_limits = _companies(self.origination_limits.data)
            plan.termination_limits = _companies(self.termination_limits.data)


def _companies(ids: list[int] | None) -> list[Company]:
    """Companies by id, by name."""
    if not ids:
        return []
    return list(db.session.scalars(select(Company).where(Company.id.in_(ids)).order_by(Company.name)))


class RuleForm(FlaskForm):
    """One rule, edited inline in its row; the additional parameters open from the row."""

    class Meta:
        # The rule row posts through htmx with the CSRF header; its inputs have no token of their own.
        csrf = False

    priority = StringField("Priority", default="0")
    code = StringField("Code")
    type = SelectField("Type", choices=options(RULE_TYPE_CHOICES), default="static_client")
    terminator = SelectField("Terminator / policy", choices=[], validate_choice=False)
    profit_margin = StringField("PM")
    orig_tags = StringField("Originator tags")
    orig_tags_mode = SelectField("Originator tags mode", choices=options(TAG_MODE_CHOICES), default="all")
    term_tags = StringField("Terminator tags")
    time_profile_id = SelectField("Time profile", coerce=optional_int, validate_choice=False)
    expires_at = StringField("Expiration (UTC)")
    balancing = StringField("Balancing")
    min_length = StringField("Number length min")
    max_length = StringField("Number length max")
    min_asr = StringField("Min ASR (%)")
    min_acd = StringField("Min ACD (minutes)")
    capacity = StringField("Capacity")
    stop_hunt = BooleanField("Stop hunt")
    # The rule's version when the row was opened: a save on a stale row is a conflict (panel.writes).
    version = HiddenField()

    def __init__(self, *args, rule: RoutingRule | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.clean: dict = {}
        self.terminator.choices = self.terminator_choices(self.rule_type)
        profiles = lookups.time_profiles()
        current = rule.time_profile_id if rule is not None else None
        if current is not None and current not in {pid for pid, _ in profiles}:
            profiles.append((current, rule.time_profile.name if rule.time_profile else f"#{current}"))
        self.time_profile_id.choices = options(profiles, "— any time —")

    @property
    def rule_type(self) -> str:
        """The chosen type, or static_client while the choice is not a type (its error says so)."""
        return self.type.data if self.type.data in RULE_TYPES else "static_client"

    def terminator_choices(self, rule_type: str) -> list[SelectChoice]:
        """What the terminator picker offers for a rule type (and the rule's current terminator)."""
        if rule_type == "static_client":
            offered = lookups.terminator_clients()
            current = self.rule and self.rule.terminator_client_id
            current_label = self.rule and self.rule.terminator_client and self.rule.terminator_client.name
        elif rule_type == "static_account":
            offered = lookups.terminator_accounts()
            current = self.rule and self.rule.terminator_account_id
            account = self.rule and self.rule.terminator_account
            current_label = account and f"{account.client.name} / {account.name}"
        elif rule_type == "dynamic":
            offered = lookups.policies()
            current = self.rule and self.rule.policy_id
            current_label = self.rule and self.rule.policy and self.rule.policy.name
        else:
            return []
        if current and current not in {oid for oid, _ in offered}:
            offered.append((current, f"{current_label} (current)"))
        empty = "— choose —"
        if not offered and rule_type != "dynamic":
            # Static rules name terminators of the user's companies; a reseller with none of its own reaches
            # its provider's vendors through dynamic rules (SPEC §5 step 7), so the picker says so.
            empty = "— none of your clients has a terminator account: use a dynamic rule —"
        return options([(str(oid), label) for oid, label in offered], empty)

    def fill(self, rule: RoutingRule) -> None:
        """Show a rule's values (GET)."""
        self.version.data = str(rule.version or "")
        self.priority.data = str(rule.priority)
        self.code.data = rule.code
        self.type.data = rule.type
        self.terminator.choices = self.terminator_choices(rule.type)
        current = {
            "static_client": rule.terminator_client_id,
            "static_account": rule.terminator_account_id,
            "dynamic": rule.policy_id,
        }.get(rule.type)
        self.terminator.data = "" if current is None else str(current)
        self.profit_margin.data = rule.profit_margin
        self.orig_tags.data = rule.orig_tags
        self.orig_tags_mode.data = rule.orig_tags_mode
        self.term_tags.data = rule.term_tags
        self.time_profile_id.data = rule.time_profile_id
        self.expires_at.data = rule.expires_at.strftime("%Y-%m-%dT%H:%M") if rule.expires_at else ""
        for name in ("balancing", "min_length", "max_length", "capacity"):
            value = getattr(rule, name)
            getattr(self, name).data = "" if value is None else str(value)
        for name in ("min_asr", "min_acd"):
            value = getattr(rule, name)
            getattr(self, name).data = "" if value is None else format(value.normalize(), "f")
        self.stop_hunt.data = rule.stop_hunt

    @property
    def has_params(self) -> bool:
        """True when an additional parameter is set (the parameters then open with the row)."""
        names = ("orig_tags", "term_tags", "expires_at", "balancing", "min_length", "max_length")
        names += ("min_asr", "min_acd")
        return bool(self.time_profile_id.data) or any((getattr(self, n).data or "").strip() for n in names)

    @property
    def params_errors(self) -> bool:
        """True when an additional parameter has an error."""
        names = ("orig_tags", "orig_tags_mode", "term_tags", "time_profile_id", "expires_at", "balancing")
        names += ("min_length", "max_length", "min_asr", "min_acd")
        return any(getattr(self, n).errors for n in names)

    def validate(self, extra_validators=None) -> bool:
        """Parse every field with the rules shared with the CSV import, then check them together."""
        super().validate(extra_validators)
        parsers = {
            "priority": fields.parse_priority,
            "code": fields.parse_code,
            "profit_margin": fields.parse_profit_margin,
            "orig_tags": fields.parse_tags,
            "term_tags": fields.parse_tags,
            "expires_at": fields.parse_expires,
            "balancing": lambda v: fields.parse_int(v, minimum=0, maximum=1_000_000),
            "min_length": lambda v: fields.parse_int(v, minimum=0, maximum=64),
            "max_length": lambda v: fields.parse_int(v, minimum=0, maximum=64),
            "min_asr": lambda v: fields.parse_decimal(v, minimum=Decimal(0), maximum=Decimal(100)),
            "min_acd": lambda v: fields.parse_decimal(v, minimum=Decimal(0), maximum=Decimal(1440)),
            "capacity": lambda v: fields.parse_int(v, minimum=0, maximum=1_000_000),
        }
        for name, parse in parsers.items():
            try:
                self.clean[name] = parse(getattr(self, name).data)
            except ValueError as exc:
                getattr(self, name).errors.append(str(exc))
        self.clean["terminator"] = self._terminator()
        profiles = {choice.value for choice in self.time_profile_id.choices if choice.value != ""}
        if self.time_profile_id.data is not None and self.time_profile_id.data not in profiles:
            self.time_profile_id.errors.append("Choose one of the time profiles offered.")
        if not self.errors:
            values = {
                **self.clean,
                "type": self.type.data,
                "has_terminator": self.clean["terminator"] is not None,
            }
            for name, message in fields.rule_problems(values):
                getattr(self, name).errors.append(message)
        return not self.errors

    def _terminator(self) -> int | None:
        """The chosen terminator id, checked against what the picker offers."""
        value = (self.terminator.data or "").strip()
        if not value or self.rule_type == "did":
            return None
        offered = {choice.value for choice in self.terminator.choices if choice.value}
        if value not in offered:
            self.terminator.errors.append(f"Choose {fields.TERMINATOR_WHAT[self.rule_type]} from the list.")
            return None
        return int(value)

    def apply(self, rule: RoutingRule) -> None:
        """Copy the validated values into the rule."""
        clean = self.clean
        rule.priority = clean["priority"]
        rule.type = self.type.data
        rule.code = clean["code"] if rule.type != "did" else ""
        rule.terminator_client_id = clean["terminator"] if rule.type == "static_client" else None
        rule.terminator_account_id = clean["terminator"] if rule.type == "static_account" else None
        rule.policy_id = clean["terminator"] if rule.type == "dynamic" else None
        rule.pm_value, rule.pm_percent = clean["profit_margin"]
        rule.orig_tags = clean["orig_tags"]
        rule.orig_tags_mode = self.orig_tags_mode.data or "all"
        rule.term_tags = clean["term_tags"] if rule.type == "dynamic" else ""
        rule.time_profile_id = self.time_profile_id.data
        rule.expires_at = clean["expires_at"]
        for name in ("balancing", "min_length", "max_length", "min_asr", "min_acd", "capacity"):
            setattr(rule, name, clean[name])
        rule.stop_hunt = bool(self.stop_hunt.data)


class ImportForm(FlaskForm):
    """A rules file and the import mode."""

    file = FileField("CSV file")
    mode = RadioField("Mode", choices=options(IMPORT_MODES), default="append")


class PlanSearchForm(FlaskForm):
    """The plans list's quick and advanced search (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Search")
    company_id = SelectField("Reseller", coerce=optional_int, validate_choice=False)
    allowed_for = SelectField("Allowed for", coerce=optional_int, validate_choice=False)
    code_deck_id = SelectField("Code deck", coerce=optional_int, validate_choice=False)
    tag = StringField("Tag")
    additional_plan_id = SelectField("Additional plan", coerce=optional_int, validate_choice=False)
    term_client_id = SelectField("Terminator client", coerce=optional_int, validate_choice=False)


class RuleFilterForm(FlaskForm):
    """The rules tab's filter (GET, no CSRF)."""

    class Meta:
        csrf = False

    code = StringField("Code starts with")
    type = SelectField("Type", choices=options(RULE_TYPE_CHOICES, "any type"), validate_choice=False)
    terminator = StringField("Terminator / policy")
    state = SelectField(
        "State",
        choices=options([("active", "in use"), ("expired", "expired")], "all rules"),
        validate_choice=False,
    )
    expiring = SelectField("Expiring within", validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from panel import expiry

        self.expiring.choices = options(expiry.filter_choices(), "any expiry")
