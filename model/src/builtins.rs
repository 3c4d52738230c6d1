//! The functions of the model language: names, argument counts and what each computes.

use tessera_graph::{BinaryOp, ReduceOp, UnaryOp};

use crate::dist::Dist;

/// What a builtin function computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A real-valued elementwise function (int and bool arguments are converted to real).
    Unary(UnaryOp),
    /// `abs`: keeps ints int.
    Abs,
    /// `square`: keeps ints int.
    Square,
    /// `log1m(x) = log1p(-x)`.
    Log1m,
    /// A real-valued elementwise function of two arguments (broadcast).
    Binary(BinaryOp),
    /// A reduction over all axes or one axis.
    Reduce(ReduceOp),
    /// Sample standard deviation (N − 1 divisor).
    Sd,
    /// Sample variance (N − 1 divisor).
    Variance,
    /// Inclusive cumulative sum.
    Cumsum,
    /// Inner / matrix product.
    Dot,
    /// Reverses the axes.
    Transpose,
    /// Lower Cholesky factor.
    Cholesky,
    /// Diagonal matrix from a vector.
    DiagMatrix,
    /// Diagonal of a square matrix.
    Diag,
    /// Matrix plus a scalar or vector on its diagonal.
    AddDiag,
    /// `rep(x, n)`: n copies of x along a new first axis.
    Rep,
    /// Stacks a list along a new axis.
    Stack,
    /// Joins a list along an existing axis.
    Concatenate,
    /// Elementwise select.
    Where,
    /// exp(x − logsumexp(x)) along an axis (default the last).
    Softmax,
    /// x − logsumexp(x) along an axis (default the last).
    LogSoftmax,
    /// `arange(n)` / `arange(start, stop)`: the ints start..stop (data only).
    Arange,
    /// `solve_lower(L, b)` / `solve_upper(U, b)`: solves a triangular system.
    SolveTri {
        /// Whether the matrix is lower triangular.
        lower: bool,
    },
    /// A distribution's elementwise log density, `D_lpdf(x, args…)`.
    Density(Dist),
}

/// A function's name, what it computes and how many arguments it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncSpec {
    /// The name in the language.
    pub name: &'static str,
    /// What it computes.
    pub func: Func,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments.
    pub max_args: usize,
    /// Position of the optional `axis` argument (which may also be passed as `axis=…`).
    pub axis_arg: Option<usize>,
}

const fn spec(name: &'static str, func: Func, min_args: usize, max_args: usize, axis_arg: Option<usize>) -> FuncSpec {
    FuncSpec { name, func, min_args, max_args, axis_arg }
}

const fn unary(name: &'static str, op: UnaryOp) -> FuncSpec {
    spec(name, Func::Unary(op), 1, 1, None)
}

const fn reduce(name: &'static str, func: Func) -> FuncSpec {
    spec(name, func, 1, 2, Some(1))
}

/// Every builtin function except the distributions' `_lpdf` / `_lpmf` forms.
pub const FUNCTIONS: &[FuncSpec] = &[
    unary("exp", UnaryOp::Exp),
    unary("log", UnaryOp::Log),
    unary("log1p", UnaryOp::Log1p),
    unary("expm1", UnaryOp::Expm1),
    unary("sqrt", UnaryOp::Sqrt),
    unary("sigmoid", UnaryOp::Sigmoid),
    unary("inv_logit", UnaryOp::Sigmoid),
    unary("logit", UnaryOp::Logit),
    unary("softplus", UnaryOp::Softplus),
    unary("log1p_exp", UnaryOp::Softplus),
    unary("log_sigmoid", UnaryOp::LogSigmoid),
    unary("log1mexp", UnaryOp::Log1mexp),
    unary("lgamma", UnaryOp::Lgamma),
    unary("digamma", UnaryOp::Digamma),
    unary("erf", UnaryOp::Erf),
    unary("erfc", UnaryOp::Erfc),
    unary("sin", UnaryOp::Sin),
    unary("cos", UnaryOp::Cos),
    unary("tanh", UnaryOp::Tanh),
    spec("abs", Func::Abs, 1, 1, None),
    spec("square", Func::Square, 1, 1, None),
    spec("log1m", Func::Log1m, 1, 1, None),
    spec("logaddexp", Func::Binary(BinaryOp::LogAddExp), 2, 2, None),
    spec("pow", Func::Binary(BinaryOp::Pow), 2, 2, None),
    spec("maximum", Func::Binary(BinaryOp::Maximum), 2, 2, None),
    spec("minimum", Func::Binary(BinaryOp::Minimum), 2, 2, None),
    reduce("sum", Func::Reduce(ReduceOp::Sum)),
    reduce("mean", Func::Reduce(ReduceOp::Mean)),
    reduce("prod", Func::Reduce(ReduceOp::Prod)),
    reduce("max", Func::Reduce(ReduceOp::Max)),
    reduce("min", Func::Reduce(ReduceOp::Min)),
    reduce("logsumexp", Func::Reduce(ReduceOp::LogSumExp)),
    reduce("sd", Func::Sd),
    reduce("variance", Func::Variance),
    spec("cumsum", Func::Cumsum, 1, 2, Some(1)),
    spec("dot", Func::Dot, 2, 2, None),
    spec("transpose", Func::Transpose, 1, 1, None),
    spec("cholesky", Func::Cholesky, 1, 1, None),
    spec("diag_matrix", Func::DiagMatrix, 1, 1, None),
    spec("diag", Func::Diag, 1, 1, None),
    spec("add_diag", Func::AddDiag, 2, 2, None),
    spec("rep", Func::Rep, 2, 2, None),
    spec("stack", Func::Stack, 1, 2, Some(1)),
    spec("concatenate", Func::Concatenate, 1, 2, Some(1)),
    spec("where", Func::Where, 3, 3, None),
    spec("softmax", Func::Softmax, 1, 2, Some(1)),
    spec("log_softmax", Func::LogSoftmax, 1, 2, Some(1)),
    spec("arange", Func::Arange, 1, 2, None),
    spec("solve_lower", Func::SolveTri { lower: true }, 2, 2, None),
    spec("solve_upper", Func::SolveTri { lower: false }, 2, 2, None),
];

/// Names usable as values without declaration.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI)];

/// The function called `name`: a builtin or a distribution's `_lpdf` / `_lpmf` form.
pub fn lookup(name: &str) -> Option<FuncSpec> {
    if let Some(f) = FUNCTIONS.iter().find(|f| f.name == name) {
        return Some(*f);
    }
    let dist = Dist::ALL.iter().copied().find(|d| d.density_fn_name() == name)?;
    let n = 1 + dist.params().len();
    Some(FuncSpec { name: dist.density_fn_name(), func: Func::Density(dist), min_args: n, max_args: n, axis_arg: None })
}

/// Every callable name (for "did you mean" suggestions).
pub fn all_function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name).chain(Dist::ALL.iter().map(|d| d.density_fn_name()))
}

/// A builtin constant's value.
pub fn constant(name: &str) -> Option<f64> {
    CONSTANTS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_issue_function_exists() {
        let names = "exp log log1p expm1 sqrt square abs sigmoid inv_logit logit softplus log1p_exp log_sigmoid \
                     log1mexp logaddexp lgamma digamma erf erfc sin cos tanh pow sum mean sd variance prod max min \
                     logsumexp cumsum dot transpose cholesky diag_matrix add_diag rep stack concatenate where";
        for name in names.split_whitespace() {
            assert!(lookup(name).is_some(), "{name} is missing");
        }
    }

    #[test]
    fn density_functions_take_the_value_and_the_parameters() {
        let f = lookup("normal_lpdf").unwrap();
        assert_eq!((f.min_args, f.max_args), (3, 3));
        assert!(lookup("poisson_lpmf").is_some());
        assert!(lookup("poisson_lpdf").is_none());
    }
}
