"""Read tessera CmdStan CSV files with ArviZ's from_cmdstan and print what ArviZ understood.

Usage: python3 read_cmdstan_with_arviz.py FILE [FILE ...]
Prints one JSON object (shapes, variable names, warmup draws, means, step sizes) and exits
non-zero if ArviZ cannot read the files, or with status 77 if ArviZ is not installed (the
caller then skips the check). Run by sampler/tests/cmdstan_csv.rs.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

try:
    import arviz as az
except ImportError:
    print("arviz is not installed")
    sys.exit(77)


def main(paths):
    idata = az.from_cmdstan(posterior=paths, save_warmup=True)
    posterior = idata.posterior
    stats = idata.sample_stats
    out = {
        "chains": int(posterior.sizes["chain"]),
        "draws": int(posterior.sizes["draw"]),
        "variables": {name: list(posterior[name].shape[2:]) for name in posterior.data_vars},
        "means": {name: posterior[name].mean(dim=("chain", "draw")).values.ravel().tolist() for name in posterior.data_vars},
        "sample_stats": sorted(stats.data_vars),
        "diverging_dtype": str(stats["diverging"].dtype),
        "divergences": int(stats["diverging"].sum()),
        "warmup_draws": int(idata.warmup_posterior.sizes["draw"]) if "warmup_posterior" in idata.groups() else 0,
        "step_size": [float(v) for v in stats["step_size"].values[:, -1]],
        "max_rhat": float(az.summary(idata, round_to="none")["r_hat"].max()),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
