"""Hostile-load scenarios for bench.py: a bad-login flood and slow clients, each while a probe
measures how an ordinary request (GET one victim as an admin) fares. Bounded and on loopback."""
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request


def _probe(base, token, ids_file, stop, out):
    ids = open(ids_file).read().split()
    i = 0
    while not stop.is_set():
        req = urllib.request.Request(f"{base}/api/v1/victims/{ids[i % len(ids)]}", headers={"authorization": f"Bearer {token}"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
        out.append((time.perf_counter() - t) * 1000)
        i += 1
        time.sleep(0.005)


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


def bad_login_flood(base, email, token, ids_file, seconds, attackers=8):
    """`attackers` threads send wrong passwords for `email` as fast as answers come back."""
    stop, lat, statuses, lock = threading.Event(), [], {}, threading.Lock()

    def attack():
        body = json.dumps({"email": email, "password": "wrong-password-guess-000"}).encode()
        while not stop.is_set():
            req = urllib.request.Request(f"{base}/api/v1/auth/login", data=body, headers={"content-type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=30).read()
                code = 200
            except urllib.error.HTTPError as e:
                e.read()
                code = e.code
            with lock:
                statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=attack) for _ in range(attackers)] + [threading.Thread(target=_probe, args=(base, token, ids_file, stop, lat))]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    # The account is locked when its right password is refused too (429 with Retry-After).
    return {"attempts": sum(statuses.values()), "statuses": dict(sorted(statuses.items())), "p50": _pct(lat, 0.5),
            "p99": _pct(lat, 0.99), "probes": len(lat), "locked": _locked(base, email)}


def _locked(base, email):
    body = json.dumps({"email": email, "password": "benchmark-passphrase-for-staff"}).encode()
    req = urllib.request.Request(f"{base}/api/v1/auth/login", data=body, headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30).read()
        return False
    except urllib.error.HTTPError as e:
        return e.code == 429


def slowloris(bind, token, ids_file, connections, seconds):
    """Opens `connections` sockets that send a request head one byte at a time, every second,
    never finishing it; counts how many the server closes, while the probe runs."""
    host, port = bind.rsplit(":", 1)
    socks = []
    for _ in range(connections):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    stop, lat = threading.Event(), []
    probe = threading.Thread(target=_probe, args=(f"http://{bind}", token, ids_file, stop, lat))
    probe.start()
    closed = set()
    end = time.time() + seconds
    while time.time() < end:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.sendall(b"X")
            except OSError:
                closed.add(i)
        time.sleep(1)
    stop.set()
    probe.join()
    for s in socks:
        s.close()
    return {"held": connections, "closed": len(closed), "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "probes": len(lat)}
