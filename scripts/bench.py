#!/usr/bin/env python3
"""Benchmark tessera on the peers.md models: compile time, eval time, end-to-end ESS/s.

Usage: python3 scripts/bench.py [--bin target/release/tessera] [--runs 3] [--lego]
For each model it runs `tessera bench --json` (compile stages: medians of 21 compiles in one process, and the first; logp+grad:
median over >= 1 s of calls) and `tessera sample` 4 chains x (1000 tune + 1000 draws) with seeds 1..`--runs`,
timing the whole process (compile included); the table shows the run of median min ESS and
median times, with the range of min ESS over seeds. ESS is ArviZ-style bulk ESS,
minimum over every element of the parameters (constrained scale, derived quantities excluded,
as peers.md). Prints a Markdown table next to nutpie's and PyMC's numbers from peers.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = ["robust_regression", "eight_schools_noncentered", "logistic_regression", "hierarchical_radon", "gaussian_100d"]
# peers.md: (compile_s fresh, eval_us, sample_wall_s, min_ess_bulk, ess_per_s) for nutpie and pymc
PEERS = {
    "robust_regression": {"nutpie": (9.14, 2.84, 0.17, 737, 4392), "pymc": (8.94, 9.74, 4.39, 247, 56)},
    "eight_schools_noncentered": {"nutpie": (5.66, 1.69, 0.35, 2394, 6923), "pymc": (12.27, 5.69, 2.30, 2237, 971)},
    "logistic_regression": {"nutpie": (6.48, 238.32, 7.47, 1226, 164), "pymc": (5.33, 226.93, 9.53, 1191, 125)},
    "hierarchical_radon": {"nutpie": (7.60, 3.93, 0.18, 928, 5247), "pymc": (13.84, 14.03, 3.64, 1076, 295)},
    "gaussian_100d": {"nutpie": (3.52, 0.76, 0.05, 5746, 106805), "pymc": (2.13, 2.50, 2.29, 4489, 1960)},
    "lego_synthetic": {"nutpie": (8.03, 47.83, 47.80, 1763, 37), "pymc": (12.51, 99.81, 123.67, 425, 3)},
}


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("TESSERA", "target/release/tessera"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lego", action="store_true", help="also the lego_synthetic model (slow)")
    args = ap.parse_args()
    models = MODELS + (["lego_synthetic"] if args.lego else [])
    rows = []
    for m in models:
        tess, data = f"examples/{m}.tess", f"examples/{m}.json"
        bench = json.loads(run([args.bin, "bench", tess, "--data", data, "--json", "--compiles", "21"]))
        layout = json.loads(run([args.bin, "logp", tess, "--data", data, "--json"]))["layout"]
        params = {p["name"] for p in layout}
        # One run per seed (1, 2, …): a posterior with a metastable region (robust regression's
        # nu -> 1, sigma -> 0 corner) can make one seed's chains disagree; the table shows the
        # median run and the range of min ESS over seeds.
        runs = []
        for seed in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "s.json")
                t0 = time.perf_counter()
                out = subprocess.run([args.bin, "sample", tess, "--data", data, "--seed", str(seed), "--summary-json", path], capture_output=True, text=True)
                wall = time.perf_counter() - t0
                if out.returncode != 0:
                    sys.exit(out.stderr)
                summary = json.load(open(path))
                line = next(l for l in out.stderr.splitlines() if "sampling wall" in l)
                sampling = float(line.split("sampling wall ")[1].split(" s")[0])
            free = [p for p in summary["parameters"] if p["name"].split("[")[0] in params]
            runs.append({
                "seed": seed, "wall": wall, "sampling": sampling, "summary": summary,
                "min_ess": min(p["ess_bulk"] for p in free), "max_rhat": max(p["r_hat"] for p in free),
            })
        by_ess = sorted(runs, key=lambda r: r["min_ess"])
        median_run = by_ess[len(by_ess) // 2]
        summary = median_run["summary"]
        min_ess = median_run["min_ess"]
        wall = statistics.median(r["wall"] for r in runs)
        compile_plus_sampling = summary["timing"]["compile_ms"] / 1e3 + statistics.median(r["sampling"] for r in runs)
        draws = summary["chains"] * summary["draws"]
        rows.append({
            "model": m, "dim": bench["dim"], "compile_ms": bench["compile_median"]["compile_ms"], "compile_first_ms": bench["compile_first"]["compile_ms"],
            "compile_given_data_ms": bench["compile_median"]["compile_given_data_ms"], "cranelift_ms": bench["compile_median"]["cranelift_ms"],
            "eval_us": bench["eval_us"], "wall_s": wall, "sample_s": summary["timing"]["tune_s"] + summary["timing"]["sample_s"],
            "min_ess_bulk": min_ess, "min_ess_range": (by_ess[0]["min_ess"], by_ess[-1]["min_ess"]), "ess_per_s": min_ess / wall,
            "compile_plus_sampling_s": compile_plus_sampling, "ess_per_s_sampling": min_ess / compile_plus_sampling, "divergences": summary["divergences"],
            "max_rhat": median_run["max_rhat"], "max_rhat_all": max(r["max_rhat"] for r in runs),
            "grad_evals_per_draw": summary["grad_evals"] / (summary["chains"] * (summary["draws"] + summary["tune"])),
            "nodes": bench["nodes"], "draws": draws,
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
    print("| model | dim | compile ms (→ logp+grad: median / first in process / median given data; cranelift) | eval µs (nutpie) | compile+sampling s (nutpie sampling only) | whole command s | min ESS bulk, median seed [range] (nutpie) | ESS/s over compile+sampling (nutpie) | ESS/s over whole command | vs nutpie | divergences | max r_hat | grad evals/iter | nodes logp→opt, +grad→opt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = PEERS[r["model"]]["nutpie"]
        nd = r["nodes"]
        print(f"| {r['model']} | {r['dim']} | {r['compile_ms']:.2f} / {r['compile_first_ms']:.2f} / {r['compile_given_data_ms']:.2f}; {r['cranelift_ms']:.2f} | {r['eval_us']:.3f} ({n[1]}) | "
              f"{r['compile_plus_sampling_s']:.3f} ({n[2]}) | {r['wall_s']:.3f} | {r['min_ess_bulk']:.0f} [{r['min_ess_range'][0]:.0f}–{r['min_ess_range'][1]:.0f}] ({n[3]}) | {r['ess_per_s_sampling']:.0f} ({n[4]}) | {r['ess_per_s']:.0f} | {r['ess_per_s_sampling'] / n[4]:.1f}x | "
              f"{r['divergences']} | {r['max_rhat']:.3f} (all seeds {r['max_rhat_all']:.3f}) | {r['grad_evals_per_draw']:.1f} | {nd['model']}→{nd['optimized']}, {nd['gradient']}→{nd['gradient_optimized']} |")


if __name__ == "__main__":
    main()
