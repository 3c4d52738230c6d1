//! tessera: a tensor graph compiler backend for probabilistic programming.
#![doc = include_str!("../README.md")]

pub use tessera_codegen as codegen;
pub use tessera_graph as graph;
pub use tessera_model as model;
pub use tessera_rewrite as rewrite;
pub use tessera_sampler as sampler;

pub mod pipeline;
pub mod report;
pub mod validate;
