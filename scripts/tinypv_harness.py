"""Host-side harness for tinypv: boot it under QEMU and judge what it printed.

What lives here:
  * platform checks (is KVM usable, where is the Xen hypervisor, the cached
    decompressed Xen image),
  * the one function that builds every QEMU command line (qemu_command),
  * a process runner that streams and logs the serial port, enforces a
    timeout, stops QEMU once the kernel has said its last word, and ties
    QEMU's life to the harness's (run_process),
  * a KTAP v1 parser (parse_ktap) and the classifiers that turn a log plus an
    exit status into per-test results (classify_boot, classify_host),
  * the verdict states, exit codes, per-run log files, the list of in-kernel
    tests read from the ELF, and the result lines shared by scripts/run.py
    and scripts/test.py.

Why one module: `make run` and `make test` must judge a boot the same way, and
the judging must be testable without QEMU (tests/host/test_harness.py feeds it
canned logs).  Python standard library only.

Kernel output contract (written by tinypv on the serial port):
  * `tinypv: booting (...)`, then the boot report: `key: value` lines from
    `boot path:` on, then the pvop table;
  * `tinypv: ready, N ticks after entry`: only what follows counts as test
    output (the boot report echoes the command line, which is user text);
  * a KTAP v1 stream, suites nested four spaces deeper than their parent;
  * `tinypv: result PASS|FAIL`, then a write to isa-debug-exit (port 0xf4)
    so QEMU exits with 33 (PASS) or 35 (FAIL);
  * on a crash `tinypv: PANIC: <reason>` (or `tinypv: EXCEPTION ...` first),
    a register dump, and exit status 37.
Under Xen the lines are interleaved with Xen's own `(XEN) ...` lines, and when
dom0 halts Xen prints "Hardware Dom0 halted" while QEMU keeps running.

Verdict states (after XTF's include/xtf/report.h, plus the runner's crash and
timeout), least to most severe: ok, SKIP, ERROR (the test or the environment
is broken), FAILED (the code under test is wrong), CRASHED, TIMEOUT.  The most
severe result decides the exit status (EXIT_CODES).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import gzip
import hashlib
import json
import math
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
LOG_DIR = BUILD_DIR / "logs"
DEFAULT_KERNEL = BUILD_DIR / "tinypv.elf"
XEN_ELF = BUILD_DIR / "xen.elf"
PREFERRED_XEN_GZ = Path("/boot/xen-4.17-amd64.gz")

QEMU = "qemu-system-x86_64"
PLATFORMS = ("native", "kvm", "xen")
MAX_SMP = 64            # QEMU's pc machine takes more; tinypv starts 16 (NR_CPUS_MAX)
XEN_CMDLINE = "console=com1 loglvl=all guest_loglvl=all noreboot dom0_mem=64M"
XEN_MAX_GUEST_CMDLINE = 1024    # xen.h MAX_GUEST_CMDLINE, with its NUL

DEFAULT_TIMEOUT = 60.0
RESULT_GRACE = 3.0      # seconds QEMU may live on after `tinypv: result`
PANIC_GRACE = 5.0       # seconds for the register dump and exit after a panic
TAIL_LINES = 40         # log lines shown for a crash or a timeout
KEEP_LOGS = 10          # per-run log files kept per log name

EXIT_PASS, EXIT_FAIL, EXIT_PANIC = 33, 35, 37
EXIT_MEANING = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL", EXIT_PANIC: "PANIC"}

# Result statuses; the strings are also the labels printed by test.py.
OK, FAILED, SKIP, ERROR, CRASHED, TIMEOUT = "ok", "FAILED", "SKIP", "ERROR", "CRASHED", "TIMEOUT"
FAILING = (FAILED, ERROR, CRASHED, TIMEOUT)
SEVERITY = (OK, SKIP, ERROR, FAILED, CRASHED, TIMEOUT)     # least to most severe

# Exit status of run.py and test.py by the most severe result.  1 is left to
# Python (an uncaught exception, a malformed BOOT_CONFIGS table) and 2 to
# usage errors (argparse, an unusable option value), as XTF's runner does.
EXIT_CODES = {OK: 0, SKIP: 0, ERROR: 4, FAILED: 5, CRASHED: 6, TIMEOUT: 7}
EXIT_USAGE = 2
VERDICT_WORDS = {OK: "PASS", SKIP: "PASS", ERROR: "ERROR", FAILED: "FAIL",
                 CRASHED: "CRASH", TIMEOUT: "TIMEOUT"}

# Terminal escape sequences (CSI sequences, two-byte escapes, "ESC c").
ESCAPE_PATTERN = r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_]|c)"

KVM_GET_API_VERSION = 0xAE00   # _IO(KVMIO, 0x00)
KVM_API_VERSION = 12


# ---------------------------------------------------------------------------
# Platform availability


def qemu_missing_reason() -> str | None:
    """None when qemu-system-x86_64 is on PATH, else why it cannot run."""
    if shutil.which(QEMU):
        return None
    return f"{QEMU} not found (run scripts/deps.sh)"


def kvm_unusable_reason(device: str | None = None) -> str | None:
    """None when KVM can be used, else a short reason such as "/dev/kvm missing".

    TINYPV_KVM_DEVICE overrides the device path (handy to test the skip path).
    """
    device = device or os.environ.get("TINYPV_KVM_DEVICE", "/dev/kvm")
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"{device} missing"
    except PermissionError:
        return f"permission denied on {device}"
    except OSError as err:
        return f"cannot open {device}: {err.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as err:
        return f"KVM_GET_API_VERSION on {device} failed: {err.strerror}"
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return f"{device} reports KVM API version {version}, expected {KVM_API_VERSION}"
    return None


def find_xen_gz() -> Path | None:
    """The compressed Xen hypervisor to boot: 4.17 if installed, else the newest.

    TINYPV_XEN_GZ overrides the path (handy to test the skip path).
    """
    override = os.environ.get("TINYPV_XEN_GZ")
    if override:
        return Path(override) if Path(override).is_file() else None
    if PREFERRED_XEN_GZ.is_file():
        return PREFERRED_XEN_GZ
    candidates = sorted(Path("/boot").glob("xen-*.gz"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


XEN_NOT_FOUND = "Xen hypervisor not found (/boot/xen-4.17-amd64.gz; run scripts/deps.sh test)"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _xen_sidecar(dest: Path) -> Path:
    """Where the record of what dest was decompressed from is kept."""
    return dest.with_name(dest.name + ".source")


def _xen_cache_valid(dest: Path, src: Path, src_size: int, src_sum: str) -> bool:
    """Is dest the decompression of exactly this source, undamaged since?"""
    try:
        record = json.loads(_xen_sidecar(dest).read_text())
        return (record.get("source") == str(src)
                and record.get("source_size") == src_size
                and record.get("source_sha256") == src_sum
                and dest.stat().st_size == record.get("size")
                and file_sha256(dest) == record.get("sha256"))
    except (OSError, ValueError, AttributeError):
        return False


def _write_atomically(path: Path, write) -> None:
    """write(file) into a temporary file next to path, then rename it over path.

    The temporary file is removed whatever stops the writing, Ctrl-C included,
    and parallel users never see half a file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_xen_elf(dest: Path = XEN_ELF) -> tuple[Path | None, str | None]:
    """Decompress the hypervisor into dest unless dest is a verified copy.

    A sidecar (dest + ".source") records the source's path, size and SHA-256
    and dest's size and SHA-256; dest is reused only when all of them still
    hold, so a changed source or a damaged dest is decompressed again.
    Returns (path, None) on success or (None, reason).  The result is a 32-bit
    multiboot ELF that QEMU's -kernel loads directly.
    """
    src = find_xen_gz()
    if src is None:
        return None, XEN_NOT_FOUND
    try:
        src_size, src_sum = src.stat().st_size, file_sha256(src)
    except OSError as err:
        return None, f"cannot read {src}: {err.strerror}"
    if _xen_cache_valid(dest, src, src_size, src_sum):
        return dest, None
    digest, size = hashlib.sha256(), 0

    def decompress(out):
        nonlocal size
        with gzip.open(src, "rb") as fin:
            for block in iter(lambda: fin.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                out.write(block)

    record = {"source": str(src), "source_size": src_size, "source_sha256": src_sum}
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _xen_sidecar(dest).unlink(missing_ok=True)
        _write_atomically(dest, decompress)
        record.update(size=size, sha256=digest.hexdigest())
        _write_atomically(_xen_sidecar(dest),
                          lambda out: out.write(json.dumps(record, indent=1).encode() + b"\n"))
    except (OSError, EOFError, zlib.error) as err:
        return None, f"cannot decompress {src} into {display_path(dest)}: {err}"
    return dest, None


def platform_check(platform: str) -> tuple[str, str] | None:
    """None when a platform can boot here, else (SKIP or ERROR, reason).

    A missing accelerator or hypervisor is a SKIP (the machine cannot run
    that configuration); a missing QEMU or an unusable Xen image is an ERROR
    (the test environment is broken).
    """
    reason = qemu_missing_reason()
    if reason:
        return ERROR, reason
    if platform == "kvm":
        reason = kvm_unusable_reason()
        return (SKIP, reason) if reason else None
    if platform == "xen":
        reason = prepare_xen_elf()[1]
        if reason:
            return (SKIP if reason == XEN_NOT_FOUND else ERROR), reason
    return None


def platform_unavailable_reason(platform: str) -> str | None:
    """None when a platform can boot here, else the reason it cannot."""
    problem = platform_check(platform)
    return problem[1] if problem else None


# ---------------------------------------------------------------------------
# QEMU command line


def append_problem(platform: str, append: str) -> str | None:
    """None when `append` can be handed to tinypv on `platform`, else why not.

    The command line must be one line of printable text: the kernel echoes it
    in its boot report, and a line break in it could forge a result line.
    Xen copies at most MAX_GUEST_CMDLINE - 1 bytes into dom0's start_info
    and drops the rest without a word, so a longer one is refused here.
    """
    bad = sorted({f"{ord(c):#04x}" for c in append if not c.isprintable()})
    if bad:
        return f"the command line contains control characters ({', '.join(bad)})"
    size = len(append.encode())
    limit = XEN_MAX_GUEST_CMDLINE - 1
    if platform == "xen" and size > limit:
        return (f"the command line is {size} bytes; Xen passes at most {limit} to dom0 "
                f"(MAX_GUEST_CMDLINE {XEN_MAX_GUEST_CMDLINE}) and would drop the rest")
    return None


def xen_module_arg(kernel: Path | str, append: str) -> str:
    """The -initrd value that hands tinypv to Xen as dom0 with a command line.

    QEMU's multiboot loader splits -initrd at ',' into modules and gives each
    module the whole text as its command line ("file arg arg"); the file name
    ends at the first space, and ",," stands for a literal comma.  QEMU's own
    tests/multiboot/modules.out shows this; Xen then drops the first word (the
    image name) for loaders other than GRUB2, so dom0 sees only "arg arg"
    (checked by booting a test guest that echoes its start_info cmd_line).
    """
    kernel = str(kernel)
    if " " in kernel:
        raise ValueError(f"kernel path must not contain spaces under Xen: {kernel!r}")
    text = f"{kernel} {append}" if append else kernel
    return text.replace(",", ",,")


def smp_problem(smp) -> str | None:
    """None when `smp` is a CPU count QEMU and tinypv can take, else why not."""
    if isinstance(smp, bool) or not isinstance(smp, int):
        return f"the CPU count must be a whole number, not {smp!r}"
    if not 1 <= smp <= MAX_SMP:
        return f"the CPU count must be from 1 to {MAX_SMP}, not {smp}"
    return None


def smp_arg(text: str) -> int:
    """argparse type for --smp: a CPU count smp_problem() accepts."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a CPU count: {text!r}") from None
    problem = smp_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def xen_cmdline(smp: int = 1) -> str:
    """Xen's own command line; with several CPUs dom0 gets as many vCPUs."""
    return XEN_CMDLINE + (f" dom0_max_vcpus={smp}" if smp > 1 else "")


def qemu_command(platform: str, kernel: Path | str, append: str = "",
                 icount: bool = False, xen_elf: Path | str | None = None,
                 gdb_stub: bool = False, smp: int = 1,
                 cpu: str | None = None) -> list[str]:
    """The complete QEMU argv for one boot of tinypv on `platform`.

    cpu replaces the TCG CPU model ("max"), e.g. "max,-x2apic" for an
    xAPIC-only machine; KVM keeps its own.

    smp is the number of CPUs (-smp); under TCG without icount several CPUs
    run on parallel host threads (-accel tcg,thread=multi), under icount
    they take turns on one (QEMU's rule, and what makes counts exact).
    Under Xen, dom0 gets smp vCPUs (dom0_max_vcpus).

    Raises ValueError for an unknown platform, icount under KVM, a CPU count
    smp_problem() refuses, or a command line append_problem() refuses.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r} (choose from {', '.join(PLATFORMS)})")
    if icount and platform == "kvm":
        raise ValueError("icount needs TCG; platform kvm runs under KVM")
    if cpu is not None and platform == "kvm":
        raise ValueError("a CPU model needs TCG; platform kvm uses the host's")
    problem = smp_problem(smp) or append_problem(platform, append)
    if problem:
        raise ValueError(problem)
    memory = "512" if platform == "xen" else "128"
    cmd = [QEMU, "-m", memory, "-smp", str(smp), "-nographic", "-no-reboot",
           "-monitor", "none", "-display", "none", "-serial", "stdio",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=1"]
    if platform == "kvm":
        # Plain "-cpu host" fails here: "failed to set MSR 0x10a".
        cmd += ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
    elif smp > 1 and not icount:
        cmd += ["-accel", "tcg,thread=multi", "-cpu", cpu or "max"]
    else:
        cmd += ["-accel", "tcg", "-cpu", cpu or "max"]
    if icount:
        cmd += ["-icount", "shift=0"]
    if platform == "xen":
        cmd += ["-kernel", str(xen_elf or XEN_ELF),
                "-initrd", xen_module_arg(kernel, append),
                "-append", xen_cmdline(smp)]
    else:
        cmd += ["-kernel", str(kernel), "-append", append]
    if gdb_stub:
        cmd += ["-s", "-S"]
    return cmd


def seconds_arg(text: str) -> float:
    """argparse type for a timeout: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds above 0, not {text!r}")
    return value


# ---------------------------------------------------------------------------
# Log files


def fresh_log(stable: Path) -> Path:
    """A new log file for one run; `stable` becomes a symlink to it.

    Each run writes its own file, build/logs/runs/<name>.<time>.<random>.log,
    so overlapping runs never share one and a cited log keeps saying what
    that run saw; build/logs/<name>.log always names the newest.  Only the
    KEEP_LOGS newest files per name are kept.  Raises OSError when the
    directory cannot be written.
    """
    runs = stable.parent / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"{stable.stem}.{stamp}.", suffix=".log", dir=runs)
    os.fchmod(fd, 0o644)
    os.close(fd)
    path = Path(name)
    link = stable.with_name(f".{stable.name}.{os.getpid()}.{threading.get_ident()}")
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(path, stable.parent), link)
    os.replace(link, stable)
    _prune_logs(runs, stable.stem, keep=path)
    return path


def _prune_logs(runs: Path, stem: str, keep: Path) -> None:
    pattern = re.compile(re.escape(stem) + r"\.\d{8}-\d{6}\.[^.]+\.log$")
    try:
        old = [p for p in runs.iterdir() if pattern.match(p.name) and p != keep]
        old.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for path in old[KEEP_LOGS - 1:]:
        path.unlink(missing_ok=True)


def log_dir_problem(log_dir: Path) -> str | None:
    """None when log files can be created in log_dir, else why not.

    Tries for real (os.access says yes to root whatever the mode).
    """
    try:
        (log_dir / "runs").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=log_dir / "runs"):
            pass
    except OSError as err:
        return f"cannot write logs in {display_path(log_dir)}: {err.strerror or err}"
    return None


# ---------------------------------------------------------------------------
# Running a process with a timeout


@dataclass
class ProcessRun:
    """What happened when a command ran (QEMU or a host test binary)."""
    lines: list[str]
    exit_status: int | None    # None when the harness stopped it
    timed_out: bool
    stopped_because: str       # why the harness stopped it, "" if it exited
    wall_time: float


class BootEndRules:
    """end_grace for a boot: seconds QEMU may still run after a line, or None.

    The kernel normally exits QEMU itself; these rules end runs where it
    cannot (Xen keeps QEMU alive after dom0 halts or after it panics).  Only
    lines as the kernel or Xen print them count: `tinypv: result` at the
    start of a line and after `tinypv: ready` (before it the boot report
    echoes the user's command line), `tinypv: PANIC` at the start of a line,
    Xen's lines only with their `(XEN)` prefix.  One instance per boot.
    """

    def __init__(self):
        self.ready = False

    def __call__(self, raw: str) -> float | None:
        line = clean_line(raw).strip()
        if line.startswith("(XEN)"):
            if "Hardware Dom0 halted" in line or "Hardware Dom0 shutdown" in line \
                    or "Hardware Dom0 crashed" in line or "Manual reset required" in line:
                return 0.3
            if "Panic on CPU" in line:
                return 1.0
            return None
        if line.startswith("tinypv: ready"):
            self.ready = True
        if self.ready and _VERDICT_RE.match(line):
            return RESULT_GRACE
        if line.startswith("tinypv: PANIC"):
            return PANIC_GRACE
        return None


def boot_end_grace(line: str) -> float | None:
    """BootEndRules for a single line seen after `tinypv: ready` (tests, tools)."""
    rules = BootEndRules()
    rules.ready = True
    return rules(line)


def _read_chunks(stream, chunks: queue.Queue) -> None:
    """Thread body: move raw output into `chunks`; b"" marks end of file."""
    while True:
        try:
            chunk = os.read(stream.fileno(), 4096)
        except OSError:
            chunk = b""
        chunks.put(chunk)
        if not chunk:
            return


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):     # not Linux: nothing ties the child
    _prctl = None


def _die_with_parent(parent: int):
    """preexec_fn: SIGKILL this child when the harness thread that started it dies.

    QEMU runs in its own session so that the harness can kill it as a group,
    which also means nothing else stops it when the harness is SIGKILLed.
    The prctl function is looked up before the fork, so the child only calls
    it.  PR_SET_PDEATHSIG fires when the parent *thread* ends; run_process
    waits for its child in the thread that started it, so that is never early.
    """
    def tie():
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:      # the harness died before the prctl
            os._exit(1)
    return tie


def start_tied(argv: list[str], **popen_args) -> subprocess.Popen:
    """Popen in a new session, killed by the kernel if the harness dies."""
    return subprocess.Popen(argv, start_new_session=True,
                            preexec_fn=_die_with_parent(os.getpid()), **popen_args)


class _LineCollector:
    """Splits a byte stream into clean text lines and watches for end rules."""

    def __init__(self, end_grace):
        self.lines: list[str] = []
        self._partial = b""
        self._end_grace = end_grace
        self.stop_at: float | None = None
        self.stop_line = ""

    def feed(self, chunk: bytes, now: float) -> None:
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self._add(raw, now)

    def finish(self, now: float) -> None:
        if self._partial:
            self._add(self._partial, now)
            self._partial = b""

    def _add(self, raw: bytes, now: float) -> None:
        line = raw.decode("utf-8", errors="replace").replace("\r", "").rstrip()
        line = strip_escapes(line)
        self.lines.append(line)
        grace = self._end_grace(line) if self._end_grace else None
        if grace is not None and (self.stop_at is None or now + grace < self.stop_at):
            self.stop_at = now + grace
            self.stop_line = line.strip()


class EscapeFilter:
    """Removes terminal escape sequences from a byte stream read in pieces.

    SeaBIOS starts by resetting and clearing the terminal ("ESC c", "ESC [2J"),
    which must not reach the user's terminal or the logs.  QEMU writes the
    serial port a few bytes at a time, so a sequence cut at the end of a
    piece is held back until the next one.
    """
    _COMPLETE = re.compile(ESCAPE_PATTERN.encode())
    _UNFINISHED = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*)?$")

    def __init__(self):
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._COMPLETE.sub(b"", self._pending + chunk)
        cut = self._UNFINISHED.search(data)
        if cut:
            data, self._pending = data[:cut.start()], data[cut.start():]
        else:
            self._pending = b""
        return data

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return data


_live_processes: set = set()
_live_lock = threading.Lock()


def stop_all_processes() -> None:
    """Stop every process run_process has running (for Ctrl-C with parallel jobs)."""
    with _live_lock:
        procs = list(_live_processes)
    for proc in procs:
        stop_process_group(proc)


def exit_cleanly_on_termination() -> None:
    """Make SIGTERM and SIGHUP raise SystemExit in the main thread.

    QEMU runs in its own session so that it can be killed as a group; that
    also means a signal to the harness does not reach it.  Raising here lets
    run_process (and the callers' handlers) stop it and print a summary.
    A SIGKILL cannot be caught: start_tied() has the kernel kill QEMU then.
    """
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run_process(argv: list[str], log_path: Path | None, timeout: float,
                echo=None, end_grace=None) -> ProcessRun:
    """Run argv in its own process group, logging and optionally echoing output.

    stdout and stderr are merged (QEMU's own errors land in the log too).
    echo(bytes) is called with the output as it arrives, minus terminal
    escapes; the log gets the same without carriage returns.  end_grace(line)
    returns seconds the process may live on after that line (see
    BootEndRules); past that, or past `timeout`, the process group is killed.
    The process dies with the harness, even on SIGKILL (start_tied).
    Raises OSError when the log cannot be written or argv cannot be started.
    """
    start = time.monotonic()
    collector = _LineCollector(end_grace)
    escapes = EscapeFilter()
    log = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")
    try:
        proc = start_tied(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError):
        if log:
            log.close()
        raise
    with _live_lock:
        _live_processes.add(proc)
    chunks: queue.Queue = queue.Queue()
    threading.Thread(target=_read_chunks, args=(proc.stdout, chunks), daemon=True).start()
    timed_out, stopped_because, at_eof = False, "", False
    try:
        while True:
            now = time.monotonic()
            deadline = start + timeout
            limit = min(deadline, collector.stop_at or deadline)
            if now >= limit:
                timed_out = collector.stop_at is None or collector.stop_at > deadline
                stopped_because = (f"no exit within {timeout:g} s" if timed_out
                                   else f"stopped by harness after: {collector.stop_line}")
                stop_process_group(proc)
                break
            try:
                chunk = chunks.get(timeout=limit - now)
            except queue.Empty:
                continue
            if not chunk:
                at_eof = True
                break
            _take(escapes.feed(chunk), collector, log, echo)
        if not at_eof:
            _drain(chunks, escapes, collector, log, echo)
        _take(escapes.flush(), collector, log, echo)
        exit_status = _reap(proc) if not stopped_because else None
    except BaseException:
        stop_process_group(proc)
        raise
    finally:
        with _live_lock:
            _live_processes.discard(proc)
        if log:
            log.close()
        proc.stdout.close()
    collector.finish(time.monotonic())
    return ProcessRun(collector.lines, exit_status, timed_out, stopped_because,
                      time.monotonic() - start)


def _take(data: bytes, collector: _LineCollector, log, echo) -> None:
    """Pass filtered output to the log, the echo and the line collector."""
    if not data:
        return
    if log:
        log.write(data.replace(b"\r", b""))
        log.flush()
    if echo:
        echo(data)
    collector.feed(data, time.monotonic())


def _drain(chunks: queue.Queue, escapes: EscapeFilter, collector: _LineCollector,
           log, echo) -> None:
    """Collect output still in flight after the harness killed the process."""
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            chunk = chunks.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            return
        if not chunk:
            return
        _take(escapes.feed(chunk), collector, log, echo)


def _reap(proc: subprocess.Popen) -> int | None:
    """Exit status of a process whose output has ended."""
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
        return None


def describe_exit(status: int | None) -> str:
    """Human wording for a QEMU exit status."""
    if status is None:
        return "stopped by harness"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    if status in EXIT_MEANING:
        return f"exit status {status} ({EXIT_MEANING[status]})"
    if status == 0:
        return "exit status 0 (guest reset, e.g. a triple fault, or QEMU quit)"
    return f"exit status {status} (unexpected)"


# ---------------------------------------------------------------------------
# KTAP v1 parsing

_DOMAIN_PREFIX_RE = re.compile(r"^\(d\d+\) ")
_ESCAPE_RE = re.compile(ESCAPE_PATTERN)
_FIRMWARE_PREFIX_RE = re.compile(r"^Booting from ROM\.\.")
_VERSION_RE = re.compile(r"^K?TAP version \d+$")
_SUBTEST_RE = re.compile(r"^# Subtest: (.+)$")
_START_RE = re.compile(r"^# start (\S+)$")
_DIAG_SUBJECT_RE = re.compile(r"^#\s*([^\s:]+):")
_PLAN_RE = re.compile(r"^1\.\.(\d+)\b\s*(?:#\s*(.*))?$")
_RESULT_RE = re.compile(r"^(not ok|ok)\b(?:\s+(\d+))?(?:\s+(?:-\s+)?)?(.*)$")


@dataclass
class TestResult:
    """One reported test: a KTAP leaf or a finding of the harness itself."""
    name: str
    status: str                 # OK, FAILED, SKIP, ERROR, CRASHED or TIMEOUT
    reason: str = ""            # one line: skip reason, crash cause, mismatch
    details: list[str] = field(default_factory=list)  # KTAP diagnostics, Xen errors
    tail: list[str] = field(default_factory=list)     # last log lines (crash, timeout)


@dataclass
class _Frame:
    """A (sub)test document being parsed: one indentation level."""
    indent: int
    name: str = ""
    plan: int | None = None
    plan_directive: str = ""    # "SKIP notests" from "1..0 # SKIP notests"
    count: int = 0              # result lines seen at this level
    starting: str = ""          # "# start NAME" seen, its result not yet


def _plan_words(frame: _Frame) -> str:
    return f"plan 1..{frame.plan}, {frame.count} result(s)"


@dataclass
class KtapReport:
    """The leaves of a KTAP stream and the levels still open when it ended."""
    leaves: list[TestResult]
    open_frames: list[_Frame]   # outermost first
    seen: bool                  # a "KTAP version" line appeared
    plan_problems: list[TestResult] = field(default_factory=list)   # closed short suites
    skip_all: str = ""          # the top-level plan's SKIP reason ("1..0 # SKIP notests")

    def complete(self) -> bool:
        """True when every plan that was announced has all its results."""
        return self.seen and all(f.plan is not None and f.count >= f.plan
                                 for f in self.open_frames)

    def running_test(self) -> str | None:
        """Name of the test that was running when the stream stopped.

        Its result line never came, so its name is unknown: "suite.#N" means
        test N of that suite.  A finished suite whose summary line is missing
        is reported by its own name.  None when the stream is complete.
        """
        frames = self.open_frames
        for depth in range(len(frames) - 1, -1, -1):
            frame = frames[depth]
            path = [f.name for f in frames[:depth + 1] if f.name]
            if frame.plan is None or frame.count < frame.plan:
                return ".".join(path + [frame.starting or f"#{frame.count + 1}"])
            if depth > 0:
                if frame.name:
                    return ".".join(path)
                parent_path = [f.name for f in frames[:depth] if f.name]
                return ".".join(parent_path + [f"#{frames[depth - 1].count + 1}"])
        return None

    def not_run(self) -> int:
        """Planned tests or suites after the running one that never started."""
        return sum(max(0, f.plan - f.count - 1) for f in self.open_frames
                   if f.plan is not None)

    def missing_in_open(self, before: str) -> list[TestResult]:
        """A FAILED result for each level still short of its plan at `before`."""
        out = []
        for depth, frame in enumerate(self.open_frames):
            name = ".".join(f.name for f in self.open_frames[:depth + 1] if f.name) or "ktap"
            if frame.plan is None:
                out.append(TestResult(name, FAILED, f"no plan line before {before}"))
            elif frame.count < frame.plan:
                out.append(TestResult(name, FAILED,
                                      f"MISSING {frame.plan - frame.count} planned test(s) "
                                      f"({_plan_words(frame)}) before {before}"))
        return out


def strip_escapes(text: str) -> str:
    """Remove terminal escape sequences (SeaBIOS resets and clears the screen)."""
    return _ESCAPE_RE.sub("", text)


def clean_line(raw: str) -> str:
    """One serial line as tinypv wrote it.

    Drops carriage returns, escape sequences, trailing blanks, a Xen "(dN) "
    prefix, and SeaBIOS's "Booting from ROM.." which ends without a newline
    and so sticks to the kernel's first line.
    """
    line = strip_escapes(raw.replace("\r", "")).rstrip()
    line = _FIRMWARE_PREFIX_RE.sub("", line, count=1)
    return _DOMAIN_PREFIX_RE.sub("", line, count=1)


def _leaf_status(ok: bool, directive: str) -> tuple[str, str]:
    """Map a result line's ok-ness and directive to (status, reason)."""
    word, _, rest = directive.partition(" ")
    if word.upper() == "SKIP":
        return SKIP, rest.strip()
    if word.upper() == "TODO":
        return SKIP, f"TODO {rest.strip()}".strip()
    return (OK if ok else FAILED), ""


class _KtapParser:
    """Line-at-a-time KTAP v1 parser; see parse_ktap."""

    def __init__(self):
        self.stack: list[_Frame] = []
        self.leaves: list[TestResult] = []
        self.plan_problems: list[TestResult] = []
        self.skip_all = ""
        self.seen = False
        self.last_leaf: TestResult | None = None
        self.last_leaf_desc = ""
        self.last_leaf_indent = 0
        self.pending: list[str] = []    # diagnostics waiting for the next result

    def feed(self, raw: str) -> None:
        line = clean_line(raw)
        text = line.lstrip(" ")
        if not text:
            return
        indent = len(line) - len(text)
        if _VERSION_RE.match(text):
            self._open(indent)
            self._forget_diagnostics()
        elif _SUBTEST_RE.match(text):
            self._frame_at(indent).name = _SUBTEST_RE.match(text).group(1).strip()
            self._forget_diagnostics()
        elif _PLAN_RE.match(text) and self.stack:
            match = _PLAN_RE.match(text)
            frame = self._frame_at(indent)
            frame.plan, frame.plan_directive = int(match.group(1)), (match.group(2) or "").strip()
            if frame is self.stack[0] and frame.plan_directive.upper().startswith("SKIP"):
                self.skip_all = frame.plan_directive[4:].strip() or "SKIP"
            self._forget_diagnostics()
        elif _RESULT_RE.match(text) and self.stack:
            self._result(indent, _RESULT_RE.match(text))
        elif text.startswith("#") and self.stack:
            self._diagnostic(indent, text)

    def _forget_diagnostics(self) -> None:
        self.last_leaf = None
        self.pending = []

    def _diagnostic(self, indent: int, text: str) -> None:
        """Attach a "# ..." line to the test it is about.

        "# start NAME" (tinypv prints it before running each test) is not a
        diagnostic: it names the test a crash interrupts.

        Producers differ: KUnit-style output puts diagnostics before the
        result line, others after it.  A line naming the previous test
        ("# ticks_advance: ..."), or an unnamed line right after a failure,
        belongs to the previous test; anything else waits for the next one.
        """
        started = _START_RE.match(text)
        if started:
            self._frame_at(indent).starting = started.group(1)
            return
        last = self.last_leaf
        if last and indent >= self.last_leaf_indent:
            subject = _DIAG_SUBJECT_RE.match(text)
            if subject and subject.group(1) == self.last_leaf_desc or \
                    not subject and last.status == FAILED:
                last.details.append(text)
                return
        self.pending.append(text)

    def _pop(self) -> _Frame:
        """Close the innermost level, checking its count against its plan.

        A suite that ends short of its plan ran fewer tests than it promised
        (a result line lost, a test skipped by a bug in the runner): that is
        a failure at every nesting level, even when each result was ok.
        """
        frame = self.stack.pop()
        if frame.plan is None and frame.count == 0:
            return frame
        name = ".".join(f.name for f in self.stack + [frame] if f.name) or "ktap"
        if frame.plan is None:
            self.plan_problems.append(TestResult(
                name, FAILED, f"{frame.count} result(s) and no plan line"))
        elif frame.count < frame.plan:
            self.plan_problems.append(TestResult(
                name, FAILED, f"MISSING {frame.plan - frame.count} planned test(s) "
                              f"({_plan_words(frame)})"))
        elif frame.count > frame.plan:
            self.plan_problems.append(TestResult(
                name, FAILED, f"{frame.count - frame.plan} result(s) beyond the plan "
                              f"({_plan_words(frame)})"))
        return frame

    def _open(self, indent: int) -> None:
        """A "KTAP version" line: a new document at this indentation."""
        self.seen = True
        self.last_leaf = None
        while self.stack and self.stack[-1].indent > indent:
            self._pop()
        top = self.stack[-1] if self.stack else None
        if top and top.indent == indent and top.plan is None and top.count == 0:
            return          # "# Subtest:" came first and already opened it
        if top and top.indent == indent:
            self._pop()
        self.stack.append(_Frame(indent))

    def _frame_at(self, indent: int) -> _Frame:
        """The open frame at `indent`, created if the producer skipped its header."""
        while self.stack and self.stack[-1].indent > indent:
            self._pop()
        if not self.stack or self.stack[-1].indent < indent:
            self.stack.append(_Frame(indent))
        return self.stack[-1]

    def _result(self, indent: int, match: re.Match) -> None:
        child = None
        while self.stack and self.stack[-1].indent > indent:
            child = self._pop()
        frame = self._frame_at(indent)
        frame.count += 1
        frame.starting = ""
        ok = match.group(1) == "ok"
        description, _, directive = match.group(3).partition("#")
        description, directive = description.strip(), directive.strip()
        if child is not None and (child.count or child.plan):
            self._forget_diagnostics()  # a suite's summary line; its leaves are recorded
            return
        path = [f.name for f in self.stack if f.name]
        name = ".".join(path + [description or f"#{frame.count}"])
        status, reason = _leaf_status(ok, directive)
        self.last_leaf = TestResult(name, status, reason, details=self.pending)
        self.last_leaf_desc = description
        self.last_leaf_indent = indent
        self.pending = []
        self.leaves.append(self.last_leaf)


def parse_ktap(lines) -> KtapReport:
    """Parse a (possibly nested, possibly truncated) KTAP v1 stream.

    Non-KTAP lines (boot report, Xen output, register dumps) are ignored.
    Leaves are named by the suite path joined with "." ("irq.ticks_advance").
    Diagnostic lines ("# ...") are kept in the details of the leaf they are
    about, whether they come before or after its result line.  A level that
    closes short of (or beyond) its plan is a plan problem, named after
    the suite; levels still open at the end are left to the caller
    (open_frames, missing_in_open).
    """
    parser = _KtapParser()
    for line in lines:
        parser.feed(line)
    return KtapReport(parser.leaves, list(parser.stack), parser.seen,
                      parser.plan_problems, parser.skip_all)


# ---------------------------------------------------------------------------
# Facts about a boot log besides KTAP

_VERDICT_RE = re.compile(r"^tinypv: result (PASS|FAIL)$")
_CRASH_RE = re.compile(r"^tinypv: (?:PANIC|EXCEPTION)\b")
_READY_RE = re.compile(r"^tinypv: ready\b")
_REPORT_RE = re.compile(r"^([a-z][a-z0-9 _]{0,31}):\s+(\S.*)$")
_REPORT_FIRST_KEY = "boot path"
_NOT_REPORT_KEYS = ("warning", "inject")
_NO_TESTS_RE = re.compile(r"^warning: ktest=.* matches no test")
_XEN_ERROR_CASED = ("ERR", "Panic", "PANIC")
_XEN_ERROR_WORDS = ("error", "could not", "couldn't", "refus", "not supported", "does not support",
                    "fail", "invalid", "unable", "cannot", "not a xen", "bad ", "crash")
_XEN_BUILD_MARK = "*** Building a PV Dom0 ***"


@dataclass
class LogFacts:
    verdict: str | None         # "PASS" / "FAIL" from `tinypv: result` after `tinypv: ready`
    crash_line: str | None      # first `tinypv: PANIC` / `tinypv: EXCEPTION` line
    boot_report: dict[str, str]
    xen_lines: list[str]
    tinypv_spoke: bool          # tinypv printed anything at all
    test_lines: list[str] = field(default_factory=list)  # after `tinypv: ready`
    ready: bool = False         # `tinypv: ready` was printed
    no_tests_warning: str = ""  # the kernel's "ktest=GLOB matches no test"


def is_xen_error(line: str) -> bool:
    """Does this "(XEN)" line look like Xen complaining?"""
    lower = line.lower()
    return any(w in line for w in _XEN_ERROR_CASED) or any(w in lower for w in _XEN_ERROR_WORDS)


def xen_error_lines(xen_lines) -> list[str]:
    """Xen's complaints: lines with error words, plus every panic block line.

    A panic block runs from "Panic on CPU" to the next "****" line; its
    message ("Not enough memory to relocate the dom0 kernel image") need not
    contain an error word.
    """
    errors, in_panic = [], False
    for line in xen_lines:
        if "Panic on CPU" in line:
            in_panic = True
        elif in_panic and "****" in line:
            in_panic = False
        if in_panic or is_xen_error(line):
            errors.append(line)
    return errors


def xen_refusal_context(xen_lines, limit: int = 12) -> list[str]:
    """The (XEN) lines Xen printed while building dom0, before it gave up.

    Xen's reason for refusing an image ("ELF: shdr overflow (off ... > size
    ...)") often has no error word; it is the last thing Xen printed after
    "*** Building a PV Dom0 ***" and before its panic block (or its first
    error line).  Blank lines and the "****" frame are left out.
    """
    start = next((i + 1 for i, line in enumerate(xen_lines) if _XEN_BUILD_MARK in line), None)
    if start is None:
        return []
    out = []
    for line in xen_lines[start:]:
        body = line.removeprefix("(XEN)").strip()
        if "****" in body or "Panic on CPU" in body:
            break
        if body:
            out.append(line)
    return out[-limit:]


def scan_log(lines) -> LogFacts:
    """Extract the verdict, crash line, boot report and Xen lines from a log.

    The boot report is the `key: value` lines from `boot path:` up to
    `tinypv: ready`; the verdict and the test lines are only what comes after
    `tinypv: ready`; crash lines count anywhere, but only at a line's start
    (the boot report echoes the command line, which is user text).
    """
    facts = LogFacts(None, None, {}, [], False)
    in_report = False
    for raw in lines:
        line = clean_line(raw)
        text = line.strip()
        if text.startswith("(XEN)"):
            facts.xen_lines.append(text)
            continue
        if facts.ready:
            facts.test_lines.append(line)
        if text.startswith("tinypv:"):
            facts.tinypv_spoke = True
            if _READY_RE.match(text) and not facts.ready:
                facts.ready, in_report = True, False
            if facts.ready and facts.verdict is None and _VERDICT_RE.match(text):
                facts.verdict = _VERDICT_RE.match(text).group(1)
            if _CRASH_RE.match(text) and facts.crash_line is None:
                facts.crash_line = text
            continue
        if text.startswith("warning:"):
            facts.tinypv_spoke = True
            if _NO_TESTS_RE.match(text) and not facts.no_tests_warning:
                facts.no_tests_warning = text
            continue
        report = _REPORT_RE.match(line) if not facts.ready else None
        if report and report.group(1) == _REPORT_FIRST_KEY:
            in_report = True
        if report and in_report and report.group(1) not in _NOT_REPORT_KEYS:
            facts.boot_report[report.group(1)] = report.group(2).strip()
            facts.tinypv_spoke = True
    return facts


def log_tail(lines, count: int = TAIL_LINES) -> list[str]:
    """The last `count` non-empty lines of a log, safe to print."""
    return [strip_escapes(line) for line in lines if line.strip()][-count:]


# ---------------------------------------------------------------------------
# Classification


def worst_status(results) -> str:
    """The most severe status among results (OK for none)."""
    return max((r.status for r in results), key=SEVERITY.index, default=OK)


def exit_code(results) -> int:
    """run.py's and test.py's exit status for these results (EXIT_CODES)."""
    return EXIT_CODES[worst_status(results)]


@dataclass
class Outcome:
    """Per-test results of one boot or one host test, plus what else was seen."""
    results: list[TestResult]
    boot_report: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    def passed(self) -> bool:
        return self.count(*FAILING) == 0

    def worst(self) -> str:
        return worst_status(self.results)


def _xen_refusal(lines, facts: LogFacts, exit_status, timed_out) -> TestResult:
    """Xen ran but tinypv never spoke: Xen refused the image (an ERROR).

    The reason is what Xen printed last while building dom0 (its real
    complaint) and then the panic message; the details are those build lines
    and Xen's error lines.
    """
    errors = xen_error_lines(facts.xen_lines)
    context = xen_refusal_context(facts.xen_lines)
    if any("Panic on CPU" in line for line in errors):
        how = "Xen panicked"
    else:
        how = "timed out" if timed_out else describe_exit(exit_status)
    telling = [line.removeprefix("(XEN)").strip() for line in errors
               if "Panic on CPU" not in line and line.removeprefix("(XEN)").strip()]
    cause = [context[-1].removeprefix("(XEN)").strip()] if context else []
    said = cause + [t for t in telling[-1:] if t not in cause]
    reason = f"tinypv printed nothing under Xen ({how})"
    if said:
        reason += ": " + "; ".join(said)
    wanted = set(context) | set(errors)
    details = [line for line in facts.xen_lines if line in wanted]
    if not details:
        return TestResult("boot", ERROR, reason, tail=log_tail(lines))
    return TestResult("boot", ERROR, reason, details[-24:])


def _silent_exit(lines, exit_status) -> TestResult:
    """QEMU ended before tinypv printed a word: QEMU or its inputs are broken."""
    said = [ln.strip() for ln in lines if ln.strip()]
    reason = f"QEMU ended before tinypv printed anything ({describe_exit(exit_status)})"
    if said:
        reason += ": " + said[-1]
    return TestResult("boot", ERROR, reason, tail=log_tail(lines))


def _early_end(lines, ktap: KtapReport, facts: LogFacts, exit_status,
               timed_out: bool, stopped_because: str) -> TestResult:
    """The run ended before the kernel's verdict: a crash or a timeout."""
    if not ktap.seen:
        name = "boot"
    else:
        name = ktap.running_test() or "shutdown"
    if timed_out:
        status, reason = TIMEOUT, stopped_because or "timed out"
    else:
        status = CRASHED
        reason = facts.crash_line or (
            f"output ended without 'tinypv: result' ({describe_exit(exit_status)})")
    left = ktap.not_run()
    if left:
        reason += f"; {left} later planned test(s) not run"
    return TestResult(name, status, reason, tail=log_tail(lines))


def _no_test_ran(ktap: KtapReport, facts: LogFacts) -> TestResult | None:
    """An ERROR when the stream reported no test at all and did not say why.

    `notests` prints "1..0 # SKIP notests"; anything else with no results
    (a ktest= glob that matches nothing) is a run that proved nothing.
    """
    if not ktap.seen or ktap.leaves or ktap.skip_all or not ktap.complete():
        return None
    why = facts.no_tests_warning or "the plan is 1..0 and gives no SKIP reason"
    return TestResult("tests", ERROR, f"no test ran ({why})")


def _verdict_problems(ktap: KtapReport, facts: LogFacts, leaves,
                      exit_status, harness_stop_ok: bool) -> list[TestResult]:
    """Disagreements between the verdict line, the KTAP results and the exit."""
    problems = []
    failures = [leaf for leaf in leaves if leaf.status == FAILED]
    if not ktap.seen:
        problems.append(TestResult("ktap", FAILED, "no KTAP output before 'tinypv: result'"))
    elif not ktap.complete():
        problems.extend(ktap.missing_in_open("'tinypv: result'"))
    no_test = _no_test_ran(ktap, facts)
    if no_test:
        problems.append(no_test)
    if facts.verdict == "PASS" and failures:
        problems.append(TestResult(
            "verdict", FAILED, f"kernel says PASS but {len(failures)} test(s) reported 'not ok'"))
    if facts.verdict == "FAIL" and not failures:
        problems.append(TestResult("verdict", FAILED,
                                   "kernel says FAIL but no test reported 'not ok'"))
    expected = EXIT_PASS if facts.verdict == "PASS" else EXIT_FAIL
    if exit_status is None and not harness_stop_ok:
        problems.append(TestResult("exit", FAILED,
                                   f"QEMU did not exit after 'tinypv: result {facts.verdict}' "
                                   "(no write to port 0xf4); stopped by harness"))
    elif exit_status is not None and exit_status != expected:
        problems.append(TestResult("exit", FAILED,
                                   f"{describe_exit(exit_status)} disagrees with "
                                   f"'tinypv: result {facts.verdict}' (expected {expected})"))
    return problems


def classify_boot(lines, exit_status: int | None, timed_out: bool = False,
                  harness_stop_ok: bool = False, stopped_because: str = "") -> Outcome:
    """Judge one boot of tinypv from its log lines and QEMU's exit status.

    exit_status is None when the harness stopped QEMU; harness_stop_ok says
    whether that is normal after the verdict line (true under Xen, where QEMU
    outlives dom0).  Only lines after `tinypv: ready` are test output.
    Rules, in order:
      * Xen output but no word from tinypv: Xen refused the image (ERROR
        "boot", with what Xen said while building dom0);
      * QEMU exited with an error (not 0, a guest reset, nor a debug-exit
        status) before tinypv said anything: ERROR "boot";
      * no verdict line, or a panic, or exit 37: the running test crashed
        (or timed out, if the timeout fired), with the last log lines;
      * otherwise the KTAP leaves, plus a FAILED result for each suite that
        closed short of its plan (MISSING n planned test(s)) and for every
        disagreement between verdict, results, plan and exit status, and an
        ERROR when no test ran and the plan gave no SKIP reason.
    """
    lines = list(lines)
    facts = scan_log(lines)
    ktap = parse_ktap(facts.test_lines)
    results = list(ktap.leaves) + list(ktap.plan_problems)
    outcome = Outcome(results, facts.boot_report, facts.verdict)
    if facts.xen_lines and not facts.tinypv_spoke:
        results.append(_xen_refusal(lines, facts, exit_status, timed_out))
        return outcome
    if not facts.tinypv_spoke and not timed_out and exit_status not in (None, 0) \
            and exit_status not in EXIT_MEANING:
        results.append(_silent_exit(lines, exit_status))
        return outcome
    crashed = facts.crash_line is not None or exit_status == EXIT_PANIC
    if crashed or facts.verdict is None:
        results.append(_early_end(lines, ktap, facts, exit_status,
                                  timed_out and not crashed, stopped_because))
        return outcome
    results.extend(_verdict_problems(ktap, facts, ktap.leaves, exit_status, harness_stop_ok))
    return outcome


def classify_host(lines, exit_status: int | None, timed_out: bool = False,
                  stopped_because: str = "") -> Outcome:
    """Judge a host unit-test program that prints KTAP and exits 0 on success."""
    lines = list(lines)
    ktap = parse_ktap(lines)
    results = list(ktap.leaves) + list(ktap.plan_problems)
    outcome = Outcome(results)
    if timed_out or (ktap.seen and not ktap.complete()):
        name = ktap.running_test() or "run"
        status = TIMEOUT if timed_out else CRASHED
        reason = stopped_because if timed_out else \
            f"output ended early ({describe_host_exit(exit_status)})"
        results.append(TestResult(name, status, reason, tail=log_tail(lines)))
    elif not ktap.seen:
        results.append(TestResult("ktap", ERROR,
                                  f"no KTAP output ({describe_host_exit(exit_status)})",
                                  tail=log_tail(lines)))
    elif not ktap.leaves and not ktap.skip_all:
        results.append(TestResult("tests", ERROR, "no test ran (the plan is 1..0 and gives "
                                  "no SKIP reason)", tail=log_tail(lines)))
    elif exit_status != 0 and not any(r.status == FAILED for r in results):
        results.append(TestResult("exit", FAILED, describe_host_exit(exit_status),
                                  tail=log_tail(lines)))
    return outcome


def describe_host_exit(status: int | None) -> str:
    """Human wording for a host test program's exit status."""
    if status is not None and status >= 0:
        return f"exit status {status}"
    return describe_exit(status)


# ---------------------------------------------------------------------------
# Booting: command, run, classify in one call


@dataclass
class Boot:
    """A finished boot: the command, the raw run and the judgement."""
    argv: list[str]
    run: ProcessRun
    outcome: Outcome
    log_path: Path | None


def boot_tinypv(platform: str, kernel: Path, append: str = "", icount: bool = False,
                timeout: float = DEFAULT_TIMEOUT, log_path: Path | None = None,
                echo=None, smp: int = 1, cpu: str | None = None) -> Boot:
    """Boot tinypv once and classify the result (platform must be available)."""
    argv = qemu_command(platform, kernel, append, icount, smp=smp, cpu=cpu)
    run = run_process(argv, log_path, timeout, echo=echo, end_grace=BootEndRules())
    outcome = classify_boot(run.lines, run.exit_status, run.timed_out,
                            harness_stop_ok=(platform == "xen"),
                            stopped_because=run.stopped_because)
    return Boot(argv, run, outcome, log_path)


# ---------------------------------------------------------------------------
# The in-kernel tests, read from the ELF

_SHT_NOBITS = 8


def kernel_tests(elf_path: Path) -> list[str]:
    """Every in-kernel test of a tinypv ELF as "suite.name", in run order.

    Reads the `.ktest.cases` section (struct ktest: suite and name pointers
    and the function, 8 bytes each; guest/include/ktest.h) and the strings
    they point to, without running anything.  guest/ktest.c runs suites in
    the order of their first test and each suite's tests in link order; so
    does this list.  Raises ValueError for a file that is not such an ELF.
    """
    data = Path(elf_path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{elf_path}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, kind, _flags, addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize)
        sections.append((name, kind, addr, offset, size))
    names_off = sections[shstrndx][3]

    def section_name(entry) -> str:
        start = names_off + entry[0]
        return data[start:data.index(b"\0", start)].decode()

    def string_at(vaddr: int) -> str:
        for _name, kind, addr, offset, size in sections:
            if kind != _SHT_NOBITS and addr <= vaddr < addr + size:
                start = offset + vaddr - addr
                return data[start:data.index(b"\0", start)].decode()
        raise ValueError(f"{elf_path}: test name pointer {vaddr:#x} is in no section")

    cases = [s for s in sections if section_name(s) == ".ktest.cases"]
    if not cases:
        raise ValueError(f"{elf_path}: no .ktest.cases section")
    _name, _kind, _addr, offset, size = cases[0]
    tests = [(string_at(suite), string_at(name)) for suite, name, _fn in
             struct.iter_unpack("<QQQ", data[offset:offset + size])]
    suites = list(dict.fromkeys(suite for suite, _ in tests))
    return [f"{suite}.{name}" for s in suites for suite, name in tests if suite == s]


# ---------------------------------------------------------------------------
# Output formatting shared by run.py and test.py

DETAIL_INDENT = " " * 8


def display_path(path: Path | str) -> str:
    """A path relative to the current directory when that is shorter."""
    rel = os.path.relpath(path)
    return rel if len(rel) < len(str(path)) else str(path)


def format_result(full_name: str, result: TestResult, log_path: Path | None = None,
                  show_tail: bool = True) -> list[str]:
    """Printable lines for one result: the status line, then indented details.

    ok      native-tcg/irq.pushf_shows_if
    SKIP    native-tcg/irq.masked_no_ticks (no timer on this platform)
    FAILED  native-tcg/irq.ticks_advance
            # ticks_advance: expected ticks > 0, got 0
            log: build/logs/runs/native-tcg.20261201-120000.x1y2z3.log
    ERROR   native-tcg/tests (no test ran (warning: ktest=nomatch* matches no test))
    CRASHED native-tcg/irq.#2 (tinypv: PANIC: ...)
            | <last log lines>
            log: build/logs/runs/native-tcg.20261201-120000.x1y2z3.log
    """
    head = f"{result.status:<8}{full_name}"
    if result.reason:
        head += f" ({result.reason})"
    out = [head]
    if result.status not in FAILING:
        return out
    out += [DETAIL_INDENT + line for line in result.details]
    if show_tail:
        out += [f"{DETAIL_INDENT}| {line}" for line in result.tail]
    if log_path is not None:
        out.append(f"{DETAIL_INDENT}log: {display_path(log_path)}")
    return out


def summary_line(passed: int, failed: int, skipped: int) -> str:
    """The one summary line every run ends with; `failed` counts every failing state."""
    return f"{passed} passed, {failed} failed, {skipped} skipped"


_KIND_WORDS = ((FAILED, "failure", "failures"), (ERROR, "error", "errors"),
               (CRASHED, "crash", "crashes"), (TIMEOUT, "timeout", "timeouts"))


def failed_breakdown(results) -> str:
    """"of the 3 failed: 1 failure, 1 error, 1 crash", or "" when only failures failed.

    Printed after summary_line, which stays exactly "N passed, N failed,
    N skipped" for whoever parses it.
    """
    counts = {status: sum(1 for r in results if r.status == status) for status in FAILING}
    if not (counts[ERROR] or counts[CRASHED] or counts[TIMEOUT]):
        return ""
    parts = [f"{counts[s]} {one if counts[s] == 1 else many}"
             for s, one, many in _KIND_WORDS if counts[s]]
    return f"of the {sum(counts.values())} failed: " + ", ".join(parts)


def summary_lines(results) -> list[str]:
    """summary_line for these results, then failed_breakdown if there is one."""
    failed = sum(1 for r in results if r.status in FAILING)
    lines = [summary_line(sum(1 for r in results if r.status == OK), failed,
                          sum(1 for r in results if r.status == SKIP))]
    breakdown = failed_breakdown(results)
    return lines + [breakdown] if breakdown else lines
