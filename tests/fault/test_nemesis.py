"""Each fault of the nemesis takes effect and heal() undoes it exactly (checked on independent
single-machine servers, so this runs without cluster mode)."""

import socket
import subprocess

import pytest
import redis

import launcher
import nemesis
from nemesis import Nemesis


@pytest.fixture(scope="module")
def cluster():
    c = launcher.Cluster(machines=3, shards=1, rf=3, standalone=True)
    yield c
    c.close()


def _connects(src, dst, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(0.5)
    try:
        s.connect((dst, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _our_rules():
    out = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if nemesis.COMMENT in line]


def test_kill_and_heal_restarts_with_data(cluster):
    cluster.client(1).set("durable", "yes")
    with Nemesis(cluster, partitions=False, log=lambda _: None) as nem:
        nem.kill(1)
        assert not cluster.running(1)
        with pytest.raises(redis.ConnectionError):
            cluster.client(1).ping()
    assert cluster.running(1)
    assert cluster.client(1).get("durable") == b"yes"  # same data dir after restart


def test_pause_and_heal(cluster):
    with Nemesis(cluster, partitions=False, log=lambda _: None) as nem:
        nem.pause(2)
        with pytest.raises(redis.TimeoutError):
            cluster.client(2, socket_timeout=0.5).ping()
    assert cluster.client(2).ping()


def test_partition_cuts_machine_links_only_and_heal_removes_exactly_our_rules(cluster):
    ok, why = nemesis.iptables_status()
    if not ok:
        pytest.fail("feature probe failed: iptables unusable here: %s" % why, pytrace=False)
    m0, m1 = cluster.host(0), cluster.host(1)
    port0 = cluster.port(0)
    with Nemesis(cluster, log=lambda _: None) as nem:
        nem.partition(0)
        assert len(_our_rules()) == 4  # both directions with each of the 2 others
        assert not _connects(m1, m0, port0)
        assert _connects("127.0.0.1", m0, port0)  # clients still reach it
    assert _our_rules() == []
    assert _connects(m1, m0, port0)


def test_random_faults_cycle_and_leave_everything_healed(cluster):
    nem = Nemesis(cluster, seed=7, log=lambda _: None)
    try:
        for _ in range(4):
            nem.random_fault()
            nem.heal()
    finally:
        nem.heal()
    assert sum(nem.counts.values()) == 4
    assert _our_rules() == []
    for i in range(3):
        assert cluster.running(i) and cluster.client(i).ping()
