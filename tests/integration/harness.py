"""Process and wire helpers shared by the integration tests.

Everything here talks to a real server over TCP. The server under test is `cairn server` by
default; with CAIRN_TARGET=redis the same tests run against redis-server 7.0, which is how the
tests themselves are checked against the reference implementation.
"""

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CAIRN_BIN = os.environ.get("CAIRN_BIN", os.path.join(REPO_ROOT, "build", "cairn"))
REDIS_BIN = os.environ.get("REDIS_BIN", "/usr/bin/redis-server")
TARGET = os.environ.get("CAIRN_TARGET", "cairn")

START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0


def target_is_redis():
    return TARGET == "redis"


def free_port():
    """A port that was free a moment ago; start() retries if someone else takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# RESP encoding and decoding (RESP2 and RESP3), exact enough to compare replies byte for byte.


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Incomplete(Exception):
    pass


class SimpleString(bytes):
    """A '+' reply; a plain bytes value is a bulk string."""


class ErrorReply(bytes):
    """A '-' (or RESP3 '!') reply."""


class Verbatim(bytes):
    fmt = b"txt"


class RespSet(list):
    pass


class Push(list):
    pass


def _line(buf, pos):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    return buf[pos:end], end + 2


def _bulk(buf, pos, length):
    if len(buf) < pos + length + 2:
        raise Incomplete()
    return buf[pos:pos + length], pos + length + 2


def parse_frame(buf, pos=0):
    """Parses one reply starting at pos; returns (value, next_pos) or raises Incomplete."""
    if pos >= len(buf):
        raise Incomplete()
    t = buf[pos:pos + 1]
    line, pos = _line(buf, pos + 1)
    if t == b"+":
        return SimpleString(line), pos
    if t == b"-":
        return ErrorReply(line), pos
    if t == b":" or t == b"(":
        return int(line), pos
    if t == b"$" or t == b"!" or t == b"=":
        n = int(line)
        if n < 0:
            return None, pos
        data, pos = _bulk(buf, pos, n)
        if t == b"!":
            return ErrorReply(data), pos
        if t == b"=":
            v = Verbatim(data[4:])
            v.fmt = data[:3]
            return v, pos
        return data, pos
    if t == b"_":
        return None, pos
    if t == b",":
        return float(line.decode().replace("inf", "inf")), pos
    if t == b"#":
        return line == b"t", pos
    if t in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            v, pos = parse_frame(buf, pos)
            items.append(v)
        if t == b"~":
            return RespSet(items), pos
        if t == b">":
            return Push(items), pos
        return items, pos
    if t in (b"%", b"|"):
        n = int(line)
        d = {}
        for _ in range(n):
            k, pos = parse_frame(buf, pos)
            v, pos = parse_frame(buf, pos)
            if isinstance(k, list):
                k = tuple(k)
            d[k] = v
        if t == b"|":
            # An attribute decorates the reply that follows it; tests only want the reply.
            return parse_frame(buf, pos)
        return d, pos
    raise ValueError("unknown RESP type byte %r in %r" % (t, buf[:200]))


def assert_same_exchanges(run_script, server, reference, script):
    """Runs `script` with run_script(port, script) against `server` and `reference` and asserts
    the two exchanges are identical, step by step, then in length."""
    ours = run_script(server.port, script)
    theirs = run_script(reference.port, script)
    for mine, expected in zip(ours, theirs):
        assert mine == expected
    assert len(ours) == len(theirs)


class RawConn:
    """A client socket that sends exact bytes and reads exact replies."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by server; unread bytes %r" % self.buf[:200])
        self.buf += chunk

    def read_frame(self):
        """Returns (raw_bytes, parsed_value) of the next reply."""
        while True:
            try:
                value, end = parse_frame(self.buf, 0)
            except Incomplete:
                self._fill()
                continue
            raw, self.buf = self.buf[:end], self.buf[end:]
            return raw, value

    def read_raw(self):
        return self.read_frame()[0]

    def read(self):
        return self.read_frame()[1]

    def cmd(self, *args):
        """Sends one command as a RESP array; returns the parsed reply."""
        self.send(encode_command(*args))
        return self.read()

    def cmd_raw(self, *args):
        """Sends one command as a RESP array; returns the exact reply bytes."""
        self.send(encode_command(*args))
        return self.read_raw()

    def read_until_closed(self, timeout=5.0):
        """Reads everything until the server closes; returns the bytes, or raises on timeout."""
        deadline = time.monotonic() + timeout
        data = self.buf
        self.buf = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("server did not close the connection; got %r" % data[:300])
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return data
            except socket.timeout:
                continue
            if not chunk:
                return data
            data += chunk

    def is_closed(self, wait=0.5):
        """True if the server has closed the connection (EOF or reset) within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if chunk:
            self.buf += chunk
            return False
        return True


# ---------------------------------------------------------------------------------------------
# Server processes.

_LIVE = set()


@atexit.register
def _kill_leftovers():
    """Never leave a server behind, even when a test run is interrupted."""
    for s in list(_LIVE):
        try:
            s._kill_hard()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


class ServerProcess:
    """One server process (cairn or redis) with its own data directory.

    kind: "cairn" or "redis". options mirror cairn's flags (durability, requirepass, maxclients,
    timeout, threads); for redis they are mapped onto the equivalent redis-server options so the
    same test can run against both.
    """

    def __init__(self, kind, data_dir=None, port=None, **options):
        self.kind = kind
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="cairn-it-%s-" % kind)
        self.port = port
        self.options = options
        self.proc = None
        self.log_path = None

    # -- command lines ------------------------------------------------------------------------

    def _cairn_argv(self):
        argv = [CAIRN_BIN, "server", "--port", str(self.port), "--data-dir", self.data_dir,
                "--bind", "127.0.0.1"]
        for name in ("durability", "requirepass", "maxclients", "timeout", "threads"):
            if self.options.get(name) is not None:
                argv += ["--" + name, str(self.options[name])]
        return argv

    def _redis_argv(self):
        argv = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no",
                "--dir", self.data_dir, "--save", "", "--databases", "1"]
        durability = self.options.get("durability", "always")
        if durability == "none":
            argv += ["--appendonly", "no"]
        else:
            fsync = "always" if durability == "always" else "everysec"
            argv += ["--appendonly", "yes", "--appendfsync", fsync]
        if self.options.get("requirepass") is not None:
            argv += ["--requirepass", self.options["requirepass"]]
        if self.options.get("maxclients") is not None:
            argv += ["--maxclients", str(self.options["maxclients"])]
        if self.options.get("timeout") is not None:
            argv += ["--timeout", str(self.options["timeout"])]
        return argv

    def argv(self):
        return self._cairn_argv() if self.kind == "cairn" else self._redis_argv()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self):
        attempts = 3 if self.port is None else 1
        last_error = None
        for _ in range(attempts):
            port = self.port or free_port()
            try:
                self._start_once(port)
                return self
            except RuntimeError as e:
                last_error = e
                if "in use" not in str(e).lower():
                    break
        raise last_error

    def _start_once(self, port):
        self.port = port
        if self.kind == "cairn" and not os.path.exists(CAIRN_BIN):
            raise RuntimeError("cairn binary not found at %s (set CAIRN_BIN or build it)"
                               % CAIRN_BIN)
        self.log_path = os.path.join(
            tempfile.gettempdir(), "cairn-it-%s-%d-%d.log" % (self.kind, port, os.getpid()))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError("%s exited with code %s during start-up:\n%s"
                                   % (self.kind, rc, self.output()))
            if self._answers_ping():
                return
            time.sleep(0.02)
        out = self.output()
        self._kill_hard()
        raise RuntimeError("%s did not answer PING within %.0fs:\n%s"
                           % (self.kind, START_TIMEOUT_S, out))

    def _answers_ping(self):
        try:
            with RawConn(self.port, timeout=1.0) as c:
                reply = c.cmd("PING")
            # With requirepass, PING is refused with NOAUTH, which still proves it is serving.
            return reply == b"PONG" or (isinstance(reply, ErrorReply)
                                        and reply.startswith(b"NOAUTH"))
        except (OSError, ConnectionError, ValueError):
            return False

    def output(self, limit=20000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return data[-limit:].decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE_S. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._kill_hard()
        rc = self.proc.returncode
        self.proc = None
        _LIVE.discard(self)
        return rc

    def kill9(self):
        self._kill_hard()

    def _kill_hard(self):
        _LIVE.discard(self)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def wait_exit(self, timeout):
        """Waits for the process to exit by itself (e.g. after SHUTDOWN); returns its code."""
        rc = self.proc.wait(timeout)
        self.proc = None
        _LIVE.discard(self)
        return rc

    def restart(self):
        """Stops cleanly and starts again on the same data dir and port."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            subprocess.run(["rm", "-rf", self.data_dir], check=False)
        if self.log_path and os.path.exists(self.log_path):
            try:
                os.unlink(self.log_path)
            except OSError:
                pass


def target_server(**options):
    """An unstarted server of the kind under test (CAIRN_TARGET)."""
    return ServerProcess("redis" if target_is_redis() else "cairn", **options)


def reference_server():
    """The reference: an in-memory redis-server with the options the brief prescribes."""
    return ServerProcess("redis", durability="none")


# ---------------------------------------------------------------------------------------------
# Scripted exchanges: lists of (command args, expected exact reply bytes), run in order.


def OK():
    return b"+OK\r\n"


def INT(n):
    return b":%d\r\n" % n


def BULK(v):
    if v is None:
        return b"$-1\r\n"
    if isinstance(v, str):
        v = v.encode()
    return b"$%d\r\n%s\r\n" % (len(v), v)


def ERR(msg):
    return b"-" + msg.encode() + b"\r\n"


def ARR(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


NIL = b"$-1\r\n"


def arity_error(name):
    return ERR("ERR wrong number of arguments for '%s' command" % name)


SYNTAX = ERR("ERR syntax error")
NOT_INT = ERR("ERR value is not an integer or out of range")
NOT_FLOAT = ERR("ERR value is not a valid float")


def run_script(conn, script):
    """Runs each (args, expected) pair; expected is exact bytes or a predicate on the bytes."""
    for i, (args, expected) in enumerate(script):
        got = conn.cmd_raw(*args)
        if callable(expected):
            assert expected(got), "step %d %r: unexpected reply %r" % (i, args, got)
        else:
            assert got == expected, "step %d %r:\n  expected %r\n  got      %r" % (
                i, args, expected, got)
