#!/usr/bin/env python3
"""Summarise the criterion results of webhook-guard's benches and plot throughput vs body size.

Reads target/criterion/**/new/estimates.json (median.point_estimate, in ns) together with the
sibling benchmark.json (group, function, parameter, throughput), prints a Markdown table of
medians and throughput for every benchmark, then the ratios BENCHMARKS.md reports, and draws
docs/benchmarks-throughput.png (needs matplotlib: `pip install matplotlib`).

Usage: python3 scripts/plot_benchmarks.py [--criterion DIR] [--out PNG] [--no-plot]
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(criterion_dir):
    """{(group, function, parameter): {"median": ns, "bytes": n|None, "elements": n|None}}"""
    results = {}
    for est in sorted(Path(criterion_dir).glob("**/new/estimates.json")):
        meta_path = est.parent / "benchmark.json"
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        median = json.loads(est.read_text())["median"]["point_estimate"]
        tp = meta.get("throughput") or {}
        results[(meta["group_id"], meta.get("function_id") or "", meta.get("value_str") or "")] = {
            "median": median,
            "bytes": tp.get("Bytes") or tp.get("BytesDecimal"),
            "elements": tp.get("Elements"),
        }
    return results


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f} µs"
    return f"{ns:.1f} ns"


def fmt_rate(r):
    if r["bytes"]:
        bps = r["bytes"] / (r["median"] * 1e-9)
        return f"{bps / 1e9:.3f} GB/s" if bps >= 1e9 else f"{bps / 1e6:.1f} MB/s"
    if r["elements"]:
        eps = r["elements"] / (r["median"] * 1e-9)
        return f"{eps / 1e6:.3f} M elem/s"
    return ""


def size_label(n):
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def sort_key(k):
    g, f, p = k
    return (g, f, int(p) if p.isdigit() else math.inf, p)


def table(results):
    print("| group | function | parameter | median | throughput |")
    print("|---|---|---|---:|---:|")
    for k in sorted(results, key=sort_key):
        g, f, p = k
        r = results[k]
        print(f"| {g} | {f} | {p} | {fmt_time(r['median'])} | {fmt_rate(r)} |")


def ratios(results):
    def m(g, f, p):
        r = results.get((g, f, str(p)))
        return r["median"] if r else None

    sizes = [64, 1024, 16384, 1048576]
    print("\n### verify / floor (hmac_floor)\n")
    print("| scheme | " + " | ".join(size_label(s) for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    groups = sorted({g for g, _, _ in results if g.startswith("hmac_floor/")})
    for g in groups:
        cells = []
        for s in sizes:
            v, fl = m(g, "verify", s), m(g, "floor", s)
            cells.append(f"{v / fl:.3f} ({fmt_time(v)} / {fmt_time(fl)})" if v and fl else "–")
        print(f"| {g.split('/', 1)[1]} | " + " | ".join(cells) + " |")

    g = "keyring/standard-1KiB"
    one, two = m(g, "current-matches", 1), m(g, "current-matches", 2)
    if one and two:
        print(f"\n2 keys / 1 key (current matches): {two / one:.3f} ({fmt_time(two)} / {fmt_time(one)})")
    g = "layer/standard"
    for s in (1024, 65536):
        t, i, v = m(g, "through-layer", s), m(g, "inner-direct", s), m(g, "verify-only", s)
        if t and i and v:
            print(f"layer overhead at {size_label(s)}: {t - i - v:.1f} ns "
                  f"(through-layer {fmt_time(t)} − inner-direct {fmt_time(i)} − verify-only {fmt_time(v)})")
    g = "scaling/standard-1KiB"
    t1, t2 = m(g, "threads", 1), m(g, "threads", 2)
    if t1 and t2:
        # Each iteration is 1000 deliveries per thread: throughput ratio = 2*t1/t2.
        print(f"2 threads vs 1 (deliveries/s): {2 * t1 / t2:.3f}× (1 thread {fmt_time(t1)}, 2 threads {fmt_time(t2)} per 1000/thread)")

    for link in ("loopback", "1Gbit"):
        g = f"streaming/1MiB-{link}"
        b, st = m(g, "buffer", 1048576), m(g, "stream", 1048576)
        if b and st:
            print(f"1 MiB over {link}: MAC while receiving {fmt_time(st)} vs buffer then MAC "
                  f"{fmt_time(b)}: {st / b:.3f}× ({fmt_time(b - st)} sooner)")

    for peer_group in ("peers/standard", "peers/stripe", "peers/github"):
        fns = sorted({f for g2, f, _ in results if g2 == peer_group})
        if not fns:
            continue
        print(f"\n### {peer_group}: median (ratio to webhook-guard)\n")
        print("| contender | " + " | ".join(size_label(s) for s in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for f in fns:
            cells = []
            for s in sizes:
                v, us = m(peer_group, f, s), m(peer_group, "webhook-guard", s)
                cells.append(f"{fmt_time(v)} ({v / us:.2f}×)" if v and us else "–")
            print(f"| {f} | " + " | ".join(cells) + " |")


# (group, function, label, style) for the plot.
SERIES = [
    ("hmac_floor/standard", "floor", "RustCrypto floor (standard bytes)", dict(color="black", ls="--", marker="o")),
    ("hmac_floor/standard", "verify", "webhook-guard standard", dict(color="tab:blue", marker="o")),
    ("hmac_floor/github", "verify", "webhook-guard github", dict(color="tab:cyan", marker="s")),
    ("peers/standard", "webhook-verify", "webhook-verify 0.1 (standard)", dict(color="tab:orange", marker="^")),
    ("peers/standard", "standardwebhooks", "standardwebhooks 1.0.1", dict(color="tab:red", marker="v")),
    ("peers/standard", "svix", "svix 2.9 (standard)", dict(color="tab:brown", marker="x")),
    ("peers/github", "webhook-verify", "webhook-verify 0.1 (github)", dict(color="tab:orange", ls=":", marker="^")),
    ("peers/github", "ring", "ring 0.17 hmac (body only)", dict(color="tab:green", marker="D")),
    ("peers/github", "aws-lc-rs", "aws-lc-rs hmac (body only)", dict(color="tab:purple", marker="P")),
]


def plot(results, out):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib not installed (pip install matplotlib); no plot drawn", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    for g, f, label, style in SERIES:
        pts = sorted(
            (int(p), r["bytes"] / (r["median"] * 1e-9) / 1e9)
            for (g2, f2, p), r in results.items()
            if g2 == g and f2 == f and r["bytes"]
        )
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=label, lw=1.6, ms=5, **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    yt = [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]
    ax.set_yticks(yt, [f"{y:g}" for y in yt])
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    xt = [64, 1024, 16384, 1048576]
    ax.set_xticks(xt, [size_label(x) for x in xt])
    ax.set_xlabel("body size")
    ax.set_ylabel("throughput (GB/s, body bytes per second; log)")
    ax.set_title("HMAC-SHA256 webhook verification: throughput vs body size (median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out)
    print(f"\nwrote {out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--criterion", default=str(ROOT / "target" / "criterion"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-throughput.png"))
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    results = load(args.criterion)
    if not results:
        sys.exit(f"no criterion results under {args.criterion}; run cargo bench first")
    table(results)
    ratios(results)
    if not args.no_plot:
        plot(results, args.out)


if __name__ == "__main__":
    main()
