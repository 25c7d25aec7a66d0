"""Connection and server commands: PING, ECHO, HELLO (RESP2/RESP3), QUIT, SELECT, CLIENT,
COMMAND, INFO, DBSIZE, FLUSHALL, FLUSHDB, TIME, CONFIG, and RESP3 reply shapes."""

import time

from harness import (ARR, BULK, ERR, INT, NIL, NOT_INT, OK, SYNTAX, ErrorReply, RawConn,
                     SimpleString, Verbatim, arity_error, run_script)

SUPPORTED = """ping echo hello auth quit select client command info dbsize flushall flushdb time
config get set setnx setex psetex getset getdel getex mget mset msetnx append strlen getrange
setrange incr decr incrby decrby incrbyfloat del unlink exists type expire pexpire expireat
pexpireat expiretime pexpiretime ttl pttl persist keys scan randomkey rename renamenx
shutdown""".split()
HELLO_KEYS = [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]


def test_ping_echo(raw):
    run_script(raw, [
        (("PING",), b"+PONG\r\n"),
        (("ping",), b"+PONG\r\n"),
        (("PING", "hi"), BULK("hi")),
        (("PING", ""), BULK("")),
        (("PING", "a", "b"), arity_error("ping")),
        (("ECHO", "hello"), BULK("hello")),
        (("ECHO", bytes(range(256))), BULK(bytes(range(256)))),
        (("ECHO",), arity_error("echo")),
        (("ECHO", "a", "b"), arity_error("echo")),
    ])


def test_unknown_commands(raw):
    run_script(raw, [
        (("FOO",), ERR("ERR unknown command 'FOO', with args beginning with: ")),
        (("FOO", "a", "b"), ERR("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")),
        (("CLIENT", "XYZ"), ERR("ERR unknown subcommand 'XYZ'. Try CLIENT HELP.")),
        (("CONFIG", "XYZ"), ERR("ERR unknown subcommand 'XYZ'. Try CONFIG HELP.")),
        (("PING",), b"+PONG\r\n"),  # the connection is still usable
    ])


def test_unknown_command_echo_of_arguments(raw):
    """Redis quotes at most 128 bytes of arguments, as C strings (an argument ends at its first
    NUL byte), and turns CR/LF of the error line into spaces."""
    run_script(raw, [
        (("NOSUCH", b"a\x00b", "c"),
         ERR("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'c' ")),
        (("NOSUCH", b"\x00"), ERR("ERR unknown command 'NOSUCH', with args beginning with: '' ")),
        (("NOSUCH", b"a\r\nb"),
         ERR("ERR unknown command 'NOSUCH', with args beginning with: 'a  b' ")),
        (("NOSUCH", "x" * 200),
         ERR("ERR unknown command 'NOSUCH', with args beginning with: '%s' " % ("x" * 128))),
        (("NOSUCH", "y" * 100, "z" * 100), ERR(
            "ERR unknown command 'NOSUCH', with args beginning with: '%s' '%s' "
            % ("y" * 100, "z" * 25))),
    ])


def test_select(raw):
    run_script(raw, [
        (("SELECT", "0"), OK()),
        (("SELECT", "1"), ERR("ERR DB index is out of range")),
        (("SELECT", "-1"), ERR("ERR DB index is out of range")),
        (("SELECT", "abc"), NOT_INT),
        (("SELECT",), arity_error("select")),
    ])


def test_quit(server):
    with RawConn(server.port) as c:
        assert c.cmd_raw("QUIT") == OK()
        assert c.read_until_closed() == b""


def test_hello_resp2_and_resp3(raw):
    reply = raw.cmd("HELLO")
    assert isinstance(reply, list) and reply[0::2] == HELLO_KEYS
    info = dict(zip(reply[0::2], reply[1::2]))
    assert info[b"proto"] == 2 and info[b"mode"] == b"standalone" and info[b"role"] == b"master"
    assert info[b"modules"] == [] and isinstance(info[b"id"], int)

    raw.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
    rawreply, reply = raw.read_frame()
    assert rawreply.startswith(b"%7\r\n"), rawreply  # a RESP3 map
    assert list(reply.keys()) == HELLO_KEYS and reply[b"proto"] == 3

    # RESP3 reply shapes.
    run_script(raw, [
        (("GET", "nosuch"), b"_\r\n"),
        (("SET", "k", "1", "NX", "GET"), b"_\r\n"),
        (("SET", "k", "2", "GET"), BULK("1")),
        (("MGET", "k", "nosuch"), ARR(BULK("2"), b"_\r\n")),
        (("INCRBYFLOAT", "f", "1.5"), BULK("1.5")),
        (("EXISTS", "k"), INT(1)),
        (("TTL", "k"), INT(-1)),
        (("SCAN", "0", "MATCH", "k"), ARR(BULK("0"), ARR(BULK("k")))),
        (("KEYS", "k"), ARR(BULK("k"))),
        (("CONFIG", "GET", "maxclients"), lambda b: b.startswith(b"%1\r\n$10\r\nmaxclients\r\n")),
        (("RANDOMKEY",), lambda b: b in (BULK("k"), BULK("f"))),
        (("CLIENT", "GETNAME"), b"_\r\n"),
        (("GET",), arity_error("get")),
    ])
    info = raw.cmd("CLIENT", "INFO")
    assert isinstance(info, Verbatim) and info.fmt == b"txt" and b"resp=3" in info
    # Back to RESP2.
    reply = raw.cmd("HELLO", "2")
    assert isinstance(reply, list) and reply[5] == 2
    assert raw.cmd_raw("GET", "nosuch") == NIL


def test_hello_errors_and_setname(raw):
    run_script(raw, [
        (("HELLO", "4"), ERR("NOPROTO unsupported protocol version")),
        (("HELLO", "1"), ERR("NOPROTO unsupported protocol version")),
        (("HELLO", "abc"), ERR("ERR Protocol version is not an integer or out of range")),
        (("HELLO", "3", "FOO"), ERR("ERR Syntax error in HELLO option 'FOO'")),
        (("HELLO", "2", "SETNAME", "myname"), lambda b: b.startswith(b"*14\r\n")),
        (("CLIENT", "GETNAME"), BULK("myname")),
        (("HELLO", "2", "AUTH", "default", "anything"), lambda b: b.startswith(b"*14\r\n")),
    ])


def test_client_commands(raw, server):
    cid = raw.cmd("CLIENT", "ID")
    assert isinstance(cid, int) and cid > 0
    run_script(raw, [
        (("CLIENT", "GETNAME"), NIL),
        (("CLIENT", "SETNAME", "worker-1"), OK()),
        (("CLIENT", "GETNAME"), BULK("worker-1")),
        (("CLIENT", "SETNAME", "a b"),
         ERR("ERR Client names cannot contain spaces, newlines or special characters.")),
        (("CLIENT", "SETNAME", "a\nb"),
         ERR("ERR Client names cannot contain spaces, newlines or special characters.")),
        (("CLIENT", "SETNAME"), arity_error("client|setname")),
        (("CLIENT", "GETNAME", "x"), arity_error("client|getname")),
        (("CLIENT", "ID", "x"), arity_error("client|id")),
        (("CLIENT",), arity_error("client")),
    ])
    info = raw.cmd("CLIENT", "INFO")
    assert isinstance(info, bytes) and b"id=%d " % cid in info and b"name=worker-1" in info
    with RawConn(server.port) as other:
        other_id = other.cmd("CLIENT", "ID")
        assert other_id != cid
        listing = raw.cmd("CLIENT", "LIST")
        lines = [ln for ln in listing.split(b"\n") if ln]
        ids = {int(ln.split(b" ")[0][3:]) for ln in lines}
        assert {cid, other_id} <= ids
        assert any(b"name=worker-1" in ln for ln in lines)
    # An empty name clears it.
    assert raw.cmd_raw("CLIENT", "SETNAME", "") == OK()
    assert raw.cmd_raw("CLIENT", "GETNAME") == NIL


def test_command_introspection(raw):
    count = raw.cmd("COMMAND", "COUNT")
    assert isinstance(count, int) and count > 0
    info = raw.cmd("COMMAND", "INFO", "get", "set", "nosuchcmd")
    assert len(info) == 3 and info[2] is None
    get, set_ = info[0], info[1]
    assert get[0] == b"get" and get[1] == 2 and get[3:6] == [1, 1, 1]
    assert set_[0] == b"set" and set_[1] == -3 and set_[3:6] == [1, 1, 1]
    assert SimpleString(b"readonly") in get[2] and SimpleString(b"write") in set_[2]
    mget = raw.cmd("COMMAND", "INFO", "mget")[0]
    assert mget[1] == -2 and mget[3:6] == [1, -1, 1]
    docs = raw.cmd("COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and docs[0] == b"get"
    fields = dict(zip(docs[1][0::2], docs[1][1::2]))
    assert b"summary" in fields and fields[b"group"] == b"string"
    everything = raw.cmd("COMMAND")
    names = {c[0] for c in everything}
    assert len(everything) == count
    missing = [n for n in SUPPORTED if n.encode() not in names]
    assert not missing, "COMMAND does not list %s" % missing


def test_info_dbsize_flush(raw):
    info = raw.cmd("INFO")
    assert isinstance(info, bytes)
    text = info.decode()
    assert text.startswith("# ") and "\r\n" in text
    for line in text.split("\r\n"):
        assert line == "" or line.startswith("# ") or ":" in line, line
    assert isinstance(raw.cmd("INFO", "server"), bytes)
    run_script(raw, [
        (("DBSIZE",), INT(0)),
        (("MSET", "a", "1", "b", "2"), OK()),
        (("DBSIZE",), INT(2)),
        (("DBSIZE", "x"), arity_error("dbsize")),
        (("FLUSHDB",), OK()),
        (("DBSIZE",), INT(0)),
        (("SET", "a", "1"), OK()),
        (("FLUSHALL",), OK()),
        (("DBSIZE",), INT(0)),
        (("SET", "a", "1"), OK()),
        (("FLUSHALL", "ASYNC"), OK()),
        (("GET", "a"), NIL),
        (("FLUSHDB", "SYNC"), OK()),
        (("FLUSHDB", "FOO"), SYNTAX),
        (("FLUSHALL", "FOO"), SYNTAX),
    ])


def test_time(raw):
    secs, usecs = raw.cmd("TIME")
    assert abs(int(secs) - time.time()) < 5
    assert 0 <= int(usecs) < 1000000
    assert raw.cmd_raw("TIME", "x") == arity_error("time")


def test_config(raw):
    reply = raw.cmd("CONFIG", "GET", "maxclients")
    assert reply[0] == b"maxclients" and int(reply[1]) > 0
    run_script(raw, [
        (("CONFIG", "SET", "timeout", "300"), OK()),
        (("CONFIG", "GET", "timeout"), ARR(BULK("timeout"), BULK("300"))),
        (("CONFIG", "SET", "timeout", "0"), OK()),
        (("CONFIG", "GET", "timeout"), ARR(BULK("timeout"), BULK("0"))),
        (("CONFIG", "GET", "nosuchparam"), b"*0\r\n"),
        (("CONFIG", "SET", "nosuchparam", "1"),
         ERR("ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'")),
        (("CONFIG", "GET"), arity_error("config|get")),
        (("CONFIG", "SET", "timeout"), arity_error("config|set")),
    ])
    bad = raw.cmd("CONFIG", "SET", "timeout", "abc")
    assert isinstance(bad, ErrorReply) and bad.startswith(b"ERR CONFIG SET failed")
    many = raw.cmd("CONFIG", "GET", "maxclients", "timeout")
    assert dict(zip(many[0::2], many[1::2])).keys() == {b"maxclients", b"timeout"}
