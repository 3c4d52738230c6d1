//! Runtime tensor values of the reference interpreter (ndarray arrays of each dtype).

use ndarray::ArrayD;

use crate::{ConstData, Constant, DType, Shape, TensorType};

/// A tensor value: an ndarray array of one of the IR's dtypes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// f64 elements.
    F64(ArrayD<f64>),
    /// i64 elements.
    I64(ArrayD<i64>),
    /// bool elements.
    Bool(ArrayD<bool>),
}

impl Value {
    /// A scalar f64.
    pub fn scalar(x: f64) -> Value {
        Value::F64(ArrayD::from_elem(vec![], x))
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Value::F64(_) => DType::F64,
            Value::I64(_) => DType::I64,
            Value::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        match self {
            Value::F64(a) => Shape::new(a.shape()),
            Value::I64(a) => Shape::new(a.shape()),
            Value::Bool(a) => Shape::new(a.shape()),
        }
    }

    /// The type (dtype and shape).
    pub fn ty(&self) -> TensorType {
        TensorType { dtype: self.dtype(), shape: self.shape() }
    }

    /// The f64 array, if this is an f64 value.
    pub fn as_f64(&self) -> Option<&ArrayD<f64>> {
        match self {
            Value::F64(a) => Some(a),
            _ => None,
        }
    }

    /// The i64 array, if this is an i64 value.
    pub fn as_i64(&self) -> Option<&ArrayD<i64>> {
        match self {
            Value::I64(a) => Some(a),
            _ => None,
        }
    }

    /// The bool array, if this is a bool value.
    pub fn as_bool(&self) -> Option<&ArrayD<bool>> {
        match self {
            Value::Bool(a) => Some(a),
            _ => None,
        }
    }

    /// The value of a scalar (rank-0 or single-element) f64, i64 or bool as f64.
    pub fn to_scalar_f64(&self) -> Option<f64> {
        let elems = self.to_f64_vec();
        (elems.len() == 1).then(|| elems[0])
    }

    /// All elements in row-major order, converted to f64 (bool as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Value::F64(a) => row_major_map(a, |x| x),
            Value::I64(a) => row_major_map(a, |x| x as f64),
            Value::Bool(a) => row_major_map(a, |x| f64::from(u8::from(x))),
        }
    }

    /// The value of a constant.
    pub fn from_constant(c: &Constant) -> Value {
        let shape: Vec<usize> = c.shape().dims().to_vec();
        // The constant's data length equals its shape's size by construction.
        let build = |e: ndarray::ShapeError| panic_free_empty(e, &shape);
        match c.data() {
            ConstData::F64(d) => ArrayD::from_shape_vec(shape.clone(), d.to_vec()).map(Value::F64).unwrap_or_else(build),
            ConstData::I64(d) => ArrayD::from_shape_vec(shape.clone(), d.to_vec()).map(Value::I64).unwrap_or_else(build),
            ConstData::Bool(d) => ArrayD::from_shape_vec(shape.clone(), d.to_vec()).map(Value::Bool).unwrap_or_else(build),
        }
    }

    /// The value as a constant (for constant folding).
    pub fn to_constant(&self) -> Constant {
        let shape = self.shape();
        let data = match self {
            Value::F64(a) => ConstData::F64(row_major(a)),
            Value::I64(a) => ConstData::I64(row_major(a)),
            Value::Bool(a) => ConstData::Bool(row_major(a)),
        };
        // An array's element count always equals its shape's size.
        Constant::new(shape, data).unwrap_or_else(|| Constant::f64(f64::NAN))
    }
}

/// The elements of `a` in row-major order, each mapped by `f` (by slice when contiguous:
/// iterating a dynamic-rank array element by element is several times slower).
fn row_major_map<T: Copy, U>(a: &ArrayD<T>, f: impl Fn(T) -> U) -> Vec<U> {
    match a.as_slice() {
        Some(s) => s.iter().map(|&x| f(x)).collect(),
        None => a.iter().map(|&x| f(x)).collect(),
    }
}

/// The elements of `a` in row-major order, copied once.
fn row_major<T: Copy>(a: &ArrayD<T>) -> std::sync::Arc<Vec<T>> {
    std::sync::Arc::new(row_major_map(a, |x| x))
}

/// Unreachable in practice (a constant's length matches its shape); yields a NaN-filled value
/// rather than panicking.
fn panic_free_empty(_: ndarray::ShapeError, shape: &[usize]) -> Value {
    Value::F64(ArrayD::from_elem(shape.to_vec(), f64::NAN))
}

impl From<ArrayD<f64>> for Value {
    fn from(a: ArrayD<f64>) -> Value {
        Value::F64(a)
    }
}

impl From<ArrayD<i64>> for Value {
    fn from(a: ArrayD<i64>) -> Value {
        Value::I64(a)
    }
}

impl From<ArrayD<bool>> for Value {
    fn from(a: ArrayD<bool>) -> Value {
        Value::Bool(a)
    }
}
