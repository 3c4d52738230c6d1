//! CmdStan CSV output: the format checked line by line in Rust, read back by our reader, and
//! read by ArviZ's `from_cmdstan` when python3 with arviz is available.

use std::fs;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::Command;

use tessera_sampler::cmdstan_csv::{
    SAMPLER_COLUMNS, cmdstan_names, read_cmdstan_csv, write_trace_chain, write_trace_files,
};
use tessera_sampler::targets::DiagGaussian;
use tessera_sampler::{Settings, Trace, sample};

const NAMES: [&str; 3] = ["mu", "theta[0]", "theta[1]"];

fn small_trace(keep_warmup: bool) -> Trace {
    let settings = Settings {
        tune: 60,
        draws: 40,
        chains: 2,
        seed: 41,
        keep_warmup,
        ..Settings::default()
    };
    match sample(&DiagGaussian::new(&[1.0, 2.0, 0.5]), &settings) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn names() -> Vec<String> {
    match cmdstan_names(&NAMES) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

fn write_to_string(trace: &Trace, chain: usize) -> String {
    let mut buffer = Vec::new();
    if let Err(e) = write_trace_chain(&mut buffer, trace, chain, &names(), "test_model") {
        panic!("{e}");
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

#[test]
fn the_file_has_cmdstans_layout() {
    let trace = small_trace(true);
    let text = write_to_string(&trace, 1);
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "# model = test_model",
        "#     num_samples = 40",
        "#     num_warmup = 60",
        "#     save_warmup = true",
        "#     thin = 1 (Default)",
        "# id = 2",
        "#   seed = 41",
        "#             max_depth = 10",
        "#       delta = 0.8",
    ] {
        assert!(
            lines.contains(&expected),
            "missing config line `{expected}`"
        );
    }
    let header = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .unwrap_or(lines.len());
    let expected_header = format!("{},mu,theta.1,theta.2", SAMPLER_COLUMNS.join(","));
    assert_eq!(lines[header], expected_header);
    // Warmup rows, then the adaptation block, then the draws, then the timing block.
    let adaptation = lines
        .iter()
        .position(|l| *l == "# Adaptation terminated")
        .unwrap_or(0);
    assert_eq!(adaptation, header + 1 + 60);
    assert!(lines[adaptation + 1].starts_with("# Step size = "));
    assert_eq!(
        lines[adaptation + 2],
        "# Diagonal elements of inverse mass matrix:"
    );
    assert_eq!(
        lines[adaptation + 3]
            .trim_start_matches("# ")
            .split(", ")
            .count(),
        3
    );
    let draws: Vec<&str> = lines[adaptation + 4..]
        .iter()
        .take_while(|l| !l.starts_with('#'))
        .copied()
        .collect();
    assert_eq!(draws.len(), 40);
    for row in &draws {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), 10);
        // treedepth__, n_leapfrog__ and divergent__ are integers.
        assert!(
            fields[3..6].iter().all(|f| f.parse::<u64>().is_ok()),
            "{row}"
        );
    }
    let tail = &lines[adaptation + 4 + 40..];
    assert!(
        tail.iter()
            .any(|l| l.starts_with("#  Elapsed Time: ") && l.ends_with("seconds (Warm-up)"))
    );
    assert!(tail.iter().any(|l| l.ends_with("seconds (Sampling)")));
    assert!(tail.iter().any(|l| l.ends_with("seconds (Total)")));
}

#[test]
fn our_reader_gets_back_exactly_what_was_written() {
    let trace = small_trace(true);
    let chain = &trace.chains[0];
    let text = write_to_string(&trace, 0);
    let csv = match read_cmdstan_csv(BufReader::new(text.as_bytes())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(csv.columns.len(), 10);
    assert_eq!((csv.warmup.len(), csv.draws.len()), (60, 40));
    assert_eq!(csv.step_size, Some(chain.adaptation.step_size));
    assert_eq!(
        csv.inv_mass_diag.as_ref(),
        Some(&chain.adaptation.inv_mass_diag)
    );
    assert_eq!(csv.config_value("num_warmup"), Some("60"));
    for (i, name) in names().iter().enumerate() {
        let column = csv.column(name).unwrap_or_default();
        let expected: Vec<f64> = chain.rows().map(|row| row[i]).collect();
        assert_eq!(column, expected, "column {name} must round-trip exactly");
    }
    let lp = csv.column("lp__").unwrap_or_default();
    assert_eq!(lp, chain.stats.iter().map(|s| s.lp).collect::<Vec<_>>());
    assert!(csv.elapsed.iter().all(Option::is_some));
}

#[test]
fn without_kept_warmup_no_warmup_rows_are_written() {
    let trace = small_trace(false);
    let csv = match read_cmdstan_csv(BufReader::new(write_to_string(&trace, 0).as_bytes())) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(csv.config_value("save_warmup"), Some("false"));
    assert_eq!((csv.warmup.len(), csv.draws.len()), (0, 40));
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-sampler-{name}-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

/// Exit status of the script when `import arviz` fails.
const NO_ARVIZ: i32 = 77;

#[test]
fn arviz_from_cmdstan_reads_our_files() {
    let trace = small_trace(true);
    let dir = scratch_dir("arviz");
    let paths = match write_trace_files(&dir, "chain", &trace, &names(), "test_model") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/read_cmdstan_with_arviz.py"
    );
    // The script itself checks `import arviz` (importing it twice would double the runtime).
    let output = Command::new("python3").arg(script).args(&paths).output();
    let _ = fs::remove_dir_all(&dir);
    let output = match output {
        Ok(o) if o.status.code() == Some(NO_ARVIZ) => {
            println!("note: skipping the ArviZ check, python3 cannot import arviz");
            return;
        }
        Ok(o) => o,
        Err(e) => {
            println!("note: skipping the ArviZ check, python3 is not runnable ({e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ArviZ failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = match serde_json::from_str(stdout.trim()) {
        Ok(v) => v,
        Err(e) => panic!("bad JSON from the script ({e}): {stdout}"),
    };
    assert_eq!(report["chains"], 2);
    assert_eq!(report["draws"], 40);
    assert_eq!(report["warmup_draws"], 60);
    assert_eq!(report["variables"]["mu"], serde_json::json!([]));
    assert_eq!(report["variables"]["theta"], serde_json::json!([2]));
    assert_eq!(report["diverging_dtype"], "bool");
    assert_eq!(report["divergences"], trace.divergences());
    for stat in [
        "acceptance_rate",
        "diverging",
        "energy",
        "lp",
        "n_steps",
        "step_size",
        "tree_depth",
    ] {
        assert!(
            report["sample_stats"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == stat)),
            "missing {stat}"
        );
    }
    // ArviZ's posterior means equal ours (same numbers, parsed from text).
    let values = trace.parameter_values();
    let mean = |q: usize| values[q].iter().flatten().sum::<f64>() / 80.0;
    let theta = report["means"]["theta"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let arviz_means = [
        report["means"]["mu"][0].as_f64(),
        theta[0].as_f64(),
        theta[1].as_f64(),
    ];
    for (q, arviz) in arviz_means.iter().enumerate() {
        let ours = mean(q);
        assert!(
            arviz.is_some_and(|a| (a - ours).abs() <= 1e-12 * (1.0 + ours.abs())),
            "quantity {q}: {arviz:?} vs {ours}"
        );
    }
}
