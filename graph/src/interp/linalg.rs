//! Linear algebra: matmul, outer, Cholesky, triangular solve, log-determinant, diagonals.

use ndarray::{Array2, ArrayD, ArrayView2, Axis, Ix2, IxDyn};

use super::{EvalError, dtype_error, op_error};
use crate::{Shape, Value};

/// Matrix product of vectors and matrices. Vectors are promoted to a row (left operand) or a
/// column (right operand), multiplied as matrices, and the result reshaped to `out_shape`.
pub(super) fn matmul(a: &Value, b: &Value, out_shape: &Shape) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => {
            let (x, y) = operands_2d(x, y)?;
            // ndarray's dot (matrixmultiply) keeps model-sized products in the milliseconds.
            to_shape("matmul", x.dot(&y), out_shape).map(Value::F64)
        }
        (Value::I64(x), Value::I64(y)) => {
            let (x, y) = operands_2d(x, y)?;
            to_shape("matmul", matmul_wrapping(x, y), out_shape).map(Value::I64)
        }
        _ => Err(dtype_error("matmul", &[a, b])),
    }
}

/// Outer product of two f64 vectors.
pub(super) fn outer(a: &Value, b: &Value) -> Result<Value, EvalError> {
    let (Value::F64(x), Value::F64(y)) = (a, b) else { return Err(dtype_error("outer", &[a, b])) };
    if x.ndim() != 1 || y.ndim() != 1 {
        return Err(dtype_error("outer", &[a, b]));
    }
    let (m, n) = (x.len(), y.len());
    let (xs, ys): (Vec<f64>, Vec<f64>) = (x.iter().copied().collect(), y.iter().copied().collect());
    let out = Array2::from_shape_fn((m, n), |(i, j)| xs[i] * ys[j]);
    Ok(Value::F64(out.into_dyn()))
}

/// Lower Cholesky factor (Cholesky–Banachiewicz), reading only the lower triangle; all NaN
/// when a pivot is not positive and finite, i.e. the matrix is not positive definite.
pub(super) fn cholesky(a: &Value) -> Result<Value, EvalError> {
    let m = square_f64("cholesky", a)?;
    let n = m.nrows();
    let not_positive_definite = || Value::F64(ArrayD::from_elem(IxDyn(&[n, n]), f64::NAN));
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let pivot = m[[j, j]] - (0..j).map(|k| l[[j, k]] * l[[j, k]]).sum::<f64>();
        if !(pivot > 0.0 && pivot.is_finite()) {
            return Ok(not_positive_definite());
        }
        let ljj = pivot.sqrt();
        l[[j, j]] = ljj;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            l[[i, j]] = (m[[i, j]] - dot) / ljj;
        }
    }
    Ok(Value::F64(l.into_dyn()))
}

/// Solves `A x = b` by substitution, reading only `A`'s lower (or upper) triangle; `b` is a
/// vector or a matrix of right-hand sides.
pub(super) fn triangular_solve(a: &Value, b: &Value, lower: bool) -> Result<Value, EvalError> {
    let m = square_f64("triangular_solve", a)?;
    let Value::F64(rhs) = b else { return Err(dtype_error("triangular_solve", &[a, b])) };
    let n = m.nrows();
    let mut x = match rhs.ndim() {
        1 => rhs.view().insert_axis(Axis(1)),
        _ => rhs.view(),
    }
    .into_dimensionality::<Ix2>()
    .map_err(|_| dtype_error("triangular_solve", &[a, b]))?
    .to_owned();
    if x.nrows() != n {
        return Err(dtype_error("triangular_solve", &[a, b]));
    }
    for mut col in x.columns_mut() {
        if lower {
            for i in 0..n {
                let s: f64 = (0..i).map(|j| m[[i, j]] * col[j]).sum();
                col[i] = (col[i] - s) / m[[i, i]];
            }
        } else {
            for i in (0..n).rev() {
                let s: f64 = (i + 1..n).map(|j| m[[i, j]] * col[j]).sum();
                col[i] = (col[i] - s) / m[[i, i]];
            }
        }
    }
    to_shape("triangular_solve", x, &Shape::new(rhs.shape())).map(Value::F64)
}

/// `log det(L Lᵀ) = 2 Σ ln Lᵢᵢ`.
pub(super) fn logdet_chol(a: &Value) -> Result<Value, EvalError> {
    let l = square_f64("logdet_chol", a)?;
    Ok(Value::scalar(2.0 * l.diag().iter().map(|d| d.ln()).sum::<f64>()))
}

/// The diagonal of a square matrix.
pub(super) fn diag(a: &Value) -> Result<Value, EvalError> {
    let m = square_f64("diag", a)?;
    Ok(Value::F64(m.diag().to_owned().into_dyn()))
}

/// A square matrix with the vector on its diagonal and zeros (false) elsewhere.
pub(super) fn diag_matrix(v: &Value) -> Result<Value, EvalError> {
    if v.shape().rank() != 1 {
        return Err(dtype_error("diag_matrix", &[v]));
    }
    Ok(per_dtype!(v, a => diag_matrix_array(a)))
}

fn diag_matrix_array<T: Clone + Default>(v: &ArrayD<T>) -> ArrayD<T> {
    let elems: Vec<T> = v.iter().cloned().collect();
    let n = elems.len();
    Array2::from_shape_fn((n, n), |(i, j)| if i == j { elems[i].clone() } else { T::default() }).into_dyn()
}

/// Both matmul operands as matrices (a vector on the left is a row, on the right a column),
/// with matching inner extents.
fn operands_2d<'a, T>(a: &'a ArrayD<T>, b: &'a ArrayD<T>) -> Result<(ArrayView2<'a, T>, ArrayView2<'a, T>), EvalError> {
    let as_matrix = |x: &'a ArrayD<T>, vector_axis: usize| {
        let view = if x.ndim() == 1 { x.view().insert_axis(Axis(vector_axis)) } else { x.view() };
        view.into_dimensionality::<Ix2>().ok()
    };
    let shapes = || format!("operand shapes {:?} and {:?}", a.shape(), b.shape());
    let (Some(x), Some(y)) = (as_matrix(a, 0), as_matrix(b, 1)) else {
        return Err(op_error("matmul", format!("{} are not vectors or matrices", shapes())));
    };
    if x.ncols() != y.nrows() {
        return Err(op_error("matmul", format!("inner dimensions differ: {}", shapes())));
    }
    Ok((x, y))
}

/// Integer matrix product with wrapping arithmetic (ndarray's generic product would panic on
/// overflow in debug builds).
fn matmul_wrapping(a: ArrayView2<'_, i64>, b: ArrayView2<'_, i64>) -> Array2<i64> {
    Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
        a.row(i).iter().zip(b.column(j)).fold(0i64, |s, (&p, &q)| s.wrapping_add(p.wrapping_mul(q)))
    })
}

/// An f64 operand that must be a square matrix.
fn square_f64<'a>(op: &str, a: &'a Value) -> Result<ArrayView2<'a, f64>, EvalError> {
    let Value::F64(x) = a else { return Err(dtype_error(op, &[a])) };
    let m = x.view().into_dimensionality::<Ix2>().map_err(|_| dtype_error(op, &[a]))?;
    if m.nrows() != m.ncols() {
        return Err(dtype_error(op, &[a]));
    }
    Ok(m)
}

/// A matrix result rearranged (row-major) to the op's result shape.
fn to_shape<T: Clone>(op: &str, m: Array2<T>, shape: &Shape) -> Result<ArrayD<T>, EvalError> {
    let elems: Vec<T> = m.iter().cloned().collect();
    ArrayD::from_shape_vec(IxDyn(shape.dims()), elems)
        .map_err(|e| op_error(op, format!("cannot shape the result as {shape}: {e}")))
}
