"""Checks a fault-test history (history.py) for the guarantees of R + W > N (docs/cluster.md).

Pure: takes the recorded operations, reads no clock and does no I/O. Every value written is
unique per key (the workload guarantees it; the checker refuses a history where it is not), so
a value read names the one write that produced it.

Order between writes is real time: write A is *strictly older* than write B when A completed
before B was invoked. A write that did not complete with ok (uncertain, failed, or still in
flight) may have taken effect at any time after its invocation, so it is never strictly older
than anything. Nil (the key never written) is older than every write.

Violations reported:
  stale    a read (outcome ok) returned v although an acknowledged write W2 of that key
           completed before the read was invoked and the write of v is strictly older than W2
           (with R + W > N every read must see the last write acknowledged before it began);
  lost     the same condition for a final read (after every fault healed): an acknowledged
           write, and everything newer, is gone;
  unreadable  a key with an acknowledged write has no successful final read;
  phantom  a read returned a value that no client ever tried to write to that key.
"""

import bisect
import math
from dataclasses import dataclass, field
from typing import List, Optional

from history import OK, READ, WRITE

STALE = "stale"
LOST = "lost"
UNREADABLE = "unreadable"
PHANTOM = "phantom"


@dataclass
class Violation:
    kind: str
    read: Optional[object]          # the offending read (None for unreadable)
    message: str
    related: List[object] = field(default_factory=list)  # the writes that prove it

    def describe(self):
        lines = ["%s: %s" % (self.kind.upper(), self.message)]
        if self.read is not None:
            lines.append("    read:    " + self.read.describe())
        for op in self.related:
            lines.append("    write:   " + op.describe())
        return "\n".join(lines)


def _effective_complete(write):
    return write.complete if write.outcome == OK else math.inf


class _KeyIndex:
    """The writes of one key, indexed to answer "the acknowledged write with the latest
    invocation among those completed before time t" in O(log n)."""

    def __init__(self, key, writes):
        self.by_value = {}
        for w in writes:
            if w.value in self.by_value:
                raise ValueError("value %r written twice to key %r (#%d and #%d): the checker "
                                 "needs unique values" % (w.value, key, self.by_value[w.value].id,
                                                          w.id))
            self.by_value[w.value] = w
        acked = sorted((w for w in writes if w.outcome == OK), key=lambda w: w.complete)
        self.acked = acked
        self.completes = [w.complete for w in acked]
        self.best = []  # best[i]: the write with the latest invoke among acked[0..i]
        for w in acked:
            if not self.best or w.invoke > self.best[-1].invoke:
                self.best.append(w)
            else:
                self.best.append(self.best[-1])

    def latest_acked_before(self, t):
        """Among acknowledged writes completed strictly before t, the one invoked last."""
        i = bisect.bisect_left(self.completes, t)
        return self.best[i - 1] if i > 0 else None


def check(ops, final_reads=None):
    """Returns the list of violations (empty when the history is correct).

    `ops`: every recorded operation; reads marked final=True are the final check. Extra final
    reads may also be passed separately in `final_reads`.
    """
    ops = list(ops) + list(final_reads or [])
    writes_by_key = {}
    for op in ops:
        if op.kind == WRITE:
            writes_by_key.setdefault(op.key, []).append(op)
        elif op.kind != READ:
            raise ValueError("unknown operation kind %r" % op.kind)
    index = {k: _KeyIndex(k, ws) for k, ws in writes_by_key.items()}
    empty = _KeyIndex(None, [])

    violations = []
    finally_read = set()
    for r in ops:
        if r.kind != READ or r.outcome != OK:
            continue
        if r.final:
            finally_read.add(r.key)
        idx = index.get(r.key, empty)
        if r.value is None:
            source, source_complete = None, -math.inf
        else:
            source = idx.by_value.get(r.value)
            if source is None:
                elsewhere = [k for k, i in index.items() if r.value in i.by_value]
                violations.append(Violation(
                    PHANTOM, r, "value %r was never written to key %r%s" % (
                        r.value, r.key,
                        " (it was written to %s)" % elsewhere if elsewhere else "")))
                continue
            source_complete = _effective_complete(source)
        newer = idx.latest_acked_before(r.invoke)
        if newer is not None and source_complete < newer.invoke:
            what = "nil" if source is None else "the value of write #%d" % source.id
            kind = LOST if r.final else STALE
            violations.append(Violation(
                kind, r, "%s returned %s of key %r, but acknowledged write #%d (%r) completed "
                "before the read began and was invoked after %s" % (
                    "final read" if r.final else "read", what, r.key, newer.id, newer.value,
                    "the key was empty" if source is None else "#%d completed" % source.id),
                [w for w in (source, newer) if w is not None]))

    for key, idx in sorted(index.items()):
        if idx.acked and key not in finally_read:
            violations.append(Violation(
                UNREADABLE, None, "key %r has %d acknowledged writes but no successful final "
                "read" % (key, len(idx.acked)), [idx.acked[-1]]))
    return violations


def report(violations, limit=50):
    """Human-readable text of the violations (at most `limit` shown, then a count)."""
    if not violations:
        return "no violations"
    counts = {}
    for v in violations:
        counts[v.kind] = counts.get(v.kind, 0) + 1
    head = "%d violations (%s)" % (len(violations),
                                   ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    body = [v.describe() for v in violations[:limit]]
    if len(violations) > limit:
        body.append("... and %d more" % (len(violations) - limit))
    return "\n".join([head] + body)
