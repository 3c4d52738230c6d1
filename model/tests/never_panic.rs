//! No input makes the crate panic or overflow the stack: random bytes, random token streams,
//! truncated valid files and a list of malformed files all give a result or a located error.

mod common;

use proptest::prelude::*;
use tessera_model::{DataSet, ErrorKind, parse_model};

const DATA: &str = r#"{"N": 3, "K": 2, "y": [0.5, -1.0, 2.0], "k": [0, 1, 2], "X": [[1, 2], [3, 4], [5, 6]], "p": [0.25, 0.75]}"#;

/// Parses and binds `src`; when it binds, evaluates the log density and its gradient at 0.
/// Any outcome is fine except a panic.
fn exercise(src: &str) {
    let Ok(model) = parse_model(src, "fuzz.tess") else { return };
    let data = DataSet::from_json(DATA, "d.json").expect("fixed data");
    if let Ok(bound) = model.bind(&data) {
        let theta = vec![0.1; bound.dim()];
        let _ = bound.logp_and_grad_interp(&theta);
        let _ = bound.constrained_interp(&theta);
        let _ = bound.output_names();
    }
}

const VOCAB: &[&str] = &[
    "data", "param", "let", "derived", "target", "+=", "~", "=", ":", ",", "(", ")", "[", "]", "<", ">", "<=", ">=",
    "==", "!=", "+", "-", "*", "/", "^", "@", "None", "lower", "upper", "int", "real", "vector", "matrix", "simplex",
    "ordered", "N", "K", "y", "k", "X", "p", "a", "b", "mu", "sigma", "0", "1", "2", "-1", "0.5", "1e999",
    "99999999999999999999", "1e-300", "normal", "poisson", "categorical", "dirichlet", "multi_normal", "beta",
    "normal_lpdf", "poisson_lpmf", "sum", "mean", "sd", "exp", "log", "rep", "stack", "concatenate", "cumsum",
    "cholesky", "add_diag", "where", "logsumexp", "arange", "solve_lower", "axis", "#", "\n", "\n", "\n", "$", ";",
];

/// Declarations matching [`DATA`], always present, so that the binder is reached.
const DECLARATIONS: &str = "data N: int\ndata K: int\ndata y: vector[N]\ndata k: int<lower=0>[N]\ndata X: matrix[N, K]\n\
    data p: simplex[K]\nparam mu: real\nparam sigma: real<lower=0>\nparam b: vector[K]\nparam s: simplex[N]\n\
    param o: ordered[K]\nparam L: matrix[K, K]\nparam u: real<lower=-1, upper=1>[N]\n";

/// Statements using the declarations.
const STATEMENTS: &[&str] = &[
    "y ~ normal(mu, sigma)\n", "y ~ normal(X @ b, sigma)\n", "k ~ poisson_log(X @ b)\n", "k ~ categorical(s)\n",
    "b ~ multi_normal(0, add_diag(L @ transpose(L), 1))\n", "target += logsumexp(normal_lpdf(y[:, None], o[None, :], 1), 1)\n",
    "let z = y[k]\n", "let w = cumsum(exp(b))\n", "derived d = stack([mu, sigma])\n", "target += sum(rep(mu, N) * y)\n",
    "s ~ dirichlet(rep(1, N))\n", "target += where(y > 0, y, -y)[0]\n", "y[1:] ~ student_t(3, mu, sigma)\n",
    "derived q = u @ X\n", "target += sum(log_softmax(X, 0))\n", "p ~ dirichlet(rep(2, K))\n", "k ~ binomial_logit(2, X[:, 0] * mu)\n",
    "target += normal_lpdf(y, u, sigma) + b[k[0]]\n", "L[0] ~ normal(0, 1)\n", "target += logaddexp(mu, sigma) * sd(y)\n",
];

fn token_stream() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..60).prop_map(|t| t.join(" "))
}

/// A subsequence of [`STATEMENTS`] (declarations stay before their uses), with a little noise
/// spliced in half of the time.
fn statement_stream() -> impl Strategy<Value = String> {
    (prop::collection::vec(any::<bool>(), STATEMENTS.len()), prop::collection::vec(prop::sample::select(VOCAB), 0..4), 0usize..2000)
        .prop_map(|(keep, noise, cut)| {
            let uses: String = STATEMENTS.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
            let mut text = format!("{DECLARATIONS}{uses}");
            if cut % 2 == 0 {
                return text;
            }
            // splice a little noise in at a random place
            let at = text.char_indices().map(|(i, _)| i).nth(cut % (text.chars().count() + 1)).unwrap_or(text.len());
            text.insert_str(at, &noise.join(" "));
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&String::from_utf8_lossy(&bytes));
        let _ = DataSet::from_json(&String::from_utf8_lossy(&bytes), "d.json");
    }

    #[test]
    fn random_token_streams_never_panic(src in token_stream()) {
        exercise(&src);
    }

    #[test]
    fn random_statement_streams_never_panic(src in statement_stream()) {
        exercise(&src);
    }

    #[test]
    fn random_json_never_panics(parts in prop::collection::vec(prop::sample::select(&["{", "}", "[", "]", ",", ":", "\"y\"", "\"N\"", "1", "-2.5", "1e999", "99999999999999999999", "null", "true", "\"s\"", " "][..]), 0..40)) {
        let text = parts.concat();
        if let Ok(data) = DataSet::from_json(&text, "d.json") {
            let model = parse_model("data N: int\ndata y: vector[N]\n", "m.tess").unwrap();
            let _ = model.bind(&data);
        }
    }
}

fn sample_models() -> Vec<(String, String)> {
    let mut out = vec![("eight_schools".to_string(), common::model_source("eight_schools.tess"))];
    let dir = format!("{}/tests/models/posteriordb", common::crate_dir());
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()));
    }
    out
}

/// Every prefix of every sample model (cut at each character) parses to a model or an error;
/// the prefixes that parse are bound to the fixed data set.
#[test]
fn truncated_valid_files_never_panic() {
    let mut prefixes = 0;
    for (_, src) in sample_models() {
        for (i, _) in src.char_indices() {
            exercise(&src[..i]);
            prefixes += 1;
        }
    }
    assert!(prefixes > 5000);
}

#[test]
fn malformed_files_give_located_errors() {
    let deep_parens = format!("param x: real\ntarget += {}x{}\n", "(".repeat(100_000), ")".repeat(100_000));
    let deep_brackets = format!("target += {}1{}\n", "[".repeat(5000), "]".repeat(5000));
    let long_sum = format!("param x: real\ntarget += x{}\n", " + x".repeat(50_000));
    let deep_signs = format!("param x: real\ntarget += {}x\n", "-".repeat(100_000));
    let deep_calls = format!("param x: real\ntarget += {}x{}\n", "exp(".repeat(5000), ")".repeat(5000));
    let deep_index = format!("param x: vector[1]\ntarget += x{}\n", "[0]".repeat(5000));
    let garbage: String = (0..2000u32).map(|i| char::from_u32((i * 7919) % 0x2FFF).unwrap_or('?')).collect();
    let cases: Vec<(&str, String, ErrorKind)> = vec![
        ("truncated line", "data N: int\ndata y: vector[N\nparam mu: real\n".into(), ErrorKind::Syntax),
        ("unbalanced (", "param mu: real\ntarget += (mu + 1\n".into(), ErrorKind::Syntax),
        ("unbalanced )", "param mu: real\ntarget += mu + 1)\n".into(), ErrorKind::Syntax),
        ("unbalanced [", "param mu: vector[2]\ntarget += mu[0\n".into(), ErrorKind::Syntax),
        ("stray character", "param mu: real\nmu ~ normal(0, 1) ?\n".into(), ErrorKind::Syntax),
        ("semicolon", "param mu: real;\n".into(), ErrorKind::Syntax),
        ("braces", "model {\n}\n".into(), ErrorKind::Syntax),
        ("huge real", "param mu: real\ntarget += 1e999\n".into(), ErrorKind::Syntax),
        ("huge int dim", "data y: vector[99999999999999999999]\n".into(), ErrorKind::Syntax),
        ("binary garbage", garbage, ErrorKind::Syntax),
        ("NUL bytes", "param x: real\0\0\0\n".into(), ErrorKind::Syntax),
        ("deep parentheses", deep_parens, ErrorKind::Limit),
        ("deep brackets", deep_brackets, ErrorKind::Limit),
        ("long sum", long_sum, ErrorKind::Limit),
        ("deep signs", deep_signs, ErrorKind::Limit),
        ("deep calls", deep_calls, ErrorKind::Limit),
        ("deep subscripts", deep_index, ErrorKind::Limit),
        ("lone tilde", "~\n".into(), ErrorKind::Syntax),
        ("keyword as name", "param data: real\n".into(), ErrorKind::Syntax),
        ("type without dims", "param v: vector\n".into(), ErrorKind::Type),
    ];
    for (what, src, kind) in cases {
        let e = parse_model(&src, "bad.tess").err().unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(e.kind, kind, "{what}: {e}");
        assert!(e.line() >= 1 && e.col() >= 1, "{what}");
        let rendered = e.to_string();
        assert!(rendered.starts_with("error: ") && rendered.contains(" --> bad.tess:") && rendered.contains('^'), "{what}: {rendered}");
    }
    // The empty file is a valid model with no parameters.
    let empty = parse_model("", "empty.tess").unwrap();
    assert_eq!(empty.bind(&DataSet::new("d.json")).unwrap().dim(), 0);
    // An empty data file is an error, located.
    assert_eq!(DataSet::from_json("", "d.json").unwrap_err().kind, ErrorKind::DataSyntax);
    let deep_json = format!("{{\"a\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(DataSet::from_json(&deep_json, "d.json").unwrap_err().kind, ErrorKind::Limit);
}

/// Expressions just inside the limits bind, evaluate and differentiate on a default 2 MB test
/// thread stack.
#[test]
fn deepest_accepted_expressions_bind_without_overflowing_the_stack() {
    let depth = tessera_model::MAX_DEPTH - 1;
    let chain = format!("param x: real\ntarget += x{}\n", " + x".repeat(depth - 1));
    let data_chain = format!("data y: real\nparam x: real\ntarget += x * (y{})\n", " * y".repeat(depth - 3));
    let nested = tessera_model::MAX_NESTING - 2;
    let calls = format!("param x: real\ntarget += {}x{}\n", "sin(".repeat(nested), ")".repeat(nested));
    let parens = format!("param x: real\ntarget += {}x{}\n", "(".repeat(nested), ")".repeat(nested));
    for src in [chain, data_chain, calls, parens] {
        let model = parse_model(&src, "deep.tess").unwrap_or_else(|e| panic!("{e}"));
        let bound = model.bind(&DataSet::from_json(r#"{"y": 1.0}"#, "d.json").unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let (lp, grad) = bound.logp_and_grad_interp(&[0.3]).unwrap();
        assert!(lp.is_finite() && grad[0].is_finite());
    }
}
