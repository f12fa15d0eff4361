"""Rate tables shared by the processes of a host: one compact, immutable file per table version, mapped.

A rate table's rates (code -> rows, see `snapshot.RateTableData`) are by far the bulk of the routing data.
Held as Python dicts they are copied into every worker: reading a dict entry writes its objects' reference
counts, and every rebuild or update allocates new ones. So the panel writes each rate table once per host
into a file that every process maps read-only (`mmap`): the kernel keeps one copy of its pages for all of
them, and a read never writes to them.

The directory (`RateStore`, one per database and host, `ROUTING_DATA_DIR`) holds:

- `codes`: the **code registry**, every code any table file of the directory holds, one a line, in the order
  they were first written; a code's line number is its **code id**, the same in every process. The file only
  grows (a code that no table prices any more keeps its id), so a table file written earlier stays valid.
  Each process keeps a dict code -> id of it (a few MB), read again from where it stopped when a table file
  needs codes it has not read yet;
- `t<table id>-<digest>.rates`: one table's rates, named after the table and a digest of its content, so
  every process that reads the same content from the database finds the same file, however it got there (a
  full build, an incremental update, a process that started later). A file is an array **code id -> slot**
  (0: no rate for that code; else the index of the code's first row in the rows area and its count of
  rows; up to the highest code id the table prices) followed by the rows (rate, setup fee, minimum time,
  interval in int64, effective from and end in float64 POSIX seconds), equal rows written once, in a
  canonical order: the same content makes the same bytes in every process of the host;
- `manifest.json`: the newest state a process of the host read (which files held which tables at which
  audit position; its codes in `codes-<digest>.ids`), so a process that starts maps those files and reads
  only what changed since (`panel.routing.update.start_from_host`);
- `lock`: the file lock (`fcntl.flock`) under which the registry is appended to and files are written and
  removed. A process that finds the file of the version it read maps it without the lock; one that does not
  takes the lock, looks again (another process may have just written it), and writes it (to a temporary
  name, then renamed, so a file is complete whenever it exists).

Looking a code up is two array reads (the code id, computed once per call for all the call's tables; the
slot) and unpacking the row: a few hundred nanoseconds, close to a dict's. Files no snapshot uses any more
(and older than PRUNE_GRACE_SECONDS) are removed by `prune` after a full build (and the replaced version of
a table after an update); a process that still maps a removed file keeps reading it (Linux frees it when
the last mapping goes).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import struct
import tempfile
import threading
import time
import weakref
from array import array
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

MAGIC = b"PANELRT1"
# magic, registry generation, slot count, slot width (4 or 8 bytes), slot shift (the row count's bits), row
# count, code count
HEADER = struct.Struct("<8s16sQQQQQ")
ROW = struct.Struct("<qqqqdd")
ROW_SIZE = ROW.size
# A code id beyond every table's slots (a code no file holds).
NO_CODE = 1 << 62
# A table file younger than this is never pruned (see RateStore.prune).
PRUNE_GRACE_SECONDS = 300
# The newest state some process of the host read: which table files held the rate tables at which audit
# position (RateStore.save_manifest); a process that starts maps them and reads only what changed since.
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

log = logging.getLogger(__name__)


class StaleRegistry(Exception):
    """The directory's code registry is not the one this process read (someone removed it)."""


class DamagedFile(ValueError):
    """A table file whose size does not match its header (cut short by a crash): written again."""


class CodeRegistry:
    """This process's view of a directory's code registry: code -> id and id -> code.

    The file starts with a line naming its generation (random), which every table file repeats: a table file
    of another registry (the directory emptied by hand while processes ran) is never read with this one.
    """

    def __init__(self, path: Path):
        self.path = path
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.generation = b""
        self._offset = 0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the codes appended since the last read (complete lines only)."""
        with self._lock:
            try:
                with open(self.path, "rb") as handle:
                    first = handle.readline()
                    if self.generation and not first.startswith(b"#" + self.generation.hex().encode()):
                        raise StaleRegistry(str(self.path))
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                if self.generation:
                    raise StaleRegistry(str(self.path)) from None
                return
            end = data.rfind(b"\n") + 1
            if not end:
                return
            lines = data[:end].decode().split("\n")[:-1]
            if not self.generation:
                self.generation = bytes.fromhex(lines.pop(0)[1:])
            ids, names = self.ids, self.names
            for code in lines:
                ids[code] = len(names)
                names.append(code)
            self._offset += end

    def ensure(self, codes) -> None:
        """Append the codes the registry lacks, creating it when missing (the caller holds the lock)."""
        if any("\n" in code for code in codes):
            raise ValueError("a code with a line break")
        if not self.generation and not self.path.exists():
            with open(self.path, "xb") as handle:
                handle.write(b"#" + os.urandom(16).hex().encode() + b"\n")
        self.refresh()
        ids = self.ids
        new = [code for code in codes if code not in ids]
        if new:
            # A line cut short by a crash (bytes past the last complete line) is ended first, so it can never
            # run into the first new code.
            torn = self.path.stat().st_size > self._offset
            with open(self.path, "ab") as handle:
                handle.write((("\n" if torn else "") + "\n".join(new) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())  # before any table file that uses these ids
            self.refresh()


class MappedTable:
    """One mapped rate table file: its slots (code id -> slot) and its rows."""

    __slots__ = ("path", "name", "slots", "count", "rows", "shift", "mask", "codes", "registry", "_map")
    __slots__ += ("__weakref__",)

    def __init__(self, path: Path, registry: CodeRegistry):
        self.path = path
        self.name = path.name
        self.registry = registry
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < HEADER.size:
                raise DamagedFile(f"{path.name}: shorter than its header")
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        magic, generation, count, width, shift, rows, codes = HEADER.unpack_from(self._map, 0)
        expected = (HEADER.size + count * width + 7) // 8 * 8 + rows * ROW_SIZE
        if magic != MAGIC or width not in (4, 8) or len(self._map) != expected:
            size = len(self._map)
            self._map.close()
            raise DamagedFile(f"{path.name}: {size} bytes, not a whole rate table file")
        if count > len(registry.names) or not registry.generation:
            registry.refresh()
        if generation != registry.generation or count > len(registry.names):
            raise StaleRegistry(path.name)
        view = memoryview(self._map)
        start = HEADER.size
        end = start + count * width
        self.slots = view[start:end].cast("I" if width == 4 else "Q")
        self.count = count
        start = (end + 7) // 8 * 8
        self.rows = view[start : start + rows * ROW_SIZE]
        self.shift = shift
        self.mask = (1 << shift) - 1
        self.codes = codes

    def rows_of(self, slot: int) -> tuple:
        """The rows of a slot as tuples, latest effective_from first."""
        start = (slot >> self.shift) * ROW_SIZE
        unpack = ROW.unpack_from
        rows = self.rows
        return tuple(unpack(rows, start + i * ROW_SIZE) for i in range(slot & self.mask))


class MappedRates(Mapping):
    """A mapped table's rates as a read-only mapping code -> rows (what a dict-backed table holds)."""

    __slots__ = ("table",)

    def __init__(self, table: MappedTable):
        self.table = table

    def _slot(self, code) -> int:
        table = self.table
        cid = table.registry.ids.get(code, NO_CODE)
        return table.slots[cid] if cid < table.count else 0

    def __getitem__(self, code):
        slot = self._slot(code)
        if not slot:
            raise KeyError(code)
        return self.table.rows_of(slot)

    def __contains__(self, code) -> bool:
        return bool(self._slot(code))

    def __iter__(self) -> Iterator[str]:
        names = self.table.registry.names
        for cid, slot in enumerate(self.table.slots):
            if slot:
                yield names[cid]

    def __len__(self) -> int:
        return self.table.codes

    def __repr__(self) -> str:
        return f"<MappedRates {self.table.name} {len(self)} codes>"


def pack(rates: Mapping[str, tuple], ids: dict[str, int]) -> tuple[bytes, bytes, int, int]:
    """A table's content in its file's form: (the slots by code id, without trailing empty ones; the rows;
    the slot width; the slot shift). Equal rows tuples are written once, in a canonical order, so the same
    content gives the same bytes in every process of the host (`ids`: every code of `rates` registered).

    `rates` is a mapping code -> rows, or a table read by columns (`rateread.RateColumns`: its codes, and
    for each an index into its distinct rows tuples), packed without making its dict."""
    cids = list(map(ids.__getitem__, rates))  # KeyError: a code to register first
    index = getattr(rates, "index", None)
    if index is None:  # a mapping: its distinct rows objects, and each code's
        objects = {id(rows): rows for rows in rates.values()}
        position = {key: i for i, key in enumerate(objects)}
        groups = list(objects.values())
        index = list(map(position.__getitem__, map(id, rates.values())))
    else:
        groups = rates.groups
    shift, width, typecode = 8, 4, "I"
    distinct = sorted(set(groups))
    if len(distinct) and (max(map(len, distinct)) >= 256 or sum(map(len, distinct)) >= 1 << 24):
        shift, width, typecode = 32, 8, "Q"
    starts = {}
    pieces = []
    count = 0
    for rows in distinct:
        starts[rows] = (count << shift) | len(rows)
        pieces.extend(ROW.pack(*row) for row in rows)
        count += len(rows)
    slot_of = list(map(starts.__getitem__, groups))
    slots = array(typecode, bytes(width * len(ids)))
    # slots[cid] = the slot of the code's rows, for every code (a loop in C: 60,000 codes in milliseconds).
    deque(map(slots.__setitem__, cids, map(slot_of.__getitem__, index)), maxlen=0)
    body = slots.tobytes().rstrip(b"\0")
    body += b"\0" * (-len(body) % width)
    return body, b"".join(pieces), width, shift


def digest(body: bytes, rows: bytes, shift: int) -> str:
    """A digest of a table's packed content (part of the file's name)."""
    h = hashlib.blake2b(body, digest_size=12)
    h.update(b"\0%d\0" % shift)
    h.update(rows)
    return h.hexdigest()


class RateStore:
    """The rate table files of one directory, as this process maps them."""

    _stores: dict[str, RateStore] = {}
    _stores_lock = threading.Lock()

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.registry = CodeRegistry(directory / "codes")
        self.registry.refresh()
        # The files this process maps, while a snapshot holds them.
        self._maps: weakref.WeakValueDictionary[str, MappedTable] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self.stale = False  # the registry was replaced under this process

    @classmethod
    def at(cls, directory) -> RateStore:
        """The store of `directory` (one per directory and process)."""
        key = str(Path(directory).resolve())
        with cls._stores_lock:
            store = cls._stores.get(key)
            if store is None or store.stale:
                store = cls._stores[key] = cls(Path(key))
            return store

    @property
    def ids(self) -> dict[str, int]:
        """Code -> code id (grows; never changes an id)."""
        return self.registry.ids

    @contextmanager
    def locked(self):
        """The directory's file lock (shared by every process of the host)."""
        with open(self.directory / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def updating(self, timeout: float) -> Iterator[bool]:
        """The host's update lock (`update.lock`, apart from the directory's lock, which is taken inside it):
        one process at a time reads changed rate tables from the database, so the others find the files and
        the manifest it recorded instead of reading the same rates again. Yields False when another process
        held it `timeout` seconds (the caller then reads for itself: a stuck process never stops the
        others)."""
        with open(self.directory / "update.lock", "a+b") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        held = False
                        break
                    time.sleep(0.01)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def table(self, table_id: int, rates: Mapping[str, tuple]) -> MappedTable | None:
        """The mapped file of a table holding `rates` (written when no process wrote this content yet); None
        when it cannot be (a code with a line break, a registry removed under this process: the caller keeps
        the rates in memory)."""
        try:
            with self._lock:
                registry = self.registry
                ids = registry.ids
                try:
                    if not registry.generation:
                        raise KeyError
                    body, rows, width, shift = pack(rates, ids)
                except KeyError:  # codes no table file held yet (or no registry yet)
                    with self.locked():
                        registry.ensure([code for code in rates if code not in ids])
                    body, rows, width, shift = pack(rates, ids)
                name = f"t{table_id}-{digest(body, rows, shift)}.rates"
                found = self._maps.get(name)
                if found is not None and found.path.exists():
                    return found
                # Not mapped yet, or mapped here but removed from the directory since (another process's
                # prune): written again, so the directory holds every file a snapshot uses.
                path = self.directory / name
                try:
                    mapped = MappedTable(path, registry)
                except (FileNotFoundError, DamagedFile):
                    with self.locked():
                        try:
                            mapped = MappedTable(path, registry)
                        except (FileNotFoundError, DamagedFile):
                            header = (width, shift, len(rows) // ROW_SIZE, len(rates))
                            mapped = self._write(path, header, body, rows)
                self._maps[name] = mapped
                return mapped
        except StaleRegistry:
            self.stale = True  # RateStore.at opens the directory afresh for the next build
            log.warning("rate table %s kept in memory: the code registry changed", table_id, exc_info=True)
            return None
        except (ValueError, OSError):
            log.warning("rate table %s kept in memory: its file could not be used", table_id, exc_info=True)
            return None

    def _write(self, path: Path, header: tuple, body: bytes, rows: bytes) -> MappedTable:
        """Write a table file (the caller holds the lock) and map it."""
        width = header[0]
        head = HEADER.pack(MAGIC, self.registry.generation, len(body) // width, *header)
        self._replace(path, head, body, b"\0" * (-(HEADER.size + len(body)) % 8), rows)
        return MappedTable(path, self.registry)

    # --- the manifest: the newest state of the routing data some process of the host read ---------------

    def save_manifest(self, state: dict, codes, keep_current=None) -> bool:
        """Record that at the audit position of `state` (`audit_top`, `anchor`, `audit_seen`) the database's
        rate tables were those of `state["tables"]` (table id -> [file, name, currency]) and their codes
        `codes`, unless `keep_current(document)` says the recorded one is newer (called under the lock).
        False when it is not recorded (a code without an id, an unwritable directory, a newer one kept)."""
        try:
            ids = self.registry.ids
            blob = array("I", sorted(ids[code] for code in codes)).tobytes()
        except (KeyError, OverflowError):
            return False
        codes_name = f"codes-{hashlib.blake2b(blob, digest_size=12).hexdigest()}.ids"
        document = dict(state, version=MANIFEST_VERSION, generation=self.registry.generation.hex())
        document["codes"] = codes_name
        try:
            with self.locked():
                current = self._manifest()
                if current is not None and keep_current is not None and keep_current(current):
                    return False
                if not (self.directory / codes_name).exists():
                    self._replace(self.directory / codes_name, blob)
                self._replace(self.directory / MANIFEST, json.dumps(document).encode())
                recent = time.time() - PRUNE_GRACE_SECONDS
                for path in self.directory.glob("codes-*.ids"):
                    try:
                        if path.name != codes_name and path.stat().st_mtime < recent:
                            path.unlink()
                    except FileNotFoundError:
                        pass
            return True
        except OSError:
            log.warning("routing data manifest not written", exc_info=True)
            return False

    def load_manifest(
        self, codes: bool = True
    ) -> tuple[dict, frozenset[str] | None, dict[int, MappedTable]] | None:
        """The recorded state (see save_manifest), its codes (None unless `codes`) and its tables mapped; None
        when there is none or any part of it is missing, damaged or of another code registry."""
        try:
            document = self._manifest()
            if document is None or document.get("version") != MANIFEST_VERSION:
                return None
            seen = document.get("audit_seen")
            if not isinstance(seen, list) or not all(isinstance(i, int) for i in seen):
                return None
            with self._lock:
                self.registry.refresh()
                if document.get("generation") != self.registry.generation.hex():
                    return None
                blob = (self.directory / document["codes"]).read_bytes()
                names = self.registry.names
                code_ids = array("I")
                code_ids.frombytes(blob)
                universe = frozenset(map(names.__getitem__, code_ids)) if codes else None
                tables = {}
                for tid, (name, *_rest) in document["tables"].items():
                    mapped = self._maps.get(name)
                    if mapped is None:
                        mapped = self._maps[name] = MappedTable(self.directory / name, self.registry)
                    tables[int(tid)] = mapped
            return document, universe, tables
        except (OSError, ValueError, KeyError, IndexError, TypeError, StaleRegistry):
            log.info("routing data manifest not used", exc_info=True)
            return None

    def _manifest(self) -> dict | None:
        try:
            document = json.loads((self.directory / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None
        return document if isinstance(document, dict) else None

    def _replace(self, path: Path, *chunks: bytes) -> None:
        """Write `path` whole: a temporary file, complete on disk before it is renamed (the caller holds the
        lock); readable by every process of the host, whichever user runs it."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=path.suffix)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _sync_directory(self.directory)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def prune(self, keep: set[str], table_ids=None) -> int:
        """Remove the table files not named in `keep` (only those of `table_ids` when given) and older than
        PRUNE_GRACE_SECONDS; returns how many. A process that still maps one keeps reading it (Linux frees it
        with the last mapping); a file written lately may be what another process just read from the
        database, so it waits for a later prune."""
        removed = 0
        recent = time.time() - PRUNE_GRACE_SECONDS
        with self.locked():
            for path in self.directory.glob("t*.rates"):
                if path.name in keep:
                    continue
                try:
                    if path.stat().st_mtime > recent:  # maybe another process's newer version: kept a while
                        continue
                except FileNotFoundError:
                    continue
                if table_ids is not None:
                    tid = path.name[1:].split("-", 1)[0]
                    if not tid.isdigit() or int(tid) not in table_ids:
                        continue
                path.unlink(missing_ok=True)
                removed += 1
            if table_ids is None:
                for path in self.directory.glob(".tmp-*"):  # a write that died half way
                    path.unlink(missing_ok=True)
        return removed


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (its entry on disk)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
