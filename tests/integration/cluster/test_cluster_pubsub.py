"""Pub/sub across a 2-shard x RF 3 cluster of 6 machines (conftest.py; docs/pubsub.md).

What is checked: a message PUBLISHed on any machine reaches the subscribers of every machine
exactly once, in per-publisher order, with several publishers at once; PUBLISH answers the
local receiver count; a killed machine's subscribers reconnect elsewhere and the others keep
receiving; a subscriber that reads nothing is disconnected at client-output-buffer-limit while
the others keep receiving; SSUBSCRIBE/SPUBLISH stay among the replicas of the channel's shard
(MOVED elsewhere). Every wait is bounded.
"""

import socket
import threading
import time

from harness import RawConn, encode_command

READ_DEADLINE_S = 30.0


def subscribe(cluster, i, *args):
    """A raw connection on machine i that sent SUBSCRIBE-like `args`; confirmations read."""
    conn = RawConn(cluster.port(i), host=cluster.host(i), timeout=10.0)
    conn.send(encode_command(*args))
    for _ in args[1:]:
        reply = conn.read()
        assert reply[0].lower() == args[0].lower().encode(), reply
    return conn


def read_messages(conn, count, deadline_s=READ_DEADLINE_S):
    """The next `count` pushes of `conn` as (kind, channel, payload); fewer if the deadline hits."""
    out = []
    deadline = time.monotonic() + deadline_s
    while len(out) < count and time.monotonic() < deadline:
        conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            frame = conn.read()
        except (socket.timeout, TimeoutError):
            break
        out.append((frame[0], frame[-2], frame[-1]))
    return out


def wait_subscribed(cluster, channel, machines, per_machine, timeout_s=10.0):
    """Until PUBSUB NUMSUB shows the subscriptions on every machine listed."""
    deadline = time.monotonic() + timeout_s
    for i in machines:
        c = cluster.client(i)
        while c.pubsub_numsub(channel)[0][1] < per_machine:
            assert time.monotonic() < deadline, "subscriptions not visible on machine %d" % i
            time.sleep(0.02)
        c.close()


def start_publishers(cluster, publishers, channel, count, progress=None, pause_s=0.0):
    """Each machine in `publishers` publishes `count` messages "p<i>:<n>" from its own thread
    (`progress[i]`: how many it published so far). Returns the threads and a list of errors."""
    errors = []

    def run(i):
        c = cluster.client(i)
        try:
            for n in range(count):
                c.publish(channel, "p%d:%d" % (i, n))
                if progress is not None:
                    progress[i] = n + 1
                if pause_s:
                    time.sleep(pause_s)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in publishers]
    for t in threads:
        t.start()
    return threads, errors


def join_publishers(threads, errors):
    for t in threads:
        t.join(60)
    assert not errors, errors


def publish_all(cluster, publishers, channel, count):
    join_publishers(*start_publishers(cluster, publishers, channel, count))


def by_publisher(messages, publishers):
    """{publisher: [message numbers in the order received]}."""
    seen = {i: [] for i in publishers}
    for _kind, _channel, payload in messages:
        who, n = payload.decode().split(":")
        seen[int(who[1:])].append(int(n))
    return seen


def check_once_in_order(messages, publishers, count):
    """Every publisher's messages exactly once each, in the order it published them."""
    seen = by_publisher(messages, publishers)
    for i in publishers:
        assert seen[i] == list(range(count)), "publisher %d: %s" % (i, seen[i][:20])


def test_publish_reaches_every_machine_once_in_order(cluster):
    subscribers = []
    for i in range(6):
        subscribers.append(subscribe(cluster, i, "SUBSCRIBE", "news"))
        subscribers.append(subscribe(cluster, i, "PSUBSCRIBE", "ne*"))
    wait_subscribed(cluster, "news", range(6), 1)
    publishers = [0, 2, 4]
    count = 300
    publish_all(cluster, publishers, "news", count)
    for conn in subscribers:
        messages = read_messages(conn, count * len(publishers))
        assert len(messages) == count * len(publishers)
        check_once_in_order(messages, publishers, count)
        # Nothing more: each machine received each message once.
        assert read_messages(conn, 1, deadline_s=0.3) == []
    # PUBLISH counts the receivers of the machine it ran on (as Redis Cluster does).
    c = cluster.client(1)
    assert c.publish("news", "last") == 2
    c.close()
    for conn in subscribers:
        conn.close()


def test_killed_machine_subscribers_move_and_others_continue(cluster):
    subscribers = {i: subscribe(cluster, i, "SUBSCRIBE", "alerts") for i in range(6)}
    wait_subscribed(cluster, "alerts", range(6), 1)
    publishers = [1, 3]
    count = 400
    progress = {i: 0 for i in publishers}
    threads, errors = start_publishers(cluster, publishers, "alerts", count, progress, 0.002)
    deadline = time.monotonic() + 30
    while min(progress.values()) < count // 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # Machine 5 dies while messages flow; its client resubscribes on machine 0.
    cluster.kill(5)
    subscribers[5].close()
    moved = subscribe(cluster, 0, "SUBSCRIBE", "alerts")
    resubscribed_at = dict(progress)
    join_publishers(threads, errors)
    for i in range(5):
        messages = read_messages(subscribers[i], count * len(publishers))
        assert len(messages) == count * len(publishers)
        check_once_in_order(messages, publishers, count)
        subscribers[i].close()
    # The moved subscriber gets, once and in order, everything published after it came back.
    messages = read_messages(moved, count * len(publishers), deadline_s=5)
    seen = by_publisher(messages, publishers)
    for i in publishers:
        assert seen[i] == sorted(set(seen[i])), "publisher %d out of order" % i
        assert set(range(resubscribed_at[i] + 1, count)) <= set(seen[i])
    moved.close()
    # What the publishing machines could not hand to the dead one was dropped and counted.
    for i in publishers:
        c = cluster.client(i)
        assert c.info("stats")["cairn_pubsub_peer_messages_dropped"] > 0
        c.close()


def test_slow_subscriber_is_disconnected_others_continue(cluster):
    slow_machine, fast_machine, publisher = 2, 3, 4
    c = cluster.client(slow_machine)
    assert c.config_set("client-output-buffer-limit", "pubsub 1mb 256kb 60")
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    slow.connect((cluster.host(slow_machine), cluster.port(slow_machine)))
    slow.sendall(encode_command("SUBSCRIBE", "firehose"))
    fast = subscribe(cluster, fast_machine, "SUBSCRIBE", "firehose")
    wait_subscribed(cluster, "firehose", [slow_machine, fast_machine], 1)
    p = cluster.client(publisher)
    payload = "x" * 1024
    # 12 MB: past what the kernel's socket buffers absorb plus the 1 MB hard limit.
    count = 12000
    received = []
    reader = threading.Thread(target=lambda: received.extend(read_messages(fast, count)))
    reader.start()
    pipe = p.pipeline(transaction=False)
    for n in range(count):
        pipe.publish("firehose", payload)
        if n % 200 == 199:
            pipe.execute()
    pipe.execute()
    reader.join(READ_DEADLINE_S + 5)
    assert len(received) == count
    # The slow subscriber is gone from its machine: no subscriber left there.
    deadline = time.monotonic() + 10
    while c.pubsub_numsub("firehose")[0][1] != 0:
        assert time.monotonic() < deadline, "slow subscriber still connected"
        time.sleep(0.05)
    assert c.config_get("client-output-buffer-limit")["client-output-buffer-limit"].endswith(
        "pubsub 1048576 262144 60")
    c.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")
    slow.close()
    fast.close()
    p.close()
    c.close()


def test_sharded_pubsub_stays_in_the_shard(cluster):
    channel = "orders{7}"
    replicas = cluster.replicas_of(channel)
    others = [i for i in range(6) if i not in replicas]
    subscribers = [subscribe(cluster, i, "SSUBSCRIBE", channel) for i in replicas]
    # A machine that does not replicate the shard redirects, as Redis Cluster does.
    stranger = RawConn(cluster.port(others[0]), host=cluster.host(others[0]))
    reply = stranger.cmd("SSUBSCRIBE", channel)
    assert bytes(reply).startswith(b"MOVED "), reply
    # A plain subscriber of the same name elsewhere gets nothing from SPUBLISH.
    plain = subscribe(cluster, others[1], "SUBSCRIBE", channel)
    c = cluster.client(others[0])
    count = 100
    for n in range(count):
        c.execute_command("SPUBLISH", channel, "p%d:%d" % (others[0], n))
    for conn in subscribers:
        messages = read_messages(conn, count)
        assert len(messages) == count
        assert all(kind == b"smessage" for kind, _, _ in messages)
        check_once_in_order(messages, [others[0]], count)
        conn.close()
    assert read_messages(plain, 1, deadline_s=0.5) == []
    r = cluster.client(replicas[0])
    assert r.execute_command("PUBSUB", "SHARDNUMSUB", channel) == [channel.encode(), 0]
    assert r.execute_command("SPUBLISH", channel, "x") == 0
    plain.close()
    stranger.close()
    c.close()
    r.close()



def set_events_everywhere(cluster, classes):
    """CONFIG SET notify-keyspace-events on every machine (a machine's own setting)."""
    for i in range(6):
        c = cluster.client(i)
        assert c.config_set("notify-keyspace-events", classes)
        c.close()

def test_keyspace_events_reach_every_machine(cluster):
    set_events_everywhere(cluster, "KEA")
    subscribers = [subscribe(cluster, i, "PSUBSCRIBE", "__keyevent@0__:*") for i in range(6)]
    time.sleep(0.2)
    c = cluster.client(1)
    c.set("kk", "v")
    c.lpush("kl", "a")
    c.delete("kk")
    for conn in subscribers:
        messages = read_messages(conn, 3, deadline_s=10)
        # Read-modify-write commands (LPUSH) run, and publish their events, at the shard
        # leader: events of different commands may come from different machines, so their
        # order across machines is not fixed (docs/pubsub.md).
        assert sorted((m[1], m[2]) for m in messages) == sorted([
            (b"__keyevent@0__:set", b"kk"), (b"__keyevent@0__:lpush", b"kl"),
            (b"__keyevent@0__:del", b"kk")])
        conn.close()
    set_events_everywhere(cluster, "")
    c.close()


def test_stream_keyspace_events_reach_every_machine_once(cluster):
    """Stream commands run at the shard leader, which publishes their events (reported by the
    handlers, docs/pubsub.md) once for the whole cluster, in the command's order."""
    key = "ks"
    outsider = next(i for i in range(6) if i not in cluster.replicas_of(key))
    set_events_everywhere(cluster, "KEt")
    subscribers = [subscribe(cluster, i, "PSUBSCRIBE", "__keyspace@0__:ks") for i in range(6)]
    time.sleep(0.2)
    c = cluster.client(outsider)
    c.xadd(key, {"f": "v"}, id="1-1")
    c.xadd(key, {"f": "v"}, id="2-1", maxlen=1, approximate=False)
    c.xgroup_create(key, "g", id="0")
    assert c.xreadgroup("g", "alice", {key: ">"})
    assert c.xgroup_delconsumer(key, "g", "alice") == 1
    assert c.xdel(key, "2-1") == 1
    expected = [b"xadd", b"xadd", b"xtrim", b"xgroup-create", b"xgroup-createconsumer",
                b"xgroup-delconsumer", b"xdel"]
    for conn in subscribers:
        messages = read_messages(conn, len(expected) + 1, deadline_s=1.5)
        assert [m[2] for m in messages] == expected
        conn.close()
    set_events_everywhere(cluster, "")
    c.close()
