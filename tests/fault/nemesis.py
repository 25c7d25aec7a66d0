"""Faults for fault tests: network partitions (iptables), kill -9 + restart, SIGSTOP/SIGCONT.

Every machine of a launcher.Cluster binds and connects from its own loopback address
127.0.0.(i+2), so dropping packets between two addresses in the INPUT chain (both directions)
cuts exactly the link between two machines; clients (from 127.0.0.1) still reach both.

The nemesis hurts ONE machine at a time and always undoes what it did: heal() deletes exactly
the iptables rules it added (by their full specification, never by flushing a chain), resumes a
paused machine and restarts a killed one. Use it as a context manager, or call heal() in a
finally, so a failing test leaves no rule behind; an atexit hook removes rules as a last resort.
"""

import atexit
import os
import random
import shutil
import subprocess
import threading
import time

COMMENT = "cairn-fault-%d" % os.getpid()  # tags our rules, so a human can spot leftovers

_RULES = set()  # every rule currently installed by this process (for the atexit safety net)
_RULES_LOCK = threading.Lock()


def _iptables(action, src, dst):
    return ["iptables", "-w", "5", action, "INPUT", "-s", src, "-d", dst,
            "-m", "comment", "--comment", COMMENT, "-j", "DROP"]


def iptables_status():
    """(usable, why): whether iptables can add and remove a rule here."""
    if shutil.which("iptables") is None:
        return False, "the iptables command is not installed (apt package iptables)"
    if os.geteuid() != 0:
        return False, "iptables needs root (running as uid %d)" % os.geteuid()
    probe = ("127.0.0.254", "127.0.0.253")
    add = subprocess.run(_iptables("-A", *probe), capture_output=True, text=True)
    if add.returncode != 0:
        return False, "iptables -A failed: %s" % (add.stderr.strip() or add.returncode)
    rm = subprocess.run(_iptables("-D", *probe), capture_output=True, text=True)
    if rm.returncode != 0:
        return False, "iptables -D failed: %s (rule %s may be left over)" % (
            rm.stderr.strip(), " ".join(_iptables("-A", *probe)))
    return True, "ok"


def _add_rule(src, dst):
    subprocess.run(_iptables("-A", src, dst), check=True, capture_output=True)
    with _RULES_LOCK:
        _RULES.add((src, dst))


def _delete_rule(src, dst):
    # -D deletes one copy; we add each (src, dst) once, so one delete removes it.
    res = subprocess.run(_iptables("-D", src, dst), capture_output=True, text=True)
    with _RULES_LOCK:
        _RULES.discard((src, dst))
    return res.returncode == 0


@atexit.register
def _remove_leftover_rules():
    with _RULES_LOCK:
        rules = list(_RULES)
    for src, dst in rules:
        _delete_rule(src, dst)


class Nemesis:
    """Injects one fault at a time into `cluster` (a launcher.Cluster) on machines `targets`."""

    def __init__(self, cluster, targets=None, seed=None, log=print, partitions=True):
        self.cluster = cluster
        self.targets = list(targets if targets is not None else range(len(cluster.machines)))
        self.rng = random.Random(seed)
        self.log = log
        self.partitions_enabled = False
        self.partition_skip_reason = None
        if partitions:
            ok, why = iptables_status()
            self.partitions_enabled = ok
            if not ok:
                self.partition_skip_reason = why
                self.log("nemesis: partitions DISABLED: %s; kill and pause still run" % why)
        self._rules = []      # (src, dst) pairs this nemesis added and has not removed
        self._paused = set()  # machine indexes it paused
        self._killed = set()  # machine indexes it killed
        self.events = []      # (monotonic time, text): what was done, for the report
        self.counts = {}      # action -> how many times it was injected

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.heal()

    def _note(self, text):
        self.events.append((time.monotonic(), text))
        self.log("nemesis: " + text)

    # --- single faults ---------------------------------------------------------------------

    def partition(self, i):
        """Cuts machine i from every other machine of the cluster, both directions."""
        if not self.partitions_enabled:
            raise RuntimeError("partitions unavailable: %s" % self.partition_skip_reason)
        me = self.cluster.host(i)
        for j in range(len(self.cluster.machines)):
            if j == i:
                continue
            other = self.cluster.host(j)
            for src, dst in ((me, other), (other, me)):
                _add_rule(src, dst)
                self._rules.append((src, dst))
        self._note("partition machine %d (%s) from the others" % (i, me))

    def kill(self, i):
        self.cluster.kill(i)
        self._killed.add(i)
        self._note("kill -9 machine %d" % i)

    def pause(self, i):
        self.cluster.pause(i)
        self._paused.add(i)
        self._note("SIGSTOP machine %d" % i)

    def heal(self):
        """Undoes every fault in effect: rules deleted, paused resumed, killed restarted."""
        errors = []
        if self._rules:
            for src, dst in self._rules:
                if not _delete_rule(src, dst):
                    errors.append("could not delete rule %s -> %s" % (src, dst))
            self._rules = []
            self._note("heal partition")
        for i in sorted(self._paused):
            self.cluster.resume(i)
            self._note("SIGCONT machine %d" % i)
        self._paused.clear()
        for i in sorted(self._killed):
            try:
                self.cluster.restart(i)
                self._note("restart machine %d" % i)
            except Exception as e:  # keep healing the others; report at the end
                errors.append("restart of machine %d failed: %s" % (i, e))
        self._killed.clear()
        if errors:
            raise RuntimeError("; ".join(errors))

    # --- the cycle -------------------------------------------------------------------------

    def actions(self):
        acts = ["kill", "pause"]
        if self.partitions_enabled:
            acts.append("partition")
        return acts

    def random_fault(self):
        """Applies one random fault to one random target; returns (action, machine)."""
        action = self.rng.choice(self.actions())
        i = self.rng.choice(self.targets)
        getattr(self, action)(i)
        self.counts[action] = self.counts.get(action, 0) + 1
        return action, i

    def run(self, stop_event, fault_s=(2.0, 5.0), quiet_s=(1.0, 3.0)):
        """Until stop_event is set: fault one machine for a while, heal, stay quiet a while.
        Always leaves the cluster healed."""
        try:
            while not stop_event.is_set():
                self.random_fault()
                stop_event.wait(self.rng.uniform(*fault_s))
                self.heal()
                stop_event.wait(self.rng.uniform(*quiet_s))
        finally:
            self.heal()
