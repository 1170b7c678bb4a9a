"""Writes a benchmark run into docs/BENCHMARKS.md between its markers; the hand-written analysis
around them stays."""
import datetime
import re

BEGIN, END = "<!-- bench:begin (written by bench/run.sh) -->", "<!-- bench:end -->"


def _ok(value, target, higher=True):
    return "met" if (value >= target if higher else value <= target) else "**missed**"


def _status(row):
    # New questions that ran out of distinct windows were partly answered from the ledger.
    return "not shown: repeats" if row.get("wrapped") else _ok(row["ratio"], row["target"])


def render(args, rows, auth, flood, slow, peak_mb, machine, peaks=()):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [BEGIN, "",
           f"- Run: {now} on {machine}.",
           f"- Command: `{args.command}`",
           f"- Data: `haven seed --victims {args.victims}` ({args.seed_seconds} s), release build, zero-config private",
           "  cluster with the service's durable settings (fsync, synchronous_commit on).",
           f"- Load: {args.connections} connections each side (wrk over loopback; pgbench over the Unix socket),",
           f"  {args.rounds} alternating slices of {args.duration} s per side. Latencies are each request's own time",
           "  (the wrk scripts time requests as pgbench logs transactions; docs/DECISIONS.md D142), pooled over a",
           "  side's slices.", "",
           "| scenario | API req/s | API p50 ms | API p99 ms | anchor tx/s | anchor p50 ms | anchor p99 ms | ratio | target | |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    # The peer's row holds the peer server's figures in the anchor columns.
    for r in rows:
        out.append(f"| {r['name']} | {r['api_rps']:.0f} | {r['api_p50']:.2f} | {r['api_p99']:.2f} | {r['anchor_tps']:.0f} | "
                   f"{r['anchor_p50']:.2f} | {r['anchor_p99']:.2f} | {r['ratio']:.2f} | >= {r['target']} | {_status(r)} |")
    # The peer's row holds postrust's figures in the anchor columns: not an anchor's.
    anchored = [r for r in rows if "postrust" not in r["name"]]
    api_slow, anchor_slow = max(rows, key=lambda r: r["api_max"]), max(anchored, key=lambda r: r["anchor_max"])
    out += ["", f"- The slowest single request: the API's {api_slow['api_max']:.1f} ms ({api_slow['name']}), the anchors' "
            f"{anchor_slow['anchor_max']:.1f} ms ({anchor_slow['name']}) (D142)."]
    wrapped = [r for r in rows if r.get("wrapped")]
    if wrapped:
        out.append("- New questions asked past the 7,260 distinct windows, so answered from the ledger as repeats: "
                   + "; ".join(f"{r['name']} about {r['wrapped']} of {r['api_rps'] * args.rounds * args.duration:.0f}" for r in wrapped) + ".")
    rate, overhead, instructions = auth
    out += ["",
            f"- Authentication on equal work: a partner's `GET /api/v1/reports` with a bearer token {rate['on']:.0f} req/s vs "
            f"its unauthenticated twin (the same route with `X-Haven-Benchmark-Twin: 1` instead of a token: same router position, middleware, handler code and bytes; benchmark build only) {rate['off']:.0f} req/s: overhead {overhead:.1%} (target <= 5%: {_ok(overhead, 0.05, higher=False)})."]
    if instructions:
        out.append(_instructions(instructions))
    out += [
            f"- Bad-login flood ({flood['attempts']} attempts in {args.duration * 2} s from 8 threads, answers {flood['statuses']}): "
            f"an admin's GET victim meanwhile p50 {flood['p50']:.1f} ms, p99 {flood['p99']:.1f} ms over {flood['probes']} requests "
            f"(target < 20 ms: {_ok(flood['p99'], 20, higher=False)}); account locked afterwards: {'yes' if flood['locked'] else '**no**'}.",
            f"- Slow clients: {slow['held']} connections sending an unfinished request head a byte a second for {args.duration * 2} s; "
            f"{slow['closed']} closed by the server; an admin's GET victim meanwhile p50 {slow['p50']:.1f} ms, p99 {slow['p99']:.1f} ms "
            f"over {slow['probes']} requests.",
            f"- Haven's peak resident memory over the whole run (the larger of VmHWM and VmRSS sampled every 5 ms, D148): {peak_mb:.1f} MB (target < 64 MB: {_ok(peak_mb, 64, higher=False)}); "
            "the peak after each phase that raised it (MB): " + "; ".join(f"{phase} {mb:.1f}" for phase, mb in peaks) + ".",
            "", END]
    return "\n".join(out)


def _instructions(line):
    """The same comparison counted in instructions (bench/auth_instructions.sh's median line)."""
    m = re.search(r"median of (\d+): (\d+) with a bearer token, (\d+) unauthenticated twin; authentication (-?\d+)", line)
    if not m:
        return f"- Authentication in instructions: not measured ({line.strip() or 'no output'})."
    runs, on, off, auth = map(int, m.groups())
    return (f"- The same, counted in instructions under callgrind (`bench/auth_instructions.sh`, the repeatable measure; median of "
            f"{runs} fresh processes, kernel work not counted): {on} per request with a token vs {off} for the twin: "
            f"authentication {auth}, {auth / off:.1%} (target <= 5%: {_ok(auth / off, 0.05, higher=False)}).")


def write(path, **kw):
    text = open(path).read()
    block = render(**kw)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    open(path, "w").write(text)
