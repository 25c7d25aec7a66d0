"""Scripted-timing scenarios of the blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP,
XREAD and XREADGROUP with BLOCK), run step by step against redis-server and against Cairn (one
machine, or a cluster with the waiting clients on one machine and the others on another), whose
observations must be equal: every reply byte for byte, and at each `pending` step whether a
waiting client has answered yet.

Steps:
  ("cmd", client, args...)   send and read the reply (recorded)
  ("block", client, args...) send a blocking command without reading, then give it time to
                             reach its wait (BLOCK_SETTLE_S)
  ("pending", client)        record whether `client` still waits: "pending", or its reply if it
                             answered (read within PENDING_WAIT_S)
  ("read", client)           read the reply `client` owes (recorded; bounded by the timeout)
  ("sleep", seconds)

Clients whose name starts with "w" wait; the others act (in a cluster they are on another
machine than the waiters).
"""

import socket
import time

from harness import RawConn, encode_command

# Long enough for a blocking command to reach its wait through a cluster machine that forwards
# its first attempt to the key's leader.
BLOCK_SETTLE_S = 0.2
# A waiting client that should have answered (in a cluster: a waiter on a machine without a
# replica of the key retries every 100 ms) is given this long.
PENDING_WAIT_S = 0.25

SCENARIOS = {
    "blpop_timeout_expires": [
        ("block", "w1", "BLPOP", "{q}a", "{q}b", "1"),
        ("pending", "w1"),
        ("read", "w1"),
        ("cmd", "p", "LLEN", "{q}a"),
    ],
    "blpop_push_from_another_client_wakes": [
        ("block", "w1", "BLPOP", "{q}a", "{q}b", "0"),
        ("pending", "w1"),
        ("cmd", "p", "RPUSH", "{q}b", "x", "y"),
        ("read", "w1"),
        ("cmd", "p", "LRANGE", "{q}b", "0", "-1"),
    ],
    "brpop_first_blocked_first_served": [
        ("block", "w1", "BRPOP", "{q}a", "0"),
        ("block", "w2", "BRPOP", "{q}a", "0"),
        ("block", "w3", "BRPOP", "{q}a", "5"),
        ("cmd", "p", "LPUSH", "{q}a", "one"),
        ("read", "w1"),
        ("pending", "w2"),
        ("pending", "w3"),
        ("cmd", "p", "LPUSH", "{q}a", "two", "three"),
        ("read", "w2"),
        ("read", "w3"),
        ("cmd", "p", "EXISTS", "{q}a"),
    ],
    "blmove_timeout_zero_then_push": [
        ("block", "w1", "BLMOVE", "{q}src", "{q}dst", "RIGHT", "LEFT", "0"),
        ("sleep", 0.3),
        ("pending", "w1"),
        ("cmd", "p", "RPUSH", "{q}src", "a", "b"),
        ("read", "w1"),
        ("cmd", "p", "LRANGE", "{q}src", "0", "-1"),
        ("cmd", "p", "LRANGE", "{q}dst", "0", "-1"),
    ],
    "blmove_timeout_expires": [
        ("block", "w1", "BLMOVE", "{q}src", "{q}dst", "LEFT", "RIGHT", "0.4"),
        ("read", "w1"),
    ],
    "brpoplpush_push_wakes_and_rotates": [
        ("block", "w1", "BRPOPLPUSH", "{q}src", "{q}src", "0"),
        ("cmd", "p", "RPUSH", "{q}src", "a", "b"),
        ("read", "w1"),
        ("cmd", "p", "LRANGE", "{q}src", "0", "-1"),
    ],
    "blmpop_push_wakes_with_count": [
        ("block", "w1", "BLMPOP", "0", "2", "{q}a", "{q}b", "LEFT", "COUNT", "2"),
        ("pending", "w1"),
        ("cmd", "p", "RPUSH", "{q}b", "1", "2", "3"),
        ("read", "w1"),
        ("cmd", "p", "LRANGE", "{q}b", "0", "-1"),
    ],
    "blmpop_timeout_expires": [
        ("block", "w1", "BLMPOP", "0.3", "1", "{q}a", "RIGHT"),
        ("read", "w1"),
    ],
    "wrong_type_answers_at_once": [
        ("cmd", "p", "SET", "{q}s", "v"),
        ("cmd", "w1", "BLPOP", "{q}s", "0"),
        ("cmd", "w1", "BLMOVE", "{q}s", "{q}d", "LEFT", "LEFT", "0"),
        ("cmd", "w1", "BLMPOP", "0", "1", "{q}s", "LEFT"),
        ("cmd", "w1", "XREAD", "BLOCK", "0", "STREAMS", "{q}s", "$"),
        ("cmd", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}s", ">"),
    ],
    "blmove_destination_of_wrong_type_when_served": [
        ("cmd", "p", "SET", "{q}d", "v"),
        ("block", "w1", "BLMOVE", "{q}src", "{q}d", "LEFT", "LEFT", "0"),
        ("pending", "w1"),
        ("cmd", "p", "RPUSH", "{q}src", "a"),
        ("read", "w1"),
        ("cmd", "p", "LLEN", "{q}src"),
    ],
    "xread_timeout_expires": [
        ("cmd", "p", "XADD", "{q}x", "1-1", "f", "v"),
        ("block", "w1", "XREAD", "BLOCK", "1000", "STREAMS", "{q}x", "$"),
        ("pending", "w1"),
        ("read", "w1"),
    ],
    "xread_xadd_wakes_every_waiter": [
        ("cmd", "p", "XADD", "{q}x", "1-1", "f", "v"),
        ("block", "w1", "XREAD", "BLOCK", "0", "STREAMS", "{q}x", "$"),
        ("block", "w2", "XREAD", "COUNT", "5", "BLOCK", "5000", "STREAMS", "{q}x", "1-1"),
        ("cmd", "p", "XADD", "{q}x", "2-1", "g", "w"),
        ("read", "w1"),
        ("read", "w2"),
    ],
    "xreadgroup_waiters_share_new_entries_in_order": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "BLOCK", "0",
         "STREAMS", "{q}x", ">"),
        ("block", "w2", "XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "XADD", "{q}x", "5-1", "a", "1"),
        ("read", "w1"),
        ("pending", "w2"),
        ("cmd", "p", "XADD", "{q}x", "6-1", "b", "2"),
        ("read", "w2"),
        ("cmd", "p", "XPENDING", "{q}x", "g"),
        ("cmd", "p", "XINFO", "GROUPS", "{q}x"),
    ],
    "xreadgroup_timeout_creates_no_consumer": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c1", "BLOCK", "300", "STREAMS", "{q}x", ">"),
        ("read", "w1"),
        ("cmd", "p", "XINFO", "GROUPS", "{q}x"),
    ],
}

# What happens to waiters when their key is deleted, replaced or flushed, or their group
# destroyed (redis-server 7.0: XREADGROUP is unblocked with an error, the others keep waiting).
DELETION_SCENARIOS = {
    "xreadgroup_key_deleted": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("block", "w2", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "5000", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "DEL", "{q}x"),
        ("read", "w1"),
        ("read", "w2"),
    ],
    "xreadgroup_key_unlinked": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "UNLINK", "{q}x"),
        ("read", "w1"),
    ],
    "xreadgroup_key_replaced_by_a_string": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "SET", "{q}x", "v"),
        ("read", "w1"),
    ],
    "xreadgroup_flushall": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "FLUSHALL"),
        ("read", "w1"),
    ],
    "xreadgroup_key_expires": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "PEXPIRE", "{q}x", "600"),
        ("pending", "w1"),
        ("read", "w1"),
        ("cmd", "p", "EXISTS", "{q}x"),
    ],
    "xreadgroup_group_destroyed": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "XGROUP", "DESTROY", "{q}x", "g"),
        ("read", "w1"),
    ],
    "xreadgroup_key_renamed": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "RENAME", "{q}x", "{q}y"),
        ("read", "w1"),
    ],
    "xreadgroup_recreated_in_a_transaction_keeps_waiting": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "MULTI"),
        ("cmd", "p", "DEL", "{q}x"),
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("cmd", "p", "EXEC"),
        ("pending", "w1"),
        ("cmd", "p", "XADD", "{q}x", "3-1", "f", "v"),
        ("read", "w1"),
    ],
    "xreadgroup_recreated_without_its_group": [
        ("cmd", "p", "XGROUP", "CREATE", "{q}x", "g", "$", "MKSTREAM"),
        ("block", "w1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{q}x", ">"),
        ("cmd", "p", "MULTI"),
        ("cmd", "p", "DEL", "{q}x"),
        ("cmd", "p", "XADD", "{q}x", "3-1", "f", "v"),
        ("cmd", "p", "EXEC"),
        ("read", "w1"),
    ],
    "xread_keeps_waiting_through_del_and_set": [
        ("cmd", "p", "XADD", "{q}x", "5-1", "f", "v"),
        ("block", "w1", "XREAD", "BLOCK", "0", "STREAMS", "{q}x", "$"),
        ("cmd", "p", "DEL", "{q}x"),
        ("pending", "w1"),
        ("cmd", "p", "SET", "{q}x", "v"),
        ("pending", "w1"),
        ("cmd", "p", "DEL", "{q}x"),
        ("cmd", "p", "XADD", "{q}x", "4-1", "f", "v"),
        ("pending", "w1"),
        ("cmd", "p", "XADD", "{q}x", "6-1", "g", "w"),
        ("read", "w1"),
    ],
    "xread_keeps_waiting_through_flushall": [
        ("cmd", "p", "XADD", "{q}x", "5-1", "f", "v"),
        ("block", "w1", "XREAD", "BLOCK", "0", "STREAMS", "{q}x", "$"),
        ("cmd", "p", "FLUSHALL"),
        ("pending", "w1"),
        ("cmd", "p", "XADD", "{q}x", "6-1", "g", "w"),
        ("read", "w1"),
    ],
    "list_waiters_keep_waiting_through_del_set_and_flushall": [
        ("block", "w1", "BLPOP", "{q}a", "0"),
        ("block", "w2", "BLMOVE", "{q}a", "{q}d", "LEFT", "LEFT", "0"),
        ("block", "w3", "BLMPOP", "0", "1", "{q}a", "RIGHT"),
        ("cmd", "p", "SET", "{q}a", "v"),
        ("pending", "w1"),
        ("pending", "w2"),
        ("pending", "w3"),
        ("cmd", "p", "DEL", "{q}a"),
        ("cmd", "p", "FLUSHALL"),
        ("pending", "w1"),
        ("cmd", "p", "RPUSH", "{q}a", "1", "2", "3"),
        ("read", "w1"),
        ("read", "w2"),
        ("read", "w3"),
        ("cmd", "p", "LRANGE", "{q}d", "0", "-1"),
    ],
}


class Clients:
    """Connections by client name; `place(name)` gives the (host, port) a name connects to."""

    def __init__(self, place):
        self.place = place
        self.conns = {}

    def get(self, name):
        if name not in self.conns:
            host, port = self.place(name)
            self.conns[name] = RawConn(port, host=host, timeout=10.0)
        return self.conns[name]

    def close(self):
        for conn in self.conns.values():
            conn.close()
        self.conns = {}


def poll_reply(conn, wait):
    """The raw reply `conn` has within `wait` seconds, or None."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            return conn.read_raw()
        except socket.timeout:
            if time.monotonic() >= deadline:
                return None
        finally:
            conn.sock.settimeout(10.0)


def run_scenario(place, steps):
    """Runs `steps` with clients placed by `place`; returns the list of observations."""
    clients = Clients(place)
    out = []
    try:
        clients.get("p").cmd("FLUSHALL")
        for step in steps:
            kind = step[0]
            if kind == "sleep":
                time.sleep(step[1])
                continue
            name = step[1]
            conn = clients.get(name)
            if kind == "cmd":
                out.append((name, step[2:], conn.cmd_raw(*step[2:])))
            elif kind == "block":
                conn.send(encode_command(*step[2:]))
                time.sleep(BLOCK_SETTLE_S)
            elif kind == "pending":
                reply = poll_reply(conn, PENDING_WAIT_S)
                out.append((name, "pending?", "pending" if reply is None else reply))
            elif kind == "read":
                out.append((name, "read", conn.read_raw()))
            else:
                raise ValueError("unknown step %r" % (step,))
    finally:
        clients.close()
    return out


def assert_same(name, reference, target):
    assert target == reference, "scenario %s differs:\nredis: %r\ncairn: %r" % (
        name, reference, target)
