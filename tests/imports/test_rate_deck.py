"""The rate deck's column-by-column read: the same rates and the same per-line errors as the row parser."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.imports import reader
from panel.imports.jobs import ImportFailed
from panel.models import Rate
from panel.rates import deck as deck_reading
from panel.rates import importer
from tests import factories

START = datetime(2024, 6, 1, tzinfo=UTC)
HEADER = "code,name,rate,effective_from,end,setup_fee,min_time,interval"


def _expected(text: str):
    """The rows and errors of the line-by-line row parser (the reference)."""
    return reader.parse(
        text.encode(),
        deck_reading.RATE_COLUMNS,
        deck_reading.rate_row_parser(1, START),
        required=deck_reading.REQUIRED_COLUMNS,
    )


GOOD_DECKS = {
    "plain": HEADER
    + "\n44,UK,0.012,2024-01-01,,,60,60\n4420,UK London,0.0095,2024-01-01 00:00,2025-01-01,0.01,30,6\n",
    "quoted cells": HEADER + '\n44,"Korea, Republic of",0.1,,,,,\n"4420","UK ""London""",0.2,,,,,\n',
    "crlf": HEADER + "\r\n44,UK,0.1,2024-01-01,,,,\r\n49,Germany,0.2,2024-01-01,,,,\r\n",
    "cr only": HEADER + "\r44,UK,0.1,,,,,\r49,Germany,0.2,,,,,\r",
    "blank lines": HEADER + "\n\n44,UK,0.1,,,,,\n   \n\n49,Germany,0.2,,,,,\n\n",
    "spaces": HEADER + "\n 4420 , UK London ,0.0095 , 2024-01-01 ,,, 30 , 6 \n",
    "odd numbers": HEADER
    + "\n447,UK Mobile,1E-3,,,,,\n55,Trailing zeros,0.12345600,,,,,\n56,Int,7,,,0,0,1\n",
    "formula names": HEADER + "\n57,'=Formula,0.1,,,,,\n58,'-Minus,0.1,,,,,\n",
    "columns in another order": "rate,interval,code\n0.1,60,44\n0.2,,49\n",
    "one code, several dates": HEADER
    + "\n44,UK,0.1,2024-01-01,2024-02-01,,,\n44,UK,0.2,2024-02-01,,,,\n44,UK,0.3,,,,,\n",
    "undated only": "code,rate\n44,0.1\n49,0.2\n",
    "names at the limit": "code,name,rate\n44," + "x" * 120 + ",0.1\n",
}


@pytest.mark.parametrize("name", list(GOOD_DECKS))
def test_a_good_deck_is_read_column_by_column_with_the_row_parsers_values(app, name):
    """Every good deck takes the column path, and gives exactly the rates the row parser gives."""
    text = GOOD_DECKS[name]
    rows, errors = _expected(text)
    assert errors == [] and rows
    columns, required = deck_reading.RATE_COLUMNS, deck_reading.REQUIRED_COLUMNS
    table, _ = reader.open_table(text.encode(), columns, required=required)
    deck = deck_reading.plain_deck(1, table, START)
    assert deck is not None, "the deck should not need the line-by-line read"
    assert deck.rows() == rows
    assert deck_reading.parse_deck(1, text.encode(), START) == rows
    # Undated lines start at the very moment given (the import's "unchanged" rule relies on it).
    undated = [r for r in deck.rows() if r["effective_from"] is START]
    assert len(undated) == sum(1 for r in rows if r["effective_from"] == START)


@pytest.mark.parametrize("name", list(GOOD_DECKS))
def test_sorted_lines_give_the_row_parsers_rates_in_code_order(app, name):
    """A deck whose first column is the code goes by its sorted lines (PostgreSQL's COPY starts after the
    sort): chunk by chunk, the rates are the row parser's, in code order; a line that cannot be cut by its
    commas (a blank one with spaces) stops the chunks with NotPlain (the line-by-line read then decides)."""
    text = GOOD_DECKS[name]
    rows, _errors = _expected(text)
    table, _ = reader.open_table(text.encode(), deck_reading.RATE_COLUMNS, required=["code", "rate"])
    lines = deck_reading.deck_lines(1, table, START)
    if table.header[0] != "code" or table.unquote or '"' in text or "\r" in text.replace("\r\n", ""):
        assert lines is None
        return
    if name == "blank lines":
        with pytest.raises(deck_reading.NotPlain):
            list(lines.chunks(2))
        return
    got = [
        dict(zip(deck_reading.WRITE_COLUMNS, values, strict=True))
        for chunk in lines.chunks(2)
        for values in zip(*(chunk[c] for c in deck_reading.WRITE_COLUMNS), strict=True)
    ]
    codes = [r["code"] for r in got]
    assert codes == sorted(codes)
    for row in got:  # plain decimal rates go to COPY as their cells: the database reads them as decimals
        row["rate"] = Decimal(row["rate"])

    def key(row):
        return row["code"], row["effective_from"]

    assert sorted(got, key=key) == sorted(rows, key=key)


BAD_DECKS = {
    "same code and moment twice": HEADER
    + "\n44,UK,0.1,2024-01-01,,,,\n49,DE,0.1,,,,,\n44,UK,0.2,2024-01-01 00:00,,,,\n",
    "same undated code twice": "code,rate\n44,0.1\n44,0.2\n",
    "a code thrice, first and last at one moment": (
        "code,rate,effective_from\n44,0.1,2024-01-01\n45,0.1,\n"
        "44,0.2,2024-02-01\n44,0.3,2024-01-01 00:00:00\n"
    ),
    "a line with more cells": HEADER + "\n44,UK,0.1,,,,,\n45,too,many,cells,,,,,\n",
    "a line with fewer cells": HEADER + "\n44,UK,0.1,,,,,\n45,UK,0.1\n",
    "end before effective_from": HEADER + "\n44,UK,0.1,2024-02-01,2024-01-01,,,\n",
    "end on effective_from": HEADER + "\n44,UK,0.1,2024-02-01,2024-02-01 00:00,,,\n",
    "a bad code late in the file": "code,rate\n"
    + "".join(f"{440 + i},0.1\n" for i in range(50))
    + "4x,0.1\n",
    "a code too long": "code,rate\n" + "1" * 33 + ",0.1\n",
    "a name too long": "code,name,rate\n44," + "x" * 121 + ",0.1\n",
    "an empty rate": "code,rate\n44,\n",
    "a negative fee": HEADER + "\n44,UK,0.1,,,-1,,\n",
    "too many decimals": "code,rate\n44,0.1234567\n",
    "a bad interval": HEADER + "\n44,UK,0.1,,,,1,0\n",
    "a bad date": HEADER + "\n44,UK,0.1,2024-13-01,,,,\n",
    "an unreadable line": 'code,rate\n44,0.1\n"45,0.2\n',
}


@pytest.mark.parametrize("name", list(BAD_DECKS))
def test_a_wrong_line_is_reported_as_the_row_parser_reports_it(app, name):
    """A deck with a wrong line is refused with the row parser's `line N, column: message` list."""
    text = BAD_DECKS[name]
    _rows, errors = _expected(text)
    with pytest.raises(ImportFailed) as failed:
        deck_reading.parse_deck(1, text.encode(), START)
    assert errors and failed.value.errors == errors


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3,4\n",
        "a,b\r\n1,2\r\n\r\n3,4\r\n",
        "a,b\r1,2\r3,4",
        'a,b\n"1,x",2\n"multi\nline",4\n',
        "a,b\n1,2\n  \n3,4\n\n",
        "a,b\n",
    ],
)
def test_the_readers_columns_are_the_csv_readers_rows(app, text):
    """A file cut column by column holds what the CSV reader reads, blank lines left out."""
    table, _ = reader.open_table(text, ["a", "b"])
    rows = [r for r in list(csv.reader(io.StringIO(text, newline="")))[1:] if r and any(c.strip() for c in r)]
    assert table.columns() == [[r[0] for r in rows], [r[1] for r in rows]]


@pytest.mark.parametrize("text", ["a,b\n1,2\n3\n", "a,b\n1,2\n3,4,5\n", 'a,b\n1,2\n"3,4\n'])
def test_the_readers_columns_leave_an_uneven_or_unreadable_file_to_the_line_by_line_read(app, text):
    """A row with another number of cells, or a line the CSV reader cannot read: no columns (None)."""
    table, _ = reader.open_table(text, ["a", "b"])
    assert table.columns() is None


def _stored(table_id: int) -> list[tuple]:
    db.session.expire_all()
    columns = [getattr(Rate, c) for c in deck_reading.RATE_COLUMNS]
    return [tuple(r) for r in db.session.execute(select(*columns).where(Rate.rate_table_id == table_id))]


def test_a_shuffled_deck_is_stored_as_written_on_both_databases(app, tree):
    """Lines in any order, several dates per code, ends and fees: each stored rate is its line's values;
    the same deck again is all unchanged; replace with a smaller deck leaves exactly that deck."""
    table = factories.rate_table(tree.alpha, "Shuffled")
    db.session.commit()
    lines = []
    for i in range(3000):
        code = str(4400 + (i * 7919) % 3000)  # every code once, not in order
        lines.append(f"{code},Name {i % 7},0.{i:06d},2024-01-01,,0.5,30,6")
        if i % 3 == 0:
            lines.append(f"{code},Name {i % 7},1.{i:06d},2024-03-01 12:30,2025-01-01,,,")
    deck = ("code,name,rate,effective_from,end,setup_fee,min_time,interval\n" + "\n".join(lines)).encode()
    note = importer.import_rates(table.id, deck, "add_update")
    assert "4,000 added, 0 changed, 0 unchanged" in note
    expected = {
        (
            code,
            name,
            Decimal(rate),
            datetime.fromisoformat(effective).replace(tzinfo=UTC),
            datetime.fromisoformat(end).replace(tzinfo=UTC) if end else None,
            Decimal(fee or "0"),
            int(min_time or 1),
            int(interval or 1),
        )
        for code, name, rate, effective, end, fee, min_time, interval in (line.split(",") for line in lines)
    }
    assert set(_stored(table.id)) == expected
    assert "0 added, 0 changed, 4,000 unchanged" in importer.import_rates(table.id, deck, "add_update")
    changed = deck.replace(b",0.000003,", b",0.5,")
    assert "0 added, 1 changed, 3,999 unchanged" in importer.import_rates(table.id, changed, "add_update")

    smaller = b"code,rate,effective_from\n44,0.1,2024-01-01\n4401,0.2,2024-01-01\n"
    assert "Replaced the table's 4,000 rates with 2 rates" in importer.import_rates(
        table.id, smaller, "replace"
    )
    assert sorted((c, r) for c, _n, r, *_ in _stored(table.id)) == [
        ("44", Decimal("0.1")),
        ("4401", Decimal("0.2")),
    ]


def test_a_deck_with_a_wrong_line_writes_nothing_on_both_databases(app, tree):
    """All or nothing: a duplicate line late in a deck leaves the table as it was."""
    table = factories.rate_table(tree.alpha, "Dupes")
    db.session.commit()
    importer.import_rates(table.id, b"code,rate,effective_from\n44,0.1,2024-01-01\n", "add_update")
    before = _stored(table.id)
    lines = [f"{5000 + i},0.01,2024-01-01" for i in range(2000)] + ["777,0.2,2024-01-01 00:00:00"]
    lines.insert(10, "777,0.1,2024-01-01")
    deck = ("code,rate,effective_from\n" + "\n".join(lines) + "\n").encode()
    with pytest.raises(ImportFailed) as failed:
        importer.import_rates(table.id, deck, "replace")
    assert failed.value.errors == ["line 2003, code: 777 from 2024-01-01 00:00:00 is already on line 12"]
    db.session.rollback()
    assert _stored(table.id) == before


def test_a_wrong_rate_found_while_the_rows_are_written_writes_nothing(app, tree):
    """On PostgreSQL an empty table's rows go by COPY while their rates are still being checked: a wrong
    rate late in the deck rolls it all back, reported like any wrong line; then the good deck imports."""
    table, deck = _refused_big_deck(
        tree,
        "Late",
        30_000,
        29_990,
        "469990,UK,0.01x,2024-01-01",
        "line 29992, rate: '0.01x' is not a number (write it like 0.0125)",
    )
    good = deck.replace(b"0.01x", b"0.02")
    assert "30,000 added" in importer.import_rates(table.id, good, "add_update")
    assert len(_stored(table.id)) == 30_000
    with pytest.raises(ImportFailed):
        importer.import_rates(table.id, deck, "replace")  # replace: the deleted rates come back too
    db.session.rollback()
    assert len(_stored(table.id)) == 30_000


def test_a_repeated_code_and_moment_early_in_a_big_deck_is_reported_on_both_databases(app, tree):
    """A code and effective_from twice near the start of a deck (on PostgreSQL the unique key refuses it
    while the COPY still runs) is reported as the row parser reports it, and nothing is written."""
    _refused_big_deck(
        tree,
        "Early",
        60_000,
        3,
        "440000,UK,0.02,2024-01-01 00:00",
        "line 5, code: 440000 from 2024-01-01 00:00:00 is already on line 2",
    )


def _refused_big_deck(tree, name: str, count: int, at: int, wrong_line: str, error: str):
    """A table and a deck of `count` good lines with `wrong_line` in place of line `at`: the import refuses it
    with `error` alone (as the row parser words it) and writes nothing. Returns (table, deck)."""
    table = factories.rate_table(tree.alpha, name)
    db.session.commit()
    lines = [f"{440000 + i},UK,0.01,2024-01-01" for i in range(count)]
    lines[at] = wrong_line
    deck = ("code,name,rate,effective_from\n" + "\n".join(lines) + "\n").encode()
    _rows, expected = _expected(deck.decode())
    with pytest.raises(ImportFailed) as failed:
        importer.import_rates(table.id, deck, "add_update")
    assert failed.value.errors == expected == [error]
    db.session.rollback()
    assert _stored(table.id) == []
    return table, deck


def test_an_error_on_line_240000_of_a_250000_line_deck_keeps_nothing_on_both_databases(app, tree):
    """The benchmark's size: on PostgreSQL most rows are in the table when line 240,000 turns out wrong;
    the import still keeps nothing and reports that line alone."""
    _refused_big_deck(
        tree,
        "Quarter million",
        250_000,
        239_998,
        "679998,UK,-0.01,2024-01-01",
        "line 240000, rate: the rate cannot be negative",
    )


def test_a_line_the_comma_cut_cannot_take_sends_the_deck_line_by_line(app, tree):
    """A blank line of spaces in a big deck: the chunks stop (on PostgreSQL after some went by COPY), the
    line-by-line read finds nothing wrong, and every rate is written once."""
    table = factories.rate_table(tree.alpha, "Spaces")
    db.session.commit()
    lines = [f"{440000 + i},UK,0.01,2024-01-01" for i in range(30_000)]
    lines[25_000] = "   "
    deck = ("code,name,rate,effective_from\n" + "\n".join(lines) + "\n").encode()
    assert "29,999 added" in importer.import_rates(table.id, deck, "add_update")
    assert len(_stored(table.id)) == 29_999
