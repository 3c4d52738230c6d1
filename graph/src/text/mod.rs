//! The canonical text form of a graph: a deterministic printer and a parser that reads it back.
//!
//! ```text
//! func @logp(%mu: f64[], %sigma: f64[], %x: f64[100]) -> f64[] {
//!   %0:f64[100] = sub %x, %mu
//!   %1:f64[100] = div %0, %sigma
//!   %2:f64[100] = mul %1, %1
//!   %3:f64[] = reduce_sum[axes=[0]] %2
//!   %4:f64[] = mul %3, -0.5:f64
//!   return %4
//! }
//! ```
//!
//! One line per live non-input node in [`Graph::live_nodes`](crate::Graph::live_nodes) order,
//! renumbered `%0, %1, …` at print time; inputs keep their names; scalar constants print inline
//! as `VALUE:DTYPE`; attributes are sorted by key with default values omitted. For every graph
//! `g`, `parse(&print(&g)) == g`.

mod error;
mod lexer;
mod parse;
mod print;

pub use error::ParseError;
pub use parse::parse;
pub use print::print;

pub(crate) use print::{Names, format_attrs, format_kernel_body, format_scalar, write_name};

/// Largest extent of one axis the parser accepts (keeps every later size computation far
/// from overflow).
pub(crate) const MAX_EXTENT: usize = 1 << 40;
/// Largest element count of one tensor type the parser accepts.
pub(crate) const MAX_ELEMENTS: usize = 1 << 48;
/// Largest rank the parser accepts (also bounds the recursion depth of nested constants).
pub(crate) const MAX_RANK: usize = 32;
