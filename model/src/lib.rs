//! The probabilistic layer: a small model language, distributions as graph builders,
//! transforms to an unconstrained space, and the bridge from a model plus data to graphs of
//! one flat parameter vector.
//!
//! ```
//! use tessera_model::{DataSet, parse_model};
//! let model = parse_model(
//!     "data J: int\n\
//!      data y: vector[J]\n\
//!      data sigma: vector<lower=0>[J]\n\
//!      param mu: real\n\
//!      param tau: real<lower=0>\n\
//!      param theta_tilde: vector[J]\n\
//!      derived theta = mu + tau * theta_tilde\n\
//!      mu ~ normal(0, 5)\n\
//!      tau ~ half_cauchy(5)\n\
//!      theta_tilde ~ normal(0, 1)\n\
//!      y ~ normal(theta, sigma)\n",
//!     "eight_schools.tess",
//! ).unwrap();
//! let data = DataSet::from_json(r#"{"J": 2, "y": [28, 8], "sigma": [15, 10]}"#, "data.json").unwrap();
//! let bound = model.bind(&data).unwrap();
//! assert_eq!(bound.dim(), 4);
//! assert_eq!(bound.output_names(), ["mu", "tau", "theta_tilde[0]", "theta_tilde[1]", "theta[0]", "theta[1]"]);
//! ```
//!
//! Layout of the flat unconstrained vector `theta` (stable): parameters in declaration order,
//! each a contiguous block of [`ParamLayout::size`] values, row-major within the parameter.

pub mod ast;
mod bind;
mod builder;
pub mod builtins;
mod data;
pub mod dist;
mod error;
mod lexer;
mod model;
mod parser;
pub mod transform;

pub use builder::{
    BoundModel, BuildError, InterpError, MAX_ELEMENTS, ModelBuilder, OutputInfo, OutputKind, ParamLayout, checked_size,
};
pub use data::{DataSet, ElemKind, FieldIssue, MAX_DATA_DEPTH};
pub use dist::{DensityOptions, Dist};
pub use error::{Diag, ErrorKind, Location, ModelError, ModelWarning, Note, Source, Span};
pub use model::{Model, parse_model};
pub use parser::{KEYWORDS, MAX_DEPTH, MAX_NESTING};
pub use transform::Transform;

/// `text` without a leading UTF-8 byte-order mark (Windows editors write one); locations are
/// then counted as an editor shows them, from the first visible character.
pub(crate) fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{FEFF}').unwrap_or(text)
}
