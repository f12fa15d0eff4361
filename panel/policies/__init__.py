"""Dynamic routing policies: the weights of the appeal factors (rate, ASR, ACD, PDD) of SPEC §5 step 8."""

from flask import Blueprint

bp = Blueprint("policies", __name__)

from panel.policies import views  # noqa: E402,F401
