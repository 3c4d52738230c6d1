//! A compiled function: owns its JIT code and constants, checks every argument before native
//! code runs, and frees its code when dropped. Callers bring their own [`Workspace`], so one
//! `Compiled` serves many threads at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cranelift_jit::JITModule;
use ndarray::ArrayD;
use smallvec::SmallVec;
use tessera_graph::{ConstData, DType, TensorType, Value};

use crate::CodegenError;
use crate::kernel::Program;

/// The native entry point: input pointers, output pointers, workspace; returns 0 or the code
/// of the failed run-time check.
pub(crate) type EntryFn = unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8) -> i32;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A read-only argument: a row-major slice of one dtype.
#[derive(Clone, Copy, Debug)]
pub enum ArgRef<'a> {
    /// f64 elements.
    F64(&'a [f64]),
    /// i64 elements.
    I64(&'a [i64]),
    /// bool elements.
    Bool(&'a [bool]),
}

/// A result slot: a row-major mutable slice of one dtype.
#[derive(Debug)]
pub enum ArgMut<'a> {
    /// f64 elements.
    F64(&'a mut [f64]),
    /// i64 elements.
    I64(&'a mut [i64]),
    /// bool elements.
    Bool(&'a mut [bool]),
}

impl ArgRef<'_> {
    fn dtype(&self) -> DType {
        match self {
            ArgRef::F64(_) => DType::F64,
            ArgRef::I64(_) => DType::I64,
            ArgRef::Bool(_) => DType::Bool,
        }
    }

    fn len(&self) -> usize {
        match self {
            ArgRef::F64(s) => s.len(),
            ArgRef::I64(s) => s.len(),
            ArgRef::Bool(s) => s.len(),
        }
    }

    fn ptr(&self) -> *const u8 {
        match self {
            ArgRef::F64(s) => s.as_ptr().cast(),
            ArgRef::I64(s) => s.as_ptr().cast(),
            ArgRef::Bool(s) => s.as_ptr().cast(),
        }
    }
}

impl ArgMut<'_> {
    fn dtype(&self) -> DType {
        match self {
            ArgMut::F64(_) => DType::F64,
            ArgMut::I64(_) => DType::I64,
            ArgMut::Bool(_) => DType::Bool,
        }
    }

    fn len(&self) -> usize {
        match self {
            ArgMut::F64(s) => s.len(),
            ArgMut::I64(s) => s.len(),
            ArgMut::Bool(s) => s.len(),
        }
    }

    fn ptr(&mut self) -> *mut u8 {
        match self {
            ArgMut::F64(s) => s.as_mut_ptr().cast(),
            ArgMut::I64(s) => s.as_mut_ptr().cast(),
            ArgMut::Bool(s) => s.as_mut_ptr().cast(),
        }
    }
}

/// Scratch memory for one caller of one compiled function (reused across calls).
#[derive(Debug)]
pub struct Workspace {
    // u128 gives 16-byte alignment to every planned slot.
    buf: Vec<u128>,
    owner: u64,
}

impl Workspace {
    pub(crate) fn owner_id(&self) -> u64 {
        self.owner
    }
}

/// An executable compiled graph. `Send + Sync`: call it from many threads, each with its own
/// [`Workspace`].
pub struct Compiled {
    /// The parts of the program, called in order.
    entries: SmallVec<[EntryFn; 4]>,
    module: Mutex<Option<JITModule>>,
    inputs: Vec<(String, TensorType)>,
    outputs: Vec<TensorType>,
    checks: Vec<String>,
    workspace_bytes: usize,
    id: u64,
    /// Constants addressed by the code; kept alive (and never moved) for its lifetime.
    _consts: Vec<ConstData>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("workspace_bytes", &self.workspace_bytes)
            .finish()
    }
}

fn describe(dtype: DType, len: usize) -> String {
    format!("{dtype} × {len}")
}

impl Compiled {
    /// Wraps finalized code.
    ///
    /// # Safety
    /// Every entry must point to finalized code of `module` with the [`EntryFn`] signature,
    /// and together, called in order, they must run `program` (so that they access exactly
    /// the buffers `program` describes).
    pub(crate) unsafe fn new(module: JITModule, entries: &[*const u8], program: Program) -> Compiled {
        // SAFETY: guaranteed by the caller; fn pointers and data pointers have the same size.
        let entries = entries.iter().map(|&e| unsafe { std::mem::transmute::<*const u8, EntryFn>(e) }).collect();
        Compiled {
            entries,
            module: Mutex::new(Some(module)),
            inputs: program.inputs,
            outputs: program.outputs,
            checks: program.checks,
            workspace_bytes: program.workspace_bytes,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            _consts: program.consts,
        }
    }

    /// Input names and types in signature order.
    pub fn inputs(&self) -> &[(String, TensorType)] {
        &self.inputs
    }

    /// Output types in return order.
    pub fn outputs(&self) -> &[TensorType] {
        &self.outputs
    }

    /// Bytes of workspace a call needs.
    pub fn workspace_bytes(&self) -> usize {
        self.workspace_bytes
    }

    /// A fresh workspace for calling this function.
    pub fn workspace(&self) -> Workspace {
        Workspace { buf: vec![0u128; self.workspace_bytes.div_ceil(16)], owner: self.id }
    }

    /// Runs the function: checks the workspace, the number, dtype and length of every input
    /// and output slice, then calls the native code, which writes every output element.
    pub fn call(&self, ws: &mut Workspace, inputs: &[ArgRef<'_>], outputs: &mut [ArgMut<'_>]) -> Result<(), CodegenError> {
        if ws.owner != self.id || ws.buf.len() * 16 < self.workspace_bytes {
            return Err(CodegenError::ForeignWorkspace);
        }
        if inputs.len() != self.inputs.len() {
            return Err(CodegenError::ArgCount { what: "inputs", expected: self.inputs.len(), got: inputs.len() });
        }
        if outputs.len() != self.outputs.len() {
            return Err(CodegenError::ArgCount { what: "outputs", expected: self.outputs.len(), got: outputs.len() });
        }
        for (k, (arg, (name, ty))) in inputs.iter().zip(&self.inputs).enumerate() {
            if arg.dtype() != ty.dtype || arg.len() != ty.shape.size() {
                return Err(CodegenError::ArgMismatch {
                    what: "input",
                    index: k,
                    name: format!("%{name}: {ty}"),
                    expected: describe(ty.dtype, ty.shape.size()),
                    got: describe(arg.dtype(), arg.len()),
                });
            }
        }
        for (k, (arg, ty)) in outputs.iter().zip(&self.outputs).enumerate() {
            if arg.dtype() != ty.dtype || arg.len() != ty.shape.size() {
                return Err(CodegenError::ArgMismatch {
                    what: "output",
                    index: k,
                    name: format!("#{k}: {ty}"),
                    expected: describe(ty.dtype, ty.shape.size()),
                    got: describe(arg.dtype(), arg.len()),
                });
            }
        }
        let ins: SmallVec<[*const u8; 8]> = inputs.iter().map(ArgRef::ptr).collect();
        let outs: SmallVec<[*mut u8; 8]> = outputs.iter_mut().map(ArgMut::ptr).collect();
        // SAFETY: every slice has the dtype and length the code was generated for (checked
        // above), the workspace is this function's and large enough, the output slices are
        // exclusive borrows (so they alias neither each other nor the inputs), and the module
        // holding the code lives as long as `self`.
        let status = unsafe { self.run_raw(ins.as_ptr(), outs.as_ptr(), ws) };
        self.status(status)
    }

    /// Calls the native code with pointer tables.
    ///
    /// # Safety
    /// `inputs` and `outputs` must point to tables of one pointer per input/output, each
    /// addressing a buffer of that argument's dtype and size; outputs must not overlap
    /// anything else; `ws` must be this function's workspace.
    pub(crate) unsafe fn run_raw(&self, inputs: *const *const u8, outputs: *const *mut u8, ws: &mut Workspace) -> i32 {
        let ws = ws.buf.as_mut_ptr().cast();
        for entry in &self.entries {
            // SAFETY: forwarded from this function's contract; the parts run in step order,
            // and a failed check stops the run as it would stop the whole program.
            let status = unsafe { entry(inputs, outputs, ws) };
            if status != 0 {
                return status;
            }
        }
        0
    }

    /// The call's result from the native status code.
    pub(crate) fn status(&self, status: i32) -> Result<(), CodegenError> {
        match status {
            0 => Ok(()),
            code => {
                let what = usize::try_from(code - 1).ok().and_then(|i| self.checks.get(i));
                Err(CodegenError::Runtime(what.cloned().unwrap_or_else(|| format!("check {code}"))))
            }
        }
    }

    pub(crate) fn workspace_owner(&self) -> u64 {
        self.id
    }

    /// Convenience for tests and tools: runs on interpreter values (allocates the outputs).
    pub fn call_values(&self, inputs: &[Value]) -> Result<Vec<Value>, CodegenError> {
        let owned: Vec<Value> = inputs.iter().map(standard_layout).collect();
        let refs: Vec<ArgRef<'_>> = owned
            .iter()
            .map(|v| match v {
                Value::F64(a) => ArgRef::F64(a.as_slice().unwrap_or(&[])),
                Value::I64(a) => ArgRef::I64(a.as_slice().unwrap_or(&[])),
                Value::Bool(a) => ArgRef::Bool(a.as_slice().unwrap_or(&[])),
            })
            .collect();
        let mut results: Vec<Value> = self
            .outputs
            .iter()
            .map(|t| {
                let dims = t.shape.dims().to_vec();
                match t.dtype {
                    DType::F64 => Value::F64(ArrayD::zeros(dims)),
                    DType::I64 => Value::I64(ArrayD::zeros(dims)),
                    DType::Bool => Value::Bool(ArrayD::from_elem(dims, false)),
                }
            })
            .collect();
        {
            let mut outs: Vec<ArgMut<'_>> = results
                .iter_mut()
                .map(|v| match v {
                    Value::F64(a) => ArgMut::F64(a.as_slice_mut().unwrap_or(&mut [])),
                    Value::I64(a) => ArgMut::I64(a.as_slice_mut().unwrap_or(&mut [])),
                    Value::Bool(a) => ArgMut::Bool(a.as_slice_mut().unwrap_or(&mut [])),
                })
                .collect();
            let mut ws = self.workspace();
            self.call(&mut ws, &refs, &mut outs)?;
        }
        Ok(results)
    }

    /// Convenience mirroring the interpreter's `eval`: inputs by name.
    pub fn call_named(&self, inputs: &std::collections::HashMap<String, Value>) -> Result<Vec<Value>, CodegenError> {
        let ordered = self
            .inputs
            .iter()
            .enumerate()
            .map(|(k, (name, ty))| {
                inputs.get(name).cloned().ok_or_else(|| CodegenError::ArgMismatch {
                    what: "input",
                    index: k,
                    name: format!("%{name}"),
                    expected: ty.to_string(),
                    got: "nothing".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.call_values(&ordered)
    }
}

/// A copy of `v` in row-major order (so `as_slice` succeeds).
fn standard_layout(v: &Value) -> Value {
    match v {
        Value::F64(a) => Value::F64(a.as_standard_layout().into_owned()),
        Value::I64(a) => Value::I64(a.as_standard_layout().into_owned()),
        Value::Bool(a) => Value::Bool(a.as_standard_layout().into_owned()),
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(module) = module {
            // SAFETY: the entry pointer is only reachable through `&self`, and `drop` has
            // exclusive access, so no call is running and none can start afterwards.
            unsafe { module.free_memory() };
        }
    }
}
