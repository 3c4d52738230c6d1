//! NUTS sampler with adaptation, parallel chains and diagnostics; depends on no other workspace crate.
