"""Make sampler/tests/fixtures/arviz_diagnostics.json: fixed arrays and ArviZ's numbers on them.

The Rust test `tests/arviz_diagnostics.rs` recomputes every number with tessera's diagnostics.
Run from the repository root with ArviZ 0.23.x installed (`pip install arviz==0.23.4`):

    python3 sampler/scripts/make_arviz_fixture.py
"""

import json
import math
import pathlib
import warnings

import arviz as az
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "arviz_diagnostics.json"


def ar1(rng, chains, draws, phi):
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains) / math.sqrt(1 - phi * phi)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=chains)
    return x


def cases():
    rng = np.random.default_rng(20261125)
    shifted = rng.normal(size=(4, 100))
    shifted[3] += 0.7
    return {
        "iid_4x1000": rng.normal(size=(4, 1000)),
        "ar1_4x1000": ar1(rng, 4, 1000, 0.9),
        "iid_4x100": rng.normal(loc=3.0, scale=2.0, size=(4, 100)),
        "ar1_odd_3x101": ar1(rng, 3, 101, 0.6),
        "heavy_tailed_4x100": rng.standard_t(df=1.5, size=(4, 100)),
        "shifted_chain_4x100": shifted,
        "constant_ish_4x100": 5.0 + 1e-9 * rng.normal(size=(4, 100)),
        "ties_4x100": rng.poisson(0.8, size=(4, 100)).astype(float),
        "constant_2x50": np.full((2, 50), 1.5),
        "single_chain_1x200": ar1(rng, 1, 200, 0.3),
    }


def number(x):
    x = float(x)
    return None if math.isnan(x) else x


def arviz_numbers(values):
    idata = az.from_dict(posterior={"x": values})
    summary = az.summary(idata, round_to="none")
    row = summary.loc["x"]
    hdi = az.hdi(idata, hdi_prob=0.94)["x"].values
    return {
        "summary": {column: number(row[column]) for column in summary.columns},
        "ess_bulk": number(az.ess(idata, method="bulk")["x"]),
        "ess_tail": number(az.ess(idata, method="tail")["x"]),
        "ess_mean": number(az.ess(idata, method="mean")["x"]),
        "mcse_mean": number(az.mcse(idata, method="mean")["x"]),
        "mcse_sd": number(az.mcse(idata, method="sd")["x"]),
        "hdi_94": [number(hdi[0]), number(hdi[1])],
    }


def main():
    warnings.simplefilter("ignore")
    out = {"arviz_version": az.__version__, "cases": []}
    for name, values in cases().items():
        # Round so the committed text is exactly the array ArviZ saw.
        values = np.array([[float(f"{v:.12g}") for v in chain] for chain in values])
        out["cases"].append({"name": name, "values": values.tolist(), "expected": arviz_numbers(values)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({len(out['cases'])} cases, ArviZ {az.__version__})")


if __name__ == "__main__":
    main()
