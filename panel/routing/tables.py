"""The tables routing reads, as lightweight Core references (no ORM objects, no Flask): a build reads raw
values and converts them itself (`panel.routing.build`, `panel.routing.plans`, the rates by columns in
`panel.routing.rateread`)."""

from sqlalchemy import column, table

from panel import rule_columns


def _table(name: str, columns: str):
    """A table reference with these columns (names separated by spaces)."""
    return table(name, *(column(c) for c in columns.split()))


companies = _table("companies", "id parent_id name")
clients = _table(
    "clients",
    "id company_id name orig_rate_table_id term_rate_table_id routing_plan_id drained_at drained_until",
)
accounts = _table(
    "accounts",
    "id client_id name ident_by ident_value tech_prefix orig_enabled orig_rate_table_id "
    "orig_routing_plan_id orig_tags orig_capacity term_enabled term_rate_table_id term_tags term_capacity "
    "protocol proxy port drained_at drained_until",
)
account_networks = _table("account_networks", "account_id network position")
account_gateways = _table("account_gateways", "account_id gateway_id")
gateways = _table("gateways", "id company_id name address")
policies = _table("policies", "id name rate_weight asr_weight acd_weight pdd_weight")
time_profiles = _table("time_profiles", "id weekdays ranges timezone")
dids = _table("dids", "number account_id")
plans = _table(
    "routing_plans",
    "id name company_id additional_plan_id code_deck_id loop_protection rules_hunting dr_order "
    "match_increments vendor_limit pm_value pm_percent",
)
origination_limits = _table("plan_origination_limits", "plan_id company_id")
termination_limits = _table("plan_termination_limits", "plan_id company_id")
# A rule's columns as the rules file names them (panel.rule_columns), with its id and plan.
rules = _table("routing_rules", " ".join(("id", "plan_id", *rule_columns.TARGET, *rule_columns.SETTINGS)))
codes = _table("codes", "code_deck_id code name")
quality = _table("quality", "term_account_id code attempts asr acd pdd_ms")
audit_entries = _table("audit_entries", "id at object_type object_id action before after")
rate_tables = _table("rate_tables", "id name currency")
rates = _table("rates", "rate_table_id code rate setup_fee min_time interval effective_from end")
