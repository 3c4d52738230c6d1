#!/usr/bin/env python3
"""Writes model/tests/fixtures/scipy_logpdf.json: reference log densities for the model crate's tests.

Run from anywhere:  python3 model/scripts/make_scipy_fixture.py   (needs numpy and scipy; tested
with scipy 1.17). The output is deterministic (fixed seeds) and committed.

Sections
- "distributions": every distribution of the language at many points, edge cases included
  (boundaries of the support, values outside it, extreme parameters), as scipy.stats computes
  them (laplace in 50-digit mpmath: scipy's laplace.logpdf underflows to -inf in the far tail).
  Each case says whether the value lies in the open interior of the support with
  non-degenerate parameters ("interior"), where the plain formulas (no guards) must also match.
- "eight_schools": the issue's eight-schools model (parameter order mu, tau, theta_tilde) at a
  few unconstrained points: log density including the log-Jacobian of tau = exp(u).
- "models": posteriordb models written in the language (model/tests/models/posteriordb/*.tess),
  re-implemented here from their model.md descriptions with numpy/scipy, at points near the
  reference posterior means (mapped to the unconstrained space) plus small perturbations.

Distributions scipy lacks directly are mapped to scipy's parameterization, as noted per entry:
- half_student_t(nu, sigma):   log 2 + t.logpdf(x, nu, 0, sigma) for x >= 0, -inf below;
- bernoulli_logit(a):          x*log_expit(a) + (1-x)*log_expit(-a) (bernoulli with p = expit(a),
                               without forming p, which would lose precision for large |a|);
- binomial_logit(n, a):        binom.logpmf(k, n, expit(a)) at moderate |a|;
- poisson_log(a):              poisson.logpmf(k, exp(a));
- neg_binomial_2(mu, phi):     the pmf Γ(k+φ)/(k! Γ(φ)) (φ/(μ+φ))^φ (μ/(μ+φ))^k in 50-digit mpmath
                               (scipy's nbinom.logpmf(k, n=phi, p=phi/(mu+phi)) rounds p and loses
                               7 digits at φ = 1e8; it agrees to 1e-12 elsewhere, checked below);
- neg_binomial_2_log(e, phi):  the same with mu = exp(e);
- categorical(p):              multinomial.logpmf(onehot(k), 1, p);
- categorical_logit(a):        multinomial.logpmf(onehot(k), 1, softmax(a));
- multi_normal_cholesky(mu,L): multivariate_normal.logpdf(x, mu, L @ L.T);
- gamma(shape, rate):          gamma(a=shape, scale=1/rate); exponential(rate): expon(scale=1/rate);
- inv_gamma(shape, scale):     invgamma(a=shape, scale=scale); lognormal(mu, sigma):
                               lognorm(s=sigma, scale=exp(mu)); uniform(a, b): uniform(a, b-a).
"""

import json
import math
import os

import mpmath as mp
import numpy as np
from scipy import linalg, special, stats

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
POSTERIORDB_DATA = os.path.join(FIXTURES, "posteriordb")
REFERENCE_DIR = os.environ.get("POSTERIORDB_DIR", os.path.join(HERE, "..", "..", "..", "shared", "posteriordb"))


def enc(x):
    """JSON-safe float: infinities and NaN as strings."""
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.ndim > 0):
        return [enc(v) for v in x]
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# ---- distributions -------------------------------------------------------------------------

def half_t(x, nu, sigma):
    return math.log(2) + stats.t.logpdf(x, nu, 0, sigma) if x >= 0 else -math.inf


def bern_logit(x, a):
    return x * special.log_expit(a) + (1 - x) * special.log_expit(-a)


mp.mp.dps = 50


def nb2(k, mu, phi):
    """neg_binomial_2 in high precision, checked against scipy where scipy is accurate."""
    if k < 0:
        return -math.inf
    k, mu, phi = mp.mpf(k), mp.mpf(mu), mp.mpf(phi)
    lp = mp.loggamma(k + phi) - mp.loggamma(k + 1) - mp.loggamma(phi) + phi * mp.log(phi / (mu + phi)) + k * mp.log(mu / (mu + phi))
    if float(phi) < 1e6:
        ref = stats.nbinom.logpmf(int(k), float(phi), float(phi / (mu + phi)))
        assert abs(float(lp) - ref) <= 1e-9 * max(1.0, abs(ref)), (float(lp), ref)
    return float(lp)


def laplace(x, m, b):
    """laplace in high precision (scipy's logpdf is log(pdf), -inf in the far tail)."""
    return float(-mp.log(2 * mp.mpf(b)) - abs(mp.mpf(x) - mp.mpf(m)) / mp.mpf(b))


def onehot(k, n):
    v = np.zeros(n)
    v[k] = 1
    return v


SCALAR = {
    # name: (scipy log density of (x, *args), support test (x, *args) -> open interior?, discrete)
    "normal": (lambda x, m, s: stats.norm.logpdf(x, m, s), lambda x, *a: True),
    "half_normal": (lambda x, s: stats.halfnorm.logpdf(x, scale=s), lambda x, *a: x > 0),
    "student_t": (lambda x, nu, m, s: stats.t.logpdf(x, nu, m, s), lambda x, *a: True),
    "half_student_t": (half_t, lambda x, *a: x > 0),
    "cauchy": (lambda x, m, s: stats.cauchy.logpdf(x, m, s), lambda x, *a: True),
    "half_cauchy": (lambda x, s: stats.halfcauchy.logpdf(x, scale=s), lambda x, *a: x > 0),
    "exponential": (lambda x, r: stats.expon.logpdf(x, scale=1 / r), lambda x, *a: x > 0),
    "gamma": (lambda x, a, r: stats.gamma.logpdf(x, a, scale=1 / r), lambda x, *a: x > 0),
    "inv_gamma": (lambda x, a, b: stats.invgamma.logpdf(x, a, scale=b), lambda x, *a: x > 0),
    "beta": (lambda x, a, b: stats.beta.logpdf(x, a, b), lambda x, *a: 0 < x < 1),
    "lognormal": (lambda x, m, s: stats.lognorm.logpdf(x, s, scale=math.exp(m)), lambda x, *a: x > 0),
    "uniform": (lambda x, lo, hi: stats.uniform.logpdf(x, lo, hi - lo), lambda x, lo, hi: lo < x < hi),
    "laplace": (laplace, lambda x, *a: True),
    "logistic": (lambda x, m, s: stats.logistic.logpdf(x, m, s), lambda x, *a: True),
    "bernoulli": (lambda x, p: stats.bernoulli.logpmf(x, p), lambda x, p: x in (0, 1) and 0 < p < 1),
    "bernoulli_logit": (bern_logit, lambda x, a: x in (0, 1)),
    "binomial": (lambda k, n, p: stats.binom.logpmf(k, n, p), lambda k, n, p: 0 <= k <= n and 0 < p < 1),
    "binomial_logit": (lambda k, n, a: stats.binom.logpmf(k, n, special.expit(a)), lambda k, n, a: 0 <= k <= n),
    "poisson": (lambda k, r: stats.poisson.logpmf(k, r), lambda k, r: k >= 0 and r > 0),
    "poisson_log": (lambda k, a: stats.poisson.logpmf(k, math.exp(a)), lambda k, a: k >= 0),
    "neg_binomial_2": (nb2, lambda k, mu, phi: k >= 0 and mu > 0),
    "neg_binomial_2_log": (lambda k, e, phi: nb2(k, math.exp(e), phi), lambda k, e, phi: k >= 0),
}

DISCRETE = {"bernoulli", "bernoulli_logit", "binomial", "binomial_logit", "poisson", "poisson_log",
            "neg_binomial_2", "neg_binomial_2_log"}


def scalar_cases(rng):
    """(dist, x, args) triples: random interior points plus hand-picked edge cases."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))
    cases = []
    for _ in range(12):
        cases += [
            ("normal", u(-10, 10), [u(-3, 3), u(0.1, 5)]),
            ("half_normal", u(0.01, 8), [u(0.2, 5)]),
            ("student_t", u(-20, 20), [u(0.5, 30), u(-2, 2), u(0.2, 4)]),
            ("half_student_t", u(0.01, 20), [u(0.5, 30), u(0.2, 4)]),
            ("cauchy", u(-50, 50), [u(-2, 2), u(0.2, 4)]),
            ("half_cauchy", u(0.01, 30), [u(0.2, 5)]),
            ("exponential", u(0.01, 10), [u(0.1, 4)]),
            ("gamma", u(0.01, 10), [u(0.3, 30), u(0.1, 5)]),
            ("inv_gamma", u(0.05, 10), [u(0.3, 10), u(0.1, 5)]),
            ("beta", u(0.001, 0.999), [u(0.2, 10), u(0.2, 10)]),
            ("lognormal", u(0.01, 20), [u(-1, 2), u(0.2, 2)]),
            ("uniform", u(-1, 3), [-1.5, 3.5]),
            ("laplace", u(-10, 10), [u(-2, 2), u(0.2, 4)]),
            ("logistic", u(-30, 30), [u(-2, 2), u(0.2, 4)]),
            ("bernoulli", int(rng.integers(0, 2)), [u(0.01, 0.99)]),
            ("bernoulli_logit", int(rng.integers(0, 2)), [u(-8, 8)]),
            ("binomial", int(rng.integers(0, 21)), [20, u(0.01, 0.99)]),
            ("binomial_logit", int(rng.integers(0, 21)), [20, u(-4, 4)]),
            ("poisson", int(rng.integers(0, 40)), [u(0.1, 30)]),
            ("poisson_log", int(rng.integers(0, 40)), [u(-2, 3.5)]),
            ("neg_binomial_2", int(rng.integers(0, 40)), [u(0.1, 30), u(0.2, 50)]),
            ("neg_binomial_2_log", int(rng.integers(0, 40)), [u(-2, 3.5), u(0.2, 50)]),
        ]
    cases += [
        # far tails and extreme scales
        ("normal", 1000.0, [0.0, 1.0]), ("normal", 0.0, [0.0, 1e-3]), ("normal", -1e-3, [0.0, 1e-3]),
        ("normal", 1e6, [1.0, 1e5]),
        ("half_normal", 0.0, [1.0]), ("half_normal", -1.0, [1.0]), ("half_normal", 40.0, [1.0]),
        ("student_t", 0.0, [1.0, 0.0, 1.0]), ("student_t", 1e4, [3.0, 0.0, 1.0]),
        ("student_t", 0.5, [1e6, 0.0, 1.0]), ("student_t", -3.0, [0.1, 1.0, 2.0]),
        ("half_student_t", 0.0, [3.0, 10.0]), ("half_student_t", -0.5, [3.0, 10.0]),
        ("cauchy", 1e8, [0.0, 1.0]), ("half_cauchy", 0.0, [5.0]), ("half_cauchy", -2.0, [5.0]),
        ("exponential", 0.0, [2.0]), ("exponential", -1.0, [2.0]), ("exponential", 700.0, [1.0]),
        ("gamma", 0.0, [1.0, 2.0]), ("gamma", 0.0, [0.5, 1.0]), ("gamma", 0.0, [2.0, 1.0]),
        ("gamma", -1.0, [2.0, 1.0]), ("gamma", 1e-8, [0.5, 1.0]), ("gamma", 300.0, [25.0, 4.0]),
        ("inv_gamma", 0.0, [2.0, 1.0]), ("inv_gamma", -1.0, [2.0, 1.0]), ("inv_gamma", 1e-3, [2.0, 1.0]),
        ("beta", 0.0, [1.0, 1.0]), ("beta", 1.0, [1.0, 1.0]), ("beta", 0.0, [2.0, 3.0]), ("beta", 1.0, [2.0, 1.0]),
        ("beta", 0.0, [0.5, 0.5]), ("beta", 1.5, [2.0, 2.0]), ("beta", -0.1, [2.0, 2.0]), ("beta", 1e-10, [5.0, 5.0]),
        ("lognormal", 0.0, [0.0, 1.0]), ("lognormal", -1.0, [0.0, 1.0]), ("lognormal", 1e-6, [0.0, 1.0]),
        ("uniform", -1.5, [-1.5, 3.5]), ("uniform", 3.5, [-1.5, 3.5]), ("uniform", 3.6, [-1.5, 3.5]),
        ("uniform", -2.0, [-1.5, 3.5]),
        ("laplace", 0.0, [0.0, 1.0]), ("laplace", -1e4, [0.0, 1.0]),
        ("logistic", 800.0, [0.0, 1.0]), ("logistic", -800.0, [0.0, 1.0]), ("logistic", 0.0, [0.0, 1e-3]),
        ("bernoulli", 0, [0.0]), ("bernoulli", 1, [0.0]), ("bernoulli", 1, [1.0]), ("bernoulli", 0, [1.0]),
        ("bernoulli", 2, [0.3]), ("bernoulli", -1, [0.3]),
        ("bernoulli_logit", 1, [40.0]), ("bernoulli_logit", 0, [40.0]), ("bernoulli_logit", 1, [-40.0]),
        ("bernoulli_logit", 0, [-800.0]), ("bernoulli_logit", 1, [0.0]),
        ("binomial", 0, [10, 0.0]), ("binomial", 10, [10, 1.0]), ("binomial", 3, [10, 0.0]),
        ("binomial", 11, [10, 0.5]), ("binomial", -1, [10, 0.5]), ("binomial", 0, [0, 0.3]),
        ("binomial", 500, [1000, 0.5]),
        ("binomial_logit", 0, [10, -3.0]), ("binomial_logit", 10, [10, 3.0]), ("binomial_logit", 11, [10, 0.0]),
        ("poisson", 0, [0.0]), ("poisson", 1, [0.0]), ("poisson", -1, [2.0]), ("poisson", 1000, [1000.0]),
        ("poisson", 0, [1e-8]),
        ("poisson_log", 0, [-30.0]), ("poisson_log", 82, [4.4]), ("poisson_log", -2, [1.0]),
        ("neg_binomial_2", 0, [3.0, 1e8]), ("neg_binomial_2", 5, [3.0, 1e8]), ("neg_binomial_2", 0, [0.5, 0.1]),
        ("neg_binomial_2", -1, [3.0, 2.0]), ("neg_binomial_2", 1000, [50.0, 0.5]),
        ("neg_binomial_2_log", 0, [-20.0, 2.0]), ("neg_binomial_2_log", 7, [30.0, 1.5]),
        ("neg_binomial_2_log", 3, [1.0, 1e8]),
    ]
    return cases


def event_cases(rng):
    """Categorical, dirichlet and multivariate normal cases (vectors and matrices)."""
    out = []
    for k in [2, 3, 5]:
        for _ in range(4):
            p = rng.dirichlet(np.ones(k))
            x = int(rng.integers(0, k))
            out.append(("categorical", x, [p.tolist()], stats.multinomial.logpmf(onehot(x, k), 1, p), True))
            a = rng.normal(0, 3, k)
            sm = special.softmax(a)
            out.append(("categorical_logit", x, [a.tolist()], stats.multinomial.logpmf(onehot(x, k), 1, sm), True))
            alpha = rng.uniform(0.3, 5, k)
            xs = rng.dirichlet(np.ones(k))
            out.append(("dirichlet", xs.tolist(), [alpha.tolist()], stats.dirichlet.logpdf(xs, alpha), True))
            mu = rng.normal(0, 2, k)
            a_mat = rng.normal(0, 1, (k, k))
            sigma = a_mat @ a_mat.T + k * np.eye(k)
            xv = rng.multivariate_normal(mu, sigma)
            lp = stats.multivariate_normal.logpdf(xv, mu, sigma)
            out.append(("multi_normal", xv.tolist(), [mu.tolist(), sigma.tolist()], lp, True))
            chol = np.linalg.cholesky(sigma)
            out.append(("multi_normal_cholesky", xv.tolist(), [mu.tolist(), chol.tolist()], lp, True))
    # edge cases: a zero-probability outcome, extreme logits, a simplex on the boundary
    out.append(("categorical", 1, [[0.5, 0.0, 0.5]], -math.inf, False))
    out.append(("categorical_logit", 0, [[800.0, 0.0, -800.0]], stats.multinomial.logpmf([1, 0, 0], 1, special.softmax([800.0, 0.0, -800.0])), True))
    out.append(("categorical_logit", 2, [[800.0, 0.0, -800.0]], -1600.0, True))
    out.append(("dirichlet", [0.0, 0.5, 0.5], [[1.0, 2.0, 3.0]], stats.dirichlet.logpdf([0.0, 0.5, 0.5], [1.0, 2.0, 3.0]), False))
    return out


def distribution_section():
    rng = np.random.default_rng(20240611)
    grouped = {}
    for dist, x, args in scalar_cases(rng):
        logp, interior = SCALAR[dist]
        lp = float(logp(x, *args))
        inside = bool(interior(x, *args)) and math.isfinite(lp)
        grouped.setdefault(dist, []).append({"x": enc(x), "args": enc(args), "logp": enc(lp), "interior": inside})
    for dist, x, args, lp, interior in event_cases(rng):
        grouped.setdefault(dist, []).append({"x": enc(x), "args": enc(args), "logp": enc(lp), "interior": interior})
    return [{"dist": d, "discrete": d in DISCRETE or d.startswith("categorical"), "cases": c} for d, c in grouped.items()]


# ---- models --------------------------------------------------------------------------------
#
# Transforms mirror model/src/transform.rs; a parameter is (name, size, transform) where the
# transform is ("identity",), ("lower", a), ("lower_upper", a, b) or ("ordered",).

def constrain(u, tr):
    kind = tr[0]
    if kind == "identity":
        return u.copy(), 0.0
    if kind == "lower":
        return tr[1] + np.exp(u), float(np.sum(u))
    if kind == "lower_upper":
        a, b = tr[1], tr[2]
        s = special.expit(u)
        return a + (b - a) * s, float(np.sum(np.log(b - a) + special.log_expit(u) + special.log_expit(-u)))
    if kind == "ordered":
        return np.cumsum(np.concatenate([u[:1], np.exp(u[1:])])), float(np.sum(u[1:]))
    raise ValueError(kind)


def unconstrain(x, tr):
    kind = tr[0]
    if kind == "identity":
        return x.copy()
    if kind == "lower":
        return np.log(x - tr[1])
    if kind == "lower_upper":
        return special.logit((x - tr[1]) / (tr[2] - tr[1]))
    if kind == "ordered":
        return np.concatenate([x[:1], np.log(np.diff(x))])
    raise ValueError(kind)


def norm_sum(x, m, s):
    return float(np.sum(stats.norm.logpdf(x, m, s)))


def gp_cov(x, alpha, rho):
    d = x[:, None] - x[None, :]
    return alpha ** 2 * np.exp(-d ** 2 / (2 * rho ** 2))


POS = ("lower", 0.0)
ID = ("identity",)


def m_eight(d, p):
    theta = p["mu"] + p["tau"] * p["theta_tilde"]
    return (norm_sum(p["theta_tilde"], 0, 1) + stats.norm.logpdf(p["mu"], 0, 5)
            + stats.halfcauchy.logpdf(p["tau"], scale=5) + norm_sum(d["y"], theta, d["sigma"]))


def eight_from_ref(ref, _data):
    mu, tau = ref["mu"], ref["tau"]
    return {"theta_tilde": (ref["theta"] - mu) / tau, "mu": mu, "tau": tau}


def m_momiq(d, p):
    b = p["beta"]
    return stats.halfcauchy.logpdf(p["sigma"], scale=2.5) + norm_sum(d["kid_score"], b[0] + b[1] * d["mom_iq"], p["sigma"])


def m_interaction(d, p):
    b = p["beta"]
    mu = b[0] + b[1] * d["mom_hs"] + b[2] * d["mom_iq"] + b[3] * d["mom_hs"] * d["mom_iq"]
    return stats.halfcauchy.logpdf(p["sigma"], scale=2.5) + norm_sum(d["kid_score"], mu, p["sigma"])


def m_mom_work(d, p):
    b, w = p["beta"], d["mom_work"]
    mu = b[0] + b[1] * (w == 2) + b[2] * (w == 3) + b[3] * (w == 4)
    return norm_sum(d["kid_score"], mu, p["sigma"])


def m_earn_height(d, p):
    b = p["beta"]
    return norm_sum(d["earn"], b[0] + b[1] * d["height"], p["sigma"])


def m_logearn_z(d, p):
    b = p["beta"]
    z = (d["height"] - d["height"].mean()) / d["height"].std(ddof=1)
    mu = b[0] + b[1] * z + b[2] * d["male"] + b[3] * z * d["male"]
    return norm_sum(np.log(d["earn"]), mu, p["sigma"])


MESQUITE_COLS = ["diam1", "diam2", "canopy_height", "total_height", "density", "group"]


def m_mesquite(d, p):
    b = p["beta"]
    mu = b[0] + sum(b[i + 1] * d[c] for i, c in enumerate(MESQUITE_COLS))
    return norm_sum(d["weight"], mu, p["sigma"])


def m_logmesquite(d, p):
    b = p["beta"]
    mu = b[0] + sum(b[i + 1] * (d[c] if c == "group" else np.log(d[c])) for i, c in enumerate(MESQUITE_COLS))
    return norm_sum(np.log(d["weight"]), mu, p["sigma"])


def m_nes(d, p):
    b, age = p["beta"], d["age_discrete"]
    cols = [d["real_ideo"], d["race_adj"], age == 2, age == 3, age == 4, d["educ1"], d["gender"], d["income"]]
    mu = b[0] + sum(b[i + 1] * c for i, c in enumerate(cols))
    return norm_sum(d["partyid7"], mu, p["sigma"])


def m_kilpisjarvi(d, p):
    return (stats.norm.logpdf(p["alpha"], d["pmualpha"], d["psalpha"]) + stats.norm.logpdf(p["beta"], d["pmubeta"], d["psbeta"])
            + norm_sum(d["y"], p["alpha"] + p["beta"] * d["x"], p["sigma"]))


def m_blr(d, p):
    return (norm_sum(p["beta"], 0, 10) + stats.halfnorm.logpdf(p["sigma"], scale=10)
            + norm_sum(d["y"], d["X"] @ p["beta"], p["sigma"]))


def m_gauss_mix(d, p):
    mu, s, th = p["mu"], p["sigma"], p["theta"]
    mix = np.logaddexp(np.log(th) + stats.norm.logpdf(d["y"], mu[0], s[0]), np.log1p(-th) + stats.norm.logpdf(d["y"], mu[1], s[1]))
    return (float(np.sum(stats.halfnorm.logpdf(s, scale=2))) + norm_sum(mu, 0, 2) + stats.beta.logpdf(th, 5, 5) + float(np.sum(mix)))


def m_gp_regr(d, p):
    k = gp_cov(d["x"], p["alpha"], p["rho"]) + p["sigma"] * np.eye(len(d["x"]))
    return (stats.gamma.logpdf(p["rho"], 25, scale=1 / 4) + stats.halfnorm.logpdf(p["alpha"], scale=2)
            + stats.halfnorm.logpdf(p["sigma"], scale=1) + stats.multivariate_normal.logpdf(d["y"], np.zeros(len(d["y"])), k))


def gp_pois_chol(d, p):
    return np.linalg.cholesky(gp_cov(d["x"], p["alpha"], p["rho"]) + 1e-10 * np.eye(len(d["x"])))


def m_gp_pois(d, p):
    f = gp_pois_chol(d, p) @ p["f_tilde"]
    return (stats.gamma.logpdf(p["rho"], 25, scale=1 / 4) + stats.halfnorm.logpdf(p["alpha"], scale=2)
            + norm_sum(p["f_tilde"], 0, 1) + float(np.sum(stats.poisson.logpmf(d["k"], np.exp(f)))))


def gp_pois_from_ref(ref, d):
    p = {"rho": ref["rho"], "alpha": ref["alpha"]}
    p["f_tilde"] = linalg.solve_triangular(gp_pois_chol(d, p), ref["f"], lower=True)
    return p


def m_ark(d, p):
    k, t, y = d["K"], d["T"], d["y"]
    mu = np.array([p["alpha"] + sum(p["beta"][j] * y[i - j - 1] for j in range(k)) for i in range(k, t)])
    return (stats.norm.logpdf(p["alpha"], 0, 10) + norm_sum(p["beta"], 0, 10)
            + stats.halfcauchy.logpdf(p["sigma"], scale=2.5) + norm_sum(y[k:], mu, p["sigma"]))


def m_arma(d, p):
    y, mu, phi, theta, sigma = d["y"], p["mu"], p["phi"], p["theta"], p["sigma"]
    err = np.zeros(len(y))
    err[0] = y[0] - (mu + phi * mu)
    for t in range(1, len(y)):
        err[t] = y[t] - (mu + phi * y[t - 1] + theta * err[t - 1])
    return (stats.norm.logpdf(mu, 0, 10) + stats.norm.logpdf(phi, 0, 2) + stats.norm.logpdf(theta, 0, 2)
            + stats.halfcauchy.logpdf(sigma, scale=2.5) + norm_sum(err, 0, sigma))


def beta_sigma(n):
    return [("beta", n, ID), ("sigma", 1, POS)]


MODELS = {
    # name: (parameters in declaration order, logp of constrained values, point from reference means)
    "eight_schools-eight_schools_noncentered": ([("theta_tilde", 8, ID), ("mu", 1, ID), ("tau", 1, POS)], m_eight, eight_from_ref),
    "kidiq-kidscore_momiq": (beta_sigma(2), m_momiq, None),
    "kidiq-kidscore_interaction": (beta_sigma(4), m_interaction, None),
    "kidiq_with_mom_work-kidscore_mom_work": (beta_sigma(4), m_mom_work, None),
    "earnings-earn_height": (beta_sigma(2), m_earn_height, None),
    "earnings-logearn_interaction_z": (beta_sigma(4), m_logearn_z, None),
    "mesquite-mesquite": (beta_sigma(7), m_mesquite, None),
    "mesquite-logmesquite": (beta_sigma(7), m_logmesquite, None),
    "nes2000-nes": (beta_sigma(9), m_nes, None),
    "kilpisjarvi_mod-kilpisjarvi": ([("alpha", 1, ID), ("beta", 1, ID), ("sigma", 1, POS)], m_kilpisjarvi, None),
    "sblrc-blr": ([("beta", 5, ID), ("sigma", 1, POS)], m_blr, None),
    "low_dim_gauss_mix-low_dim_gauss_mix": ([("mu", 2, ("ordered",)), ("sigma", 2, POS), ("theta", 1, ("lower_upper", 0.0, 1.0))], m_gauss_mix, None),
    "gp_pois_regr-gp_regr": ([("rho", 1, POS), ("alpha", 1, POS), ("sigma", 1, POS)], m_gp_regr, None),
    "gp_pois_regr-gp_pois_regr": ([("rho", 1, POS), ("alpha", 1, POS), ("f_tilde", 11, ID)], m_gp_pois, gp_pois_from_ref),
    "arK-arK": ([("alpha", 1, ID), ("beta", 5, ID), ("sigma", 1, POS)], m_ark, None),
    "arma-arma11": ([("mu", 1, ID), ("phi", 1, ID), ("theta", 1, ID), ("sigma", 1, POS)], m_arma, None),
}

def load_data(name):
    with open(os.path.join(POSTERIORDB_DATA, name + ".json")) as f:
        raw = json.load(f)
    return {k: (np.array(v, dtype=float) if isinstance(v, list) else v) for k, v in raw.items()}


def reference_means(name):
    with open(os.path.join(REFERENCE_DIR, name, "reference.json")) as f:
        ref = json.load(f)
    groups = {}
    for key in ref["parameter_order"]:
        base = key.split("[")[0]
        groups.setdefault(base, []).append(ref["parameters"][key]["mean"])
    return {k: (np.array(v) if len(v) > 1 else v[0]) for k, v in groups.items()}


def log_density(params, logp, data, u):
    p, jac, pos = {}, 0.0, 0
    for name, size, tr in params:
        x, j = constrain(np.asarray(u[pos:pos + size], dtype=float), tr)
        p[name] = x if size > 1 else float(x[0])
        jac += j
        pos += size
    return float(logp(data, p)) + jac


def model_section():
    rng = np.random.default_rng(7)
    out = []
    for name, (params, logp, from_ref) in MODELS.items():
        data = load_data(name)
        ref = reference_means(name)
        p = from_ref(ref, data) if from_ref else ref
        u0 = np.concatenate([np.atleast_1d(unconstrain(np.atleast_1d(np.asarray(p[n], dtype=float)), tr)) for n, _, tr in params])
        points = []
        for k in range(3):
            u = u0 if k == 0 else u0 + rng.normal(0, 0.05, len(u0))
            points.append({"theta": enc(u), "logp": enc(log_density(params, logp, data, u))})
        out.append({"name": name, "points": points})
    return out


def eight_schools_section():
    data = {"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
    y, s = np.array(data["y"], float), np.array(data["sigma"], float)
    rng = np.random.default_rng(3)
    points = []
    for u in [np.zeros(10), np.array([4.4, 1.2] + [0.3, 0.1, -0.2, 0.0, -0.3, -0.1, 0.4, 0.1]), rng.normal(0, 1.5, 10)]:
        mu, tau, tt = u[0], math.exp(u[1]), u[2:]
        lp = (stats.norm.logpdf(mu, 0, 5) + stats.halfcauchy.logpdf(tau, scale=5) + u[1]
              + norm_sum(tt, 0, 1) + norm_sum(y, mu + tau * tt, s))
        points.append({"theta": enc(u), "logp": enc(lp)})
    return {"data": data, "points": points}


def main():
    fixture = {
        "generated_by": "model/scripts/make_scipy_fixture.py",
        "scipy_version": __import__("scipy").__version__,
        "distributions": distribution_section(),
        "eight_schools": eight_schools_section(),
        "models": model_section(),
    }
    path = os.path.join(FIXTURES, "scipy_logpdf.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
