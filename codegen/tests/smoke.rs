//! First light.
mod common;

#[test]
fn add_broadcast() {
    common::check(
        "func @f(%a: f64[3,4], %b: f64[4]) -> f64[3,4] {
  %0:f64[3,4] = add %a, %b
  return %0
}",
    );
}
