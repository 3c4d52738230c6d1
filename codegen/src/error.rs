//! Errors of compiling and of calling compiled functions.

/// What went wrong while compiling a graph or calling the compiled function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodegenError {
    /// A node cannot be lowered (names the op and the node).
    #[error("cannot lower {op} at node {node}: {reason}")]
    Unsupported {
        /// The op's text-form name.
        op: String,
        /// The node id.
        node: String,
        /// Why.
        reason: String,
    },
    /// The graph is malformed (failed verification, or has no outputs).
    #[error("invalid graph: {0}")]
    InvalidGraph(String),
    /// Cranelift rejected the generated code or could not set up the target.
    #[error("Cranelift: {0}")]
    Cranelift(String),
    /// A call passed the wrong number of inputs or outputs.
    #[error("expected {expected} {what}, got {got}")]
    ArgCount {
        /// `"inputs"` or `"outputs"`.
        what: &'static str,
        /// The number the function takes.
        expected: usize,
        /// The number passed.
        got: usize,
    },
    /// A call passed a slice of the wrong dtype or length.
    #[error("{what} {index} ({name}): expected {expected}, got {got}")]
    ArgMismatch {
        /// `"input"` or `"output"`.
        what: &'static str,
        /// Position in the signature.
        index: usize,
        /// The input's name (or the output's position).
        name: String,
        /// The expected dtype and length.
        expected: String,
        /// What was passed.
        got: String,
    },
    /// A run-time check failed in native code (an index out of range).
    #[error("run-time check failed: {0}")]
    Runtime(String),
    /// The workspace was made for another compiled function.
    #[error("the workspace belongs to another compiled function")]
    ForeignWorkspace,
}
