"""gunicorn settings for workers that start routing at once: `gunicorn -c python:panel.gunicorn_preload
--workers 4 --threads 4 wsgi:app`.

The master loads the app (`preload_app`) and, before it forks each worker, brings the routing snapshot up to
date (a full build before the first worker, an incremental update before a worker that replaces one). Every
worker starts with that snapshot: its rate tables are the host's shared files (`panel.routing.ratestore`,
mapped by every process), the rest is shared with the master page by page (copy-on-write) until the
worker's incremental syncs (`panel.snapshots`) replace it. Workers are replaced now and then
(`max_requests`, with jitter so they are not all replaced at once), so what their updates made private is
given back and a new worker shares the master's fresh snapshot again.

The master runs no Traffic Rules manager: it is stopped before the first fork (a thread must not be running
while a process forks), and each worker starts its own (`panel.manager`).
"""

preload_app = True
# Workers are recycled after this many requests (plus up to `max_requests_jitter`), each one at its turn.
max_requests = 200_000
max_requests_jitter = 20_000


def pre_fork(server, _worker) -> None:
    """In the master, before each fork: stop its manager thread, refresh the snapshot, close connections."""
    from panel import manager, snapshots

    app = server.app.wsgi()
    manager.stop(app)
    snapshots.preload(app)
