//! Diagnostics against the numbers ArviZ 0.23.4 computed on the same fixed arrays
//! (fixture made by `sampler/scripts/make_arviz_fixture.py`).

use serde_json::Value;
use tessera_sampler::diagnostics::{self, SummaryRow};

/// ArviZ's computations are deterministic; the only differences are summation order and the
/// normal quantile implementation, both at the 1e-15 level.
const RELATIVE_TOLERANCE: f64 = 1e-6;

fn fixture() -> Value {
    let text = include_str!("fixtures/arviz_diagnostics.json");
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => panic!("fixture is not valid JSON: {e}"),
    }
}

fn chains_of(case: &Value) -> Vec<Vec<f64>> {
    case["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|chain| {
            chain
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect()
        })
        .collect()
}

/// `null` in the fixture is ArviZ's NaN. `scale` gives location-type values (mean, HDI) an
/// absolute tolerance relative to the spread of the draws.
fn assert_close(case: &str, what: &str, ours: f64, expected: &Value, scale: f64) {
    match expected.as_f64() {
        None => assert!(
            ours.is_nan(),
            "{case} {what}: ArviZ gives NaN, we give {ours}"
        ),
        Some(arviz) => {
            let tolerance = RELATIVE_TOLERANCE * arviz.abs().max(scale);
            assert!(
                (ours - arviz).abs() <= tolerance,
                "{case} {what}: ours {ours}, ArviZ {arviz} (difference {})",
                (ours - arviz).abs()
            );
        }
    }
}

fn check_summary(case: &str, row: &SummaryRow, expected: &Value) {
    let sd = expected["sd"].as_f64().unwrap_or(0.0);
    assert_close(case, "mean", row.mean, &expected["mean"], sd);
    assert_close(case, "sd", row.sd, &expected["sd"], 0.0);
    assert_close(case, "hdi_3%", row.hdi_lower, &expected["hdi_3%"], sd);
    assert_close(case, "hdi_97%", row.hdi_upper, &expected["hdi_97%"], sd);
    assert_close(
        case,
        "mcse_mean",
        row.mcse_mean,
        &expected["mcse_mean"],
        0.0,
    );
    assert_close(case, "mcse_sd", row.mcse_sd, &expected["mcse_sd"], 0.0);
    assert_close(case, "ess_bulk", row.ess_bulk, &expected["ess_bulk"], 0.0);
    assert_close(case, "ess_tail", row.ess_tail, &expected["ess_tail"], 0.0);
    assert_close(case, "r_hat", row.r_hat, &expected["r_hat"], 0.0);
}

#[test]
fn summary_matches_arviz_on_every_fixture_case() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().map_or(&[][..], Vec::as_slice);
    assert!(cases.len() >= 8, "fixture has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let chains = chains_of(case);
        let row = match diagnostics::summary_row(name, &chains) {
            Ok(row) => row,
            Err(e) => panic!("{name}: {e}"),
        };
        check_summary(name, &row, &case["expected"]["summary"]);
    }
}

#[test]
fn individual_diagnostics_match_arviz_functions() {
    let fixture = fixture();
    for case in fixture["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or("?");
        let chains = chains_of(case);
        let expected = &case["expected"];
        let sd = expected["summary"]["sd"].as_f64().unwrap_or(0.0);
        assert_close(
            name,
            "az.ess(bulk)",
            diagnostics::ess_bulk(&chains),
            &expected["ess_bulk"],
            0.0,
        );
        assert_close(
            name,
            "az.ess(tail)",
            diagnostics::ess_tail(&chains),
            &expected["ess_tail"],
            0.0,
        );
        assert_close(
            name,
            "az.ess(mean)",
            diagnostics::ess_mean(&chains),
            &expected["ess_mean"],
            0.0,
        );
        assert_close(
            name,
            "az.mcse(mean)",
            diagnostics::mcse_mean(&chains),
            &expected["mcse_mean"],
            0.0,
        );
        assert_close(
            name,
            "az.mcse(sd)",
            diagnostics::mcse_sd(&chains),
            &expected["mcse_sd"],
            0.0,
        );
        let (lower, upper) = diagnostics::hdi(&chains, 0.94);
        assert_close(name, "az.hdi lower", lower, &expected["hdi_94"][0], sd);
        assert_close(name, "az.hdi upper", upper, &expected["hdi_94"][1], sd);
    }
}

#[test]
fn summarize_takes_arbitrary_named_columns() {
    let fixture = fixture();
    let cases: Vec<&Value> = fixture["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .collect();
    let names: Vec<String> = cases
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("?").to_string())
        .collect();
    let values: Vec<Vec<Vec<f64>>> = cases.iter().map(|c| chains_of(c)).collect();
    let rows = match diagnostics::summarize(&names, &values) {
        Ok(rows) => rows,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(rows.len(), 3);
    for ((row, case), name) in rows.iter().zip(&cases).zip(&names) {
        assert_eq!(&row.name, name);
        check_summary(name, row, &case["expected"]["summary"]);
    }
}
