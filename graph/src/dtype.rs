//! Element types of tensors: f64, i64 and bool.

use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer.
    I64,
    /// Boolean.
    Bool,
}

impl DType {
    /// The name used by the text form (`f64`, `i64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Parses a dtype name of the text form.
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f64" => Some(DType::F64),
            "i64" => Some(DType::I64),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }

    /// Whether arithmetic (add, mul, …) is defined on this dtype.
    pub fn is_numeric(self) -> bool {
        matches!(self, DType::F64 | DType::I64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
