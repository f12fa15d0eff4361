"""The data model of SPEC §1-§8, one module per aggregate; importing this package registers every table.

Each model that belongs to a company says how once, as `__owner__` (a path of relationship steps ending in
the company id column); panel.scope derives the company scope and the audit log's owner from it.
"""

from panel.models.accounts import Account, AccountNetwork, Client, Gateway, account_gateways
from panel.models.audit import AuditEntry
from panel.models.companies import ApiToken, Company, LoginAttempt, User
from panel.models.imports import ImportUpload, ImportWorker
from panel.models.rates import Code, CodeDeck, Did, Policy, Rate, RateTable, TimeProfile
from panel.models.rollups import CallDay, CallHour
from panel.models.routing import RoutingPlan, RoutingRule, plan_origination_limits, plan_termination_limits
from panel.models.stats import CallStat, LiveCall, Quality
from panel.models.system import ImportJob, ManagerLease, ManagerRun

__all__ = [
    "Account",
    "AccountNetwork",
    "ApiToken",
    "AuditEntry",
    "CallDay",
    "CallHour",
    "CallStat",
    "Client",
    "Code",
    "CodeDeck",
    "Company",
    "Did",
    "Gateway",
    "ImportJob",
    "ImportUpload",
    "ImportWorker",
    "LiveCall",
    "LoginAttempt",
    "ManagerLease",
    "ManagerRun",
    "Policy",
    "Quality",
    "Rate",
    "RateTable",
    "RoutingPlan",
    "RoutingRule",
    "TimeProfile",
    "User",
    "account_gateways",
    "plan_origination_limits",
    "plan_termination_limits",
]
