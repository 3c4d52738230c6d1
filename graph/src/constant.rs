//! Constant tensors: typed, shaped, immutable, hashed and compared by bits.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::{DType, Shape, TensorType};

/// The elements of a constant, row-major.
#[derive(Clone, Debug)]
pub enum ConstData {
    /// f64 elements.
    F64(Arc<Vec<f64>>),
    /// i64 elements.
    I64(Arc<Vec<i64>>),
    /// bool elements.
    Bool(Arc<Vec<bool>>),
}

impl ConstData {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            ConstData::F64(_) => DType::F64,
            ConstData::I64(_) => DType::I64,
            ConstData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ConstData::F64(v) => v.len(),
            ConstData::I64(v) => v.len(),
            ConstData::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64 (bool as 0/1), for folding and printing.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            ConstData::F64(v) => v[i],
            ConstData::I64(v) => v[i] as f64,
            ConstData::Bool(v) => f64::from(u8::from(v[i])),
        }
    }
}

impl ConstData {
    /// Whether both point at the same storage (then they are equal without a comparison).
    fn shares_storage(&self, other: &ConstData) -> bool {
        match (self, other) {
            (ConstData::F64(a), ConstData::F64(b)) => Arc::ptr_eq(a, b),
            (ConstData::I64(a), ConstData::I64(b)) => Arc::ptr_eq(a, b),
            (ConstData::Bool(a), ConstData::Bool(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl PartialEq for ConstData {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // Bitwise, so that hash-consing never merges 0.0 with −0.0 and NaN equals itself.
            (ConstData::F64(a), ConstData::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (ConstData::I64(a), ConstData::I64(b)) => a == b,
            (ConstData::Bool(a), ConstData::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for ConstData {}

impl Hash for ConstData {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.dtype().hash(state);
        match self {
            ConstData::F64(v) => v.iter().for_each(|x| x.to_bits().hash(state)),
            ConstData::I64(v) => v.hash(state),
            ConstData::Bool(v) => v.hash(state),
        }
    }
}

/// Elements a digest reads at most: hashing all 10⁵ elements of a data matrix took ~0.25 ms of
/// every compile, and an even spread of a few hundred tells real data apart as well.
const DIGEST_SAMPLES: usize = 256;

/// The digest of a constant's elements: its length and up to [`DIGEST_SAMPLES`] elements spread
/// evenly over it (the last included), through FxHash's step (add, multiply) in four
/// interleaved lanes, then the lanes hashed together. Equal data give equal digests; data that
/// differ only between the samples share one, and the intern map then compares them in full
/// (only the intern map uses digests).
fn data_digest(data: &ConstData) -> u64 {
    let lanes = match data {
        ConstData::F64(v) => lane_hash(v, f64::to_bits),
        ConstData::I64(v) => lane_hash(v, |x| x as u64),
        ConstData::Bool(v) => lane_hash(v, u64::from),
    };
    let mut hasher = rustc_hash::FxHasher::default();
    (data.dtype(), data.len(), lanes).hash(&mut hasher);
    hasher.finish()
}

fn lane_hash<T: Copy>(items: &[T], bits: impl Fn(T) -> u64) -> [u64; 4] {
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let mut lanes = [0u64; 4];
    let step = items.len().div_ceil(DIGEST_SAMPLES).max(1);
    let sampled = items.iter().step_by(step).chain(items.last().filter(|_| step > 1));
    for (i, &x) in sampled.enumerate() {
        let lane = &mut lanes[i % 4];
        *lane = lane.wrapping_add(bits(x)).wrapping_mul(K);
    }
    lanes
}

/// A constant tensor: its shape and row-major data (whose length is the shape's size).
///
/// The data's hash is computed once, at construction: hash-consing re-interns every node in
/// every rewrite sweep, and re-hashing a data matrix of 10⁵ elements each time dominated
/// compile time on models with large data.
#[derive(Clone)]
pub struct Constant {
    shape: Shape,
    data: ConstData,
    digest: u64,
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.shape == other.shape && (self.data.shares_storage(&other.data) || self.data == other.data)
    }
}

impl Eq for Constant {}

impl Hash for Constant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shape.hash(state);
        self.digest.hash(state);
    }
}

impl std::fmt::Debug for Constant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constant").field("shape", &self.shape).field("data", &self.data).finish()
    }
}

impl Constant {
    /// A constant of the given shape, or `None` when the data length does not match it.
    pub fn new(shape: Shape, data: ConstData) -> Option<Constant> {
        (shape.size() == data.len()).then(|| Constant::from_parts(shape, data))
    }

    fn from_parts(shape: Shape, data: ConstData) -> Constant {
        let digest = data_digest(&data);
        Constant { shape, data, digest }
    }

    /// A scalar f64.
    pub fn f64(x: f64) -> Constant {
        Constant::from_parts(Shape::scalar(), ConstData::F64(Arc::new(vec![x])))
    }

    /// A scalar i64.
    pub fn i64(x: i64) -> Constant {
        Constant::from_parts(Shape::scalar(), ConstData::I64(Arc::new(vec![x])))
    }

    /// A scalar bool.
    pub fn bool(x: bool) -> Constant {
        Constant::from_parts(Shape::scalar(), ConstData::Bool(Arc::new(vec![x])))
    }

    /// An f64 tensor filled with `value`.
    pub fn filled_f64(shape: Shape, value: f64) -> Constant {
        let n = shape.size();
        Constant::from_parts(shape, ConstData::F64(vec![value; n].into()))
    }

    /// The constant's type.
    pub fn ty(&self) -> TensorType {
        TensorType { dtype: self.data.dtype(), shape: self.shape.clone() }
    }

    /// The constant's shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> &ConstData {
        &self.data
    }

    /// The value if every element equals it (as f64; bool as 0/1); `None` if they differ or
    /// the constant is empty.
    pub fn uniform_value(&self) -> Option<f64> {
        if self.data.is_empty() {
            return None;
        }
        let first = self.data.get_f64(0);
        let same = (1..self.data.len()).all(|i| self.data.get_f64(i).to_bits() == first.to_bits());
        same.then_some(first)
    }

    /// The scalar value of a rank-0 constant, as f64.
    pub fn scalar_value(&self) -> Option<f64> {
        self.shape.is_scalar().then(|| self.data.get_f64(0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Graph, Shape};

    /// Large constants that differ only between the digest's samples share a digest, yet stay
    /// unequal, and a graph keeps them as two nodes; equal data give one node.
    #[test]
    fn constants_differing_between_samples_stay_distinct() {
        let n = 100_000;
        let data: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut other = data.clone();
        other[1] = -1.0; // between the first two samples (the step is 391)
        let make = |d: Vec<f64>| Constant::new(Shape::new(&[n]), ConstData::F64(Arc::new(d))).unwrap();
        let (a, b, a_again) = (make(data.clone()), make(other), make(data));
        assert_eq!(a.digest, b.digest);
        assert_ne!(a, b);
        assert_eq!(a, a_again);
        let mut g = Graph::new("g");
        let (na, nb, na_again) = (g.constant(a), g.constant(b), g.constant(a_again));
        assert_ne!(na, nb);
        assert_eq!(na, na_again);
    }
}
