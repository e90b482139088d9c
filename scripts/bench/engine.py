#!/usr/bin/env python3
"""IKE engine scale (issue 8, benchmark 2), on this machine's own kernel.

Two network namespaces joined by a veth pair; in each one daemon (iked or
strongSwan's charon). The initiator has N connections without children
(distinct local identities, the same responder), the responder one
connection accepting any identity; the same swanctl.conf for both daemons.
All N IKE SAs are initiated at once (iked: `up` with timeout_secs 0 over
its control socket, pipelined; charon: VICI `initiate` with timeout -1),
then the initiator's log is watched for "established" lines. Reported:
time until all N are established (or how many after the cap), the RSS of
both daemons before and after, and RSS delta / N.

  python3 scripts/bench/engine.py both 1000 5000 10000 --charon-max 5000 --cap 120
  python3 scripts/bench/engine.py iked 1000 5000 10000
  python3 scripts/bench/engine.py both 1000 --group modp3072 --workers "0 1 2" --cpus "0 all"

`--group` sets the key exchange of the proposal (x25519 by default);
`--workers` runs iked once per count given (its `--workers`: 0 computes
the key exchanges on the event loop's thread, N on N worker threads), so
handshakes per second with one core's worth and with every core compare
in one run, against charon in the same run; `--cpus "0 all"` repeats the
runs with both daemons on core 0 only (taskset), then on every core.
Each run also reports each daemon's CPU by thread: for iked the event
loop's one thread ("loop") against its worker threads ("workers"), the
split that bounds what more cores can give.

Needs root. Fails (exit 1, "bench: FAILURE") when a daemon does not start
or the set-up breaks; a run that does not finish within the cap is
reported with its count, not as a failure.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = "/tmp/iked-bench-engine"
NS = ("ikb-i", "ikb-r")
ADDR = ("10.99.0.1", "10.99.0.2")
PSK = "bench-engine-secret-0123456789"


def fail(msg):
    print(f"bench: FAILURE: {msg}", file=sys.stderr)
    cleanup()
    sys.exit(1)


def sh(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        fail(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


PROCS = []


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    PROCS.clear()
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def netns():
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "ikb0", "netns", NS[0], "type", "veth", "peer", "name", "ikb1", "netns", NS[1])
    for i, ns in enumerate(NS):
        sh("ip", "-n", ns, "addr", "add", f"{ADDR[i]}/24", "dev", f"ikb{i}")
        sh("ip", "-n", ns, "link", "set", f"ikb{i}", "up")
    r = sh("ip", "netns", "exec", NS[0], "ping", "-c1", "-W2", ADDR[1], check=False)
    if r.returncode != 0:
        fail("the namespaces cannot reach each other")


GROUP = "x25519"
IKED_ARGS = []
# Per-thread CPU of both daemons as the clock starts.
THREADS0 = []
# `taskset -c CPUS` before both daemons (empty: every core).
PIN = []


def swanctl_conf(role, n):
    """The same swanctl.conf text for both daemons."""
    out = ["connections {"]
    prop = f"aes256gcm16-prfsha256-{GROUP}"
    if role == "i":
        for k in range(n):
            out.append(
                f"  c{k} {{\n    local_addrs = {ADDR[0]}\n    remote_addrs = {ADDR[1]}\n"
                f"    proposals = {prop}\n"
                f"    local {{\n      auth = psk\n      id = c{k}.i.example\n    }}\n"
                f"    remote {{\n      auth = psk\n      id = r.example\n    }}\n  }}"
            )
    else:
        out.append(
            f"  r {{\n    local_addrs = {ADDR[1]}\n    remote_addrs = {ADDR[0]}\n"
            f"    proposals = {prop}\n"
            f"    local {{\n      auth = psk\n      id = r.example\n    }}\n"
            f"    remote {{\n      auth = psk\n    }}\n  }}"
        )
    out.append("}\nsecrets {\n  ike-r {\n    id = r.example\n"
               f"    secret = {PSK}\n  }}\n}}\n")
    return "\n".join(out)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tck


def thread_cpu_s(pid):
    """CPU seconds per thread name of a process (threads of one name
    summed; the event loop is the main thread, named as the binary)."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except FileNotFoundError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        parts = raw.rsplit(")", 1)[1].split()
        name = "workers" if name.startswith("iked-worker") else ("loop" if tid == str(pid) else name)
        out[name] = out.get(name, 0.0) + (int(parts[11]) + int(parts[12])) / tck
    return out


def count_lines(path, needle):
    try:
        with open(path, "rb") as f:
            return f.read().count(needle)
    except FileNotFoundError:
        return 0


def wait_for(pred, secs, what):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- iked

def iked_rpc_many(sock_path, reqs):
    """Sends all requests pipelined on one connection; returns answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in reqs)
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    f = s.makefile("rb")
    answers = [json.loads(f.readline()) for _ in reqs]
    t.join()
    s.close()
    return answers


def run_iked(n, cap, workers=None):
    iked = os.path.join(ROOT, "target", "release", "iked")
    if not os.access(iked, os.X_OK):
        fail(f"{iked} not built (cargo build --release -p ike-daemon)")
    pids = []
    logs = []
    socks = []
    for i, role in enumerate("ir"):
        d = os.path.join(WORK, f"iked-{role}")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "swanctl.conf")
        with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(swanctl_conf(role, n))
        log = os.path.join(d, "iked.log")
        sock = os.path.join(d, "iked.sock")
        p = subprocess.Popen(
            ["ip", "netns", "exec", NS[i]] + PIN + [iked, "--config", conf, "--control", sock,
             "--install-routes", "no", "--log-level", "info", "--block-threshold", "off"]
            + ([] if workers is None else ["--workers", str(workers)])
            + IKED_ARGS,
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        PROCS.append(p)
        logs.append(log)
        socks.append(sock)
        pids.append(p)
    for i in range(2):
        wait_for(lambda: os.path.exists(socks[i]) or pids[i].poll() is not None, 60, "iked's control socket")
        if pids[i].poll() is not None:
            fail(f"iked ({'ir'[i]}) exited: {open(logs[i]).read()[-2000:]}")
    # The real daemon is the child of `ip netns exec` (it execs: same pid).
    rss0 = [rss_kb(p.pid) for p in pids]
    cpu0 = [cpu_s(p.pid) for p in pids]
    THREADS0[:] = [thread_cpu_s(p.pid) for p in pids]
    t0 = time.monotonic()
    answers = iked_rpc_many(socks[0], [{"command": "up", "connection": f"c{k}", "timeout_secs": 0}
                                        for k in range(n)])
    t_sent = time.monotonic() - t0
    bad = [a for a in answers if a.get("result") != "up" and a.get("kind") != "timeout"]
    if bad:
        fail(f"iked refused up: {bad[:3]}")
    # One line per IKE SA at level info: "IKE SA c7[8] established between ...".
    name = ("iked" if workers is None else f"iked/w{workers}") + (f"@{PIN[-1]}" if PIN else "")
    res = measure(name, n, cap, pids, logs[0], b"established between", t0, t_sent, rss0, cpu0)
    # Cross-check the log count with the daemons' own view, and time
    # `ikectl status` (the CLI, as an operator runs it) on both sides.
    ikectl = os.path.join(ROOT, "target", "release", "ikectl")
    res["status_seconds"], res["status_established"] = [], []
    for i in range(2):
        t = time.monotonic()
        r = sh("ip", "netns", "exec", NS[i], ikectl, "--control", socks[i], "status", "--json")
        res["status_seconds"].append(round(time.monotonic() - t, 3))
        sas = json.loads(r.stdout)["ike_sas"]
        res["status_established"].append(sum(1 for x in sas if x["state"] == "ESTABLISHED"))
    if res["all"] and res["status_established"] != [n, n]:
        fail(f"log says {n} established, status says {res['status_established']}")
    return res


def measure(name, n, cap, pids, log, needle, t0, t_sent, rss0, cpu0):
    done = 0
    end = t0 + cap
    while time.monotonic() < end:
        done = count_lines(log, needle)
        if done >= n:
            break
        if any(p.poll() is not None for p in pids):
            fail(f"{name} exited during the run")
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    done = count_lines(log, needle)
    if done == 0:
        fail(f"{name}: not one IKE SA established in {cap} s (see {log})")
    rss1 = [rss_kb(p.pid) for p in pids]
    cpu1 = [cpu_s(p.pid) for p in pids]
    # Where each daemon's CPU went, by thread (iked: "loop" is the event
    # loop's thread, "workers" its worker threads; started with the
    # daemon, so the load of the configuration is in "loop").
    threads = [{k: round(v - before.get(k, 0.0), 2) for k, v in thread_cpu_s(p.pid).items()}
               for p, before in zip(pids, THREADS0)]
    res = {
        "daemon": name, "n": n, "established": done, "all": done >= n,
        "seconds": round(elapsed, 2), "initiate_seconds": round(t_sent, 2),
        "rss_kb_before": rss0, "rss_kb_after": rss1,
        "kb_per_sa": [round((b - a) / max(done, 1), 2) for a, b in zip(rss0, rss1)],
        "cpu_seconds": [round(b - a, 2) for a, b in zip(cpu0, cpu1)],
        "thread_cpu_seconds": threads,
        "load": load(),
    }
    return res


# -------------------------------------------------------------- charon

STRONGSWAN_CONF = """charon {{
  port = 500
  port_nat_t = 4500
  dos_protection = no
  cookie_threshold = 1000000
  block_threshold = 1000000
  init_limit_half_open = 1000000
  init_limit_job_load = 0
  install_routes = no
  install_virtual_ip = no
  retransmit_timeout = 4.0
  threads = 16
  filelog {{
    log {{
      path = {log}
      default = 1
      ike = 1
      flush_line = yes
    }}
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
  plugins {{
    vici {{
      socket = unix://{sock}
    }}
  }}
  load = random nonce kdf openssl pem pkcs1 curve25519 x509 revocation constraints pubkey kernel-netlink socket-default vici aes sha1 sha2 hmac gcm
}}
"""


def charon_bin():
    for c in ("/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon"):
        if os.access(c, os.X_OK):
            return c
    fail("charon not installed (strongswan-charon)")


def run_charon(n, cap):
    try:
        import vici  # noqa: F401
    except ImportError:
        fail("python module vici missing (python3 -m pip install vici==5.9.11)")
    import vici
    charon = charon_bin()
    pids, logs, socks = [], [], []
    for i, role in enumerate("ir"):
        d = os.path.join(WORK, f"charon-{role}")
        os.makedirs(d, exist_ok=True)
        log = os.path.join(d, "charon.log")
        if os.path.exists(log):
            os.unlink(log)
        sock = os.path.join(d, "charon.vici")
        with open(os.path.join(d, "strongswan.conf"), "w") as f:
            f.write(STRONGSWAN_CONF.format(log=log, sock=sock))
        with open(os.path.join(d, "swanctl.conf"), "w") as f:
            f.write(swanctl_conf(role, n))
        env = dict(os.environ, STRONGSWAN_CONF=os.path.join(d, "strongswan.conf"))
        # A private /run for each charon (its pid file is /run/charon.pid).
        p = subprocess.Popen(
            ["ip", "netns", "exec", NS[i]] + PIN + ["unshare", "-m", "--propagation", "private",
             "sh", "-c", f"mount -t tmpfs tmpfs /run && exec {charon}"],
            env=env, stdout=open(os.path.join(d, "stdout"), "w"), stderr=subprocess.STDOUT)
        PROCS.append(p)
        pids.append(p)
        logs.append(log)
        socks.append(sock)
    for i in range(2):
        wait_for(lambda: os.path.exists(socks[i]) or pids[i].poll() is not None, 60, "charon's vici socket")
        if pids[i].poll() is not None:
            fail("charon exited at start")
    for i, role in enumerate("ir"):
        d = os.path.join(WORK, f"charon-{role}")
        r = sh("swanctl", "--load-all", "--noprompt", "--uri", f"unix://{socks[i]}",
               "--file", os.path.join(d, "swanctl.conf"), check=False)
        if r.returncode != 0 or "loaded" not in r.stdout:
            fail(f"swanctl --load-all ({role}): {r.stdout[-500:]} {r.stderr[-500:]}")
    sess = vici.Session(sock=_unix(socks[0]))
    # pids[i] is the unshare/sh that exec'd charon: same pid.
    rss0 = [rss_kb(p.pid) for p in pids]
    cpu0 = [cpu_s(p.pid) for p in pids]
    THREADS0[:] = [thread_cpu_s(p.pid) for p in pids]
    t0 = time.monotonic()
    for k in range(n):
        for _ in sess.initiate({"ike": f"c{k}", "timeout": "-1"}):
            pass
    t_sent = time.monotonic() - t0
    name = "charon" + (f"@{PIN[-1]}" if PIN else "")
    return measure(name, n, cap, pids, logs[0], b"established between", t0, t_sent, rss0, cpu0)


def _unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def run(daemon, n, cap, workers=None):
    shutil.rmtree(WORK, ignore_errors=True)
    netns()
    try:
        res = run_iked(n, cap, workers) if daemon == "iked" else run_charon(n, cap)
    finally:
        cleanup()
    print(json.dumps(res), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("daemon", choices=["iked", "charon", "both"])
    ap.add_argument("n", type=int, nargs="+")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds to wait at most")
    ap.add_argument("--charon-max", type=int, default=5000,
                    help="with 'both': largest N given to charon")
    ap.add_argument("--group", default="x25519",
                    help="the proposal's key exchange (strongSwan's name: x25519, ecp256, modp3072, ...)")
    ap.add_argument("--workers", default=None,
                    help="iked's --workers, one run per count (e.g. \"0 1 2\"); default: iked's own")
    ap.add_argument("--iked-args", default="", help="more flags for both iked (e.g. \"--init-window 0\")")
    ap.add_argument("--cpus", default="all",
                    help="the cores both daemons may use, one set of runs per list given "
                         "(taskset -c; e.g. \"0 all\": both on one core, then on every core)")
    a = ap.parse_args()
    global GROUP, IKED_ARGS
    GROUP = a.group
    IKED_ARGS = a.iked_args.split()
    counts = [None] if a.workers is None else [int(w) for w in a.workers.split()]
    pins = [[] if c == "all" else ["taskset", "-c", c] for c in a.cpus.split()]
    if os.geteuid() != 0:
        fail("needs root (network namespaces)")
    rows = []
    for n in a.n:
        for pin in pins:
            PIN[:] = pin
            runs = []
            if a.daemon in ("iked", "both"):
                for w in counts:
                    i = run("iked", n, a.cap, w)
                    if not i["all"]:
                        fail(f"iked established {i['established']} of {n} within {a.cap} s")
                    runs.append(i)
            c = (run("charon", n, a.cap)
                 if (a.daemon == "charon" or (a.daemon == "both" and n <= a.charon_max)) else None)
            rows.append((n, runs, c))
    print()
    print(f"group {GROUP}, machine {os.cpu_count()} cores; \"@C\": both daemons on cores C only (taskset)")
    print(f"{'N':>6} {'daemon':>11} {'established':>12} {'seconds':>8} {'per s':>7} {'KB/SA init':>10} "
          f"{'KB/SA resp':>10} {'CPU s init':>10} {'CPU s resp':>10}")
    for n, runs, c in rows:
        for r in runs + [c]:
            if r:
                print(f"{n:>6} {r['daemon']:>11} {r['established']:>12} {r['seconds']:>8} "
                      f"{r['established'] / r['seconds']:>7.0f} "
                      f"{r['kb_per_sa'][0]:>10} {r['kb_per_sa'][1]:>10} "
                      f"{r['cpu_seconds'][0]:>10} {r['cpu_seconds'][1]:>10}")
        for r in runs + [c]:
            if r:
                print(f"{n:>6} {r['daemon']:>11} CPU ms per SA initiator / responder "
                      f"{1000 * r['cpu_seconds'][0] / r['established']:.2f} / "
                      f"{1000 * r['cpu_seconds'][1] / r['established']:.2f}; by thread, s: "
                      + "; ".join(side + " " + ", ".join(f"{k} {v}" for k, v in sorted(t.items()) if v)
                                  for side, t in zip(("initiator", "responder"), r["thread_cpu_seconds"])))
        i = runs[-1] if runs else None
        if i and c and c["all"]:
            print(f"{n:>6}   ratio {c['daemon']} / {i['daemon']}: time {c['seconds'] / i['seconds']:.1f}x, "
                  f"memory/SA initiator {c['kb_per_sa'][0] / i['kb_per_sa'][0]:.1f}x, "
                  f"responder {c['kb_per_sa'][1] / i['kb_per_sa'][1]:.1f}x")
        elif i and c:
            print(f"{n:>6}   charon reached {c['established']} of {n} in {a.cap:.0f} s; "
                  f"iked all {n} in {i['seconds']} s")


if __name__ == "__main__":
    main()
