"""Crash safety: with --durability always, kill -9 at random moments loses no acknowledged write.

Several writer threads each own a set of keys and send pipelines of SET (with an increasing
version value), DEL and INCR over raw sockets. A write is acknowledged when its reply has been
read. After each kill -9 and restart on the same data directory, every key must hold its last
acknowledged value, or the value of one of the writes that were sent after it but not yet
acknowledged when the server died (they may or may not have been applied). Counters must lie
between the acknowledged count and that count plus the unacknowledged INCRs.

Env: CAIRN_CRASH_ROUNDS (default 5), CAIRN_CRASH_SEED (default: random, printed on failure).
"""

import os
import random
import threading
import time

from harness import RawConn, encode_command

ROUNDS = int(os.environ.get("CAIRN_CRASH_ROUNDS", "5"))
WRITERS = 4
KEYS_PER_WRITER = 16
PIPELINE_MAX = 32
DELETED = None


class Writer(threading.Thread):
    """One client: owns keys w<id>:k<j> and the counter w<id>:ctr."""

    def __init__(self, wid, seed):
        super().__init__(daemon=True)
        self.wid = wid
        self.rng = random.Random(seed * 1000 + wid)
        self.version = 0
        self.keys = [b"w%d:k%d" % (wid, j) for j in range(KEYS_PER_WRITER)]
        self.counter_key = b"w%d:ctr" % wid
        self.acked = {k: DELETED for k in self.keys}
        self.counter = 0
        self.unacked = []  # ops sent whose reply never arrived: (kind, key, value)
        self.port = None
        self.stop_event = threading.Event()
        self.error = None
        self.acked_ops = 0

    def start_round(self, port):
        threading.Thread.__init__(self, daemon=True)
        self.port = port
        self.stop_event.clear()
        self.start()

    def run(self):
        try:
            conn = RawConn(self.port, timeout=5)
        except OSError:
            return
        try:
            while not self.stop_event.is_set():
                self.one_pipeline(conn)
        except (OSError, ConnectionError):
            pass  # the server was killed: whatever is in self.unacked stays uncertain
        except AssertionError as e:
            self.error = e
        finally:
            conn.close()

    def one_pipeline(self, conn):
        ops = []
        for _ in range(self.rng.randrange(1, PIPELINE_MAX + 1)):
            x = self.rng.random()
            key = self.rng.choice(self.keys)
            if x < 0.7:
                self.version += 1
                ops.append(("set", key, b"%d:%d" % (self.wid, self.version)))
            elif x < 0.8:
                ops.append(("del", key, DELETED))
            else:
                ops.append(("incr", self.counter_key, None))
        data = []
        for kind, key, value in ops:
            if kind == "set":
                data.append(encode_command("SET", key, value))
            elif kind == "del":
                data.append(encode_command("DEL", key))
            else:
                data.append(encode_command("INCR", key))
        # Everything is uncertain from the moment it is sent until its reply arrives.
        self.unacked = list(ops)
        conn.send(b"".join(data))
        for kind, key, value in ops:
            reply = conn.read_raw()
            if kind == "set":
                assert reply == b"+OK\r\n", reply
                self.acked[key] = value
            elif kind == "del":
                expected = b":0\r\n" if self.acked[key] is DELETED else b":1\r\n"
                assert reply == expected, (key, self.acked[key], reply)
                self.acked[key] = DELETED
            else:
                assert reply == b":%d\r\n" % (self.counter + 1), (self.counter, reply)
                self.counter += 1
            self.unacked.pop(0)
            self.acked_ops += 1

    def verify_and_resync(self, conn):
        """Checks the recovered state; then adopts it as the new acknowledged state."""
        problems = []
        for key in self.keys:
            reply = conn.cmd("GET", key)
            allowed = {self.acked[key]} | {v for kind, k, v in self.unacked if k == key}
            if reply not in allowed:
                problems.append("%r: recovered %r, acknowledged %r, in flight %r" % (
                    key, reply, self.acked[key],
                    [v for kind, k, v in self.unacked if k == key]))
            self.acked[key] = reply
        in_flight_incrs = sum(1 for kind, _, _ in self.unacked if kind == "incr")
        raw_counter = conn.cmd("GET", self.counter_key)
        counter = int(raw_counter) if raw_counter is not None else 0
        if not self.counter <= counter <= self.counter + in_flight_incrs:
            problems.append("%r: recovered %d, acknowledged %d, %d INCRs in flight" % (
                self.counter_key, counter, self.counter, in_flight_incrs))
        self.counter = counter
        self.unacked = []
        return problems


def test_kill9_loses_no_acknowledged_write(make_server):
    seed = int(os.environ.get("CAIRN_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    server = make_server(durability="always")
    writers = [Writer(w, seed) for w in range(WRITERS)]
    for round_no in range(ROUNDS):
        before = sum(w.acked_ops for w in writers)
        for w in writers:
            w.start_round(server.port)
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill9()
        for w in writers:
            w.join(timeout=10)
            assert not w.is_alive(), "writer %d hung after the kill" % w.wid
            assert w.error is None, "seed %d round %d writer %d: bad reply %s" % (
                seed, round_no, w.wid, w.error)
        acked_this_round = sum(w.acked_ops for w in writers) - before
        assert acked_this_round > 0, "no write was acknowledged in round %d" % round_no
        server.start()
        with RawConn(server.port) as conn:
            problems = []
            for w in writers:
                problems += w.verify_and_resync(conn)
            assert not problems, "seed %d round %d: lost acknowledged writes:\n  %s" % (
                seed, round_no, "\n  ".join(problems))
            # Nothing outside the writers' keys appeared.
            assert conn.cmd("DBSIZE") <= WRITERS * (KEYS_PER_WRITER + 1)
    # A final clean restart keeps the same state.
    def snapshot():
        with RawConn(server.port) as conn:
            return [conn.cmd_raw("GET", k) for w in writers for k in w.keys + [w.counter_key]]
    before = snapshot()
    server.restart()
    assert snapshot() == before
