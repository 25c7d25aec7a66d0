"""The checker detects each kind of violation in synthetic histories, and accepts correct ones
(including the legal outcomes of uncertain and concurrent writes)."""

import pytest

import checker
from history import FAIL, OK, READ, UNCERTAIN, WRITE, History, Op


class H:
    """Builds synthetic histories with explicit times."""

    def __init__(self):
        self.ops = []

    def w(self, key, value, invoke, complete, outcome=OK):
        op = Op(len(self.ops), "c", WRITE, key, value, invoke, complete, outcome)
        self.ops.append(op)
        return op

    def r(self, key, value, invoke, complete, outcome=OK, final=False):
        op = Op(len(self.ops), "c", READ, key, value, invoke, complete, outcome, final=final)
        self.ops.append(op)
        return op


def kinds(h):
    return sorted(v.kind for v in checker.check(h.ops))


def test_correct_sequential_history():
    h = H()
    h.r("k", None, 0, 1)
    h.w("k", "a", 2, 3)
    h.r("k", "a", 4, 5)
    h.w("k", "b", 6, 7)
    h.r("k", "b", 8, 9)
    h.r("k", "b", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_stale_read_detected():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "b", 2, 3)
    bad = h.r("k", "a", 4, 5)
    h.r("k", "b", 10, 11, final=True)
    v = checker.check(h.ops)
    assert [x.kind for x in v] == [checker.STALE]
    assert v[0].read is bad
    assert "#1" in v[0].message
    assert "STALE" in checker.report(v)


def test_nil_after_acknowledged_write_is_stale():
    h = H()
    h.w("k", "a", 0, 1)
    h.r("k", None, 2, 3)
    h.r("k", "a", 4, 5, final=True)
    assert kinds(h) == [checker.STALE]


def test_lost_write_detected_in_final_read():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "b", 2, 3)
    h.r("k", "a", 10, 11, final=True)
    assert kinds(h) == [checker.LOST]


def test_lost_write_final_nil():
    h = H()
    h.w("k", "a", 0, 1)
    h.r("k", None, 10, 11, final=True)
    assert kinds(h) == [checker.LOST]


def test_unreadable_key_detected():
    h = H()
    h.w("k", "a", 0, 1)
    h.r("k", None, 10, 11, outcome=FAIL, final=True)
    assert kinds(h) == [checker.UNREADABLE]


def test_phantom_detected():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("j", "x", 0, 1)
    h.r("k", "zzz", 2, 3)
    h.r("k", "x", 2, 3)  # a value of another key
    h.r("k", "a", 10, 11, final=True)
    h.r("j", "x", 10, 11, final=True)
    v = checker.check(h.ops)
    assert [x.kind for x in v] == [checker.PHANTOM, checker.PHANTOM]
    assert "written to ['j']" in v[1].message


def test_concurrent_writes_either_value_is_fine():
    h = H()
    h.w("k", "a", 0, 5)
    h.w("k", "b", 1, 4)  # overlaps a: LWW may pick either
    h.r("k", "a", 6, 7)
    h.r("k", "b", 8, 9)  # not a violation of these properties (no monotonic-read check)
    h.r("k", "a", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_uncertain_write_may_appear_any_time_after_invoke():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "u", 2, 3, outcome=UNCERTAIN)
    h.w("k", "b", 4, 5)
    h.r("k", "u", 6, 7)  # u may have been applied late (a hint replayed, timestamp later)
    h.r("k", "b", 8, 9)
    h.r("k", "u", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_uncertain_write_never_required():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "u", 2, 3, outcome=UNCERTAIN)
    h.r("k", "a", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_failed_reads_are_ignored_but_failed_write_values_are_not_phantoms():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "f", 2, 3, outcome=FAIL)
    h.r("k", None, 4, 5, outcome=FAIL)
    h.r("k", "f", 6, 7)
    h.r("k", "f", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_write_completing_after_read_began_is_not_required():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "b", 2, 6)
    h.r("k", "a", 5, 7)  # b completed after the read began
    h.r("k", "b", 10, 11, final=True)
    assert checker.check(h.ops) == []


def test_duplicate_values_are_refused():
    h = H()
    h.w("k", "a", 0, 1)
    h.w("k", "a", 2, 3)
    with pytest.raises(ValueError):
        checker.check(h.ops)


def test_recorder_roundtrip(tmp_path):
    hist = History(max_ops=3)
    w = hist.invoke("c1", WRITE, "k", "v1")
    hist.complete(w, OK)
    r = hist.invoke("c1", READ, "k", final=True)
    hist.complete(r, OK, value="v1")
    assert checker.check(hist.ops()) == []
    with pytest.raises(RuntimeError):
        hist.complete(r, OK, value="v1")
    hist.invoke("c1", READ, "k")
    with pytest.raises(RuntimeError):  # bounded
        hist.invoke("c1", READ, "k")
    import history
    hist.dump(str(tmp_path / "h.jsonl"))
    loaded = history.load(str(tmp_path / "h.jsonl"))
    assert [o.describe() for o in loaded] == [o.describe() for o in hist.ops()]
