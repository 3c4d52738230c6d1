//! tessera's symbolic tensor IR: typed hash-consed nodes with static shapes, a builder, a
//! verifier, the text form, the reference interpreter and inspection views.

mod builder;
mod constant;
mod dtype;
mod elementwise;
mod error;
mod graph;
pub mod infer;
mod op;
mod shape;
mod value;
pub mod special;
mod verify;

pub use builder::{GraphBuilder, PySlice, Var, constant_from_array};
pub use constant::{ConstData, Constant};
pub use dtype::DType;
pub use elementwise::{BinaryOp, DTypeRule, UnaryOp};
pub use error::GraphError;
pub use graph::{Graph, Node, NodeId, Operands};
pub use op::{Axes, Op, ReduceOp, SliceRange};
pub use shape::{Shape, TensorType};
pub use value::Value;
pub use verify::verify;
