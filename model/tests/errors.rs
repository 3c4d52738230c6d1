//! Every error class: its message, kind, and 1-based line:column, and the rendered form
//! (`error: …`, ` --> file:line:col`, the source line, `^^^` under the span).

use tessera_model::{DataSet, ErrorKind, ModelError, parse_model};

const EIGHT: &str = "\
data J: int
data y: vector[J]
data sigma: vector<lower=0>[J]
param mu: real
param tau: real<lower=0>
param theta_tilde: vector[J]
derived theta = mu + tau * theta_tilde
";

fn parse_err(src: &str) -> ModelError {
    match parse_model(src, "m.tess") {
        Err(e) => e,
        Ok(_) => panic!("expected an error for:\n{src}"),
    }
}

fn bind_err(src: &str, data: &str) -> ModelError {
    let model = parse_model(src, "m.tess").unwrap_or_else(|e| panic!("unexpected parse error:\n{e}"));
    let data = DataSet::from_json(data, "d.json").unwrap_or_else(|e| panic!("unexpected data error:\n{e}"));
    match model.bind(&data) {
        Err(e) => e,
        Ok(_) => panic!("expected a bind error for:\n{src}"),
    }
}

fn check(e: &ModelError, kind: ErrorKind, message: &str, file: &str, line: usize, col: usize) {
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.message, message, "{e}");
    assert_eq!((e.file(), e.line(), e.col()), (file, line, col), "{e}");
    assert!(!e.expected.is_empty(), "no expectation in {e}");
}

#[test]
fn rendering_shows_the_line_and_underlines_the_span() {
    let e = parse_err(&format!("{EIGHT}y ~ normal(thetaa, sigma)\n"));
    assert_eq!(
        e.to_string(),
        "error: unknown name `thetaa`\n \
         --> m.tess:8:12\n  \
         |\n\
         8 | y ~ normal(thetaa, sigma)\n  \
         |            ^^^^^^ a declared data, parameter, local or derived name\n  \
         = help: did you mean `theta`?\n"
    );
}

#[test]
fn syntax_errors() {
    let e = parse_err("target += x $ 2\n");
    check(&e, ErrorKind::Syntax, "unexpected character `$`", "m.tess", 1, 13);
    let e = parse_err("param x: real\ntarget += (x + 2\nparam y: real\n");
    check(&e, ErrorKind::Syntax, "expected an operator or `)`, found `param`", "m.tess", 3, 1);
    assert_eq!(e.notes[0].location.line, 2);
    assert_eq!(e.notes[0].location.col, 11);
    let e = parse_err("param x: real\ntarget += x + 2)\n");
    check(&e, ErrorKind::Syntax, "expected end of line, found `)`", "m.tess", 2, 16);
    let e = parse_err("param x: real\ntarget += x[\n");
    check(&e, ErrorKind::Syntax, "expected a value (a number, a name, `(` or `[`), found end of file", "m.tess", 2, 13);
    let e = parse_err("param mu: real\nmu = 3\n");
    check(&e, ErrorKind::Syntax, "assignment to `mu` needs `let` or `derived`", "m.tess", 2, 1);
    let e = parse_err("param mu: real\nmu normal(0, 1)\n");
    check(&e, ErrorKind::Syntax, "expected `~` after the expression, found `normal`", "m.tess", 2, 4);
    let e = parse_err("param x: flaot\n");
    check(&e, ErrorKind::Syntax, "unknown type `flaot`", "m.tess", 1, 10);
    assert_eq!(e.expected, "int, real, vector, matrix, simplex or ordered");
    let e = parse_err("param x: vectr[3]\n");
    assert_eq!(e.help.as_deref(), Some("did you mean `vector`?"));
    let e = parse_err("param x: real\ntarget += x < 1 < 2\n");
    check(&e, ErrorKind::Syntax, "comparisons cannot be chained", "m.tess", 2, 17);
    let e = parse_err("data x: real\ntarget += 2x\n");
    check(&e, ErrorKind::Syntax, "malformed number: a letter follows the digits", "m.tess", 2, 11);
}

#[test]
fn huge_numbers_are_errors() {
    let e = parse_err("param x: real\ntarget += 1e999 * x\n");
    check(&e, ErrorKind::Syntax, "number `1e999` is too large for a 64-bit float", "m.tess", 2, 11);
    let e = parse_err("data x: real[99999999999999999999]\n");
    check(&e, ErrorKind::Syntax, "integer `99999999999999999999` is too large", "m.tess", 1, 14);
    let e = bind_err("data N: int\nparam x: vector[N]\n", r#"{"N": 1000000000000}"#);
    check(&e, ErrorKind::Limit, "shape [1000000000000] has too many elements", "m.tess", 2, 10);
    let e = bind_err("param x: real\ntarget += sum(rep(x, 100000000000))\n", "{}");
    check(&e, ErrorKind::Limit, "shape [100000000000] has too many elements", "m.tess", 2, 15);
}

#[test]
fn unknown_names_and_functions_suggest_close_names() {
    let e = parse_err(&format!("{EIGHT}y ~ normal(thetaa, sigma)\n"));
    check(&e, ErrorKind::UnknownName, "unknown name `thetaa`", "m.tess", 8, 12);
    assert_eq!(e.help.as_deref(), Some("did you mean `theta`?"));
    let e = parse_err(&format!("{EIGHT}target += exq(mu)\n"));
    check(&e, ErrorKind::UnknownFunction, "unknown function `exq`", "m.tess", 8, 11);
    assert_eq!(e.help.as_deref(), Some("did you mean `exp`?"));
    let e = parse_err(&format!("{EIGHT}y ~ normall(theta, sigma)\n"));
    check(&e, ErrorKind::UnknownFunction, "unknown distribution `normall`", "m.tess", 8, 5);
    assert_eq!(e.help.as_deref(), Some("did you mean `normal`?"));
    let e = parse_err("param mu: real\ntarget += poisson_lpdf(mu, 1)\n");
    check(&e, ErrorKind::UnknownFunction, "unknown function `poisson_lpdf`", "m.tess", 2, 11);
    assert!(e.help.as_deref().unwrap().contains("poisson_lpmf"));
    let e = parse_err("param mu: real\ntarget += normal(mu, 0, 1)\n");
    check(&e, ErrorKind::UnknownFunction, "`normal` is a distribution, not a function", "m.tess", 2, 11);
    let e = parse_err("target += y\ndata y: real\n");
    check(&e, ErrorKind::UnknownName, "`y` is used before its declaration", "m.tess", 1, 11);
    let e = parse_err("param x: real\ntarget += exp\n");
    check(&e, ErrorKind::UnknownName, "`exp` is a function, not a value", "m.tess", 2, 11);
}

#[test]
fn duplicates_and_declaration_errors() {
    let e = parse_err("param x: real\nparam x: vector[2]\n");
    check(&e, ErrorKind::Duplicate, "`x` is declared twice", "m.tess", 2, 7);
    assert_eq!((e.notes[0].location.line, e.notes[0].location.col), (1, 7));
    let e = parse_err("param k: int\n");
    check(&e, ErrorKind::Type, "parameters must be real-valued", "m.tess", 1, 10);
    let e = parse_err("param m: matrix[2]\n");
    check(&e, ErrorKind::Type, "`matrix` needs 2 dimensions, got 1", "m.tess", 1, 10);
    let e = parse_err("param s: simplex<lower=0>[3]\n");
    check(&e, ErrorKind::Type, "a simplex cannot have bounds", "m.tess", 1, 10);
    let e = parse_err("param mu: real\nparam x: vector[mu]\n");
    check(&e, ErrorKind::Type, "a dimension cannot depend on the parameter `mu`", "m.tess", 2, 17);
    let e = parse_err("param x: real<lowr=0>\n");
    check(&e, ErrorKind::Syntax, "unknown bound `lowr`", "m.tess", 1, 15);
}

#[test]
fn wrong_argument_counts() {
    let e = parse_err(&format!("{EIGHT}y ~ normal(theta, sigma, 1)\n"));
    check(&e, ErrorKind::ArgCount, "normal takes 2 arguments, got 3", "m.tess", 8, 5);
    assert_eq!(e.expected, "normal(mu, sigma)");
    let e = parse_err("param x: vector[3]\ntarget += sum(x, 0, 1)\n");
    check(&e, ErrorKind::ArgCount, "`sum` takes 1 or 2 arguments, got 3", "m.tess", 2, 11);
    let e = parse_err("param x: vector[3]\ntarget += exp()\n");
    check(&e, ErrorKind::ArgCount, "`exp` takes 1 argument, got 0", "m.tess", 2, 11);
    let e = parse_err("param x: vector[3]\ntarget += exp(x, axis=0)\n");
    check(&e, ErrorKind::ArgCount, "`exp` has no argument `axis`", "m.tess", 2, 18);
}

#[test]
fn shapes_that_do_not_fit() {
    let e = bind_err("data x: vector[3]\nparam m: vector[4]\ntarget += x + m\n", r#"{"x": [1, 2, 3]}"#);
    check(&e, ErrorKind::Shape, "shapes [3] and [4] do not broadcast in `+`", "m.tess", 3, 11);
    assert_eq!(e.notes.len(), 2);
    let e = bind_err("data x: vector[3]\nparam m: real\nx ~ normal(rep(m, 5)[:, None], 1)\n", r#"{"x": [1, 2, 3]}"#);
    check(&e, ErrorKind::Shape, "the arguments of normal broadcast to shape [5,3], larger than the left-hand side's shape [3]", "m.tess", 3, 1);
    let e = bind_err("data X: matrix[2, 3]\nparam b: vector[2]\ntarget += X @ b\n", r#"{"X": [[1, 2, 3], [4, 5, 6]]}"#);
    check(&e, ErrorKind::Shape, "`@`: inner dimensions differ: shapes [2,3] and [2] (3 vs 2)", "m.tess", 3, 11);
    let e = bind_err("param b: vector[2]\ntarget += b[2]\n", "{}");
    check(&e, ErrorKind::Shape, "index 2 is out of range for axis 0 of extent 2", "m.tess", 2, 13);
    let e = bind_err("param b: vector[2]\ntarget += b[1:5]\n", "{}");
    check(&e, ErrorKind::Shape, "slice stop 5 is out of range for an axis of extent 2 (axis 0)", "m.tess", 2, 13);
    let e = bind_err("param b: vector[2]\ntarget += b[0, 1]\n", "{}");
    check(&e, ErrorKind::Shape, "2 indices for a value of rank 1 (shape [2])", "m.tess", 2, 13);
    let e = bind_err("param b: vector[2]\nparam n: real\ntarget += b[n]\n", "{}");
    check(&e, ErrorKind::Type, "an index cannot depend on the parameter `n`", "m.tess", 3, 13);
    let e = bind_err("param b: vector[2]\ntarget += sum(b, 1)\n", "{}");
    check(&e, ErrorKind::Shape, "axis 1 is out of range for a value of rank 1", "m.tess", 2, 18);
    let e = bind_err("param m: matrix[2, 3]\ntarget += cholesky(m)\n", "{}");
    check(&e, ErrorKind::Shape, "`cholesky` takes a square matrix, got shape [2,3]", "m.tess", 2, 20);
    let e = bind_err("param a: vector[2]\nparam b: vector[3]\ntarget += stack([a, b])\n", "{}");
    check(&e, ErrorKind::Shape, "stacked values must have equal shapes: [2] and [3]", "m.tess", 3, 21);
}

/// Int arithmetic on data never wraps silently: a size, an index or a value that overflows
/// 64 bits is an error at the expression; sums whose partial results wrap but whose exact
/// result fits are not.
#[test]
fn integer_overflow_in_data_expressions_is_an_error() {
    let huge = r#"{"N": 4611686018427387905}"#;
    let overflow = "integer overflow in this data expression: the exact result of `mul` does not fit in a 64-bit int";
    let e = bind_err("data N: int\nparam v: vector[N * 4]\n", huge);
    check(&e, ErrorKind::Limit, overflow, "m.tess", 2, 17);
    let e = bind_err("data N: int\nparam mu: real\nderived q = mu + N * 4\n", huge);
    check(&e, ErrorKind::Limit, overflow, "m.tess", 3, 18);
    let e = bind_err("data k: int[3]\nparam mu: real\nderived q = mu + sum(k)\n", r#"{"k": [9223372036854775807, 1, 0]}"#);
    check(&e, ErrorKind::Limit, &overflow.replace("`mul`", "`reduce_sum`"), "m.tess", 3, 18);
    let e = bind_err("data k: int\nparam mu: real\nderived q = mu + (-k)\n", r#"{"k": -9223372036854775808}"#);
    check(&e, ErrorKind::Limit, &overflow.replace("`mul`", "`neg`"), "m.tess", 3, 19);
    let model = parse_model("data k: int[3]\nparam mu: real\nderived q = mu + sum(k)\n", "m.tess").unwrap();
    let data = DataSet::from_json(r#"{"k": [4611686018427387904, 4611686018427387904, -4611686018427387904]}"#, "d.json").unwrap();
    let bound = model.bind(&data).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bound.constrained_interp(&[0.0]).unwrap()[1], 4611686018427387904.0);
}

#[test]
fn data_errors_name_the_data_file_and_the_declaration() {
    // missing field: located at the declaration, naming the data file
    let e = bind_err(EIGHT, r#"{"J": 3, "y": [28, 8, -3]}"#);
    check(&e, ErrorKind::DataMissing, "data field `sigma` is missing from d.json", "m.tess", 3, 6);
    // mistyped field: located in the data file, with a note at the declaration
    let e = bind_err(EIGHT, r#"{"J": 3, "y": [28, "eight", -3], "sigma": [15, 10, 16]}"#);
    check(&e, ErrorKind::DataType, "`y[1]` is a string, not a number", "d.json", 1, 20);
    assert_eq!((e.notes[0].location.file.as_str(), e.notes[0].location.line, e.notes[0].location.col), ("m.tess", 2, 1));
    // int data not integral
    let e = bind_err(EIGHT, r#"{"J": 3.5, "y": [28, 8, -3], "sigma": [15, 10, 16]}"#);
    check(&e, ErrorKind::DataType, "int data `J` = 3.5 is not an integer", "d.json", 1, 7);
    // wrong shape
    let e = bind_err(EIGHT, "{\"J\": 3,\n \"y\": [28, 8],\n \"sigma\": [15, 10, 16]}");
    check(&e, ErrorKind::DataShape, "data field `y` has shape [2], expected shape [3]", "d.json", 2, 7);
    // a declared bound violated by the data
    let e = bind_err(EIGHT, "{\"J\": 3,\n \"y\": [28, 8, -3],\n \"sigma\": [15, -10, 16]}");
    check(&e, ErrorKind::DataBound, "data `sigma[1]` = -10 is below its lower bound 0", "d.json", 3, 16);
    // per-element bounds, compared element by element
    let bounded = "data lo: vector[3]\ndata x: vector<lower=lo, upper=lo + 1>[3]\n";
    let e = bind_err(bounded, r#"{"lo": [0, 5, 10], "x": [0.5, 4.5, 10.5]}"#);
    check(&e, ErrorKind::DataBound, "data `x[1]` = 4.5 is below its lower bound 5", "d.json", 1, 31);
    let e = bind_err(bounded, r#"{"lo": [0, 5, 10], "x": [0.5, 5.5, 11.5]}"#);
    check(&e, ErrorKind::DataBound, "data `x[2]` = 11.5 is above its upper bound 11", "d.json", 1, 36);
    assert!(tessera_model::parse_model(bounded, "m.tess").unwrap().bind(&tessera_model::DataSet::from_json(r#"{"lo": [0, 5, 10], "x": [0, 6, 11]}"#, "d.json").unwrap()).is_ok());
    // a distribution's support violated by observed data
    let e = bind_err("data k: int[2]\nk ~ poisson(3)\n", r#"{"k": [1, -2]}"#);
    check(&e, ErrorKind::DataBound, "`k[1]` = -2 is outside the support of poisson (non-negative integers)", "m.tess", 2, 1);
    let e = bind_err("data k: int[3]\nk ~ bernoulli(0.5)\n", r#"{"k": [0, 1, 2]}"#);
    check(&e, ErrorKind::DataBound, "`k[2]` = 2 is outside the support of bernoulli (0 or 1)", "m.tess", 2, 1);
    let e = bind_err("data k: int\nk ~ categorical([0.5, 0.5])\n", r#"{"k": 2}"#);
    check(&e, ErrorKind::DataBound, "`k` = 2 is outside the support of categorical (outcomes 0..K-1)", "m.tess", 2, 1);
    // a real value where a discrete distribution needs ints
    let e = bind_err("data y: real\ny ~ poisson(1)\n", r#"{"y": 1}"#);
    check(&e, ErrorKind::Type, "poisson is a distribution over integers, but the value is real", "m.tess", 2, 1);
    // an argument that data makes invalid
    let e = bind_err("param b: vector[2]\nb ~ normal(0, -1)\n", "{}");
    check(&e, ErrorKind::DataBound, "argument `sigma` of normal must be positive, got -1", "m.tess", 2, 15);
    let e = bind_err("data N: int\nparam b: real\nb ~ normal(0, 1 / N)\n", r#"{"N": 0}"#);
    check(&e, ErrorKind::DataBound, "argument `sigma` of normal must be finite, got inf", "m.tess", 3, 15);
    // covariance matrices and Cholesky factors given as data are checked as Stan checks them
    let mvn = |arg: &str| format!("data S: matrix[2, 2]\nparam m: vector[2]\nm ~ {arg}\n");
    let cases = [
        ("multi_normal(0, S)", "[[1, 0.5], [0.2, 1]]", "argument `Sigma` of multi_normal is not symmetric: element [1,0] is 0.2 but [0,1] is 0.5"),
        ("multi_normal(0, S)", "[[1, 2], [2, 1]]", "argument `Sigma` of multi_normal is not positive definite (its Cholesky factorization fails at row 1)"),
        ("multi_normal_cholesky(0, S)", "[[1, 0.5], [0, 1]]", "argument `L` of multi_normal_cholesky is not lower triangular: element [0,1] above the diagonal is 0.5"),
        ("multi_normal_cholesky(0, S)", "[[1, 0], [0.3, -2]]", "argument `L` of multi_normal_cholesky has a diagonal element [1,1] of -2, not positive"),
    ];
    for (call, matrix, message) in cases {
        let e = bind_err(&mvn(call), &format!(r#"{{"S": {matrix}}}"#));
        check(&e, ErrorKind::DataBound, message, "m.tess", 3, call.find('S').unwrap() + 5);
    }
    for (call, matrix) in [("multi_normal(0, S)", "[[2, 0.5], [0.5, 1]]"), ("multi_normal_cholesky(0, S)", "[[2, 0], [0.5, 1]]")] {
        let text = format!(r#"{{"S": {matrix}}}"#);
        let data = DataSet::from_json(&text, "d.json").unwrap();
        assert!(parse_model(&mvn(call), "m.tess").unwrap().bind(&data).is_ok(), "{call} on {matrix}");
    }
    // invalid JSON
    let e = DataSet::from_json("{\"J\": 3,\n \"y\": [1, 2,]}", "d.json").unwrap_err();
    check(&e, ErrorKind::DataSyntax, "invalid JSON: expected a value, found `]`", "d.json", 2, 13);
    let e = DataSet::from_json("[1, 2]", "d.json").unwrap_err();
    check(&e, ErrorKind::DataSyntax, "a data file must be a JSON object of names to values, found `[`", "d.json", 1, 1);
}

#[test]
fn unused_data_fields_are_ignored_whatever_they_hold() {
    let model = parse_model("data J: int\n", "m.tess").unwrap();
    let data = DataSet::from_json(r#"{"J": 3, "notes": "free text", "nested": {"a": [1, [2]]}, "flag": true}"#, "d.json").unwrap();
    assert!(model.bind(&data).is_ok());
}

/// A parameter transformed on the left of `~` compiles with a located warning (its density
/// lacks the transform's Jacobian); a parameter, an indexed or sliced one, data, and densities
/// stated with `target +=` do not warn.
#[test]
fn transformed_parameters_on_the_left_of_a_sample_warn() {
    let src = "data y: vector[2]\nparam a: real<lower=0>\nparam b: vector[2]\nlet c = exp(b)\n\
               log(a) ~ normal(0, 1)\nb[0] ~ normal(0, 1)\nb[1:] ~ normal(0, 1)\nc ~ normal(0, 1)\n\
               y ~ normal(b, a)\ntarget += normal_lpdf(log(a), 0, 1)\n";
    let model = parse_model(src, "m.tess").unwrap();
    let bound = model.bind(&DataSet::from_json(r#"{"y": [0.5, 1.5]}"#, "d.json").unwrap()).unwrap();
    let warnings: Vec<(String, usize, usize)> = bound.warnings().iter().map(|w| (w.0.message.clone(), w.0.line(), w.0.col())).collect();
    assert_eq!(
        warnings,
        [
            ("the left of `~` transforms the parameter `a`".to_string(), 5, 1),
            ("the left of `~` is computed from `c`, which depends on parameters".to_string(), 8, 1),
        ]
    );
    assert!(bound.warnings().iter().all(|w| w.0.kind == ErrorKind::Jacobian && w.to_string().starts_with("warning: ")));
}
