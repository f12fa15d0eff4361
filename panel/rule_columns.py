"""The columns of a routing rule, named once for what reads them by name: the rules file and its preview
(panel/plans/rules_csv.py), and the routing engine's read of the rules (panel/routing: its `routing_rules`
table and its rule entries can take the same lists)."""

# The numbers that keep a route out of a call or spread the calls (the rules file's columns in this order).
LIMITS = ("balancing", "min_length", "max_length", "min_asr", "min_acd", "capacity")

# What a rule routes to: its code, type and terminator (a client, an account or a policy).
TARGET = ("code", "type", "terminator_client_id", "terminator_account_id", "policy_id")

# What a rule says about its routes besides its target.
SETTINGS = (
    "priority",
    "pm_value",
    "pm_percent",
    "orig_tags",
    "orig_tags_mode",
    "term_tags",
    "time_profile_id",
    "expires_at",
    *LIMITS,
    "stop_hunt",
)
