"""Pipelining on a cluster connection (docs/cluster.md "Pipelining"): a connection's consecutive
commands run concurrently, replies come back in request order, commands on one key keep their
order, and a machine killed mid-pipeline gives per-command errors, never a missing or reordered
reply.

The reference for "the values a sequential run gives" is the same script sent one command at a
time on another connection, under another key prefix of the same length: the two must answer the same, byte for
byte after the prefix is taken out.
"""

import random
import socket
import threading
import time

import pytest

from cluster_support import session


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Reader:
    """Reads replies off a socket, each as the raw bytes of one reply (RESP2, and the RESP3
    aggregates and one-line types)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self):
        line = self._line()
        kind = line[:1]
        if kind == b"$":
            n = int(line[1:])
            return line + b"\r\n" + (b"" if n < 0 else self._exact(n + 2))
        if kind in (b"*", b"~", b">", b"%"):
            n = int(line[1:]) * (2 if kind == b"%" else 1)
            return line + b"\r\n" + b"".join(self.reply() for _ in range(max(n, 0)))
        return line + b"\r\n"


def connect(cluster, i):
    sock = socket.create_connection(("127.0.0.%d" % (i + 2), cluster.port(i)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, Reader(sock)


def script(rng, prefix, keys, length):
    """A random mix over few keys (so keys repeat within the window) and both shards, with
    commands that run inline, on workers concurrently, and alone (KEYS, DBSIZE)."""
    out = []
    for _ in range(length):
        k = prefix + rng.choice(keys)
        h = prefix + "h" + rng.choice(keys)
        op = rng.randrange(14)
        if op < 3:
            out.append(["SET", k, str(rng.randrange(1000))])
        elif op < 5:
            out.append(["GET", k])
        elif op == 5:
            out.append(["INCR", prefix + "n" + rng.choice(keys)])
        elif op == 6:
            out.append(["APPEND", k, "x"])
        elif op == 7:
            out.append(["DEL", k])
        elif op == 8:
            out.append(["HSET", h, rng.choice("abc"), str(rng.randrange(100))])
        elif op == 9:
            out.append(["HGETALL", h])
        elif op == 10:
            out.append(["MGET", k, prefix + rng.choice(keys)])
        elif op == 11:
            out.append(["PING"])
        elif op == 12:
            out.append(["KEYS", prefix + "*"])
        else:
            out.append(["EXISTS", k])
    return out


def normalise(reply, prefix):
    """KEYS lists keys in no fixed order, and each run has its own prefix."""
    reply = reply.replace(prefix.encode(), b"P:")
    if reply.startswith(b"*") and b"P:" in reply:
        lines = reply.split(b"\r\n")
        head, items = lines[0], lines[1:-1]
        pairs = sorted(zip(items[0::2], items[1::2]))
        reply = b"\r\n".join([head] + [x for p in pairs for x in p]) + b"\r\n"
    return reply


@pytest.mark.parametrize("via", [0, 1])  # a shard leader, and a machine that forwards to it
def test_pipeline_replies_in_order_with_sequential_values(cluster, via):
    rng = random.Random(7 + via)
    keys = ["k%d" % n for n in range(12)]
    commands = script(rng, "pipe%d:" % via, keys, 600)

    sock, reader = connect(cluster, via)
    sock.sendall(b"".join(encode(c) for c in commands))  # the whole script in one write
    piped = [reader.reply() for _ in commands]
    sock.close()

    sock, reader = connect(cluster, via)
    sequential = []
    for c in commands:
        seq_args = [a.replace("pipe%d:" % via, "sequ%d:" % via) for a in c]
        sock.sendall(encode(seq_args))
        sequential.append(reader.reply())
    sock.close()

    for n, (c, a, b) in enumerate(zip(commands, piped, sequential)):
        assert normalise(a, "pipe%d:" % via) == normalise(b, "sequ%d:" % via), (n, c, a, b)


def test_a_set_then_get_of_one_key_in_one_pipeline_reads_the_set(cluster):
    sock, reader = connect(cluster, 1)
    commands = []
    for n in range(300):
        key = "sg%d" % (n % 7)
        commands += [["SET", key, "v%d" % n], ["GET", key], ["APPEND", key, "+"], ["GET", key]]
    sock.sendall(b"".join(encode(c) for c in commands))
    replies = [reader.reply() for _ in commands]
    sock.close()
    for n in range(300):
        v = b"v%d" % n
        assert replies[4 * n:4 * n + 4] == [
            b"+OK\r\n", b"$%d\r\n%s\r\n" % (len(v), v), b":%d\r\n" % (len(v) + 1),
            b"$%d\r\n%s+\r\n" % (len(v) + 1, v)], n


def test_connection_commands_apply_from_their_place_in_the_pipeline(cluster):
    # HELLO 3 in the middle: the replies before it are RESP2, those after RESP3; a CONSISTENCY
    # change applies to the commands after it only.
    sock, reader = connect(cluster, 0)
    commands = [["SET", "pc1", "a"], ["HGETALL", "pc-none"], ["HELLO", "3"],
                ["HGETALL", "pc-none"], ["GET", "pc-missing"], ["HELLO", "2"],
                ["CONSISTENCY", "WRITE", "ALL"], ["SET", "pc2", "b"], ["CONSISTENCY"]]
    sock.sendall(b"".join(encode(c) for c in commands))
    got = [reader.reply() for _ in range(3)]
    assert got[:2] == [b"+OK\r\n", b"*0\r\n"]
    assert got[2].startswith(b"%")  # HELLO 3 answers a RESP3 map
    assert reader.reply() == b"%0\r\n"
    assert reader.reply() == b"_\r\n"
    reader.reply()  # HELLO 2 (a RESP2 array)
    assert reader.reply() == b"+OK\r\n"
    assert reader.reply() == b"+OK\r\n"
    levels = reader.reply()
    assert b"ALL" in levels, levels
    sock.close()


def test_kill_mid_pipeline_gives_per_command_errors_never_a_missing_or_reordered_reply(cluster):
    # Shard 2 loses two of its three replicas while a client on machine 0 (shard 1's leader)
    # pipelines SET/GET pairs on both shards: every command gets exactly one reply, in order;
    # shard 1's commands keep succeeding; a GET returns its own key's value or an error.
    reps = cluster.replicas_of_shard(2)
    assert 0 not in reps
    keys = ["kp%d" % n for n in range(400)]
    sock, reader = connect(cluster, 0)
    killed = threading.Event()

    def killer():
        time.sleep(0.3)
        cluster.kill(reps[1])
        cluster.kill(reps[2])
        killed.set()

    t = threading.Thread(target=killer)
    t.start()
    seen_errors, rounds = 0, 0
    deadline = time.monotonic() + 20
    while (not killed.is_set() or rounds < 3) and time.monotonic() < deadline:
        rounds += 1
        commands = []
        for n, k in enumerate(keys):
            commands += [["SET", k, "%s-%d" % (k, rounds)], ["GET", k]]
        sock.sendall(b"".join(encode(c) for c in commands))
        for n, k in enumerate(keys):
            set_reply, get_reply = reader.reply(), reader.reply()
            value = b"%s-%d" % (k.encode(), rounds)
            shard1 = cluster.shard_of(k) == 1
            if set_reply == b"+OK\r\n":
                assert get_reply in (b"$%d\r\n%s\r\n" % (len(value), value),) or \
                    get_reply.startswith(b"-"), (k, get_reply)
            else:
                assert not shard1, (k, set_reply)
                assert set_reply.startswith((b"-UNAVAILABLE", b"-UNCERTAIN")), set_reply
                seen_errors += 1
            if get_reply.startswith(b"-"):
                assert not shard1, (k, get_reply)
                assert get_reply.startswith(b"-UNAVAILABLE"), get_reply
            elif get_reply != b"$-1\r\n":
                # Never another key's value, nor a value from a later round.
                assert get_reply.split(b"\r\n")[1].rsplit(b"-", 1)[0] == k.encode(), get_reply
    t.join()
    # The connection still serves in order after the faults.
    after = cluster.keys_on_shard(1, 1, prefix="kp-after")[0]
    sock.sendall(encode(["PING"]) + encode(["SET", after, "1"]) + encode(["GET", after]))
    assert [reader.reply() for _ in range(3)] == [b"+PONG\r\n", b"+OK\r\n", b"$1\r\n1\r\n"]
    sock.close()
    assert killed.is_set()
    assert seen_errors > 0, "the kill should have failed some shard-2 commands"
    s = session(cluster, 0)
    assert s.ping()
    s.close()


def test_a_blocked_pop_holds_the_commands_after_it_and_exec_does_not_block(cluster):
    # BLPOP waits for a push through another machine; the PING and SET pipelined behind it are
    # answered after it, in order, and the SET ran after the pop (it names no shared key, but
    # a blocking command runs alone). Inside MULTI, BLPOP answers at once (nil).
    sock, reader = connect(cluster, 1)
    sock.sendall(encode(["BLPOP", "bq", "5"]) + encode(["PING"]) + encode(["SET", "bq-after", "1"]))
    time.sleep(0.3)
    other = session(cluster, 4)
    assert other.exists("bq-after") == 0  # still held behind the blocked pop
    assert other.rpush("bq", "job1") == 1
    assert reader.reply() == b"*2\r\n$2\r\nbq\r\n$4\r\njob1\r\n"
    assert reader.reply() == b"+PONG\r\n"
    assert reader.reply() == b"+OK\r\n"
    started = time.monotonic()
    sock.sendall(encode(["MULTI"]) + encode(["BLPOP", "{bq}empty", "5"]) + encode(["EXEC"]))
    assert [reader.reply() for _ in range(3)] == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n*-1\r\n"]
    assert time.monotonic() - started < 2.0
    sock.close()
    other.close()
