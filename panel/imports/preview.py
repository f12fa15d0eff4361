"""What an import would do, before it does it: a structured diff of the object's rows and the file's rows.

`diff(current, incoming, ...)` compares two streams of `(key, values)` pairs: rows whose key only the file has
are added, rows whose key only the object has are removed (in a replace), rows with the same key and other
values are changed. Keys may repeat (two rules with the same code and terminator): the n-th row of a key is
compared with the n-th. The diff keeps the counts and the first rows of each kind, and a fingerprint of the
object's current rows, which the confirmation compares so that a change made meanwhile stops the apply.

Other previews build on it (e.g. the routing effect of a rules import): see `extend` in panel.imports.flow.
"""

import hashlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

SAMPLE = 10


@dataclass
class Change:
    """One row the import would change: its key, the values before and after (display form)."""

    key: Hashable
    before: dict
    after: dict

    @property
    def changed_columns(self) -> list[str]:
        """The columns whose value differs."""
        return [c for c in self.after if self.before.get(c) != self.after.get(c)]


@dataclass
class Diff:
    """The effect of an import on one object: counts, the first rows of each kind, the data's fingerprint."""

    columns: list[str]
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    added_rows: list[dict] = field(default_factory=list)
    removed_rows: list[dict] = field(default_factory=list)
    changed_rows: list[Change] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def total(self) -> int:
        """Rows in the file."""
        return self.added + self.changed + self.unchanged

    @property
    def empty(self) -> bool:
        """True when the import would change nothing."""
        return not (self.added or self.removed or self.changed)


def fingerprint(rows: Iterable[tuple[Hashable, tuple]]) -> str:
    """A digest of `(key, values)` rows, independent of their order."""
    digest = hashlib.sha256()
    for line in sorted(repr(row) for row in rows):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def diff(
    current: Iterable[tuple[Hashable, tuple]],
    incoming: Iterable[tuple[Hashable, tuple]],
    columns: list[str],
    *,
    display: Callable[[Hashable, tuple], dict],
    replace: bool = True,
    sample: int = SAMPLE,
) -> Diff:
    """Compare the object's rows with the file's; `display(key, values)` gives a row as the page shows it.

    Without `replace`, rows the file does not name stay and are not counted as removed.
    """
    current = list(current)
    result = Diff(columns=columns, fingerprint=fingerprint(current))
    old: dict[Hashable, list[tuple]] = {}
    for key, values in current:
        old.setdefault(key, []).append(values)
    for key, values in incoming:
        matches = old.get(key)
        if not matches:
            result.added += 1
            if len(result.added_rows) < sample:
                result.added_rows.append(display(key, values))
            continue
        before = matches.pop(0)
        if before == values:
            result.unchanged += 1
            continue
        result.changed += 1
        if len(result.changed_rows) < sample:
            result.changed_rows.append(Change(key, display(key, before), display(key, values)))
    if replace:
        for key, rest in old.items():
            for values in rest:
                result.removed += 1
                if len(result.removed_rows) < sample:
                    result.removed_rows.append(display(key, values))
    return result
