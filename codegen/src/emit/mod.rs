//! The emitter: a [`Program`] to Cranelift functions
//! `fn(inputs: *const *const u8, outputs: *const *mut u8, workspace: *mut u8) -> i32`
//! (one per part of its steps) that return 0, or the 1-based code of the run-time check that failed.

mod nest;
mod scalar;
pub(crate) mod vecmath;

use rustc_hash::FxHashMap;

use cranelift_codegen::ir::{
    AbiParam, Block, ConstantData, FuncRef, Function, InstBuilder, InstructionData, MemFlagsData, Opcode, Type, Value, ValueDef, types,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use tessera_graph::{ConstData, DType};

use crate::CodegenError;
use crate::kernel::{Base, Call, Program, Step, Strided, elem_size};
use crate::runtime::{self, Ty};

/// Code-generation choices (derived from the compile options and the host CPU).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EmitOptions {
    /// Emit f64x2 loops for f64 elementwise and reduction work.
    pub vectorize: bool,
    /// Inline vector exp/log/log1p (and the functions built on them) in vector loops.
    pub inline_math: bool,
    /// The CPU has FMA: polynomial steps use fused multiply-add.
    pub fma: bool,
}

/// The Cranelift type of one element of `dtype` in registers (bool is an i8 holding 0 or 1).
pub(crate) fn clif_type(dtype: DType) -> Type {
    match dtype {
        DType::F64 => types::F64,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
    }
}

/// Memory flags of loads and stores of one element (never trapping: buffers are sized by the
/// planner and checked by the safe wrapper; inputs and constants are never written).
pub(crate) fn flags_of(base: Base) -> MemFlagsData {
    match base {
        Base::Input(_) | Base::Const(_) => MemFlagsData::trusted().with_readonly(),
        Base::Output(_) | Base::Workspace(_) => MemFlagsData::trusted(),
    }
}

/// What a value made once per block is (see [`Emitter::cached`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    /// A constant of a type, by bits.
    Const(Type, u128),
    /// A buffer's address plus a byte offset.
    Address(Base, i64),
    /// `i · bytes`.
    Scaled(Value, i64),
    /// `a + b`.
    Sum(Value, Value),
    /// The index loaded from an address (a kernel never writes the index buffers it reads).
    Index(Value),
    /// `e^−|x|` (shared by softplus, log-sigmoid and sigmoid of `x` and of `−x`).
    ExpNegAbs(Value),
}

/// Builds the body of one function.
pub(crate) struct Emitter<'a> {
    pub(crate) b: FunctionBuilder<'a>,
    module: &'a mut JITModule,
    funcs: FxHashMap<&'static str, FuncRef>,
    args: [Value; 3],
    err: Block,
    err_used: bool,
    consts: &'a [ConstData],
    pub(crate) opts: EmitOptions,
    ptr: Type,
    /// Values already made in `cache_block` (see [`Emitter::cached`]).
    block_cache: FxHashMap<CacheKey, Value>,
    cache_block: Option<Block>,
}

/// Emits the steps of `program` from its first, into a new function of the entry signature,
/// until the function has at least `budget` CLIF instructions (at a step boundary) or the
/// steps run out. Returns the function and how many steps it holds. Steps share nothing but
/// memory, so a program split into parts computes what the whole does when the parts run in
/// order and each stops at the first failed check.
pub(crate) fn emit_part(
    program: &Program,
    steps: &[Step],
    module: &mut JITModule,
    fctx: &mut FunctionBuilderContext,
    opts: EmitOptions,
    budget: usize,
) -> Result<(Function, usize), CodegenError> {
    let ptr = module.target_config().pointer_type();
    let frontend = module.target_config();
    let mut func = Function::new();
    func.signature = module.make_signature();
    for _ in 0..3 {
        func.signature.params.push(AbiParam::new(ptr));
    }
    func.signature.returns.push(AbiParam::new(types::I32));
    let mut b = FunctionBuilder::new(&mut func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry);
    let args = [params[0], params[1], params[2]];
    let err = b.create_block();
    b.append_block_param(err, types::I32);
    b.set_cold_block(err);
    let mut em = Emitter {
        b,
        module,
        funcs: FxHashMap::default(),
        args,
        err,
        err_used: false,
        consts: &program.consts,
        opts,
        ptr,
        block_cache: FxHashMap::default(),
        cache_block: None,
    };
    let mut taken = 0;
    for step in steps {
        match step {
            Step::Kernel(k) => em.kernel(k)?,
            Step::Call(c) => em.call_step(c)?,
        }
        taken += 1;
        if em.b.func.dfg.num_insts() >= budget {
            break;
        }
    }
    let ok = em.b.ins().iconst(types::I32, 0);
    em.b.ins().return_(&[ok]);
    if em.err_used {
        em.b.switch_to_block(em.err);
        em.b.seal_block(em.err);
        let code = em.b.block_params(em.err)[0];
        em.b.ins().return_(&[code]);
    }
    em.b.finalize(frontend);
    Ok((func, taken))
}

impl Emitter<'_> {
    /// The address of buffer `base`.
    fn base_ptr(&mut self, base: Base) -> Value {
        let table_flags = MemFlagsData::trusted().with_readonly();
        match base {
            Base::Input(k) => self.b.ins().load(self.ptr, table_flags, self.args[0], (8 * k) as i32),
            Base::Output(k) => self.b.ins().load(self.ptr, table_flags, self.args[1], (8 * k) as i32),
            Base::Workspace(off) => self.add_imm(self.args[2], off as i64),
            Base::Const(k) => {
                let addr = match &self.consts[k] {
                    ConstData::F64(v) => v.as_ptr() as i64,
                    ConstData::I64(v) => v.as_ptr() as i64,
                    ConstData::Bool(v) => v.as_ptr() as i64,
                };
                self.b.ins().iconst(self.ptr, addr)
            }
        }
    }

    /// The address of element `(0, …, 0)` of a strided view.
    fn start_ptr(&mut self, s: &Strided) -> Value {
        let bytes = s.offset * elem_size(s.dtype) as i64;
        self.cached(CacheKey::Address(s.base, bytes), |em| {
            let base = em.base_ptr(s.base);
            em.add_imm(base, bytes)
        })
    }

    /// `ptr + i · bytes`, folded to one add (or none) when `i` is a constant.
    fn advance(&mut self, ptr: Value, i: Value, bytes: i64) -> Value {
        if bytes == 0 {
            return ptr;
        }
        if let Some(off) = self.known_int(i).and_then(|c| c.checked_mul(bytes)) {
            return self.add_imm(ptr, off);
        }
        let off = self.cached(CacheKey::Scaled(i, bytes), |em| {
            if bytes > 0 && (bytes as u64).is_power_of_two() {
                let shift = em.int(i64::from(bytes.trailing_zeros()));
                em.b.ins().ishl(i, shift)
            } else {
                em.b.ins().imul_imm_s(i, bytes)
            }
        });
        self.cached(CacheKey::Sum(ptr, off), |em| em.b.ins().iadd(ptr, off))
    }

    /// `v + k` for an integer or pointer `v`, folded at emission when `v` is a constant or a
    /// constant offset of another value. Straight-line kernels compute thousands of
    /// addresses: left to Cranelift, each costs three instructions to build and then fold.
    fn add_imm(&mut self, v: Value, k: i64) -> Value {
        if k == 0 {
            return v;
        }
        let ty = self.b.func.dfg.value_type(v);
        if let Some(c) = self.known_int(v) {
            return self.iconst(ty, c.wrapping_add(k));
        }
        let (base, sum) = match self.constant_offset(v) {
            Some((base, c)) => (base, c.wrapping_add(k)),
            None => (v, k),
        };
        if sum == 0 {
            return base;
        }
        let c = self.iconst(ty, sum);
        self.cached(CacheKey::Sum(base, c), |em| em.b.ins().iadd(base, c))
    }

    /// The value of `v` if it is an `iconst`.
    fn known_int(&self, v: Value) -> Option<i64> {
        let ValueDef::Result(inst, 0) = self.b.func.dfg.value_def(v) else { return None };
        match self.b.func.dfg.insts[inst] {
            InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } => Some(imm.bits()),
            _ => None,
        }
    }

    /// `(x, c)` if `v` is `iadd x, c` with `c` an `iconst`.
    fn constant_offset(&self, v: Value) -> Option<(Value, i64)> {
        let ValueDef::Result(inst, 0) = self.b.func.dfg.value_def(v) else { return None };
        match self.b.func.dfg.insts[inst] {
            InstructionData::Binary { opcode: Opcode::Iadd, args: [x, c] } => Some((x, self.known_int(c)?)),
            _ => None,
        }
    }

    /// A reference to registered function `name`, declared in this function on first use.
    fn func(&mut self, name: &'static str) -> Result<FuncRef, CodegenError> {
        if let Some(&f) = self.funcs.get(name) {
            return Ok(f);
        }
        let (params, returns) = runtime::signature_of(name)
            .ok_or_else(|| CodegenError::Cranelift(format!("no registered function {name}")))?;
        let mut sig = self.module.make_signature();
        let ty = |t: &Ty| match t {
            Ty::F64 => types::F64,
            Ty::I64 => types::I64,
            Ty::Ptr => self.ptr,
        };
        sig.params.extend(params.iter().map(|t| AbiParam::new(ty(t))));
        sig.returns.extend(returns.iter().map(|t| AbiParam::new(ty(t))));
        let id = self
            .module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(|e| CodegenError::Cranelift(e.to_string()))?;
        let f = self.module.declare_func_in_func(id, self.b.func);
        self.funcs.insert(name, f);
        Ok(f)
    }

    /// Calls registered function `name` and returns its results.
    fn call(&mut self, name: &'static str, args: &[Value]) -> Result<Vec<Value>, CodegenError> {
        let f = self.func(name)?;
        let inst = self.b.ins().call(f, args);
        Ok(self.b.inst_results(inst).to_vec())
    }

    /// Branches to the error exit with `code` unless `ok` is true; continues in a new block.
    fn check(&mut self, ok: Value, code: u32) {
        self.err_used = true;
        let cont = self.b.create_block();
        let code = self.b.ins().iconst(types::I32, i64::from(code));
        let err = self.err;
        self.b.ins().brif(ok, cont, &[], err, &[code.into()]);
        self.b.switch_to_block(cont);
        self.b.seal_block(cont);
    }

    fn int(&mut self, x: i64) -> Value {
        self.iconst(types::I64, x)
    }

    /// An integer constant of type `ty` (made once per block).
    fn iconst(&mut self, ty: Type, x: i64) -> Value {
        self.cached(CacheKey::Const(ty, x as u64 as u128), |em| em.b.ins().iconst(ty, x))
    }

    /// A two-lane vector constant with both 64-bit lanes `lane`, from the constant pool.
    pub(crate) fn splat_const(&mut self, ty: Type, lane: u64) -> Value {
        let bits = u128::from(lane) * ((1 << 64) + 1);
        self.cached(CacheKey::Const(ty, bits), |em| {
            let handle = em.b.func.dfg.constants.insert(ConstantData::from(bits.to_le_bytes().as_slice()));
            em.b.ins().vconst(ty, handle)
        })
    }

    /// The value `key` made by `make`, or the same value made earlier in the current block
    /// (which dominates the rest of the block; other blocks make their own): unrolled vector
    /// math repeats dozens of coefficients per element, fused loops address one buffer
    /// through several streams, and a gather and a scatter-add read the same index.
    pub(crate) fn cached(&mut self, key: CacheKey, make: impl FnOnce(&mut Self) -> Value) -> Value {
        let block = self.b.current_block();
        if block != self.cache_block {
            self.block_cache.clear();
            self.cache_block = block;
        }
        if let Some(&v) = self.block_cache.get(&key) {
            return v;
        }
        let v = make(self);
        self.block_cache.insert(key, v);
        v
    }

    /// Forgets the loaded indices: a later kernel may reuse an index buffer's workspace.
    pub(crate) fn forget_loaded_indices(&mut self) {
        self.block_cache.retain(|k, _| !matches!(k, CacheKey::Index(_)));
    }

    /// `ptrs[s] + i · bytes[s]` for every stream (equal products and sums made once).
    fn advance_all(&mut self, ptrs: &[Value], i: Value, bytes: &[i64]) -> Vec<Value> {
        ptrs.iter().zip(bytes).map(|(&p, &b)| self.advance(p, i, b)).collect()
    }

    fn call_step(&mut self, call: &Call) -> Result<(), CodegenError> {
        match call {
            Call::Cholesky { n, a, out } => {
                let (pa, po) = (self.start_ptr(a), self.start_ptr(out));
                let (rs, cs, n) = (self.int(a.strides[0]), self.int(a.strides[1]), self.int(*n as i64));
                self.call("tessera_cholesky", &[pa, rs, cs, n, po])?;
            }
            Call::TriangularSolve { lower, n, m, a, b, out } => {
                let mut args = vec![self.int(i64::from(*lower)), self.int(*n as i64), self.int(*m as i64)];
                for s in [a, b, out] {
                    let p = self.start_ptr(s);
                    args.push(p);
                    args.push(self.int(s.strides[0]));
                    args.push(self.int(s.strides[1]));
                }
                self.call("tessera_trisolve", &args)?;
            }
            Call::Dgemm { m, k, n, a, b, out } => {
                let mut args = vec![self.int(*m as i64), self.int(*k as i64), self.int(*n as i64)];
                for s in [a, b, out] {
                    let p = self.start_ptr(s);
                    args.push(p);
                    args.push(self.int(s.strides[0]));
                    args.push(self.int(s.strides[1]));
                }
                self.call("tessera_dgemm", &args)?;
            }
        }
        Ok(())
    }
}
