//! tessera: a tensor graph compiler backend for probabilistic programming.
pub use tessera_graph as graph;
