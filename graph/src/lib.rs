//! tessera's symbolic tensor IR: typed hash-consed nodes with static shapes, a builder, a
//! verifier, the text form, the reference interpreter and inspection views.

#[cfg(feature = "testing")]
pub mod arbitrary;
mod builder;
mod constant;
mod dot;
mod dtype;
mod elementwise;
mod error;
mod fused;
mod grad;
mod graph;
pub mod infer;
mod interp;
pub mod memory;
mod op;
mod shape;
mod value;
pub mod special;
mod summary;
mod text;
pub mod threads;
mod verify;

pub use builder::{GraphBuilder, PySlice, Var, constant_from_array};
pub use constant::{ConstData, Constant};
pub use dot::to_dot;
pub use dtype::DType;
pub use elementwise::{BinaryOp, DTypeRule, UnaryOp};
pub use error::GraphError;
pub use fused::{ConstScalar, FusedKernel, FusedReduce, ScalarInstr, instr_dtype};
pub use grad::{GradError, grad, with_gradients};
pub use graph::{Graph, Node, NodeId, Operands};
pub use interp::{EvalError, eval, eval_checked, eval_nodes, eval_op};
pub use op::{Axes, Op, ReduceOp, SliceRange};
pub use shape::{Shape, TensorType};
pub use summary::{Summary, summary};
pub use text::{ParseError, parse, print};
pub use value::Value;
pub use verify::verify;
