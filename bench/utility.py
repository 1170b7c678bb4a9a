"""The utility benchmark's driver (see bench/utility.sh): partners' releases against exact counts.

Exact counts come straight from the exact rollups in SQL (the per-organisation distinct counts
that caseworkers' own reports sum, which the tests check against the records), summed over the
population a partner's release measures: consenting victims of organisations that share
statistics. The partner organisations made here hold no victims, so nothing is left out.
"""
import argparse
import datetime
import json
import re
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid

p = argparse.ArgumentParser()
p.add_argument("--bind", required=True)
p.add_argument("--socket", required=True)
p.add_argument("--draws", type=int, default=5)
p.add_argument("--victims", required=True)
p.add_argument("--organizations", required=True)
p.add_argument("--out")
args = p.parse_args()
BASE = f"http://{args.bind}"
BEGIN, END = "<!-- utility:begin (written by bench/utility.sh) -->", "<!-- utility:end -->"


def call(method, path, token=None, body=None):
    req = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def psql(sql):
    return subprocess.run(["psql", "-h", args.socket, "-U", "postgres", "-d", "haven", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def login(email, password):
    return call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]


def exact(report, frm, to):
    """Exact distinct-victim counts of the pooled population, by cell key joined with '|'."""
    dims = "ARRAY[" + ",".join(f"'{d}'" for d in report["dimensions"]) + "]::text[]"
    shape = psql(f"SELECT shape FROM report_rollup_shapes WHERE NOT bounded AND dims = {dims} ORDER BY length(shape) LIMIT 1")
    if not shape:
        raise SystemExit(f"no exact rollup for {report['id']}: did the service warm its rollups?")
    since = f"r.month >= date '{frm}-01'" if frm else "TRUE"
    until = f"r.month < (date '{to}-01' + interval '1 month')" if to else "TRUE"
    rows = psql(f"SELECT array_to_string(r.key, '|', '_total'), sum(r.n) FROM report_rollups r JOIN organizations o ON "
                f"o.id = r.organization_id WHERE r.shape = '{shape}' AND r.consent AND o.shares_statistics AND {since} AND {until} "
                "GROUP BY r.key")
    return {k: int(n) for k, n in (line.rsplit("|", 1) for line in rows.splitlines() if line)}


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


admin = login("utility@haven.invalid", "utility-admin-passphrase")
# Rollups are warmed in the background at start; exact ones are read directly here.
for _ in range(600):
    if int(psql("SELECT count(*) FROM report_rollup_shapes WHERE NOT bounded")) >= 9:
        break
    time.sleep(0.5)
partners = []
for i in range(args.draws):
    org = call("POST", "/api/v1/organizations", admin, {"name": f"Utility partner {i} {uuid.uuid4().hex[:6]}",
                                                         "kind": "international_organization", "country": "CHE"})["id"]
    # The organisation's first admin (the host admin's to create), then its partner account; each
    # person sets their own password with their enrolment token.
    tag = uuid.uuid4().hex[:6]
    org_admin = None
    for role, creator in (("admin", admin), ("partner", None)):
        email = f"utility-{role}-{i}-{tag}@haven.invalid"
        created = call("POST", "/api/v1/users", creator or org_admin, {"email": email, "role": role, "organization_id": org})
        call("POST", "/api/v1/auth/enrol", body={"token": created["enrolment"]["token"], "password": "utility-partner-passphrase"})
        token = login(email, "utility-partner-passphrase")
        if role == "admin":
            org_admin = token
        else:
            partners.append(token)

rows = []
for report in call("GET", "/api/v1/reports", partners[0]):
    errors, released, false_releases, hidden, grid = [], [], 0, 0, 0
    for token in partners:
        body = call("GET", f"/api/v1/reports/{report['id']}", token)
        truth = exact(report, body.get("from"), body.get("to"))
        k = body["privacy"]["k"]
        grid = len(body["cells"])
        shown = 0
        for cell in body["cells"]:
            key = "|".join(cell["key"])
            e = truth.get(key, 0)
            if cell["victims"] is None:
                hidden += e >= k
                continue
            shown += 1
            if e == 0:
                false_releases += 1
            else:
                errors.append(abs(cell["victims"] - e) / e)
        released.append(shown)
    row = {"id": report["id"], "grid": grid, "released": statistics.mean(released), "median": pct(errors, 0.5), "p90": pct(errors, 0.9),
           "false": false_releases / args.draws, "hidden": hidden / args.draws, "sd": report["privacy"]["noise"]["noise_sd"],
           "mechanism": report["privacy"]["noise"]["mechanism"], "bounds": report["privacy"]["bounds"]}
    rows.append(row)
    print(f"{row['id']:28} grid {grid:6}  released {row['released']:7.1f}  median {row['median']:6.1%}  p90 {row['p90']:6.1%}  "
          f"zero-count releases {row['false']:4.1f}  withheld at k or more {row['hidden']:5.1f}  sd {row['sd']}", flush=True)

if args.out:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    first = call("GET", "/api/v1/reports/budget", partners[0])
    out = [BEGIN, "", f"- Run: {now}. Command: `bench/utility.sh` (DRAWS={args.draws}).",
           f"- Data: `haven seed --victims {args.victims} --organizations {args.organizations}`; releases at the default settings "
           f"(rho {first['cost_per_release']} per release, k 11); {args.draws} releases of each report at its default parameters, each "
           "to a different partner organisation.",
           "- Relative error: |released - exact| / exact over released cells whose exact count is above zero, pooled over the releases.",
           "", "| report | cells in the grid | released per release | median relative error | p90 | released with an exact count of 0 "
           "| withheld with an exact count of k or more | noise sd (Gaussian) | bounds |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        bounds = ", ".join(f"{d} {b}" for d, b in r["bounds"].items()) or "none"
        out.append(f"| {r['id']} | {r['grid']} | {r['released']:.0f} | {r['median']:.1%} | {r['p90']:.1%} | {r['false']:.1f} | "
                   f"{r['hidden']:.1f} | {r['sd']} | {bounds} |")
    out += ["", END]
    text = open(args.out).read()
    block = "\n".join(out)
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S) if BEGIN in text else text.rstrip() + "\n\n" + block + "\n"
    open(args.out, "w").write(text)
    print(f"wrote {args.out}")
