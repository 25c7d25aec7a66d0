"""Lists in cluster mode: a 2-shard x RF 3 cluster of 6 machines (conftest.py).

What is checked: every list write goes through the key's shard leader, so pushes through
different machines build one order every machine reads; a client blocked on any machine (a
replica of the key or not) wakes when a push through any other machine is applied; more blocked
clients than the machine has workers do not stop it from serving others; each element of a
queue is popped once.
"""

import threading
import time

import redis

from harness import RawConn, encode_command


def test_pushes_through_every_machine_build_one_order(cluster):
    clients = [cluster.client(i) for i in range(6)]
    for n in range(30):
        clients[n % 6].rpush("order", "e%d" % n)
    expected = [b"e%d" % n for n in range(30)]
    for c in clients:
        assert c.lrange("order", 0, -1) == expected
        assert c.llen("order") == 30
        assert c.type("order") == b"list"
    assert clients[1].linsert("order", "BEFORE", "e10", "mid") == 31
    assert clients[2].lindex("order", 10) == b"mid"
    assert clients[3].lrem("order", 0, "mid") == 1
    assert clients[4].lpop("order", 3) == expected[:3]
    assert clients[5].rpop("order") == b"e29"
    assert clients[0].lmove("order", "order", "LEFT", "RIGHT") == b"e3"
    assert clients[1].lrange("order", -2, -1) == [b"e28", b"e3"]
    for c in clients:
        c.close()


def test_blocked_client_on_any_machine_wakes(cluster):
    key = "bq"
    replicas = cluster.replicas_of(key)
    outsider = next(i for i in range(6) if i not in replicas)
    waiters = []
    for i in (replicas[1], outsider):
        conn = RawConn(cluster.port(i), host=cluster.host(i))
        conn.send(encode_command("BLPOP", key, "0"))
        waiters.append(conn)
    time.sleep(0.3)
    pusher = cluster.client(replicas[2])
    started = time.monotonic()
    pusher.rpush(key, "a", "b")
    got = sorted(w.read_frame()[1][1] for w in waiters)
    assert got == [b"a", b"b"]
    assert time.monotonic() - started < 2.0
    assert pusher.exists(key) == 0
    # A timeout answers null on a cluster machine too.
    assert cluster.client(outsider).brpop([key], timeout=0.2) is None
    for w in waiters:
        w.close()


def test_more_blocked_clients_than_workers(cluster):
    # The launcher gives each machine the default 32 workers: 40 waiters on one machine.
    conns = []
    for n in range(40):
        conn = RawConn(cluster.port(0), host=cluster.host(0))
        conn.send(encode_command("BRPOP", "w%d" % n, "0"))
        conns.append(conn)
    time.sleep(0.3)
    c = cluster.client(0)
    assert c.set("other", "served") is True
    assert c.get("other") == b"served"
    for n in range(40):
        cluster.client(n % 6).rpush("w%d" % n, "v%d" % n)
    for n, conn in enumerate(conns):
        assert conn.read_frame()[1] == [b"w%d" % n, b"v%d" % n]
        conn.close()


def test_queue_elements_are_popped_once(cluster):
    produced = ["item%d" % n for n in range(300)]
    popped, lock = [], threading.Lock()

    def consumer(i):
        c = cluster.client(i)
        while True:
            got = c.brpop(["queue"], timeout=1)
            if got is None:
                return
            with lock:
                popped.append(got[1].decode())

    threads = [threading.Thread(target=consumer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    producers = [cluster.client(i) for i in range(6)]
    for n, item in enumerate(produced):
        producers[n % 6].lpush("queue", item)
    for t in threads:
        t.join(30)
    assert sorted(popped) == sorted(produced)


def test_client_unblock_and_kill_of_a_blocked_client_on_a_cluster_machine(cluster):
    key = "ub"
    outsider = next(i for i in range(6) if i not in cluster.replicas_of(key))
    admin = cluster.client(outsider)

    def blocked_id():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in admin.execute_command("CLIENT", "LIST").decode().splitlines():
                if "cmd=blpop" in line:
                    return int(line.split()[0][3:])
            time.sleep(0.02)
        raise AssertionError("no client waits in BLPOP")

    for reason, expected in (("TIMEOUT", b"*-1\r\n"),
                             ("ERROR", b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")):
        conn = RawConn(cluster.port(outsider), host=cluster.host(outsider))
        conn.send(encode_command("BLPOP", key, "0"))
        assert admin.execute_command("CLIENT", "UNBLOCK", blocked_id(), reason) == 1
        assert conn.read_raw() == expected
        assert conn.cmd_raw("PING") == b"+PONG\r\n"
        conn.close()
    conn = RawConn(cluster.port(outsider), host=cluster.host(outsider))
    conn.send(encode_command("BLPOP", key, "0"))
    assert admin.execute_command("CLIENT", "KILL", "ID", blocked_id()) == 1
    assert conn.is_closed(wait=3.0)
    conn.close()
    admin.rpush(key, "kept")
    time.sleep(0.3)
    assert admin.lrange(key, 0, -1) == [b"kept"]
    admin.close()
