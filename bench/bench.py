"""Haven benchmark driver, called by bench/run.sh once Haven is up on a seeded database.

Every scenario is run in slices alternating with its anchor (the same work done straight in
PostgreSQL by pgbench), at the same concurrency, so both see the same machine: this shared
machine's absolute speed swings 2x, ratios within one run do not. Prints a table and, with --out,
writes it as Markdown.
"""
import argparse
import atexit
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import anchors
import floods

p = argparse.ArgumentParser()
p.add_argument("--bind", required=True)
p.add_argument("--socket", required=True, help="PostgreSQL socket directory")
p.add_argument("--pid", type=int, required=True, help="Haven's process id (for peak memory)")
p.add_argument("--duration", type=int, default=5, help="seconds per slice")
p.add_argument("--rounds", type=int, default=3, help="slices per side")
p.add_argument("--connections", type=int, default=4)
p.add_argument("--victims", required=True)
p.add_argument("--seed-seconds", default="?")
p.add_argument("--command", default="bench/run.sh")
p.add_argument("--out")
p.add_argument("--peer", help="a PostgREST-compatible peer's executable (postrust), measured beside Haven")
p.add_argument("--auth-instructions", help="bench/auth_instructions.sh's last line (its median)")
p.add_argument("--only", help="run only the scenarios whose name contains this (for profiling); writes nothing")
args = p.parse_args()

BASE = f"http://{args.bind}"
WORK = tempfile.mkdtemp(prefix="haven-bench-")
# pgbench's logs and scripts, the seeded ids, the peer's log: removed at exit, like run.sh's cluster.
atexit.register(shutil.rmtree, WORK, ignore_errors=True)
PASSWORD = "benchmark-passphrase-for-staff"


def call(method, path, token=None, body=None, expect=(200, 201)):
    req = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        if e.code in expect:
            return json.loads(e.read() or b"null")
        raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def psql(sql):
    return subprocess.run(["psql", "-h", args.socket, "-U", "postgres", "-d", "haven", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def login(email, password=PASSWORD):
    return call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]


def user(org, role, creator=None, email=None):
    """An account made as a deployment makes one: an admin creates it, the person sets their own
    password with the enrolment token, and a caseworker is approved by the second host admin."""
    email = email or f"bench-{role}-{org[:8]}@haven.invalid"
    if psql(f"SELECT count(*) FROM users WHERE email = '{email}'") != "0":  # an earlier run's (--only)
        return login(email)
    created = call("POST", "/api/v1/users", creator or ADMIN, {"email": email, "role": role, "organization_id": org})
    call("POST", "/api/v1/auth/enrol", body={"token": created["enrolment"]["token"], "password": PASSWORD})
    if created.get("grant"):
        call("POST", f"/api/v1/access-grants/{created['grant']['id']}/approve", SECOND)
    return login(email)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


PEAKS = []  # (phase, Haven's peak resident MB when it ended): where the peak was reached
SAMPLED_KIB = [0]  # the largest VmRSS the sampler below has seen


def _status_kib(field):
    with open(f"/proc/{args.pid}/status") as f:
        return int([l for l in f if l.startswith(field)][0].split()[1])


def _sample_resident():
    """Reads Haven's VmRSS every 5 ms for the whole run. The kernel's high-water mark (VmHWM) alone
    is not enough: on this machine's kernel it can miss the 7 MiB a login holds for some 20 ms
    (62.6 MB read where samples saw 64.2 MB; docs/DECISIONS.md D148)."""
    while True:
        try:
            SAMPLED_KIB[0] = max(SAMPLED_KIB[0], _status_kib("VmRSS"))
        except (OSError, IndexError):
            return
        time.sleep(0.005)


threading.Thread(target=_sample_resident, daemon=True).start()


def peak_mb():
    """Haven's peak resident memory so far: the larger of VmHWM and the sampled VmRSS."""
    return max(_status_kib("VmHWM"), SAMPLED_KIB[0]) / 1024


def mark(phase):
    """Notes Haven's peak resident memory at the end of `phase`."""
    mb = peak_mb()
    if not PEAKS or mb > PEAKS[-1][1] + 0.5:
        PEAKS.append((phase, mb))


def wrk(lua, env, base=BASE):
    """One slice of HTTP load: the requests made and their latencies, each request timed by the
    script (bench/wrk/common.lua), which needs one connection per wrk thread."""
    threads = str(args.connections)
    latencies = os.path.join(tempfile.mkdtemp(dir=WORK), "latencies")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "10s", "-s", lua, base],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "WRK_DIR": os.path.dirname(lua), "WRK_THREADS": threads, "LATENCIES": latencies,
                              **env}).stdout
    line = [l for l in out.splitlines() if l.startswith("JSON")][-1]
    r = json.loads(line[4:])
    with open(latencies) as f:
        r["lat"] = [float(l) for l in f if l.strip()]
    if r["non2xx"] or r["errors"]:
        raise SystemExit(f"wrk {lua}: {r['non2xx']} non-2xx answers, {r['errors']} socket errors")
    return r


def pgbench(script):
    logdir = tempfile.mkdtemp(dir=WORK)
    run = subprocess.run(["pgbench", "-n", "-h", args.socket, "-U", "postgres", "-c", str(args.connections), "-j", "2",
                          "-T", str(args.duration), "-f", script, "-l", "--log-prefix", f"{logdir}/tx", "haven"],
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"pgbench {script}: {run.stderr[-2000:]}")
    lat = []
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            lat += [int(l.split()[2]) for l in f if l.strip()]
    return {"requests": len(lat), "duration_us": args.duration * 1e6, "lat": lat}


# The distinct month windows fresh_window.lua asks (every range within 2017-01..2026-12), each
# thread as a partner of its own organisation.
FRESH_WINDOWS = 120 * 121 // 2


def scenario(name, lua, env, anchor_sql, target, counter=None):
    """Alternates slices of the API and its anchor; pools the latencies of each side. `env` may be
    a function giving each slice its environment; `counter["n"]` then counts requests made."""
    if args.only and args.only not in name:
        return None
    script = os.path.join(WORK, f"{name}.sql")
    with open(script, "w") as f:
        f.write(anchor_sql)
    api = {"n": 0, "t": 0.0, "lat": []}
    pg = {"n": 0, "t": 0.0, "lat": []}
    for _ in range(args.rounds):
        r = wrk(lua, env() if callable(env) else env)
        if counter is not None:
            # The next slice starts past every window a thread of this one took (fresh_window.lua).
            counter["n"] += r["counter"] + 1
        api["n"] += r["requests"]; api["t"] += r["duration_us"] / 1e6
        api["lat"] += r["lat"]
        r = pgbench(script)
        pg["n"] += r["requests"]; pg["t"] += r["duration_us"] / 1e6; pg["lat"] += r["lat"]
    api_rps, pg_tps = api["n"] / api["t"], pg["n"] / pg["t"]
    # Both sides' latencies pooled over their slices, each request or transaction timed on its own.
    row = {"name": name, "api_rps": api_rps, "api_p50": pct(api["lat"], 0.5) / 1000, "api_p99": pct(api["lat"], 0.99) / 1000,
           "anchor_tps": pg_tps, "anchor_p50": pct(pg["lat"], 0.5) / 1000, "anchor_p99": pct(pg["lat"], 0.99) / 1000,
           "ratio": api_rps / pg_tps, "target": target, "api_max": max(api["lat"]) / 1000, "anchor_max": max(pg["lat"]) / 1000,
           # A thread's new questions past the distinct windows repeat its organisation's earlier
           # ones (ledger answers); counted for the thread that took the most, times the threads.
           "wrapped": args.connections * max(0, counter["n"] - FRESH_WINDOWS) if counter is not None else 0}
    print(f"{name:34} {api_rps:8.0f}/s p50 {row['api_p50']:6.2f} p99 {row['api_p99']:6.2f} max {row['api_max']:7.1f} | anchor "
          f"{pg_tps:8.0f}/s p50 {row['anchor_p50']:6.2f} p99 {row['anchor_p99']:6.2f} max {row['anchor_max']:7.1f} | ratio "
          f"{row['ratio']:.2f} (target >= {target})" + (f"; {row['wrapped']} repeated windows" if row["wrapped"] else ""), flush=True)
    mark(name)
    return row


def peer_scenario(name, lua, env, peer_base, peer_env, target):
    """Haven against a peer server doing the same HTTP work, in alternating slices like the anchors."""
    if args.only and args.only not in name:
        return None
    sides = {"api": [], "peer": []}
    for _ in range(args.rounds):
        sides["api"].append(wrk(lua, env))
        sides["peer"].append(wrk(lua, peer_env, base=peer_base))
    rate = {k: sum(r["requests"] for r in v) / sum(r["duration_us"] / 1e6 for r in v) for k, v in sides.items()}
    pooled = {k: [l for r in v for l in r["lat"]] for k, v in sides.items()}
    p50 = {k: pct(lat, 0.5) / 1000 for k, lat in pooled.items()}
    p99 = {k: pct(lat, 0.99) / 1000 for k, lat in pooled.items()}
    slowest = {k: max(lat) / 1000 for k, lat in pooled.items()}
    row = {"name": name, "api_rps": rate["api"], "api_p50": p50["api"], "api_p99": p99["api"], "anchor_tps": rate["peer"],
           "anchor_p50": p50["peer"], "anchor_p99": p99["peer"], "ratio": rate["api"] / rate["peer"], "target": target,
           "api_max": slowest["api"], "anchor_max": slowest["peer"]}
    print(f"{name:34} {rate['api']:8.0f}/s p50 {p50['api']:6.2f} p99 {p99['api']:6.2f} | peer {rate['peer']:8.0f}/s "
          f"p50 {p50['peer']:6.2f} p99 {p99['peer']:6.2f} | ratio {row['ratio']:.2f} (target >= {target})", flush=True)
    return row


def jwt(claims, secret):
    """An HS256 token, as the peer verifies them."""
    import base64, hashlib, hmac
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + enc(json.dumps(claims).encode())
    return head + "." + enc(hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest())


def start_peer():
    """The peer (postrust, PostgREST-compatible, its REST API under /api) on the same database,
    serving `victims` to a role a JWT names, with as many connections as Haven's pool."""
    psql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_reader') THEN "
         "CREATE ROLE bench_reader NOLOGIN; CREATE ROLE bench_anon NOLOGIN; END IF; END $$; "
         "GRANT USAGE ON SCHEMA public TO bench_reader; GRANT SELECT ON victims TO bench_reader")
    secret = "bench-peer-secret-" + os.urandom(16).hex()
    import socket
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"postgres:///haven?host={args.socket}&user=postgres", "PGRST_DB_SCHEMAS": "public",
           "PGRST_DB_ANON_ROLE": "bench_anon", "PGRST_JWT_SECRET": secret, "PGRST_SERVER_HOST": "127.0.0.1",
           "PGRST_SERVER_PORT": str(port), "PGRST_DB_POOL": "16", "PGRST_LOG_LEVEL": "crit", "RUST_LOG": "error"}
    proc = subprocess.Popen([args.peer], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, "peer.log"), "w"))
    import atexit
    atexit.register(proc.kill)  # also when the run stops early
    base = f"http://127.0.0.1:{port}"
    token = jwt({"role": "bench_reader", "exp": int(time.time()) + 7200}, secret)
    for _ in range(300):
        if proc.poll() is not None:
            break
        try:
            req = urllib.request.Request(f"{base}/api/victims?limit=1", headers={"authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req) as resp:
                if resp.status == 200:
                    return proc, base, token
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit(f"the peer did not start: {open(os.path.join(WORK, 'peer.log')).read()[-2000:]}")


def lua(name):
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk", name)


# --- set-up: accounts in the seed organisation with the most victims, and ids to read -----------
ADMIN = login("bench@haven.invalid", "benchmark-admin-passphrase")
SECOND = login("bench-second@haven.invalid", "benchmark-admin-passphrase")
host = call("GET", "/api/v1/me", ADMIN)["organization"]["id"]
org = psql("SELECT organization_id FROM victims GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
org_admin = user(org, "admin")
caseworker_id_token = user(org, "caseworker", creator=org_admin)
partner = user(host, "partner")


def partner_org(i):
    """The organisation of the partner that thread i of a new-question scenario asks as: the
    ledger is per organisation, so each thread has every window to ask (fresh_window.lua). Like the
    host, it holds no victims, so its pooled population is the host's."""
    name = f"Benchmark partner {i + 1}"
    found = psql(f"SELECT id FROM organizations WHERE name = '{name}'")
    return found or call("POST", "/api/v1/organizations", ADMIN,
                         {"name": name, "kind": "international_organization", "country": "SEN"})["id"]


fresh_emails = [f"bench-partner-{i + 1}@haven.invalid" for i in range(args.connections)]
fresh_partners = []
for i, email in enumerate(fresh_emails):
    # A host admin makes an organisation's first admin, who makes its partner account.
    their_org = partner_org(i)
    their_admin = user(their_org, "admin", email=f"bench-partner-admin-{i + 1}@haven.invalid")
    fresh_partners.append(user(their_org, "partner", creator=their_admin, email=email))
logged_in = time.monotonic()


def relogin():
    """Fresh access tokens for the accounts made above (they last 15 minutes)."""
    global ADMIN, SECOND, partner, fresh_partners, caseworker_id_token, org_admin, logged_in
    ADMIN = login("bench@haven.invalid", "benchmark-admin-passphrase")
    SECOND = login("bench-second@haven.invalid", "benchmark-admin-passphrase")
    partner = login(f"bench-partner-{host[:8]}@haven.invalid")
    fresh_partners = [login(e) for e in fresh_emails]
    caseworker_id_token = login(f"bench-caseworker-{org[:8]}@haven.invalid")
    org_admin = login(f"bench-admin-{org[:8]}@haven.invalid")
    logged_in = time.monotonic()
caseworker_user = psql(f"SELECT id FROM users WHERE email = 'bench-caseworker-{org[:8]}@haven.invalid'")
# Kept from an earlier run against the same database (--only): the insert scenario's anchor adds
# copies whose sealed identities belong to other ids, and those must never be read.
if psql("SELECT to_regclass('bench_ids') IS NULL") == "t":
    psql("CREATE TABLE bench_ids AS SELECT (row_number() OVER ())::int AS n, id FROM "
         f"(SELECT i.victim_id AS id FROM victim_identities i WHERE i.organization_id = '{org}' ORDER BY i.victim_id LIMIT 5000) s; "
         "ALTER TABLE bench_ids ADD PRIMARY KEY (n); ANALYZE bench_ids")
ids_file = os.path.join(WORK, "ids.txt")
with open(ids_file, "w") as f:
    f.write(psql("SELECT id FROM bench_ids ORDER BY n") + "\n")
nids = int(psql("SELECT count(*) FROM bench_ids"))
if psql("SELECT to_regclass('bench_vault_keys') IS NULL") == "t":
    psql(anchors.VAULT_TABLE)
    connect = ["psql", "-h", args.socket, "-U", "postgres", "-qAtX", "-v", "ON_ERROR_STOP=1"]
    dump = subprocess.Popen(connect + ["-d", "haven_vault", "-c", "COPY victim_keys TO STDOUT"], stdout=subprocess.PIPE)
    subprocess.run(connect + ["-d", "haven", "-c", "COPY bench_vault_keys FROM STDIN"], stdin=dump.stdout, check=True)
    if dump.wait():
        raise SystemExit("copying the key vault's table for the anchors failed")
    psql("ANALYZE bench_vault_keys")
env_read = {"IDS": ids_file}
body_file = os.path.join(WORK, "victim.json")
with open(body_file, "w") as f:
    json.dump(anchors.VICTIM_BODY, f)

ctx = anchors.Context(psql=psql, org=org, user=caseworker_user, host=host, nids=nids)
# The service builds both rollups of every report in the background at start: let it finish, so no
# scenario runs beside it.
reports = call("GET", "/api/v1/reports", partner)
for _ in range(3600):
    if int(psql("SELECT count(*) FROM report_rollup_shapes")) >= 2 * len(reports):
        break
    time.sleep(1)
while int(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")):
    time.sleep(1)
relogin()  # waiting for the rollups may have outlasted the first tokens
mark("start, rollups and logins")
rows = []
print(f"\n{'scenario':34} {'API':>8}              (ms)         | {'anchor (pgbench)':>16} (ms)", flush=True)
rows.append(scenario("GET victim as admin (no identity)", lua("get_victim.lua"), {**env_read, "TOKEN": org_admin},
                     anchors.plain_read(ctx), 0.5))
rows.append(scenario("GET victim as caseworker (audited)", lua("get_victim.lua"), {**env_read, "TOKEN": caseworker_id_token},
                     anchors.audited_read(ctx), 0.8))
rows.append(scenario("POST victim (sealed, audited)", lua("post_victim.lua"), {"BODY": body_file, "TOKEN": caseworker_id_token},
                     anchors.insert(ctx), 0.8))
if args.peer:
    peer, peer_base, peer_token = start_peer()
    rows.append(peer_scenario("GET victim as admin vs postrust (JWT)", lua("get_victim.lua"), {**env_read, "TOKEN": org_admin},
                              peer_base, {**env_read, "TOKEN": peer_token, "PREFIX": "/api/victims?id=eq.",
                                          "ACCEPT": "application/vnd.pgrst.object+json"}, 1.5))
    peer.terminate()
    peer.wait()
for report in reports:
    # Access tokens last 15 minutes and this loop runs longer: log in again when they are ten
    # minutes old (counted from the logins themselves, not from the start of the loop).
    if time.monotonic() - logged_in > 600:
        relogin()
    path = f"/api/v1/reports/{report['id']}"
    call("GET", path, partner)  # rollups, and a release to size the anchor's ledger row, before timing starts
    call("GET", path, caseworker_id_token)
    fresh = {"n": 0}
    rows.append(scenario(f"report {report['id']}: new question", lua("fresh_window.lua"),
                         lambda: {"PATH_": path, "TOKENS": ",".join(fresh_partners), "OFFSET": str(fresh["n"])},
                         anchors.report_fresh(ctx, report), 0.9, counter=fresh))
    rows.append(scenario(f"report {report['id']}: repeated", lua("get_path.lua"), {"PATH_": path, "TOKEN": partner},
                         anchors.report_repeat(ctx, report), 0.9))
    rows.append(scenario(f"report {report['id']}: caseworker's own", lua("get_path.lua"), {"PATH_": path, "TOKEN": caseworker_id_token},
                         anchors.report_exact(ctx, report), 0.9))

rows = [r for r in rows if r]
if args.only:
    raise SystemExit(0)
if time.monotonic() - logged_in > 300:
    relogin()

# Authentication on equal work: the partner's catalogue with a bearer token (verified, session
# checked) against its twin without one (the build's `benchmark-twin` feature: the same handler
# code, the same bytes), alternating like the others.
auth = {"on": [], "off": []}
for _ in range(args.rounds):
    auth["on"].append(wrk(lua("get_path.lua"), {"PATH_": "/api/v1/reports", "TOKEN": partner}))
    auth["off"].append(wrk(lua("get_path.lua"), {"PATH_": "/api/v1/reports", "TOKEN": "", "TWIN": "1"}))
rate = {k: sum(r["requests"] for r in v) / sum(r["duration_us"] / 1e6 for r in v) for k, v in auth.items()}
overhead = rate["off"] / rate["on"] - 1
mark("authentication")
print(f"authenticated {rate['on']:.0f}/s vs unauthenticated {rate['off']:.0f}/s: overhead {overhead:.1%} (target <= 5%)", flush=True)

# Bad-login flood: others' latency while one account is hammered with wrong passwords.
flood = floods.bad_login_flood(BASE, f"bench-caseworker-{org[:8]}@haven.invalid", org_admin, ids_file, seconds=args.duration * 2)
print(f"bad-login flood: {flood['attempts']} attempts ({flood['statuses']}); others p50 {flood['p50']:.1f} ms, "
      f"p99 {flood['p99']:.1f} ms (target < 20); account locked: {flood['locked']}", flush=True)
mark("bad-login flood")
slow = floods.slowloris(args.bind, org_admin, ids_file, connections=200, seconds=args.duration * 2)
print(f"slow clients: {slow['held']} connections held open; others p99 {slow['p99']:.1f} ms; "
      f"slow connections closed by the server: {slow['closed']}", flush=True)

time.sleep(1)  # what the server does as the slow connections close is part of the phase
peak_kib = peak_mb() * 1024
mark("slow clients")
print(f"Haven peak RSS: {peak_kib / 1024:.1f} MB (target < 64 MB); where it rose: "
      + "; ".join(f"{phase} {mb:.1f}" for phase, mb in PEAKS))

if args.out:
    import report_md
    report_md.write(args.out, args=args, rows=rows, auth=(rate, overhead, args.auth_instructions), flood=flood, slow=slow, peak_mb=peak_kib / 1024, peaks=PEAKS,
                    machine=f"{platform.node()} ({os.cpu_count()} cores, {platform.platform()})")
    print(f"wrote {args.out}")
