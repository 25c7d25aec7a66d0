"""A thread-safe recorder of client operations for fault tests (the input of checker.py).

Every operation is recorded twice: when a client invokes it and when it completes, with the
time of each (time.monotonic(), one clock for every client thread of the test process) and its
outcome:
  ok        the server answered normally (a read's value is what it returned, None for nil);
  fail      a definite failure (an error reply other than UNCERTAIN; for a read, any error);
  uncertain a write that may or may not have been applied: an -UNCERTAIN reply, a timeout or a
            connection error after the request may have been sent.
An operation that never completes (the test stopped first) stays with outcome None and is
treated like an uncertain one.
"""

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Optional

OK = "ok"
FAIL = "fail"
UNCERTAIN = "uncertain"
READ = "read"
WRITE = "write"

MAX_OPS = 2_000_000  # bounded: a 10-minute run with a few threads records well under this


@dataclass
class Op:
    id: int
    client: str
    kind: str                 # READ or WRITE
    key: str
    value: Optional[str]      # WRITE: the value written; READ: the value returned (None = nil)
    invoke: float
    complete: Optional[float] = None
    outcome: Optional[str] = None
    error: Optional[str] = None
    final: bool = False       # a read of the final check, after every fault healed

    def describe(self):
        done = "..." if self.complete is None else "%.3f" % self.complete
        text = "#%d %s %s %s=%r [%.3f, %s] %s" % (self.id, self.client, self.kind, self.key,
                                                 self.value, self.invoke, done, self.outcome)
        if self.error:
            text += " (%s)" % self.error
        return text


class History:
    def __init__(self, max_ops=MAX_OPS):
        self._lock = threading.Lock()
        self._ops = []
        self._max_ops = max_ops

    def invoke(self, client, kind, key, value=None, final=False):
        """Records the start of an operation; returns the Op to pass to complete()."""
        if kind not in (READ, WRITE):
            raise ValueError(kind)
        with self._lock:
            if len(self._ops) >= self._max_ops:
                raise RuntimeError("history is full (%d operations)" % self._max_ops)
            op = Op(len(self._ops), client, kind, key, None if kind == READ else value,
                    time.monotonic(), final=final)
            self._ops.append(op)
            return op

    def complete(self, op, outcome, value=None, error=None):
        if outcome not in (OK, FAIL, UNCERTAIN):
            raise ValueError(outcome)
        now = time.monotonic()
        with self._lock:
            if op.outcome is not None:
                raise RuntimeError("operation #%d completed twice" % op.id)
            op.complete = now
            op.outcome = outcome
            op.error = error
            if op.kind == READ and outcome == OK:
                op.value = value

    def ops(self):
        """A snapshot (list copy) of every operation recorded so far."""
        with self._lock:
            return list(self._ops)

    def __len__(self):
        with self._lock:
            return len(self._ops)

    def summary(self):
        counts = {}
        for op in self.ops():
            k = (op.kind, op.outcome)
            counts[k] = counts.get(k, 0) + 1
        return ", ".join("%s %s: %d" % (k[0], k[1], v) for k, v in sorted(counts.items(),
                                                                            key=str))

    def dump(self, path):
        """Writes one JSON object per line (for reading a failed run later)."""
        with open(path, "w") as f:
            for op in self.ops():
                f.write(json.dumps(asdict(op)) + "\n")


def load(path):
    ops = []
    with open(path) as f:
        for line in f:
            ops.append(Op(**json.loads(line)))
    return ops
