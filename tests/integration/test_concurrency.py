"""Many clients at once: read-modify-write commands stay atomic, replies never mix up."""

import threading

import pytest

from harness import RawConn, encode_command

CLIENTS = 8
ROUNDS = 50
PIPELINE = 20


@pytest.mark.parametrize("threads", [None, 2])
def test_concurrent_clients(make_server, threads):
    s = make_server(threads=threads)
    errors = []
    incr_replies = []
    setnx_wins = [0] * ROUNDS
    lock = threading.Lock()

    def worker(wid):
        try:
            with RawConn(s.port) as c:
                seen = []
                for rnd in range(ROUNDS):
                    data = b""
                    for i in range(PIPELINE):
                        data += encode_command("INCR", "shared")
                        data += encode_command("SET", "own:%d:%d" % (wid, i), "%d:%d" % (rnd, i))
                        data += encode_command("GET", "own:%d:%d" % (wid, i))
                        data += encode_command("SETNX", "lock:%d" % rnd, str(wid))
                    c.send(data)
                    for i in range(PIPELINE):
                        seen.append(int(c.read()))
                        assert c.read_raw() == b"+OK\r\n"
                        assert c.read() == b"%d:%d" % (rnd, i)
                        won = c.read()
                        assert won in (0, 1)
                        with lock:
                            setnx_wins[rnd] += won
                with lock:
                    incr_replies.extend(seen)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("worker %d: %r" % (wid, e))

    workers = [threading.Thread(target=worker, args=(w,)) for w in range(CLIENTS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    total = CLIENTS * ROUNDS * PIPELINE
    # INCR hands out every value exactly once.
    assert sorted(incr_replies) == list(range(1, total + 1))
    with RawConn(s.port) as c:
        assert c.cmd("GET", "shared") == str(total).encode()
        # Exactly one SETNX per lock won.
        assert setnx_wins == [1] * ROUNDS
        owners = [c.cmd("GET", "lock:%d" % rnd) for rnd in range(ROUNDS)]
        assert all(o is not None and 0 <= int(o) < CLIENTS for o in owners)
