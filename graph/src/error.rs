//! Errors of graph construction and verification.

use crate::NodeId;

/// What went wrong while building or checking a graph. Messages name the op, the operand
/// types and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// An op was applied to operands it does not accept.
    #[error("{op}: {message}")]
    Op {
        /// The op's text-form name.
        op: String,
        /// What is wrong, with the operand types and what was expected.
        message: String,
    },
    /// An input name was declared twice with different types.
    #[error("input %{name} declared twice with different types: {first} and {second}")]
    InputRedeclared {
        /// The input name.
        name: String,
        /// The first declared type.
        first: String,
        /// The conflicting type.
        second: String,
    },
    /// A node id that does not belong to this graph.
    #[error("node {0} does not exist in this graph")]
    UnknownNode(NodeId),
    /// A structural invariant does not hold (found by the verifier).
    #[error("invalid graph: {0}")]
    Invalid(String),
}

impl GraphError {
    /// An op error.
    pub fn op(op: &str, message: impl Into<String>) -> GraphError {
        GraphError::Op { op: op.to_string(), message: message.into() }
    }
}
