"""What-if (issue 15): drain terminators, a plan's LCR sheet, and the preview of a change before applying it.

- `drain`: drain and restore a terminator account or a whole vendor client (SPEC §5 step 7, reason `drained`);
- `overlay`: a copy of a routing snapshot with one change applied in memory (nothing is written);
- `sheet`: route() over every code of a plan's deck for one originator and moment, and the difference of two
  such sheets (the what-if preview);
- `views`: the drain pages, the LCR sheet page and its CSV export, and the preview pages with apply/cancel.
"""

from flask import Blueprint

bp = Blueprint("whatif", __name__)

from panel.whatif import drain_views, import_hooks, preview_views, views  # noqa: E402,F401
