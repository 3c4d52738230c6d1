//! The rules, one file per topic. Each pattern rule is one line with its math in a comment;
//! Rust-function rules cover what a pattern cannot say (folding, shapes, counts).

pub(crate) mod arith;
pub(crate) mod broadcast;
pub(crate) mod exp_log;
pub(crate) mod fold;
pub mod fusion;
pub(crate) mod reduce;
pub(crate) mod stability;
