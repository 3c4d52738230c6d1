//! End-to-end tests of the `tessera` command: outputs, errors and exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the tessera binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The README's main command, as written there.
#[test]
fn readme_main_command_runs() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme.lines().find(|l| l.starts_with("cargo run --release -- ")).expect("README has a main command");
    let args: Vec<&str> = line["cargo run --release -- ".len()..].split('#').next().unwrap().split_whitespace().collect();
    let out = tessera(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("func @"), "{}", stdout(&out));
}

#[test]
fn print_is_a_fixed_point_of_the_examples() {
    for example in ["examples/normal.ir", "examples/logistic_regression.ir", "examples/hierarchical.ir"] {
        let once = stdout(&tessera(&["print", example]));
        let path = std::env::temp_dir().join(format!("tessera-cli-{}.ir", example.replace('/', "_")));
        std::fs::write(&path, &once).unwrap();
        let twice = stdout(&tessera(&["print", path.to_str().unwrap()]));
        assert_eq!(once, twice, "{example}");
    }
}

#[test]
fn eval_prints_outputs_as_json() {
    let out = tessera(&["eval", "examples/normal.ir", "--inputs", "examples/normal.inputs.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let values: Vec<f64> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(values.len(), 1);
    assert!(values[0].is_finite() && values[0] < 0.0);
}

#[test]
fn grad_adds_the_gradient_outputs() {
    let out = tessera(&["grad", "examples/logistic_regression.ir", "--wrt", "beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("-> (f64[], f64[5])"), "{}", stdout(&out));
}

#[test]
fn dot_is_graphviz() {
    let out = tessera(&["dot", "examples/hierarchical.ir"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("digraph"));
}

#[test]
fn bad_input_exits_with_code_2_and_names_the_problem() {
    let bad_ir = std::env::temp_dir().join("tessera-cli-bad.ir");
    std::fs::write(&bad_ir, "func @f(%x: f64[3]) -> f64[] {\n  %0:f64[3] = expp %x\n  return %0\n}\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["print", "no/such/file.ir"], "cannot read no/such/file.ir"),
        (vec!["print", bad_ir.to_str().unwrap()], ":2:15: unknown op `expp`"),
        (vec!["grad", "examples/normal.ir", "--wrt", "tau"], "unknown input %tau"),
        (vec!["eval", "examples/normal.ir", "--inputs", "examples/normal.ir"], "invalid JSON"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["print"], "required"),
    ];
    for (args, needle) in cases {
        let out = tessera(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

const EIGHT_SCHOOLS: &str = "model/tests/models/eight_schools.tess";
const EIGHT_SCHOOLS_DATA: &str = "model/tests/fixtures/posteriordb/eight_schools-eight_schools_noncentered.json";

#[test]
fn logp_reports_layout_value_and_gradient() {
    let out = tessera(&["logp", EIGHT_SCHOOLS, "--data", EIGHT_SCHOOLS_DATA, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["dim"], 10);
    assert_eq!(report["layout"][1]["name"], "tau");
    assert_eq!(report["layout"][1]["offset"], 1);
    assert_eq!(report["grad"].as_array().unwrap().len(), 10);
    // At theta = 0: mu = 0, tau = 1, theta_tilde = 0; the data term is the normal log density
    // of y at 0 with the schools' sigmas, plus the priors and the log-Jacobian (0 at u = 0).
    let y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    let s = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let normal = |x: f64, sd: f64| -0.5 * (x / sd).powi(2) - sd.ln() - 0.5 * ln2pi;
    let data: f64 = y.iter().zip(&s).map(|(&y, &s)| normal(y, s)).sum();
    let priors = normal(0.0, 5.0) + 8.0 * normal(0.0, 1.0) + ((2.0 / std::f64::consts::PI).ln() - 5f64.ln() - (1.0 + 1.0 / 25.0f64).ln());
    let logp = report["logp"].as_f64().unwrap();
    assert!((logp - (data + priors)).abs() < 1e-10, "{logp} vs {}", data + priors);
}

#[test]
fn model_errors_are_rendered_with_location_and_exit_2() {
    let bad = std::env::temp_dir().join("tessera-cli-bad.tess");
    std::fs::write(&bad, "data J: int\nparam mu: real\nmu ~ normall(0, 1)\n").unwrap();
    let out = tessera(&["logp", bad.to_str().unwrap(), "--data", EIGHT_SCHOOLS_DATA]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown distribution `normall`"), "{err}");
    assert!(err.contains("tessera-cli-bad.tess:3:6"), "{err}");
    assert!(err.contains("did you mean `normal`?"), "{err}");

    let out = tessera(&["print", EIGHT_SCHOOLS]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("give its data with --data"));
}
