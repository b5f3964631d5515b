#!/usr/bin/env python3
"""Summarises the JSON files examples/bench/run.sh writes into Markdown tables.

    python3 examples/bench/summarize.py examples/bench/results

Medians over the runs of each tenant count; the ratios to the measured
ceilings; the targets of BENCHMARKS.md, each marked met or not.
"""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}{suffix}"


def main(out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "matrix-t*-r*.json"))):
        m = re.search(r"matrix-t(\d+)-r(\d+)\.json$", path)
        data = load(path)
        if m and data:
            runs.setdefault(int(m.group(1)), []).append(data)

    lines = []
    p = lines.append
    rows = {}
    if runs:
        p("### End to end (HTTP accept -> SQLite -> SMPP -> receipt), medians")
        p("")
        p("| tenants | runs | messages/run | accepted msg/s | end-to-end msg/s | time to last DLR s "
          "| engine CPU µs/msg | engine cores | client CPU µs/msg | simulator CPU µs/msg "
          "| machine busy cores | success |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for t in sorted(runs):
            rs = runs[t]
            acc = [r["send"]["accepted"] for r in rs]
            row = {
                "accepted_per_s": med([r["send"]["accepted_per_s"] for r in rs]),
                "e2e": med([r["receipts"]["end_to_end_per_s"] for r in rs]),
                "last_dlr": med([r["receipts"]["time_to_last_dlr_s"] for r in rs]),
                "cpu_us": med([r["engine"]["cpu_us_per_msg"] for r in rs]),
                "cores": med([r["engine"]["cpu_cores_avg"] for r in rs]),
                "client_us": med([(r["client"]["cpu_s"] or 0) * 1e6 / max(a, 1) for r, a in zip(rs, acc)]),
                "sim_us": med([(r["simulator"]["cpu_s"] or 0) * 1e6 / max(a, 1) for r, a in zip(rs, acc)]),
                "busy": med([r["machine"]["busy_cores_avg"] for r in rs]),
                "success": min(r["send"]["success_rate"] for r in rs),
                "p50": med([r["send"]["accept_latency_ms"]["p50"] for r in rs]),
                "p95": med([r["send"]["accept_latency_ms"]["p95"] for r in rs]),
                "p99": med([r["send"]["accept_latency_ms"]["p99"] for r in rs]),
                "max": med([r["send"]["accept_latency_ms"]["max"] for r in rs]),
                "conc": rs[0]["config"]["concurrency"],
                "n": rs[0]["config"]["messages_per_tenant"] * t,
                "e2e_all": [r["receipts"]["end_to_end_per_s"] for r in rs],
                "shares": [
                    [d["share"] for d in r["tenants_detail"] if d["share"] is not None] for r in rs
                ],
                "tenant_p95": [
                    [d["accept_latency_ms"]["p95"] for d in r["tenants_detail"]] for r in rs
                ],
                "tenant_last": [
                    [d["time_to_last_dlr_s"] for d in r["tenants_detail"]] for r in rs
                ],
            }
            rows[t] = row
            p(f"| {t} | {len(rs)} | {row['n']:,} | {fmt(row['accepted_per_s'])} | {fmt(row['e2e'])} "
              f"| {fmt(row['last_dlr'], 2)} | {fmt(row['cpu_us'], 1)} | {fmt(row['cores'], 2)} "
              f"| {fmt(row['client_us'], 1)} | {fmt(row['sim_us'], 1)} | {fmt(row['busy'], 2)} "
              f"| {fmt(row['success'] * 100, 2, ' %')} |")
        p("")
        p("Where the engine's CPU goes (medians, µs per message): threads named actix-rt|system "
          "(HTTP workers and arbiters: HTTP, JSON, actors, SMPP) vs the SQLite writer thread, and "
          "the kernel's share (system time) of the engine's CPU:")
        p("")
        p("| tenants | actix threads µs/msg | store writer µs/msg | system time share |")
        p("|---|---|---|---|")
        for t in sorted(runs):
            rs = runs[t]
            def per_msg(r, prefix):
                th = r["engine"].get("thread_cpu_s") or {}
                total = sum(v for k, v in th.items() if k.startswith(prefix))
                return total * 1e6 / max(r["send"]["accepted"], 1)
            sys_share = med([
                r["engine"]["cpu_split"]["system_s"]
                / max(r["engine"]["cpu_split"]["system_s"] + r["engine"]["cpu_split"]["user_s"], 1e-9)
                for r in rs if r["engine"].get("cpu_split")
            ])
            p(f"| {t} | {fmt(med([per_msg(r, 'actix') for r in rs]), 1)} "
              f"| {fmt(med([per_msg(r, 'smppd-store') for r in rs]), 1)} | {fmt((sys_share or 0) * 100, 0, ' %')} |")
        p("")
        p("Other processes' load during the runs (busy cores not explained by engine, client, "
          "simulator; noise from whatever else ran): " + "; ".join(
            f"{t} tenant(s): " + ", ".join(fmt(r["machine"].get("other_busy_cores_avg"), 2) for r in runs[t])
            for t in sorted(runs)))
        p("")
        p("Every run's end-to-end msg/s: " + "; ".join(
            f"{t} tenant(s): " + ", ".join(fmt(v) for v in rows[t]["e2e_all"]) for t in sorted(rows)))
        p("")
        p("### Accept latency (POST /v1/messages -> 202 after commit), medians of the runs")
        p("")
        p("| tenants | concurrency | p50 ms | p95 ms | p99 ms | max ms |")
        p("|---|---|---|---|---|---|")
        for t in sorted(rows):
            r = rows[t]
            p(f"| {t} | {r['conc']} | {fmt(r['p50'], 2)} | {fmt(r['p95'], 2)} | {fmt(r['p99'], 2)} | {fmt(r['max'], 1)} |")
        p("")
        p("### Fairness (per run: lowest and highest tenant share of the end-to-end rate; "
          "spread of the tenants' time to their last receipt)")
        p("")
        p("| tenants | fair share | share min-max per run | last-DLR spread s per run | tenant p95 ms min-max |")
        p("|---|---|---|---|---|")
        for t in sorted(rows):
            r = rows[t]
            shares = "; ".join(f"{min(s) * 100:.1f}-{max(s) * 100:.1f} %" for s in r["shares"] if s)
            spread = "; ".join(
                f"{min(x for x in l if x is not None):.2f}-{max(x for x in l if x is not None):.2f}"
                for l in r["tenant_last"] if any(x is not None for x in l))
            p95 = "; ".join(f"{min(l):.1f}-{max(l):.1f}" for l in r["tenant_p95"] if l and None not in l)
            p(f"| {t} | {100 / t:.1f} % | {shares} | {spread} | {p95} |")
        p("")

    lat = []
    for path in glob.glob(os.path.join(out, "latency-c*.json")):
        d = load(path)
        if d:
            lat.append(d)
    if lat:
        lat.sort(key=lambda d: d["config"]["concurrency"])
        p("### Accept latency against concurrency (1 tenant, one run each)")
        p("")
        p("| concurrency | accepted msg/s | end-to-end msg/s | p50 ms | p95 ms | p99 ms | max ms | engine CPU µs/msg |")
        p("|---|---|---|---|---|---|---|---|")
        for d in lat:
            l = d["send"]["accept_latency_ms"]
            p(f"| {d['config']['concurrency']} | {fmt(d['send']['accepted_per_s'])} | {fmt(d['receipts']['end_to_end_per_s'])} "
              f"| {fmt(l['p50'], 2)} | {fmt(l['p95'], 2)} | {fmt(l['p99'], 2)} | {fmt(l['max'], 1)} "
              f"| {fmt(d['engine']['cpu_us_per_msg'], 1)} |")
        p("")

    def all_of(pattern):
        return [d for d in (load(x) for x in sorted(glob.glob(os.path.join(out, pattern)))) if d]

    stores = [s for d in all_of("ceiling-store*.json") for s in d.get("store", [])]
    smpp = {
        "in-process simulator": [d["smpp"] for d in all_of("ceiling-smpp-inprocess*.json")],
        "simulator process": [d["smpp"] for d in all_of("ceiling-smpp-external*.json")],
    }
    store_med = {}
    if stores or any(smpp.values()):
        p("### Ceilings (medians of the runs)")
        p("")
        p("| ceiling | runs | rate | detail |")
        p("|---|---|---|---|")
        for mode in ("full", "normal"):
            ss = [s for s in stores if s["synchronous"] == mode]
            if not ss:
                continue
            store_med[mode] = med([s["rows_per_s"] for s in ss])
            p(f"| SQLite store, synchronous={mode}, {ss[0]['writers']} writers waiting for each commit "
              f"| {len(ss)} | {fmt(store_med[mode])} rows/s "
              f"(runs: {', '.join(fmt(s['rows_per_s']) for s in ss)}) "
              f"| commit p50 {fmt(med([s['commit_latency_ms']['p50'] for s in ss]), 2)} ms, "
              f"p99 {fmt(med([s['commit_latency_ms']['p99'] for s in ss]), 2)} ms; "
              f"{fmt(med([s['ops_per_transaction'] for s in ss]), 1)} ops/txn; writer thread "
              f"{fmt(med([s.get('writer_cpu_us_per_row') for s in ss]), 1)} µs CPU/row |")
        smpp_med = {}
        for name, ss in smpp.items():
            if not ss:
                continue
            smpp_med[name] = med([s["round_trips_per_s"] for s in ss])
            sim = med([s.get("smsc_cpu_us_per_msg") for s in ss])
            p(f"| raw SMPP, {name}, {ss[0]['sessions']} sessions x window {ss[0]['window']} | {len(ss)} "
              f"| {fmt(smpp_med[name])} submit_sm round trips/s, "
              f"{fmt(med([s['receipts_per_s'] for s in ss]))} receipts/s "
              f"| RTT p50 {fmt(med([s['rtt_ms']['p50'] for s in ss]), 2)} ms, "
              f"p99 {fmt(med([s['rtt_ms']['p99'] for s in ss]), 2)} ms; "
              f"{fmt(med([s['cpu_us_per_msg'] for s in ss]), 1)} µs CPU/msg "
              f"({'client+simulator' if ss[0]['in_process_simulator'] else 'client'})"
              + (f", simulator process {fmt(sim, 1)} µs CPU/msg" if sim is not None else "") + " |")
        p("")
        if rows:
            one = rows[min(rows)]["e2e"]
            p("Engine (1 tenant, end-to-end median) against the ceilings:")
            p("")
            if store_med.get("full") and one:
                p(f"- {one / store_med['full'] * 100:.0f} % of the SQLite group-commit ceiling "
                  f"({fmt(store_med['full'])} rows/s, inserts only; the engine also writes 2 updates per message)")
            for name, v in smpp_med.items():
                if v and one:
                    p(f"- {one / v * 100:.0f} % of the raw SMPP ceiling ({name}, {fmt(v)}/s)")
            p("")

    fill = load(os.path.join(out, "rss-fill.json"))
    drain = load(os.path.join(out, "rss-drain.json"))
    if fill:
        settled = {}
        try:
            with open(os.path.join(out, "rss-settled.txt")) as f:
                for line in f:
                    k, v = line.split()
                    settled[k] = int(v)
        except (OSError, ValueError):
            pass
        samples = []
        try:
            with open(os.path.join(out, "rss-samples.txt")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[1].isdigit():
                        samples.append((int(parts[0]), int(parts[1])))
        except OSError:
            pass
        warm = None
        if samples:
            t0 = samples[0][0]
            warm = next((r for t, r in samples if t >= t0 + 10), None)
            if warm is not None:
                settled["rss_10s_into_fill_kib"] = warm
        e = fill["engine"]
        p("### RSS with a large backlog (1 tenant, SMSC unreachable, then draining)")
        p("")
        p("| phase | messages | wall s | msg/s | RSS before MiB | RSS after MiB |")
        p("|---|---|---|---|---|---|")
        mib = lambda k: None if k is None else k / 1024
        if warm is not None:
            p(f"| queue, 10 s in (about {fill['send']['accepted_per_s'] * 10:,.0f} messages queued) | | | | "
              f"| {warm / 1024:.1f} |")
        p(f"| queue (accept only) | {fill['send']['accepted']:,} | {fill['send']['wall_s']:.0f} "
          f"| {fmt(fill['send']['accepted_per_s'])} | {fmt(mib(e['rss_before_kib']), 1)} "
          f"| {fmt(mib(e['rss_after_kib']), 1)} (10 s later: {fmt(mib(settled.get('rss_after_fill_settled_kib')), 1)}) |")
        if drain:
            d = drain["drain"]
            de = drain["engine"]
            p(f"| drain (submit + receipt) | {d['drained']:,} of {d['backlog_at_start']:,} | {d['wall_s']:.0f} "
              f"| {fmt(d['per_s'])} | {fmt(mib(de['rss_before_kib']), 1)} "
              f"| {fmt(mib(de['rss_after_kib']), 1)} (max {fmt(mib(de['rss_max_kib']), 1)}) |")
        p("")

    if rows:
        p("### Targets")
        p("")
        one = rows[min(rows)]
        ten = rows.get(10)
        checks = [
            ("end to end >= 25,000 msg/s (1 tenant)", one["e2e"], lambda v: v >= 25000, fmt(one["e2e"]) + " msg/s"),
            ("engine CPU <= 25 µs/msg (1 tenant)", one["cpu_us"], lambda v: v <= 25, fmt(one["cpu_us"], 1) + " µs"),
            ("accept p99 <= 5 ms at concurrency 50 (1 tenant)", one["p99"], lambda v: v <= 5, fmt(one["p99"], 2) + " ms"),
        ]
        if ten and one["e2e"]:
            ratio = ten["e2e"] / one["e2e"] if ten["e2e"] else None
            checks.append(("10 tenants >= 95 % of 1 tenant", ratio, lambda v: v >= 0.95, fmt((ratio or 0) * 100, 1, " %")))
        if fill:
            b, a = fill["engine"]["rss_before_kib"], settled.get("rss_after_fill_settled_kib") or fill["engine"]["rss_after_kib"]
            w = settled.get("rss_10s_into_fill_kib")
            n = fill["send"]["accepted"]
            if b and a:
                checks.append((f"RSS flat ±10 % while {n:,} messages queue (idle engine -> after)", a / b,
                               lambda v: 0.9 <= v <= 1.1,
                               f"{b / 1024:.1f} -> {a / 1024:.1f} MiB ({(a / b - 1) * 100:+.0f} %)"))
            if w and a:
                checks.append((f"RSS flat ±10 % while {n:,} messages queue (warm, 10 s in -> after)", a / w,
                               lambda v: 0.9 <= v <= 1.1,
                               f"{w / 1024:.1f} -> {a / 1024:.1f} MiB ({(a / w - 1) * 100:+.0f} %)"))
            if drain and b:
                d = drain["engine"]["rss_max_kib"]
                checks.append((f"RSS flat ±10 % while the backlog drains", d / b, lambda v: 0.9 <= v <= 1.1,
                               f"{drain['engine']['rss_before_kib'] / 1024:.1f} -> max {d / 1024:.1f} MiB"))
        p("| target | measured | met |")
        p("|---|---|---|")
        for name, v, ok, shown in checks:
            p(f"| {name} | {shown} | {'yes' if v is not None and ok(v) else 'no'} |")
        p("")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results"))
