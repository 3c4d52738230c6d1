//! Failing log densities: recoverable errors are divergences, non-recoverable ones (and panics)
//! stop only their chain, and initialization problems give clear errors.

use std::fmt;

use tessera_sampler::{
    CancelToken, ChainError, LogDensity, LogpError, NoProgress, SampleError, Settings, sample,
    sample_with_factory,
};

#[derive(Debug)]
struct EvalError {
    recoverable: bool,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} evaluation failure",
            if self.recoverable {
                "recoverable"
            } else {
                "fatal"
            }
        )
    }
}

impl std::error::Error for EvalError {}

impl LogpError for EvalError {
    fn is_recoverable(&self) -> bool {
        self.recoverable
    }
}

/// A 2-d standard normal that fails recoverably where `x[0] > wall`, and fatally (or by
/// panicking) after `fail_after` evaluations.
#[derive(Debug, Clone)]
struct Flaky {
    wall: f64,
    fail_after: Option<u64>,
    panic_instead: bool,
    evaluations: u64,
}

impl Flaky {
    fn with_wall(wall: f64) -> Self {
        Self {
            wall,
            fail_after: None,
            panic_instead: false,
            evaluations: 0,
        }
    }
}

impl LogDensity for Flaky {
    type Error = EvalError;

    fn dim(&self) -> usize {
        2
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, EvalError> {
        self.evaluations += 1;
        if self.fail_after.is_some_and(|n| self.evaluations > n) {
            if self.panic_instead {
                panic!("density blew up");
            }
            return Err(EvalError { recoverable: false });
        }
        if x[0] > self.wall {
            return Err(EvalError { recoverable: true });
        }
        grad[0] = -x[0];
        grad[1] = -x[1];
        Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
    }
}

fn small_run(seed: u64) -> Settings {
    Settings {
        tune: 300,
        draws: 300,
        chains: 3,
        seed,
        ..Settings::default()
    }
}

#[test]
fn recoverable_errors_count_as_divergences() {
    let trace = match sample(&Flaky::with_wall(0.5), &small_run(21)) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(trace.errors().next().is_none());
    for chain in &trace.chains {
        assert_eq!(chain.num_draws(), 300);
        assert!(
            chain.rows().all(|x| x[0] <= 0.5),
            "a draw crossed the failing region"
        );
        assert!(
            chain
                .stats
                .iter()
                .filter(|s| s.diverging)
                .all(|s| s.logp_error || s.energy_error.is_finite())
        );
    }
    let error_divergences: usize = trace
        .chains
        .iter()
        .map(|c| {
            c.stats
                .iter()
                .filter(|s| s.logp_error && s.diverging)
                .count()
        })
        .sum();
    assert!(
        error_divergences > 0,
        "hitting the failing region must be reported as divergences"
    );
}

#[test]
fn a_non_recoverable_error_stops_only_its_chain() {
    let factory = |chain: usize| Flaky {
        fail_after: (chain == 1).then_some(1000),
        ..Flaky::with_wall(f64::INFINITY)
    };
    let trace =
        match sample_with_factory(2, factory, &small_run(22), &NoProgress, &CancelToken::new()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
    let errors: Vec<_> = trace.errors().collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 1);
    assert!(matches!(errors[0].1, ChainError::LogDensity(_)));
    assert!(errors[0].1.to_string().contains("fatal evaluation failure"));
    assert!(trace.chains[1].num_draws() < 300);
    assert_eq!(trace.chains[0].num_draws(), 300);
    assert_eq!(trace.chains[2].num_draws(), 300);
}

#[test]
fn a_panicking_density_stops_only_its_chain() {
    let factory = |chain: usize| Flaky {
        fail_after: (chain == 0).then_some(50),
        panic_instead: true,
        ..Flaky::with_wall(f64::INFINITY)
    };
    let trace =
        match sample_with_factory(2, factory, &small_run(23), &NoProgress, &CancelToken::new()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
    assert!(
        matches!(&trace.chains[0].error, Some(ChainError::Panicked(m)) if m.contains("density blew up"))
    );
    assert_eq!(trace.chains[1].num_draws(), 300);
}

/// A density whose value or gradient is never finite.
#[derive(Debug, Clone)]
struct Hopeless {
    bad_gradient: bool,
}

impl LogDensity for Hopeless {
    type Error = std::convert::Infallible;

    fn dim(&self) -> usize {
        3
    }

    fn logp_grad(&mut self, _x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        grad.fill(if self.bad_gradient {
            f64::INFINITY
        } else {
            0.0
        });
        Ok(if self.bad_gradient { 0.0 } else { f64::NAN })
    }
}

#[test]
fn initialization_gives_up_after_100_attempts_with_a_clear_error() {
    for bad_gradient in [false, true] {
        match sample(&Hopeless { bad_gradient }, &small_run(24)) {
            Err(SampleError::AllChainsFailed(errors)) => {
                assert_eq!(errors.len(), 3);
                for (_, error) in &errors {
                    assert!(
                        matches!(error, ChainError::Initialization { attempts: 100, .. }),
                        "{error}"
                    );
                    let expected = if bad_gradient {
                        "gradient"
                    } else {
                        "log density is NaN"
                    };
                    assert!(error.to_string().contains(expected), "{error}");
                }
            }
            other => panic!("expected an initialization failure, got {other:?}"),
        }
    }
}

#[test]
fn caller_given_initial_points_are_used_and_checked() {
    let point = vec![0.25, -0.5];
    let settings = Settings {
        initial_points: vec![point.clone()],
        ..small_run(25)
    };
    let trace = match sample(&Flaky::with_wall(f64::INFINITY), &settings) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(trace.chains.iter().all(|c| c.init_point == point));

    let wrong_length = Settings {
        initial_points: vec![vec![0.0; 3]],
        ..small_run(25)
    };
    assert!(matches!(
        sample(&Flaky::with_wall(1.0), &wrong_length),
        Err(SampleError::InvalidSettings(_))
    ));

    let in_failing_region = Settings {
        initial_points: vec![vec![2.0, 0.0]],
        ..small_run(25)
    };
    match sample(&Flaky::with_wall(1.0), &in_failing_region) {
        Err(SampleError::AllChainsFailed(errors)) => {
            assert!(
                errors
                    .iter()
                    .all(|(_, e)| matches!(e, ChainError::InvalidInitialPoint(_)))
            );
        }
        other => panic!("expected an invalid initial point, got {other:?}"),
    }
}

#[test]
fn invalid_settings_are_rejected_before_sampling() {
    let density = Flaky::with_wall(1.0);
    let cases = [
        Settings {
            chains: 0,
            ..Settings::default()
        },
        Settings {
            target_accept: 1.0,
            ..Settings::default()
        },
        Settings {
            max_tree_depth: 0,
            ..Settings::default()
        },
        Settings {
            init_radius: f64::NAN,
            ..Settings::default()
        },
        Settings {
            initial_points: vec![vec![0.0, 0.0]; 2],
            ..Settings::default()
        },
    ];
    for settings in cases {
        assert!(
            matches!(
                sample(&density, &settings),
                Err(SampleError::InvalidSettings(_))
            ),
            "{settings:?}"
        );
    }
}
