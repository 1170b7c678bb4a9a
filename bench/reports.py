"""Times every report through the API and its rollup query directly in PostgreSQL (psql), in
alternation, and prints medians, p99 and the ratio. Called by bench/reports.sh."""
import json
import statistics
import subprocess
import sys
import time
import urllib.request

bind, socket_dir, runs, victims = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
base = f"http://{bind}/api/v1"


def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def login(email, password):
    return call("POST", "/auth/login", body={"email": email, "password": password})["access_token"]


def psql(sql):
    out = subprocess.run(
        ["psql", "-h", socket_dir, "-U", "postgres", "-d", "haven", "-qAtX", "-c", "\\timing on", "-c", sql],
        capture_output=True, text=True, check=True).stdout
    return float([l for l in out.splitlines() if l.startswith("Time:")][-1].split()[1])


admin = login("bench@haven.invalid", "benchmark-admin-passphrase")
host = call("GET", "/me", admin)["organization"]["id"]
call("POST", "/users", admin, {"email": "partner@haven.invalid", "role": "partner", "password": "benchmark-partner-passphrase"})
partner = login("partner@haven.invalid", "benchmark-partner-passphrase")
reports = call("GET", "/reports", partner)

# Build every rollup first (the service also warms them in the background at start).
for report in reports:
    call("GET", f"/reports/{report['id']}", partner)

rows = []
for report in reports:
    prefix = ",".join(report["dimensions"]) + ";"
    shape = subprocess.run(
        ["psql", "-h", socket_dir, "-U", "postgres", "-d", "haven", "-qAtX", "-c",
         f"SELECT shape FROM report_rollup_shapes WHERE shape LIKE '{prefix}%' ORDER BY length(shape) LIMIT 1"],
        capture_output=True, text=True, check=True).stdout.strip()
    s = shape.replace("'", "''")
    sql = ("SELECT key, sum(n) FROM (SELECT r.key, r.n FROM report_rollups_pooled r WHERE r.shape = '%s' "
           "UNION ALL SELECT r.key, -r.n FROM report_rollups r WHERE r.shape = '%s' AND r.organization_id = '%s' "
           "AND r.consent AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = '%s' AND o.shares_statistics)) t "
           "GROUP BY key HAVING sum(n) > 0" % (s, s, host, host))
    api, direct = [], []
    for _ in range(runs):
        t = time.perf_counter()
        call("GET", f"/reports/{report['id']}", partner)
        api.append((time.perf_counter() - t) * 1000)
        direct.append(psql(sql))
    p99 = lambda xs: sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]
    rows.append((report["id"], statistics.median(api), p99(api), statistics.median(direct)))

print(f"\nReports over {victims} seeded victims, {runs} runs each, alternating (ms):")
print(f"{'report':28} {'API p50':>9} {'API p99':>9} {'SQL p50':>9} {'SQL/API':>8}")
for name, a50, a99, s50 in rows:
    print(f"{name:28} {a50:9.1f} {a99:9.1f} {s50:9.1f} {s50 / a50:8.2f}")
print("\nSQL = the rollup query the service runs, timed by psql over the Unix socket (server-side time);")
print("API = the full request over loopback: authentication, rollup upkeep, guard, noise, ledger, audit.")
