"""Start, watch and stop the processes of a switch test: Kamailio, sipp callers and vendors, the panel.

Shared by the end-to-end test (`tests/e2e/`) and the benchmark (`bench/switch.py`). Every process is started
in its own session and registered with a `Lab`, whose `stop_all()` ends each one by its process group
(SIGTERM, then SIGKILL), so nothing started here outlives the test. Everything listens on loopback, on free
ports; loopback addresses other than 127.0.0.1 (127.0.0.11, ...) give each party its own source IP.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFG_TEMPLATE = ROOT / "docs" / "kamailio" / "kamailio.cfg"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
KAMAILIO = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
SIPP = shutil.which("sipp")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# sipp's socket buffers (its default, 64 KiB, drops bursts of replies at a few hundred calls/s) and loops.
SIPP_TUNING = ["-buff_size", "4194304", "-max_recv_loops", "10000", "-max_sched_loops", "10000"]
SIPP_TUNING += ["-skip_rlimit"]


def tools_missing() -> str | None:
    """Why the switch tools cannot run here (None when kamailio and sipp are installed)."""
    missing = [name for name, path in (("kamailio", KAMAILIO), ("sipp", SIPP)) if not path]
    return f"{' and '.join(missing)} not installed (.ci/run installs them)" if missing else None


def free_port(kind: str = "tcp", host: str = "127.0.0.1") -> int:
    """A port free right now on `host` for TCP or UDP."""
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (sipp and Kamailio may open either)."""
    for _ in range(50):
        port = free_port("udp", host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def _children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Proc:
    """One started process (and its children), with its output in a log file."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Still running."""
        return self.popen.poll() is None

    def cpu(self) -> dict[int, float]:
        """CPU seconds of the process and each descendant, by pid."""
        return {pid: cpu_seconds(pid) for pid in process_tree(self.pid)} if self.alive() else {}

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL after `timeout`; returns the exit code."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout)
        # Children still in the group (a Kamailio or gunicorn worker that outlived its parent) go too.
        if self._group_members():
            self._signal(signal.SIGKILL)
        return self.popen.returncode

    def _group_members(self) -> list[int]:
        """Processes still in this process's group (it leads its own session, see Lab.start)."""
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.popen.pid:
                members.append(int(stat.parent.name))
        return members

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Lab:
    """The processes of one test or benchmark run, all stopped by `stop_all()`."""

    workdir: Path
    processes: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> Proc:
        """Start a process in a session of its own, its output going to <workdir>/<name>.out."""
        log = self.workdir / f"{name}.out"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd or self.workdir,
                start_new_session=True,
            )
        proc = Proc(name, argv, log, popen)
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop every process this lab started, the last started first."""
        for proc in reversed(self.processes):
            proc.stop()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


# ---- the panel ---------------------------------------------------------------------------------------


def start_panel(
    lab: Lab, database_url: str, port: int, workers: int = 2, threads: int = 4, options: tuple = (), **env
) -> Proc:
    """The panel under gunicorn on 127.0.0.1:`port` (as `make run` serves it); waits until /health answers.

    `options` are more gunicorn options; `env` more environment settings of the panel.
    """
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}"]
    argv += ["--keep-alive", "75", "--graceful-timeout", "2", "--no-control-socket", *options, "wsgi:app"]
    settings = {"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    proc = lab.start("panel", argv, env=settings, cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def wait_http(url: str, proc: Proc, timeout: float = 20.0) -> None:
    """Poll `url` until it answers 200; fail with the process output if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a loopback URL
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{proc.output()[-3000:]}")


def wait_tcp(port: int, proc: Proc, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on port {port}")


# ---- Kamailio ------------------------------------------------------------------------------------------


def render_kamailio_cfg(path: Path, **settings: object) -> Path:
    """docs/kamailio/kamailio.cfg with its `#!substdef "!NAME!value!g"` settings replaced.

    Keys are the setting names: PANEL_HOSTPORT, PANEL_TOKEN, SWITCH_GATEWAY, SIP_LISTEN, SIP_CHILDREN,
    PANEL_TIMEOUT, NO_ANSWER_MS, RING_MS.
    """
    text = CFG_TEMPLATE.read_text()
    for name, value in settings.items():
        pattern = re.compile(rf'^#!substdef "!{name}!.*!g"$', re.MULTILINE)
        text, count = pattern.subn(f'#!substdef "!{name}!{value}!g"', text)
        if count != 1:
            raise KeyError(f"{name} is not a setting of {CFG_TEMPLATE.name}")
    path.write_text(text)
    return path


def start_kamailio(lab: Lab, cfg: Path, ip: str, port: int, shm_mb: int = 256) -> Proc:
    """Kamailio in the foreground with `cfg`; waits until it answers OPTIONS on ip:port."""
    rundir = lab.workdir / "kamailio-run"
    rundir.mkdir(exist_ok=True)
    argv = [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(rundir), "-m", str(shm_mb), "-M", "16"]
    # TLSF: Debian's default memory manager spends a tenth of Kamailio's CPU in its allocator at high rates.
    argv += ["-x", "tlsf", "-P", str(rundir / "kamailio.pid")]
    proc = lab.start("kamailio", argv)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"kamailio exited:\n{proc.output()[-3000:]}")
        if sip_options(ip, port):
            return proc
        time.sleep(0.1)
    raise RuntimeError(f"kamailio did not answer OPTIONS:\n{proc.output()[-3000:]}")


def start_switch(
    lab: Lab, panel_ports: tuple[int, ...], token: str, children: int = 4, shm_mb: int = 64, **settings
) -> tuple[Proc, tuple[str, int]]:
    """Kamailio on a free SIP port of 127.0.0.1 asking the panel on 127.0.0.1:`panel_ports` (up to three
    hosts, each tried when the one before fails) with `token`; `settings` are more of render_kamailio_cfg's.

    Returns the Kamailio process and its SIP address (the proxy callers send to).
    """
    sip_port = free_sip_port()
    panels = {"PANEL_HOSTPORT": f"127.0.0.1:{panel_ports[0]}", "PANEL_COUNT": len(panel_ports)}
    panels |= {f"PANEL{n}_HOSTPORT": f"127.0.0.1:{port}" for n, port in enumerate(panel_ports[1:], start=2)}
    cfg = render_kamailio_cfg(
        lab.workdir / "kamailio.cfg",
        **panels,
        PANEL_TOKEN=token,
        SIP_LISTEN=f"udp:127.0.0.1:{sip_port}",
        SIP_CHILDREN=children,
        **settings,
    )
    return start_kamailio(lab, cfg, "127.0.0.1", sip_port, shm_mb=shm_mb), ("127.0.0.1", sip_port)


def sip_options(ip: str, port: int, timeout: float = 0.3) -> str | None:
    """Send one OPTIONS over UDP; the status line of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        message = (
            f"OPTIONS sip:{ip}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-probe{time.monotonic_ns()}\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag=probe\r\nTo: <sip:{ip}:{port}>\r\n"
            f"Call-ID: probe-{time.monotonic_ns()}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        try:
            sock.sendto(message.encode(), (ip, port))
            data = sock.recv(65535)
        except OSError:
            return None
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


# ---- sipp ----------------------------------------------------------------------------------------------


@dataclass
class Vendor:
    """A sipp server playing a terminator."""

    proc: Proc
    ip: str
    port: int
    log: Path

    def received(self) -> list[str]:
        """The Request-URI user of each INVITE received so far (the scenario logs them)."""
        if not self.log.exists():
            return []
        return re.findall(r"^INVITE (\S*)$", self.log.read_text(errors="replace"), re.MULTILINE)


def start_vendor(lab: Lab, name: str, scenario: str, ip: str, port: int) -> Vendor:
    """A sipp server (`vendor_answers` or `vendor_fails`) bound to ip:port."""
    log = lab.workdir / f"{name}.log"
    argv = [SIPP, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", ip, "-bind_local", "-p", str(port)]
    argv += ["-mp", str(free_port("udp", ip)), "-nostdin", "-trace_logs", "-log_file", str(log)]
    argv += ["-trace_err", "-error_file", str(lab.workdir / f"{name}.errors.log")]
    argv += SIPP_TUNING
    proc = lab.start(name, argv)
    _wait_udp_bound(ip, port, proc)
    return Vendor(proc, ip, port, log)


def _wait_udp_bound(ip: str, port: int, proc: Proc, timeout: float = 10.0) -> None:
    """Wait until something listens on UDP ip:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((ip, port))
        except OSError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not bind {ip}:{port}")


@dataclass
class CallerRun:
    """The outcome of one sipp caller run."""

    exit_code: int
    finals: Counter
    successful: int
    failed: int
    retransmissions: int
    elapsed: float
    cpu_seconds: float
    output: str


def run_caller(
    lab: Lab,
    name: str,
    proxy: tuple[str, int],
    number: str,
    ani: str,
    ip: str,
    calls: int = 1,
    rate: float = 10,
    hold_ms: int = 0,
    limit: int | None = None,
    timeout: float = 30,
) -> CallerRun:
    """Place `calls` calls at `rate` calls/s from `ip` through the proxy; waits for the run to end."""
    log = lab.workdir / f"{name}.log"
    stats = lab.workdir / f"{name}.csv"
    for stale in (log, stats):
        stale.unlink(missing_ok=True)
    argv = [SIPP, f"{proxy[0]}:{proxy[1]}", "-sf", str(SCENARIOS / "caller.xml"), "-s", number]
    argv += ["-key", "ani", ani, "-i", ip, "-bind_local", "-p", str(free_sip_port(ip))]
    argv += ["-mp", str(free_port("udp", ip)), "-m", str(calls), "-r", str(rate), "-d", str(hold_ms)]
    argv += ["-l", str(limit or max(100, int(rate * 10))), "-nostdin", "-trace_logs", "-log_file", str(log)]
    argv += ["-trace_stat", "-stf", str(stats), "-fd", "1", "-timeout", f"{int(timeout)}s", "-timeout_error"]
    argv += ["-trace_err", "-error_file", str(lab.workdir / f"{name}.errors.log")]
    argv += SIPP_TUNING
    started = time.monotonic()
    # The caller is the only child reaped meanwhile, so the growth of RUSAGE_CHILDREN is its CPU use.
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = lab.start(name, argv)
    try:
        proc.popen.wait(timeout + 10)
    except subprocess.TimeoutExpired:
        proc.stop()
    elapsed = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    finals = Counter(re.findall(r"^FINAL (\d+)$", log.read_text() if log.exists() else "", re.MULTILINE))
    successful, failed, retrans = _final_counts(stats)
    return CallerRun(proc.popen.returncode, finals, successful, failed, retrans, elapsed, cpu, proc.output())


def _final_counts(stats: Path) -> tuple[int, int, int]:
    """SuccessfulCall(C), FailedCall(C), Retransmissions(C) from the last line of sipp's -trace_stat file."""
    if not stats.exists():
        return 0, 0, 0
    lines = [line for line in stats.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0, 0, 0
    header, last = lines[0].split(";"), lines[-1].split(";")
    row = dict(zip(header, last, strict=False))

    def number(key: str) -> int:
        try:
            return int(row.get(key, "0") or 0)
        except ValueError:
            return 0

    return number("SuccessfulCall(C)"), number("FailedCall(C)"), number("Retransmissions(C)")


# ---- panel data ----------------------------------------------------------------------------------------


@dataclass
class Carrier:
    """The panel data of a switch test: one customer, two vendors, a plan, a token (ids, not objects)."""

    token: str
    company_id: int
    customer_client_id: int
    customer_account_id: int
    vendor_account_ids: tuple[int, int]
    customer_rate: str
    setup_fee: str


def seed_carrier(
    caller_ip: str,
    vendors: list[tuple[str, int]],
    code: str = "44",
    unrouted_code: str = "33",
    orig_tech_prefix: str = "55#",
    vendor_tech_prefixes: tuple[str, str] = ("66#", "77#"),
    gateway: str = "kamailio1",
) -> Carrier:
    """Customer `Acme` (calls from `caller_ip`, tech prefix `orig_tech_prefix`, 0.10/min + 0.02 setup for
    `code` and `unrouted_code`, billed per started minute) and two vendors, `Vendor One` then `Vendor Two`
    by rule priority for `code`, at the given (ip, port) addresses with their tech prefixes; an API token of
    the root company. Needs an app context; commits.
    """
    from panel.api.auth import new_token
    from panel.extensions import db
    from panel.models import ApiToken
    from tests import factories

    root = factories.company("Switch Operator", "root")
    factories.gateway(root, gateway, "127.0.0.1")
    retail = {"code": code, "rate": "0.10", "min_time": 60, "interval": 60, "setup_fee": "0.02"}
    # A second destination Acme has a price for but the plan has no rule for.
    unrouted = {**retail, "code": unrouted_code}
    customer_rates = factories.rate_table(root, "Acme retail", [retail, unrouted])
    plan = factories.plan(root, "Wholesale")
    customer = factories.client(root, "Acme", balance=100)
    acme = factories.account(
        customer,
        "acme-trunk",
        ident_value=caller_ip,
        tech_prefix=orig_tech_prefix,
        orig_enabled=True,
        orig_rate_table_id=customer_rates.id,
        orig_routing_plan_id=plan.id,
    )
    vendor_ids = []
    for position, ((ip, port), prefix) in enumerate(zip(vendors, vendor_tech_prefixes, strict=True), start=1):
        name = ("One", "Two")[position - 1]
        rates = factories.rate_table(root, f"Vendor {name} rates", [(code, f"0.0{position}")])
        vendor = factories.client(root, f"Vendor {name}", term_rate_table_id=rates.id)
        account = factories.account(
            vendor, f"vendor-{name.lower()}", ident_value=ip, tech_prefix=prefix, term_enabled=True, port=port
        )
        factories.rule(plan, code, "static_client", priority=position, terminator_client_id=vendor.id)
        vendor_ids.append(account.id)
    token, token_hash = new_token()
    db.session.add(ApiToken(company_id=root.id, name="kamailio1", token_hash=token_hash, prefix=token[:8]))
    db.session.commit()
    return Carrier(token, root.id, customer.id, acme.id, (vendor_ids[0], vendor_ids[1]), "0.10", "0.02")


def warm_up_panel(port: int, token: str, query: dict, requests: int = 16) -> None:
    """Ask for a route a few times at once, so that every gunicorn worker builds its routing snapshot
    before the first call (a cold worker's first answer can take longer than the switch's timeout)."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    def ask(_: int) -> int:
        request = urllib.request.Request(  # noqa: S310 - a loopback URL
            f"http://127.0.0.1:{port}/api/v1/route",
            data=json.dumps(query).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status

    with ThreadPoolExecutor(max_workers=requests) as pool:
        list(pool.map(ask, range(requests)))
