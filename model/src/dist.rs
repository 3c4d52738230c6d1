//! Distributions: parameters, supports, shape rules, and log densities as graph builders.
//!
//! Every density includes its normalizing constant, so values equal `scipy.stats`' `logpdf` /
//! `logpmf` (see `tests/fixtures/scipy_logpdf.json`). Each is built from stable ops:
//! `log1p`, `softplus`, `log_sigmoid`, `lgamma`, `logaddexp`, `logsumexp`, Cholesky solves.
//!
//! Shape rules: scalar distributions broadcast all arguments with the value (NumPy rules);
//! `categorical(probs)` has an event axis (the last) in its argument only; `dirichlet`,
//! `multi_normal` and `multi_normal_cholesky` have it in the value and the location, and the
//! log density has the broadcast *batch* shape (one value per event).

use std::f64::consts::LN_2;

use tessera_graph::{DType, GraphBuilder, ReduceOp, Var};

/// ½ ln(2π)
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
/// ln π
const LN_PI: f64 = 1.144_729_885_849_400_2;

/// A distribution of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dist {
    /// normal(mu, sigma)
    Normal,
    /// half_normal(sigma): |N(0, sigma)|
    HalfNormal,
    /// student_t(nu, mu, sigma)
    StudentT,
    /// half_student_t(nu, sigma)
    HalfStudentT,
    /// cauchy(mu, sigma)
    Cauchy,
    /// half_cauchy(sigma)
    HalfCauchy,
    /// exponential(rate)
    Exponential,
    /// gamma(shape, rate)
    Gamma,
    /// inv_gamma(shape, scale)
    InvGamma,
    /// beta(a, b)
    Beta,
    /// lognormal(mu, sigma)
    Lognormal,
    /// uniform(lower, upper)
    Uniform,
    /// laplace(mu, scale)
    Laplace,
    /// logistic(mu, scale)
    Logistic,
    /// bernoulli(p)
    Bernoulli,
    /// bernoulli_logit(logit_p)
    BernoulliLogit,
    /// binomial(n, p)
    Binomial,
    /// binomial_logit(n, logit_p)
    BinomialLogit,
    /// poisson(rate)
    Poisson,
    /// poisson_log(log_rate)
    PoissonLog,
    /// neg_binomial_2(mu, phi): mean mu, variance mu + mu²/phi
    NegBinomial2,
    /// neg_binomial_2_log(log_mu, phi)
    NegBinomial2Log,
    /// categorical(probs) over outcomes 0..K−1
    Categorical,
    /// categorical_logit(logits) over outcomes 0..K−1
    CategoricalLogit,
    /// dirichlet(alpha)
    Dirichlet,
    /// multi_normal(mu, Sigma)
    MultiNormal,
    /// multi_normal_cholesky(mu, L)
    MultiNormalCholesky,
}

/// What a distribution argument must be (checked when its value is known from data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// Any real.
    Real,
    /// > 0
    Positive,
    /// ≥ 0
    NonNegative,
    /// In [0, 1].
    Probability,
    /// A non-negative integer (binomial trials).
    Trials,
    /// Non-negative, summing to 1 along the last axis.
    Probabilities,
    /// A square matrix (covariance).
    Covariance,
    /// A square lower-triangular matrix (Cholesky factor).
    CholeskyFactor,
}

impl ArgKind {
    /// Description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ArgKind::Real => "a real",
            ArgKind::Positive => "positive",
            ArgKind::NonNegative => "non-negative",
            ArgKind::Probability => "a probability in [0, 1]",
            ArgKind::Trials => "a non-negative integer",
            ArgKind::Probabilities => "probabilities (non-negative, summing to 1 along the last axis)",
            ArgKind::Covariance => "a square covariance matrix",
            ArgKind::CholeskyFactor => "a square lower-triangular Cholesky factor",
        }
    }

    /// What is wrong with a known covariance matrix or Cholesky factor (its last two axes;
    /// earlier axes are a batch), as `(flat index of the matrix in the batch, problem)`; `None`
    /// when every matrix is valid or the kind is not a matrix. As in Stan: a covariance must be
    /// symmetric (to 1e-8, relative to its larger entry) and positive definite; a Cholesky factor
    /// must have zeros above its diagonal and a positive diagonal.
    pub fn matrix_problem(self, shape: &[usize], values: &[f64]) -> Option<(usize, String)> {
        let &[.., rows, cols] = shape else { return None };
        if rows != cols || rows == 0 {
            return None;
        }
        let n = rows;
        values.chunks_exact(n * n).enumerate().find_map(|(b, m)| {
            let problem = match self {
                ArgKind::Covariance => covariance_problem(m, n),
                ArgKind::CholeskyFactor => cholesky_factor_problem(m, n),
                _ => None,
            };
            problem.map(|what| (b, what))
        })
    }

    /// Whether the scalar `v` is acceptable (array-level conditions are checked elsewhere).
    pub fn accepts(self, v: f64) -> bool {
        match self {
            ArgKind::Real | ArgKind::Covariance | ArgKind::CholeskyFactor => !v.is_nan(),
            ArgKind::Positive => v > 0.0,
            ArgKind::NonNegative | ArgKind::Probabilities => v >= 0.0,
            ArgKind::Probability => (0.0..=1.0).contains(&v),
            ArgKind::Trials => v >= 0.0 && v.fract() == 0.0,
        }
    }
}

/// Largest covariance checked for positive definiteness at bind time: the factorization costs
/// n³/3 multiply-adds (~3 ms at 200); larger ones are checked for symmetry and a positive
/// diagonal, and the density's own factorization reports the rest as a NaN log density.
const MAX_CHECKED_FACTORIZATION: usize = 200;

/// The first asymmetric pair of a row-major `n`×`n` matrix, or the pivot at which its
/// Cholesky factorization finds it not positive definite.
fn covariance_problem(m: &[f64], n: usize) -> Option<String> {
    for i in 0..n {
        for j in 0..i {
            let (a, b) = (m[i * n + j], m[j * n + i]);
            if (a - b).abs() > 1e-8 * a.abs().max(b.abs()).max(1.0) {
                return Some(format!("is not symmetric: element [{i},{j}] is {a} but [{j},{i}] is {b}"));
            }
        }
    }
    if let Some(j) = (0..n).find(|&j| m[j * n + j].is_nan() || m[j * n + j] <= 0.0) {
        return Some(format!("is not positive definite: its diagonal element [{j},{j}] is {}", m[j * n + j]));
    }
    if n > MAX_CHECKED_FACTORIZATION {
        return None;
    }
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let pivot = m[j * n + j] - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        if pivot.is_nan() || pivot <= 0.0 {
            return Some(format!("is not positive definite (its Cholesky factorization fails at row {j})"));
        }
        l[j * n + j] = pivot.sqrt();
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = (m[i * n + j] - dot) / l[j * n + j];
        }
    }
    None
}

/// The first non-zero entry above the diagonal of a row-major `n`×`n` matrix, or its first
/// diagonal entry that is not positive.
fn cholesky_factor_problem(m: &[f64], n: usize) -> Option<String> {
    for i in 0..n {
        if let Some(j) = (i + 1..n).find(|&j| m[i * n + j] != 0.0) {
            return Some(format!("is not lower triangular: element [{i},{j}] above the diagonal is {}", m[i * n + j]));
        }
        if m[i * n + i].is_nan() || m[i * n + i] <= 0.0 {
            return Some(format!("has a diagonal element [{i},{i}] of {}, not positive", m[i * n + i]));
        }
    }
    None
}

/// The set of values a distribution gives positive density.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// All reals.
    Real,
    /// x ≥ 0
    NonNegative,
    /// x > 0
    Positive,
    /// 0 ≤ x ≤ 1
    UnitInterval,
    /// lower ≤ x ≤ upper (the first two arguments)
    Interval,
    /// x ∈ {0, 1}
    Binary,
    /// x ∈ {0, 1, 2, …}
    Count,
    /// x ∈ {0, …, n} (n the first argument)
    UpToTrials,
    /// x ∈ {0, …, K−1} (K the last extent of the argument)
    Category,
    /// Non-negative vectors summing to 1 along the last axis.
    Simplex,
    /// Real vectors.
    RealVector,
}

impl Support {
    /// Description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Support::Real => "the reals",
            Support::NonNegative => "x >= 0",
            Support::Positive => "x > 0",
            Support::UnitInterval => "0 <= x <= 1",
            Support::Interval => "lower <= x <= upper",
            Support::Binary => "0 or 1",
            Support::Count => "non-negative integers",
            Support::UpToTrials => "integers 0..=n",
            Support::Category => "outcomes 0..K-1",
            Support::Simplex => "simplexes (non-negative, summing to 1)",
            Support::RealVector => "real vectors",
        }
    }

    /// The open interior `(lo, hi)` of a continuous support with fixed ends (`None` for
    /// supports that depend on arguments or are discrete).
    pub fn interior(self) -> Option<(f64, f64)> {
        match self {
            Support::Real | Support::RealVector => Some((f64::NEG_INFINITY, f64::INFINITY)),
            Support::NonNegative | Support::Positive => Some((0.0, f64::INFINITY)),
            Support::UnitInterval => Some((0.0, 1.0)),
            _ => None,
        }
    }
}

/// How arguments and value shapes combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeRule {
    /// Elementwise, all broadcast together.
    Elementwise,
    /// The argument has a trailing event axis of K outcome probabilities; the value does not.
    Categorical,
    /// Value and concentration have a trailing event axis.
    Dirichlet,
    /// Value and location have a trailing event axis; the matrix is K×K.
    MultiNormal,
}

struct DistSpec {
    dist: Dist,
    name: &'static str,
    fn_name: &'static str,
    params: &'static [(&'static str, ArgKind)],
    support: Support,
    rule: ShapeRule,
}

use ArgKind as A;

const SPECS: &[DistSpec] = &[
    d(Dist::Normal, "normal", "normal_lpdf", &[("mu", A::Real), ("sigma", A::Positive)], Support::Real),
    d(Dist::HalfNormal, "half_normal", "half_normal_lpdf", &[("sigma", A::Positive)], Support::NonNegative),
    d(Dist::StudentT, "student_t", "student_t_lpdf", &[("nu", A::Positive), ("mu", A::Real), ("sigma", A::Positive)], Support::Real),
    d(Dist::HalfStudentT, "half_student_t", "half_student_t_lpdf", &[("nu", A::Positive), ("sigma", A::Positive)], Support::NonNegative),
    d(Dist::Cauchy, "cauchy", "cauchy_lpdf", &[("mu", A::Real), ("sigma", A::Positive)], Support::Real),
    d(Dist::HalfCauchy, "half_cauchy", "half_cauchy_lpdf", &[("sigma", A::Positive)], Support::NonNegative),
    d(Dist::Exponential, "exponential", "exponential_lpdf", &[("rate", A::Positive)], Support::NonNegative),
    d(Dist::Gamma, "gamma", "gamma_lpdf", &[("shape", A::Positive), ("rate", A::Positive)], Support::NonNegative),
    d(Dist::InvGamma, "inv_gamma", "inv_gamma_lpdf", &[("shape", A::Positive), ("scale", A::Positive)], Support::Positive),
    d(Dist::Beta, "beta", "beta_lpdf", &[("a", A::Positive), ("b", A::Positive)], Support::UnitInterval),
    d(Dist::Lognormal, "lognormal", "lognormal_lpdf", &[("mu", A::Real), ("sigma", A::Positive)], Support::Positive),
    d(Dist::Uniform, "uniform", "uniform_lpdf", &[("lower", A::Real), ("upper", A::Real)], Support::Interval),
    d(Dist::Laplace, "laplace", "laplace_lpdf", &[("mu", A::Real), ("scale", A::Positive)], Support::Real),
    d(Dist::Logistic, "logistic", "logistic_lpdf", &[("mu", A::Real), ("scale", A::Positive)], Support::Real),
    d(Dist::Bernoulli, "bernoulli", "bernoulli_lpmf", &[("p", A::Probability)], Support::Binary),
    d(Dist::BernoulliLogit, "bernoulli_logit", "bernoulli_logit_lpmf", &[("logit_p", A::Real)], Support::Binary),
    d(Dist::Binomial, "binomial", "binomial_lpmf", &[("n", A::Trials), ("p", A::Probability)], Support::UpToTrials),
    d(Dist::BinomialLogit, "binomial_logit", "binomial_logit_lpmf", &[("n", A::Trials), ("logit_p", A::Real)], Support::UpToTrials),
    d(Dist::Poisson, "poisson", "poisson_lpmf", &[("rate", A::NonNegative)], Support::Count),
    d(Dist::PoissonLog, "poisson_log", "poisson_log_lpmf", &[("log_rate", A::Real)], Support::Count),
    d(Dist::NegBinomial2, "neg_binomial_2", "neg_binomial_2_lpmf", &[("mu", A::NonNegative), ("phi", A::Positive)], Support::Count),
    d(Dist::NegBinomial2Log, "neg_binomial_2_log", "neg_binomial_2_log_lpmf", &[("log_mu", A::Real), ("phi", A::Positive)], Support::Count),
    DistSpec {
        dist: Dist::Categorical,
        name: "categorical",
        fn_name: "categorical_lpmf",
        params: &[("probs", A::Probabilities)],
        support: Support::Category,
        rule: ShapeRule::Categorical,
    },
    DistSpec {
        dist: Dist::CategoricalLogit,
        name: "categorical_logit",
        fn_name: "categorical_logit_lpmf",
        params: &[("logits", A::Real)],
        support: Support::Category,
        rule: ShapeRule::Categorical,
    },
    DistSpec {
        dist: Dist::Dirichlet,
        name: "dirichlet",
        fn_name: "dirichlet_lpdf",
        params: &[("alpha", A::Positive)],
        support: Support::Simplex,
        rule: ShapeRule::Dirichlet,
    },
    DistSpec {
        dist: Dist::MultiNormal,
        name: "multi_normal",
        fn_name: "multi_normal_lpdf",
        params: &[("mu", A::Real), ("Sigma", A::Covariance)],
        support: Support::RealVector,
        rule: ShapeRule::MultiNormal,
    },
    DistSpec {
        dist: Dist::MultiNormalCholesky,
        name: "multi_normal_cholesky",
        fn_name: "multi_normal_cholesky_lpdf",
        params: &[("mu", A::Real), ("L", A::CholeskyFactor)],
        support: Support::RealVector,
        rule: ShapeRule::MultiNormal,
    },
];

const fn d(
    dist: Dist,
    name: &'static str,
    fn_name: &'static str,
    params: &'static [(&'static str, ArgKind)],
    support: Support,
) -> DistSpec {
    DistSpec { dist, name, fn_name, params, support, rule: ShapeRule::Elementwise }
}

impl Dist {
    /// Every distribution.
    pub const ALL: &'static [Dist] = &[
        Dist::Normal,
        Dist::HalfNormal,
        Dist::StudentT,
        Dist::HalfStudentT,
        Dist::Cauchy,
        Dist::HalfCauchy,
        Dist::Exponential,
        Dist::Gamma,
        Dist::InvGamma,
        Dist::Beta,
        Dist::Lognormal,
        Dist::Uniform,
        Dist::Laplace,
        Dist::Logistic,
        Dist::Bernoulli,
        Dist::BernoulliLogit,
        Dist::Binomial,
        Dist::BinomialLogit,
        Dist::Poisson,
        Dist::PoissonLog,
        Dist::NegBinomial2,
        Dist::NegBinomial2Log,
        Dist::Categorical,
        Dist::CategoricalLogit,
        Dist::Dirichlet,
        Dist::MultiNormal,
        Dist::MultiNormalCholesky,
    ];

    fn spec(self) -> &'static DistSpec {
        // SPECS lists every variant once, in the order of ALL (checked by a test).
        &SPECS[self as usize]
    }

    /// The name after `~`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The distribution called `name` after `~`.
    pub fn from_name(name: &str) -> Option<Dist> {
        SPECS.iter().find(|s| s.name == name).map(|s| s.dist)
    }

    /// The name of its density function (`normal_lpdf`, `poisson_lpmf`).
    pub fn density_fn_name(self) -> &'static str {
        self.spec().fn_name
    }

    /// Its parameters in order, with what each must be.
    pub fn params(self) -> &'static [(&'static str, ArgKind)] {
        self.spec().params
    }

    /// Its support.
    pub fn support(self) -> Support {
        self.spec().support
    }

    /// How its shapes combine.
    pub fn shape_rule(self) -> ShapeRule {
        self.spec().rule
    }

    /// Whether its values are integers.
    pub fn is_discrete(self) -> bool {
        matches!(self.support(), Support::Binary | Support::Count | Support::UpToTrials | Support::Category)
    }

    /// The dtype the value must have when the density is built: i64 for categorical
    /// outcomes (they index), f64 otherwise.
    pub fn value_dtype(self) -> DType {
        if self.support() == Support::Category { DType::I64 } else { DType::F64 }
    }

    /// `name(p1, p2, …)` for messages.
    pub fn signature(self) -> String {
        let params: Vec<&str> = self.params().iter().map(|(n, _)| *n).collect();
        format!("{}({})", self.name(), params.join(", "))
    }
}

/// The shapes of a density: its result and the part of the value's shape that it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DensityShape {
    /// Shape of the elementwise log density.
    pub out: Vec<usize>,
    /// The value's batch shape (its whole shape, without the event axis if it has one). In a
    /// `~` statement this must equal `out`.
    pub value_batch: Vec<usize>,
}

/// The shape of `dist`'s log density for a value of shape `x` and arguments of shapes `args`,
/// or a message saying what does not fit.
pub fn density_shape(dist: Dist, x: &[usize], args: &[&[usize]]) -> Result<DensityShape, String> {
    let n = dist.params().len();
    if args.len() != n {
        return Err(format!("{} takes {n} argument(s), got {}", dist.signature(), args.len()));
    }
    match dist.shape_rule() {
        ShapeRule::Elementwise => {
            let mut out = x.to_vec();
            for (a, (name, _)) in args.iter().zip(dist.params()) {
                out = broadcast(&out, a).ok_or_else(|| {
                    format!("argument `{name}` of shape {} does not broadcast with shape {}", fmt_shape(a), fmt_shape(&out))
                })?;
            }
            Ok(DensityShape { out, value_batch: x.to_vec() })
        }
        ShapeRule::Categorical => {
            let p = args[0];
            let Some((_, batch)) = p.split_last() else {
                return Err(format!("`{}` must be a vector of K outcome weights (or an array of them), got a scalar", dist.params()[0].0));
            };
            let out = broadcast(x, batch).ok_or_else(|| {
                format!("outcomes of shape {} do not broadcast with the weights' batch shape {}", fmt_shape(x), fmt_shape(batch))
            })?;
            Ok(DensityShape { out, value_batch: x.to_vec() })
        }
        ShapeRule::Dirichlet => {
            let (Some((kx, bx)), Some((ka, ba))) = (x.split_last(), args[0].split_last()) else {
                return Err("value and alpha must be vectors (or arrays of vectors)".into());
            };
            if kx != ka {
                return Err(format!("value has {kx} components but alpha has {ka}"));
            }
            let out = broadcast(bx, ba).ok_or_else(|| format!("batch shapes {} and {} do not broadcast", fmt_shape(bx), fmt_shape(ba)))?;
            Ok(DensityShape { out, value_batch: bx.to_vec() })
        }
        ShapeRule::MultiNormal => {
            let Some((&k, bx)) = x.split_last() else {
                return Err("the value must be a vector (or a matrix of row vectors)".into());
            };
            let mu = args[0];
            let bm: &[usize] = match mu.split_last() {
                None => &[],
                Some((&km, bm)) if km == k || km == 1 => bm,
                Some((km, _)) => return Err(format!("value has {k} components but mu has {km}")),
            };
            let m = args[1];
            if m != [k, k] {
                return Err(format!("`{}` must be a {k}x{k} matrix, got shape {}", dist.params()[1].0, fmt_shape(m)));
            }
            let out = broadcast(bx, bm).ok_or_else(|| format!("batch shapes {} and {} do not broadcast", fmt_shape(bx), fmt_shape(bm)))?;
            Ok(DensityShape { out, value_batch: bx.to_vec() })
        }
    }
}

/// NumPy broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() < rank { 1 } else { s[i + s.len() - rank] };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// `[3,4]`-style shape text.
pub fn fmt_shape(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

/// Which numerically exact forms a density needs; both default to on (always correct).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DensityOptions {
    /// Give −inf outside the support (`where(in_support, lp, -inf)`). Unneeded when the value
    /// is known to lie in the support (checked data, suitably constrained parameters).
    pub guard_support: bool,
    /// Use `0·log 0 = 0` forms (`where(u == 0, 0, u·log v)`) at the support's boundary
    /// (e.g. gamma at x = 0 with shape 1, binomial with p = 0). Unneeded when no value can lie
    /// on the boundary.
    pub exact_boundary: bool,
}

impl Default for DensityOptions {
    fn default() -> DensityOptions {
        DensityOptions { guard_support: true, exact_boundary: true }
    }
}

impl DensityOptions {
    /// The plain formulas, for values known to lie in the open interior of the support.
    pub const INTERIOR: DensityOptions = DensityOptions { guard_support: false, exact_boundary: false };
}

/// The elementwise log density of `dist` at `x` (f64, or i64 for categorical outcomes) with
/// f64 arguments `args`, of the shape [`density_shape`] gives; an error says which argument
/// count or shape does not fit.
pub fn log_density(b: &GraphBuilder, dist: Dist, x: &Var, args: &[Var], opts: DensityOptions) -> Result<Var, String> {
    let arg_dims: Vec<Vec<usize>> = args.iter().map(Var::dims).collect();
    let arg_refs: Vec<&[usize]> = arg_dims.iter().map(Vec::as_slice).collect();
    let shape = density_shape(dist, &x.dims(), &arg_refs)?;
    let lp = match dist.shape_rule() {
        ShapeRule::Elementwise => elementwise(b, dist, x, args, opts.exact_boundary),
        ShapeRule::Categorical => {
            let a = &args[0];
            let last = a.dims().len().saturating_sub(1);
            let log_p = match dist {
                Dist::CategoricalLogit => a - a.reduce(ReduceOp::LogSumExp, &[last], true),
                _ => a.log(),
            };
            categorical(b, x, &log_p)
        }
        ShapeRule::Dirichlet => {
            let alpha = &args[0];
            let last_a = alpha.dims().len().saturating_sub(1);
            let terms = xlogy(b, &(alpha - 1.0), &x.log(), opts.exact_boundary);
            let last_t = x.dims().len().max(alpha.dims().len()).saturating_sub(1);
            terms.sum(&[last_t]) + alpha.sum(&[last_a]).lgamma() - alpha.lgamma().sum(&[last_a])
        }
        ShapeRule::MultiNormal => {
            let l = match dist {
                Dist::MultiNormal => args[1].cholesky(),
                _ => args[1].clone(),
            };
            multi_normal_cholesky(x, &args[0], &l)
        }
    };
    let lp = if opts.guard_support {
        match support_condition(b, dist, x, args) {
            Some(ok) => Var::select(&ok, &lp, &b.scalar(f64::NEG_INFINITY)),
            None => lp,
        }
    } else {
        lp
    };
    let lp = if shape.out != lp.dims() && lp.id().is_some() { lp.broadcast_to(&shape.out) } else { lp };
    match lp.id() {
        Some(_) => Ok(lp),
        None => Err(format!("the log density of {} could not be built for these shapes and types", dist.signature())),
    }
}

/// `u · ln_v` with `0 · (−inf) = 0` when `exact` (scipy's `xlogy`), where `ln_v` is the log.
fn xlogy(b: &GraphBuilder, u: &Var, ln_v: &Var, exact: bool) -> Var {
    let product = u * ln_v;
    if exact { Var::select(&u.eq(&b.scalar(0.0)), &b.scalar(0.0), &product) } else { product }
}

/// ln C(n, k) = lnΓ(n+1) − lnΓ(k+1) − lnΓ(n−k+1).
fn log_choose(n: &Var, k: &Var) -> Var {
    (n + 1.0).lgamma() - (k + 1.0).lgamma() - (n - k + 1.0).lgamma()
}

/// ln Γ(a + ½) − ln Γ(a). For large a the two lgammas are huge and nearly equal, so their
/// difference loses digits (1e-10 at a = 5e5); there the asymptotic series
/// ½ ln a − 1/(8a) + 1/(192a³) − 1/(640a⁵) + 17/(14336a⁷) (error below 1e-19 for a > 50) is used.
fn lgamma_half_step(b: &GraphBuilder, a: &Var) -> Var {
    let exact = (a + 0.5).lgamma() - a.lgamma();
    let r = a.reciprocal();
    let r2 = r.square();
    let poly = -0.125 + &r2 * (1.0 / 192.0 + &r2 * (-1.0 / 640.0 + &r2 * (17.0 / 14336.0)));
    let series = 0.5 * a.log() + &r * poly;
    Var::select(&a.gt(&b.scalar(50.0)), &series, &exact)
}

/// D(k, φ) = ln Γ(k + φ) − ln Γ(φ) − k ln φ (= Σⱼ₍ⱼ<ₖ₎ log1p(j/φ), small when φ ≫ k). For
/// φ > 1000 the lgammas would cancel, so D = (k + φ − ½) log1p(k/φ) − k + s(k + φ) − s(φ) with
/// Stirling's remainder s(x) = 1/(12x) − 1/(360x³) + 1/(1260x⁵) (error below 1e-22 there).
fn log_rising_over_power(b: &GraphBuilder, k: &Var, phi: &Var) -> Var {
    let exact = (k + phi).lgamma() - phi.lgamma() - k * phi.log();
    let stirling = |x: &Var| {
        let r = x.reciprocal();
        let r2 = r.square();
        &r * (1.0 / 12.0 + &r2 * (-1.0 / 360.0 + &r2 * (1.0 / 1260.0)))
    };
    let series = (k + phi - 0.5) * (k / phi).log1p() - k + stirling(&(k + phi)) - stirling(phi);
    Var::select(&phi.gt(&b.scalar(1000.0)), &series, &exact)
}

fn student_t(b: &GraphBuilder, x: &Var, nu: &Var, mu: Option<&Var>, sigma: &Var) -> Var {
    let z = match mu {
        Some(mu) => (x - mu) / sigma,
        None => x / sigma,
    };
    let half_nu1 = (nu + 1.0) * 0.5;
    lgamma_half_step(b, &(nu * 0.5)) - 0.5 * nu.log() - 0.5 * LN_PI - sigma.log() - half_nu1 * (z.square() / nu).log1p()
}

fn elementwise(b: &GraphBuilder, dist: Dist, x: &Var, a: &[Var], exact: bool) -> Var {
    match dist {
        Dist::Normal => {
            let z = (x - &a[0]) / &a[1];
            -0.5 * z.square() - a[1].log() - HALF_LN_2PI
        }
        Dist::HalfNormal => {
            let z = x / &a[0];
            (LN_2 - HALF_LN_2PI) - a[0].log() - 0.5 * z.square()
        }
        Dist::StudentT => student_t(b, x, &a[0], Some(&a[1]), &a[2]),
        Dist::HalfStudentT => LN_2 + student_t(b, x, &a[0], None, &a[1]),
        Dist::Cauchy => {
            let z = (x - &a[0]) / &a[1];
            -LN_PI - a[1].log() - z.square().log1p()
        }
        Dist::HalfCauchy => {
            let z = x / &a[0];
            (LN_2 - LN_PI) - a[0].log() - z.square().log1p()
        }
        Dist::Exponential => a[0].log() - &a[0] * x,
        Dist::Gamma => {
            let (shape, rate) = (&a[0], &a[1]);
            shape * rate.log() - shape.lgamma() + xlogy(b, &(shape - 1.0), &x.log(), exact) - rate * x
        }
        Dist::InvGamma => {
            let (shape, scale) = (&a[0], &a[1]);
            shape * scale.log() - shape.lgamma() - (shape + 1.0) * x.log() - scale / x
        }
        Dist::Beta => {
            let (p, q) = (&a[0], &a[1]);
            let log_beta = p.lgamma() + q.lgamma() - (p + q).lgamma();
            xlogy(b, &(p - 1.0), &x.log(), exact) + xlogy(b, &(q - 1.0), &(-x).log1p(), exact) - log_beta
        }
        Dist::Lognormal => {
            let lx = x.log();
            let z = (&lx - &a[0]) / &a[1];
            -0.5 * z.square() - a[1].log() - HALF_LN_2PI - lx
        }
        Dist::Uniform => -(&a[1] - &a[0]).log(),
        Dist::Laplace => -LN_2 - a[1].log() - (x - &a[0]).abs() / &a[1],
        Dist::Logistic => {
            // Symmetric in z, so use |z|: −|z| − 2 ln(1 + e^−|z|) never overflows.
            let z = ((x - &a[0]) / &a[1]).abs();
            -&z - 2.0 * (-&z).softplus() - a[1].log()
        }
        Dist::Bernoulli => {
            let p = &a[0];
            Var::select(&x.eq(&b.scalar(1.0)), &p.log(), &(-p).log1p())
        }
        // For x ∈ {0, 1}: ln σ(a) when x = 1 and ln σ(−a) when x = 0.
        Dist::BernoulliLogit => ((2.0 * x - 1.0) * &a[0]).log_sigmoid(),
        Dist::Binomial => {
            let (n, p) = (&a[0], &a[1]);
            log_choose(n, x) + xlogy(b, x, &p.log(), exact) + xlogy(b, &(n - x), &(-p).log1p(), exact)
        }
        Dist::BinomialLogit => {
            let (n, logit) = (&a[0], &a[1]);
            log_choose(n, x) + x * logit.log_sigmoid() + (n - x) * (-logit).log_sigmoid()
        }
        Dist::Poisson => xlogy(b, x, &a[0].log(), exact) - &a[0] - (x + 1.0).lgamma(),
        Dist::PoissonLog => x * &a[0] - a[0].exp() - (x + 1.0).lgamma(),
        // ln p = D(k, φ) − lnΓ(k+1) + k ln μ − (k + φ) log1p(μ/φ), the pmf
        // Γ(k+φ)/(k! Γ(φ)) (φ/(μ+φ))^φ (μ/(μ+φ))^k regrouped so that nothing cancels for large φ.
        Dist::NegBinomial2 => {
            let (mu, phi) = (&a[0], &a[1]);
            log_rising_over_power(b, x, phi) - (x + 1.0).lgamma() + xlogy(b, x, &mu.log(), exact) - (x + phi) * (mu / phi).log1p()
        }
        Dist::NegBinomial2Log => {
            let (eta, phi) = (&a[0], &a[1]);
            // log1p(μ/φ) = softplus(η − ln φ), exact for any η.
            log_rising_over_power(b, x, phi) - (x + 1.0).lgamma() + x * eta - (x + phi) * (eta - phi.log()).softplus()
        }
        Dist::Categorical
        | Dist::CategoricalLogit
        | Dist::Dirichlet
        | Dist::MultiNormal
        | Dist::MultiNormalCholesky => b.scalar(f64::NAN), // not elementwise; handled by the caller
    }
}

/// `log_p[..., x]` per element: the log probability of each outcome, broadcasting the
/// outcomes against the batch axes of `log_p` (shape `[..., K]`).
fn categorical(b: &GraphBuilder, x: &Var, log_p: &Var) -> Var {
    let pd = log_p.dims();
    let Some((&k, batch)) = pd.split_last() else { return b.scalar(f64::NAN) };
    if batch.is_empty() {
        return log_p.gather(x, 0);
    }
    let Some(out) = broadcast(&x.dims(), batch) else { return log_p.gather(x, 0) };
    let m: usize = out.iter().product();
    let mut full = out.clone();
    full.push(k);
    let flat = log_p.broadcast_to(&full).reshape(&[m * k]);
    let rows = x.broadcast_to(&out).reshape(&[m]);
    let offsets = ndarray::Array1::from_iter((0..m).map(|i| (i * k) as i64));
    flat.gather(&(rows + b.array_i64(&offsets)), 0).reshape(&out)
}

/// Multivariate normal log density from the Cholesky factor `l` of the covariance.
fn multi_normal_cholesky(x: &Var, mu: &Var, l: &Var) -> Var {
    let r = x - mu;
    let rd = r.dims();
    let Some((&k, batch)) = rd.split_last() else { return r };
    let quad = if batch.is_empty() {
        l.triangular_solve(&r, true).square().sum(&[0])
    } else {
        let m: usize = batch.iter().product();
        let z = l.triangular_solve(&r.reshape(&[m, k]).t(), true); // [K, m]
        z.square().sum(&[0]).reshape(batch)
    };
    -0.5 * quad - 0.5 * l.logdet_chol() - (k as f64) * HALF_LN_2PI
}

/// A bool tensor: where `x` lies in the support (`None` when every real value does).
/// Categorical outcomes compare as i64; everything else as f64.
pub fn support_condition(b: &GraphBuilder, dist: Dist, x: &Var, args: &[Var]) -> Option<Var> {
    let zero = || b.scalar(0.0);
    let one = || b.scalar(1.0);
    Some(match dist.support() {
        Support::Real | Support::RealVector => return None,
        Support::NonNegative | Support::Count => x.ge(&zero()),
        Support::Positive => x.gt(&zero()),
        Support::UnitInterval => x.ge(&zero()).and(&x.le(&one())),
        Support::Interval => x.ge(&args[0]).and(&x.le(&args[1])),
        Support::Binary => x.eq(&zero()).or(&x.eq(&one())),
        Support::UpToTrials => x.ge(&zero()).and(&x.le(&args[0])),
        Support::Category => {
            let k = args[0].dims().last().copied().unwrap_or(0) as i64;
            x.ge(&b.constant(tessera_graph::Constant::i64(0))).and(&x.lt(&b.constant(tessera_graph::Constant::i64(k))))
        }
        Support::Simplex => {
            let last = x.dims().len().saturating_sub(1);
            let nonneg = x.ge(&zero()).cast(DType::F64).min(&[last]).eq(&one());
            let sums_to_one = (x.sum(&[last]) - 1.0).abs().le(&b.scalar(SIMPLEX_TOLERANCE));
            nonneg.and(&sums_to_one)
        }
    })
}

/// [`support_condition`] as a test of one value, for the supports that depend on the value
/// alone (`None` for those that need the arguments or a whole simplex): bind checks large
/// observed data with it without building and evaluating a graph over the data.
pub fn in_support_alone(support: Support) -> Option<fn(f64) -> bool> {
    Some(match support {
        Support::Real | Support::RealVector => |_| true,
        Support::NonNegative | Support::Count => |x| x >= 0.0,
        Support::Positive => |x| x > 0.0,
        Support::UnitInterval => |x| (0.0..=1.0).contains(&x),
        Support::Binary => |x| x == 0.0 || x == 1.0,
        Support::Interval | Support::UpToTrials | Support::Category | Support::Simplex => return None,
    })
}

/// [`boundary_condition`] as a test of one value, for the distributions whose boundary depends
/// on the value alone (`None` for those that need the arguments).
pub fn on_boundary_alone(dist: Dist) -> Option<fn(f64) -> bool> {
    Some(match dist {
        Dist::Gamma | Dist::Poisson | Dist::NegBinomial2 | Dist::Dirichlet => |x| x == 0.0,
        Dist::Beta => |x| x == 0.0 || x == 1.0,
        Dist::Binomial => return None,
        _ => |_| false,
    })
}

/// How far from 1 a simplex's sum may be (data and parameter checks).
pub const SIMPLEX_TOLERANCE: f64 = 1e-8;

/// A bool tensor: where `x` lies on the support's boundary, where the exact `0·log 0` forms
/// matter (`None` when no boundary value needs them).
pub fn boundary_condition(b: &GraphBuilder, dist: Dist, x: &Var, args: &[Var]) -> Option<Var> {
    let zero = || b.scalar(0.0);
    Some(match dist {
        Dist::Gamma | Dist::Poisson | Dist::NegBinomial2 | Dist::Dirichlet => x.eq(&zero()),
        Dist::Beta => x.eq(&zero()).or(&x.eq(&b.scalar(1.0))),
        Dist::Binomial => x.eq(&zero()).or(&x.eq(&args[0])),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// The one-value support and boundary tests agree with the graph conditions bind
    /// otherwise evaluates, on every distribution they cover.
    #[test]
    fn value_alone_tests_agree_with_the_support_graphs() {
        let xs = [-2.0, -1.0, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 1e300];
        for &dist in Dist::ALL {
            let (Some(inside), Some(boundary)) = (in_support_alone(dist.support()), on_boundary_alone(dist)) else { continue };
            let b = GraphBuilder::new("support");
            let x = b.constant(tessera_graph::Constant::new(tessera_graph::Shape::new(&[xs.len()]), tessera_graph::ConstData::F64(xs.to_vec().into())).unwrap());
            let args: Vec<Var> = dist.params().iter().map(|_| b.scalar(1.0)).collect();
            let (cond, bound) = (support_condition(&b, dist, &x, &args), boundary_condition(&b, dist, &x, &args));
            let outs: Vec<&Var> = cond.iter().chain(bound.iter()).collect();
            let values = if outs.is_empty() { vec![] } else { tessera_graph::eval(&b.finish(&outs).unwrap(), &Default::default()).unwrap() };
            let mut values = values.iter().map(|v| v.to_f64_vec().iter().map(|&f| f != 0.0).collect::<Vec<bool>>());
            let want_inside = if cond.is_some() { values.next().unwrap() } else { vec![true; xs.len()] };
            let want_boundary = if bound.is_some() { values.next().unwrap() } else { vec![false; xs.len()] };
            assert_eq!(xs.iter().map(|&v| inside(v)).collect::<Vec<_>>(), want_inside, "{dist:?} support");
            assert_eq!(xs.iter().map(|&v| boundary(v)).collect::<Vec<_>>(), want_boundary, "{dist:?} boundary");
        }
    }

    #[test]
    fn spec_table_matches_the_enum_order() {
        for (i, d) in Dist::ALL.iter().enumerate() {
            assert_eq!(SPECS[i].dist, *d);
            assert_eq!(Dist::from_name(d.name()), Some(*d));
        }
        assert_eq!(SPECS.len(), Dist::ALL.len());
        assert!((LN_PI - PI.ln()).abs() < 1e-15);
        assert!((HALF_LN_2PI - 0.5 * (2.0 * PI).ln()).abs() < 1e-15);
    }

    #[test]
    fn shape_rules() {
        let s = density_shape(Dist::Normal, &[8], &[&[8], &[]]).unwrap();
        assert_eq!((s.out, s.value_batch), (vec![8], vec![8]));
        let s = density_shape(Dist::Normal, &[], &[&[3], &[]]).unwrap();
        assert_eq!((s.out, s.value_batch), (vec![3], vec![]));
        assert!(density_shape(Dist::Normal, &[3], &[&[4], &[]]).is_err());
        let s = density_shape(Dist::Categorical, &[5], &[&[5, 3]]).unwrap();
        assert_eq!(s.out, vec![5]);
        let s = density_shape(Dist::MultiNormal, &[10, 3], &[&[3], &[3, 3]]).unwrap();
        assert_eq!((s.out, s.value_batch), (vec![10], vec![10]));
        assert!(density_shape(Dist::MultiNormal, &[3], &[&[3], &[2, 2]]).is_err());
        let s = density_shape(Dist::Dirichlet, &[4], &[&[4]]).unwrap();
        assert_eq!(s.out, Vec::<usize>::new());
    }
}
