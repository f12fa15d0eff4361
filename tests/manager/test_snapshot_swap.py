"""Routes in flight while the manager publishes new snapshots: each route uses one snapshot throughout."""

import threading
import time

import pytest

from panel import audit, manager, snapshots
from panel.extensions import db
from panel.routing.engine import RouteQuery, route


def _flip(routed, vox_first: bool) -> None:
    """Edit the rule priorities as the panel does (with an audit entry) so Vox or Tel comes first."""
    rule = routed.vox_rule
    before = audit.state(rule)
    rule.priority = 1 if vox_first else 3
    audit.record("update", rule, before=before)
    db.session.commit()


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_snapshot_swaps_under_concurrent_route_calls(app, routed):
    """Four threads route while the order of two vendors flips three times: every answer is whole and agrees
    with the snapshot it was computed on, both orders are seen, and new routes follow the last edit."""
    manager.run_once(app)
    manager.sync_snapshot(app)
    vox_rule, tel_rule = routed.vox_rule.id, routed.tel_rule.id
    vox, tel = routed.vox_gw.id, routed.tel_gw.id
    query = RouteQuery(number="441234567", account_id=routed.acme_main.id)
    done = threading.Event()
    routed_calls = [0]
    problems: list[str] = []
    firsts: set[int] = set()

    def worker() -> None:
        with app.app_context():
            while not done.is_set():
                snap = snapshots.get_snapshot()
                result = route(snap, query)
                order = [r.terminator_id for r in result.routes]
                vox_first = snap.rules[vox_rule].priority < snap.rules[tel_rule].priority
                if order != ([vox, tel] if vox_first else [tel, vox]):
                    problems.append(f"{order} on a snapshot where vox_first={vox_first}")
                firsts.add(order[0] if order else None)
                routed_calls[0] += 1
                time.sleep(0.001)  # leave the GIL to the manager between routes, as request handling does

    def wait_for_routes(count: int) -> None:
        target = routed_calls[0] + count
        deadline = time.monotonic() + 30
        while routed_calls[0] < target and time.monotonic() < deadline and not problems:
            time.sleep(0.005)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for vox_first in (False, True, False):
            wait_for_routes(50)
            _flip(routed, vox_first)
            run = manager.run_once(app)
            assert run.snapshot_published
            assert manager.sync_snapshot(app) is True
        wait_for_routes(50)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not problems, problems[:5]
    assert firsts == {vox, tel}
    assert [r.terminator_id for r in route(snapshots.get_snapshot(), query).routes] == [tel, vox]


def test_a_worker_forked_after_preload_updates_the_masters_snapshot(app, routed):
    """gunicorn preload (issue 16.2): the master builds the snapshot once; a worker forked from it starts with
    that snapshot and its first sync reads only what changed since, ending equal to a full build."""
    import gc
    import os

    from panel.routing.build import build_snapshot
    from panel.routing.compare import describe

    try:
        preloaded = snapshots.preload(app)
        _flip(routed, vox_first=True)  # an edit between the master's build and the worker's start
        manager.run_once(app)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: a fresh manager state, as panel.manager gives a forked process
            try:
                app.extensions.pop("panel_manager", None)
                with app.app_context():
                    started_with = snapshots.current() is preloaded
                    manager.sync_snapshot(app)
                    same = describe(snapshots.current()) == describe(build_snapshot(db.engine))
                    os.write(write, f"{started_with} {snapshots.last_changes()} {same}".encode())
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        answer = os.read(read, 1000).decode()
        os.close(read)
    finally:
        gc.unfreeze()
    assert status == 0
    assert answer == f"True plans [{routed.plan.id}], quality True"
