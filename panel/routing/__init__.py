"""The routing engine (SPEC §5): plain Python, no Flask and no database session.

`build.build_snapshot(connection)` reads everything routing needs in one read and returns an immutable
`snapshot.Snapshot`; `engine.route(snapshot, query)` computes the routes of one call from it. The route test
page, the switch API and the benchmark all call the same `route()`.
"""

from panel.routing.engine import Result, RouteQuery, route

__all__ = ["Result", "RouteQuery", "route"]
