//! Cranelift lowering of optimized graphs to native logp+gradient functions (filled by the codegen issue).
