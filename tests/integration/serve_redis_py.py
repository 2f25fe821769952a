"""serve_redis_py.py NOKV_BINARY - a real `nokv serve` driven by redis-py.

redis-py (Debian python3-redis) is a client nobody here wrote: what it sends
on connect, how it pipelines, parses SCAN cursors and runs MULTI/EXEC is the
test. Steps: start the server (127.0.0.1, free port, fresh workdir); the
connect handshake (CLIENT SETNAME, HELLO 3 refused with NOPROTO, SELECT,
CONFIG GET); pipelines with and without a transaction; binary-safe keys and
values (NUL bytes, CR/LF, 1 MB values); SCAN over 10,000 keys; expiry (EXPIRE
+ TTL + gone after it elapses, and the background sweep); MULTI/EXEC and
WATCH; the string and keyspace commands; graceful stop (exit status 0).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis

nokv = sys.argv[1]
workdir = tempfile.mkdtemp(prefix="nokv-redispy.")
proc = None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def start(port):
    log = open(os.path.join(workdir, "server.log"), "ab")
    p = subprocess.Popen([nokv, "serve", "--workdir", os.path.join(workdir, "db"),
                          "--addr", "127.0.0.1:%d" % port, "--sync", "always"],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return p
        except redis.ConnectionError:
            time.sleep(0.05)
    p.kill()
    raise AssertionError("server did not start")


def main():
    global proc
    port = free_port()
    proc = start(port)
    r = redis.Redis(host="127.0.0.1", port=port, client_name="nokv-it", socket_timeout=30)
    r2 = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)

    # -- connect handshake: what clients send before their first command
    check(r.client_getname() in ("nokv-it", b"nokv-it"), "CLIENT SETNAME on connect")
    check(r.client_id() >= 1, "CLIENT ID")
    check(r.execute_command("CLIENT SETINFO", "LIB-NAME", "redis-py") == b"OK", "SETINFO")
    check(r.execute_command("CLIENT SETINFO", "LIB-VER", redis.__version__) == b"OK", "SETINFO")
    try:
        r.execute_command("HELLO", 3)
        raise AssertionError("HELLO 3 must be refused (RESP2 only)")
    except redis.ResponseError as e:
        check("unsupported protocol version" in str(e), "NOPROTO: %s" % e)
    hello = r.execute_command("HELLO", 2)
    check(hello[0:2] == [b"server", b"redis"] and hello[4:6] == [b"proto", 2], "HELLO 2")
    check(r.execute_command("SELECT", 0) in (True, b"OK"), "SELECT 0")
    try:
        redis.Redis(host="127.0.0.1", port=port, db=1).ping()
        raise AssertionError("db=1 must fail")
    except redis.ResponseError as e:
        check("DB index is out of range" in str(e), "SELECT 1: %s" % e)
    cfg = r.config_get("maxmemory")
    check(cfg == {"maxmemory": "0"}, "CONFIG GET maxmemory: %r" % cfg)
    for key in ("save", "appendonly", "databases", "maxmemory-policy"):
        check(key in r.config_get(key), "CONFIG GET " + key)
    info = r.info()
    check(info["redis_mode"] == "standalone" and info["loading"] == 0, "INFO")

    # -- pipelines (no transaction): 2,000 commands, one round trip
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set("pipe:%04d" % i, "v%d" % i)
    for i in range(1000):
        p.incr("pipe:counter")
    res = p.execute()
    check(res[:1000] == [True] * 1000 and res[-1] == 1000, "pipeline replies")
    check(r.get("pipe:0999") == b"v999", "pipeline value")

    # -- binary-safe keys and values; 1 MB values
    key = b"bin\x00key\r\n\xff"
    val = bytes(range(256)) * 16
    check(r.set(key, val) and r.get(key) == val, "binary key and value")
    big = os.urandom(1 << 20)
    big = big[:1000] + b"\x00" * 1000 + big[2000:]
    check(r.set("big:1", big) and r.get("big:1") == big, "1 MiB value")
    check(r.strlen("big:1") == 1 << 20, "STRLEN of 1 MiB")
    p = r.pipeline(transaction=False)
    for i in range(4):
        p.set("big:p%d" % i, big[i:] + big[:i])
    p.execute()
    check(all(r.get("big:p%d" % i) == big[i:] + big[:i] for i in range(4)), "pipelined 1 MiB")
    check(r.append(key, b"\x00") == len(val) + 1, "APPEND binary")

    # -- SCAN over 10,000 keys, another scan interleaved
    p = r.pipeline(transaction=False)
    for i in range(10000):
        p.set("scan:%05d" % i, i)
    p.execute()
    want = {b"scan:%05d" % i for i in range(10000)}
    seen = []
    cursor, other = 0, 0
    while True:
        cursor, keys = r.scan(cursor=cursor, match="scan:*", count=500)
        seen.extend(keys)
        other, _ = r2.scan(cursor=other, count=7)
        if cursor == 0:
            break
    check(set(seen) == want, "SCAN saw %d of 10000 keys" % len(set(seen) & want))
    check(len(seen) == 10000, "SCAN returned duplicates: %d" % len(seen))
    check(set(r.scan_iter(match="scan:0*", count=1000)) ==
          {k for k in want if k.startswith(b"scan:0")}, "scan_iter MATCH")
    check(r.dbsize() >= 10000, "DBSIZE")

    # -- expiry: TTL, gone after it elapses; the sweep removes unread keys
    r.set("exp:a", "v")
    check(r.expire("exp:a", 1) and r.ttl("exp:a") == 1, "EXPIRE + TTL")
    check(r.pexpire("exp:a", 300) and 0 < r.pttl("exp:a") <= 300, "PEXPIRE + PTTL")
    r.set("exp:b", "v", px=300)
    check(r.ttl("exp:b") in (0, 1) and r.ttl("exp:none") == -2 and r.ttl("pipe:0001") == -1,
          "TTL of all keys")
    for i in range(50):
        r.set("exp:sweep:%02d" % i, "v", px=200)
    before = r.info("stats")["expired_keys"]
    time.sleep(0.4)
    check(r.get("exp:a") is None and r.exists("exp:a") == 0, "expired key is gone")
    # nobody reads exp:sweep:*; the sweep walks ~10,000 keys a second, and
    # ~11,000 keys are stored: allow a few passes, polling
    removed = 0
    for _ in range(100):
        removed = r.info("stats")["expired_keys"] - before
        if removed >= 50:
            break
        time.sleep(0.1)
    check(removed >= 50, "sweep removed %d of 50 unread expired keys" % removed)
    r.set("exp:c", "v", ex=100)
    check(r.persist("exp:c") and r.ttl("exp:c") == -1, "PERSIST")
    check(r.expireat("exp:c", int(time.time()) + 100) and 98 <= r.ttl("exp:c") <= 100,
          "EXPIREAT")

    # -- MULTI/EXEC (redis-py pipelines are transactions by default), WATCH
    p = r.pipeline()
    p.set("tx:a", 1).incr("tx:a").get("tx:a").incrbyfloat("tx:f", 1.5)
    check(p.execute() == [True, 2, b"2", 1.5], "MULTI/EXEC")
    with r.pipeline() as p:
        p.watch("tx:a")
        r2.set("tx:a", 100)  # someone else writes the watched key
        p.multi()
        p.incr("tx:a")
        try:
            p.execute()
            raise AssertionError("EXEC must fail after a watched key changed")
        except redis.WatchError:
            pass
    check(r.get("tx:a") == b"100", "WATCH kept the other write")

    def incr_twice(pipe):
        v = int(pipe.get("tx:a"))
        pipe.multi()
        pipe.set("tx:a", v + 2)
    r.transaction(incr_twice, "tx:a")
    check(r.get("tx:a") == b"102", "transaction() helper")

    # -- string and keyspace commands through redis-py's own API
    check(r.setnx("s:nx", "a") and not r.setnx("s:nx", "b"), "SETNX")
    check(r.setex("s:ex", 10, "v") and r.ttl("s:ex") == 10, "SETEX")
    check(r.psetex("s:px", 1500, "v") and 1000 < r.pttl("s:px") <= 1500, "PSETEX")
    check(r.getset("s:nx", "c") == b"a", "GETSET")
    check(r.getdel("s:nx") == b"c" and r.get("s:nx") is None, "GETDEL")
    check(r.getex("s:ex", persist=True) == b"v" and r.ttl("s:ex") == -1, "GETEX PERSIST")
    r.set("s:str", "Hello World")
    check(r.getrange("s:str", 0, 4) == b"Hello" and r.setrange("s:str", 6, "Redis") == 11,
          "GETRANGE / SETRANGE")
    check(r.get("s:str") == b"Hello Redis", "SETRANGE value")
    check(r.incrbyfloat("s:float", "10.5") == 10.5, "INCRBYFLOAT")
    check(r.type("s:str") == b"string" and r.type("nokey") == b"none", "TYPE")
    check(r.rename("s:str", "s:str2") and r.get("s:str2") == b"Hello Redis", "RENAME")
    try:
        r.rename("nokey", "x")
        raise AssertionError("RENAME of a missing key must fail")
    except redis.ResponseError as e:
        check("no such key" in str(e), "RENAME error: %s" % e)
    check(r.unlink("s:str2", "s:float", "nokey") == 2, "UNLINK")
    check(sorted(r.keys("pipe:000*")) == [b"pipe:%04d" % i for i in range(10)], "KEYS")
    sec, usec = r.time()
    check(abs(sec - time.time()) < 5 and 0 <= usec < 1000000, "TIME")
    check(r.flushdb() and r.dbsize() == 0 and r.get("pipe:0001") is None, "FLUSHDB")

    # -- graceful stop
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=60)
    proc = None
    check(status == 0, "graceful stop exited %d" % status)
    print("serve_redis_py: PASS (redis-py %s)" % redis.__version__)


try:
    main()
except Exception:
    log = os.path.join(workdir, "server.log")
    if os.path.exists(log):
        sys.stderr.write(open(log, errors="replace").read()[-4000:])
    raise
finally:
    if proc is not None:
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)
