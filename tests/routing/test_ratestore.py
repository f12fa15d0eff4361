"""Rate tables shared by the host's processes (panel/routing/ratestore.py): a mapped table answers every
lookup as the dict it was written from, one content makes one file whatever process writes it, files no
snapshot uses are removed, and a table that cannot be written is kept in memory."""

import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from panel import snapshots
from panel.routing.ratestore import PRUNE_GRACE_SECONDS, MappedRates, RateStore
from panel.routing.snapshot import INFINITY, RateTableData
from tests import factories as f
from tests.routing.conftest import run

START = 1_700_000_000.0
CODES = st.text("0123456789", min_size=1, max_size=4)
ROW = st.tuples(
    st.integers(0, 10**9),
    st.integers(0, 10**6),
    st.integers(0, 120),
    st.integers(1, 60),
    st.sampled_from([0.0, START, START + 86_400]),
    st.sampled_from([START + 3600, START + 86_400 * 2, INFINITY]),
)
TABLES = st.dictionaries(
    CODES,
    st.lists(ROW, min_size=1, max_size=3).map(lambda rows: tuple(sorted(set(rows), key=lambda r: -r[4]))),
)


def fresh_store(tmp_path, name="store") -> RateStore:
    """A store of its own, as a process that just started would have (not the per-directory singleton)."""
    return RateStore((tmp_path / name).resolve())


@settings(max_examples=60, deadline=None)
@given(rates=TABLES, other=TABLES, numbers=st.lists(st.text("0123456789", min_size=1, max_size=6)))
def test_a_mapped_table_answers_as_its_dict(tmp_path_factory, rates, other, numbers):
    store = fresh_store(tmp_path_factory.mktemp("rates"))
    store.table(2, other)  # another table first: the registry holds codes this one lacks
    mapped = MappedRates(store.table(1, rates))
    assert dict(mapped) == rates and len(mapped) == len(rates)
    in_memory = RateTableData(1, "T", "USD", rates)
    shared = RateTableData(1, "T", "USD", mapped)
    for number in numbers:
        codes = [number[:i] for i in range(len(number), 0, -1)]
        for ts in (START - 1, START + 10, START + 90_000, START + 86_400 * 3):
            assert shared.lookup(codes, ts) == in_memory.lookup(codes, ts)
            cids = [store.ids.get(c, 1 << 62) for c in codes]
            assert shared.find(codes, cids, ts) == in_memory.find(codes, None, ts)


def test_one_content_one_file_whatever_process_writes_it(tmp_path):
    rates = {"44": ((50_000, 0, 1, 1, 0.0, INFINITY),), "4420": ((40_000, 0, 60, 60, 0.0, INFINITY),)}
    first = fresh_store(tmp_path).table(7, rates)
    # A second process (its own registry read from the file) maps the same file instead of writing one.
    second = fresh_store(tmp_path).table(7, dict(reversed(list(rates.items()))))
    assert first.path == second.path and len(list((tmp_path / "store").glob("t*.rates"))) == 1
    assert first.path.stat().st_ino == second.path.stat().st_ino
    # A new content (a new price, a new code) is a new file; the old one still reads as before.
    third = fresh_store(tmp_path).table(7, {**rates, "4477": ((1, 0, 1, 1, 0.0, INFINITY),)})
    assert third.path != first.path
    assert dict(MappedRates(first)) == rates
    assert MappedRates(third)["4477"] == ((1, 0, 1, 1, 0.0, INFINITY),)


def test_a_code_with_hundreds_of_rows(tmp_path):
    rows = tuple((i, 0, 1, 1, START + (300 - i) * 60.0, START + (301 - i) * 60.0) for i in range(300))
    table = RateTableData(1, "T", "USD", MappedRates(fresh_store(tmp_path).table(1, {"1": rows})))
    assert table.rates["1"] == rows
    assert table.lookup(["1"], START + 100 * 60.0 + 1) == ("1", rows[200])
    assert table.lookup(["1"], START - 1) is None


def _age(*tables) -> None:
    """Files written longer ago than the prune's grace period."""
    past = time.time() - PRUNE_GRACE_SECONDS - 10
    for table in tables:
        os.utime(table.path, (past, past))


def test_unused_files_are_removed_and_a_mapped_one_still_reads(tmp_path):
    store = fresh_store(tmp_path)
    old = store.table(1, {"1": ((5, 0, 1, 1, 0.0, INFINITY),)})
    new = store.table(1, {"1": ((6, 0, 1, 1, 0.0, INFINITY),)})
    kept = store.table(2, {"2": ((7, 0, 1, 1, 0.0, INFINITY),)})
    # Just written: maybe what another process read a moment later than this one, so it stays a while.
    assert store.prune({new.name}) == 0 and old.path.exists() and kept.path.exists()
    _age(old, kept)
    assert store.prune({new.name}, table_ids={1}) == 1  # table 2's file is not table 1's business
    assert not old.path.exists() and new.path.exists() and kept.path.exists()
    assert MappedRates(old)["1"][0][0] == 5  # a snapshot still holding it routes on
    assert store.prune({new.name}) == 1 and not kept.path.exists()


def test_a_file_cut_short_is_written_again_and_every_user_of_the_host_can_map_it(tmp_path):
    rates = {"44": ((5, 0, 1, 1, 0.0, INFINITY),), "1": ((7, 0, 60, 60, 0.0, INFINITY),)}
    table = fresh_store(tmp_path).table(1, rates)
    assert table.path.stat().st_mode & 0o777 == 0o644
    size = table.path.stat().st_size
    with open(table.path, "r+b") as handle:  # a crash left half of it
        handle.truncate(size // 2)
    again = fresh_store(tmp_path).table(1, rates)  # another process finds the same name
    assert again is not None and again.path == table.path and again.path.stat().st_size == size
    assert dict(MappedRates(again)) == rates


def test_a_directory_emptied_under_a_process_keeps_the_rates_in_memory(tmp_path):
    store = fresh_store(tmp_path)
    store.table(1, {"1": ((5, 0, 1, 1, 0.0, INFINITY),)})
    for path in (tmp_path / "store").iterdir():
        path.unlink()
    fresh_store(tmp_path).table(3, {"9": ((1, 0, 1, 1, 0.0, INFINITY),)})  # a new registry, other ids
    assert store.table(2, {"2": ((6, 0, 1, 1, 0.0, INFINITY),)}) is None


def test_a_file_removed_while_this_process_maps_it_is_written_again_when_used_again(tmp_path):
    """Another process's prune may remove a file this process still maps; a build that reads the same content
    again must leave it in the directory (processes that start later map the files a manifest names)."""
    store = fresh_store(tmp_path)
    rates = {"1": ((5, 0, 1, 1, 0.0, INFINITY),)}
    first = store.table(1, rates)
    first.path.unlink()
    again = store.table(1, rates)
    assert again.path.exists() and again.name == first.name
    assert again.rows_of(again.slots[store.ids["1"]]) == rates["1"]


def test_the_panel_routes_from_the_host_files(world):
    from panel.extensions import db

    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id)
    db.session.commit()
    snap = snapshots.rebuild()
    store = snapshots.rate_store()
    files = {t.file for t in snap.rate_tables.values()}
    # Every table is mapped from the store's directory (which may still hold files of earlier data, kept for
    # the prune's grace period).
    assert None not in files and files <= {p.name for p in store.directory.glob("t*.rates")}
    assert snap.code_ids is store.ids
    result = run("4420123", snap=snap)
    assert [r.terminator_id for r in result.routes] == [
        world.v1.account.id,
        world.v2.account.id,
        world.v3.account.id,
    ]
    assert [r.vendor_row[0] for r in result.routes] == [50_000, 60_000, 70_000]
    # A rebuild of the same data maps the same files (none written again).
    inodes = {name: (store.directory / name).stat().st_ino for name in files}
    again = snapshots.rebuild()
    assert {t.file for t in again.rate_tables.values()} == files
    assert inodes == {name: (store.directory / name).stat().st_ino for name in files}
