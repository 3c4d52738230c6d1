//! Kernels to loop nests: normalization of the iteration domain (drop extent-1 axes, order
//! axes so the innermost one is the most contiguous, merge axes that are contiguous together),
//! then one counted loop per axis with pointer arithmetic by strides, an f64x2 inner loop
//! with a scalar tail where the kernel allows it, and accumulation in registers for
//! reductions whose reduced axes are innermost (read-modify-write of the output otherwise).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::Variable;
use smallvec::SmallVec;
use tessera_graph::DType;

use super::scalar::{Lanes, vectorizable};
use super::{Emitter, clif_type, flags_of};
use crate::CodegenError;
use crate::expr::{Expr, Scalar};
use crate::kernel::{Combine, Indexed, Kernel, Leaf, Mode, Output, Strided, elem_size};

/// Removes the domain axes whose `keep` flag is false.
fn retain_axes(k: &mut Kernel, keep: &[bool]) {
    let filter = |v: &[usize]| v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    k.domain = filter(&k.domain);
    if let Mode::Reduce { reduced, .. } = &mut k.mode {
        *reduced = reduced.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    }
    for s in k.strided_mut() {
        s.strides = s.strides.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    }
}

/// Whether axes `a` and `a + 1` can be walked as one axis.
fn mergeable(k: &mut Kernel, a: usize) -> bool {
    let inner = k.domain[a + 1] as i64;
    let same_kind = match &k.mode {
        Mode::Reduce { reduced, .. } => reduced[a] == reduced[a + 1],
        _ => true,
    };
    same_kind && k.strided_mut().iter().all(|s| s.strides[a] == s.strides[a + 1] * inner)
}

fn merge(k: &mut Kernel, a: usize) {
    k.domain[a] *= k.domain[a + 1];
    k.domain.remove(a + 1);
    if let Mode::Reduce { reduced, .. } = &mut k.mode {
        reduced.remove(a + 1);
    }
    for s in k.strided_mut() {
        s.strides[a] = s.strides[a + 1];
        s.strides.remove(a + 1);
    }
}

/// The kernel with its domain normalized (same semantics, fewer and better-ordered loops).
pub(crate) fn normalize(kernel: &Kernel) -> Kernel {
    let mut k = kernel.clone();
    let scan = k.mode == Mode::Scan;
    let rank = k.domain.len();
    let keep: Vec<bool> = (0..rank).map(|a| k.domain[a] != 1 || (scan && a + 1 == rank)).collect();
    retain_axes(&mut k, &keep);
    if scan && k.domain.last() == Some(&1) {
        // A scan over one element is a copy.
        k.mode = Mode::Map;
        let keep: Vec<bool> = (0..k.domain.len()).map(|a| a + 1 != k.domain.len()).collect();
        retain_axes(&mut k, &keep);
    }
    let scan = k.mode == Mode::Scan;
    let rank = k.domain.len();
    let movable = if scan { rank.saturating_sub(1) } else { rank };
    // Larger total stride → further out; ties keep the graph's order.
    let keys: Vec<i64> = {
        let all = k.strided_mut();
        (0..rank).map(|a| all.iter().map(|s| s.strides[a].abs()).sum()).collect()
    };
    let mut perm: Vec<usize> = (0..movable).collect();
    perm.sort_by_key(|&a| std::cmp::Reverse(keys[a]));
    perm.extend(movable..rank);
    k.permute_domain(&perm);
    let mut a = movable;
    while a >= 2 {
        a -= 1;
        if mergeable(&mut k, a - 1) {
            merge(&mut k, a - 1);
        }
    }
    k
}

/// One strided access walked by the loop nest.
struct Stream {
    /// Byte stride per domain axis.
    strides: SmallVec<[i64; 4]>,
}

/// How the element body uses the expression's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Store (or scatter-add).
    Map,
    /// Combine into the accumulator variable.
    Register,
    /// Combine into the output in memory.
    Rmw,
    /// Running sum along the last axis, stored at every element.
    Scan,
}

/// Everything the recursive loop emitter needs about one kernel.
struct Nest<'k> {
    k: &'k Kernel,
    streams: Vec<Stream>,
    /// First stream of each leaf (a gather leaf has data then index).
    leaf_stream: Vec<usize>,
    /// First stream of the output.
    out_stream: usize,
    body: Body,
    combine: Combine,
    dtype: DType,
    acc: Option<Variable>,
    /// Level at which the register accumulator starts (reductions and scans).
    acc_level: usize,
    vector: bool,
    unroll: usize,
}

fn stream_of(s: &Strided) -> Stream {
    let size = elem_size(s.dtype) as i64;
    Stream { strides: s.strides.iter().map(|&x| x * size).collect() }
}

impl Emitter<'_> {
    /// Emits one kernel.
    pub(crate) fn kernel(&mut self, kernel: &Kernel) -> Result<(), CodegenError> {
        let k = normalize(kernel);
        let rank = k.domain.len();
        let dtype = k.expr.dtype();
        let (body, combine, acc_level) = match &k.mode {
            Mode::Map => (Body::Map, Combine::Sum, rank),
            Mode::Scan => (Body::Scan, Combine::Sum, rank - 1),
            Mode::Reduce { finish, reduced, .. } if !reduced.contains(&true) => {
                // Nothing left to reduce (only extent-1 axes were): a map of finish ∘ expr.
                let mut expr = k.expr.clone();
                if let Some(f) = finish {
                    let root = expr.root;
                    expr.splice(f, &[root]);
                }
                let map = Kernel { expr, mode: Mode::Map, ..k.clone() };
                return self.run(&map, Body::Map, Combine::Sum, rank);
            }
            Mode::Reduce { combine, reduced, finish } => {
                let first = reduced.iter().position(|&r| r).unwrap_or(rank);
                if reduced[first..].iter().all(|&r| r) {
                    (Body::Register, *combine, first)
                } else {
                    self.fill_output(&k, *combine, dtype)?;
                    self.run(&k, Body::Rmw, *combine, rank)?;
                    if let Some(f) = finish {
                        self.finish_output(&k, f)?;
                    }
                    return Ok(());
                }
            }
        };
        self.run(&k, body, combine, acc_level)
    }

    /// Writes the identity of `combine` into every output element of reduction `k`.
    fn fill_output(&mut self, k: &Kernel, combine: Combine, dtype: DType) -> Result<(), CodegenError> {
        let id = match (combine, dtype) {
            (Combine::Sum, DType::I64) => Scalar::I64(0),
            (Combine::Prod, DType::I64) => Scalar::I64(1),
            (Combine::Max, DType::I64) => Scalar::I64(i64::MIN),
            (Combine::Min, DType::I64) => Scalar::I64(i64::MAX),
            (Combine::Sum, _) => Scalar::F64(0.0),
            (Combine::Prod, _) => Scalar::F64(1.0),
            (Combine::Max, _) => Scalar::F64(f64::NEG_INFINITY),
            (Combine::Min, _) => Scalar::F64(f64::INFINITY),
        };
        let fill = self.output_kernel(k, Vec::new(), Expr::constant(id))?;
        self.kernel(&fill)
    }

    /// Applies a reduction's `finish` expression to its output in place.
    fn finish_output(&mut self, k: &Kernel, finish: &Expr) -> Result<(), CodegenError> {
        let Output::Direct(out) = &k.out else {
            return Err(CodegenError::Cranelift("a reduction must have a direct output".into()));
        };
        let kk = self.output_kernel(k, vec![Leaf::Direct(out.clone())], finish.clone())?;
        self.kernel(&kk)
    }

    /// A map kernel over the non-reduced axes of reduction `k`, writing its output.
    fn output_kernel(&mut self, k: &Kernel, leaves: Vec<Leaf>, expr: Expr) -> Result<Kernel, CodegenError> {
        let (Mode::Reduce { reduced, .. }, Output::Direct(out)) = (&k.mode, &k.out) else {
            return Err(CodegenError::Cranelift("not a reduction with a direct output".into()));
        };
        let keep: Vec<bool> = reduced.iter().map(|r| !r).collect();
        let mut kk = Kernel {
            domain: k.domain.clone(),
            leaves,
            expr,
            out: Output::Direct(out.clone()),
            mode: Mode::Reduce { combine: Combine::Sum, reduced: reduced.clone(), finish: None },
            label: k.label.clone(),
        };
        retain_axes(&mut kk, &keep);
        kk.mode = Mode::Map;
        Ok(kk)
    }

    fn run(&mut self, k: &Kernel, body: Body, combine: Combine, acc_level: usize) -> Result<(), CodegenError> {
        let mut streams = Vec::new();
        let mut leaf_stream = Vec::new();
        let mut ptrs = Vec::new();
        let mut add = |em: &mut Self, s: &Strided, streams: &mut Vec<Stream>| {
            streams.push(stream_of(s));
            ptrs.push(em.start_ptr(s));
        };
        for leaf in &k.leaves {
            leaf_stream.push(streams.len());
            match leaf {
                Leaf::Direct(s) => add(self, s, &mut streams),
                Leaf::Gather(ix) => {
                    add(self, &ix.data, &mut streams);
                    add(self, &ix.index, &mut streams);
                }
            }
        }
        let out_stream = streams.len();
        match &k.out {
            Output::Direct(s) => add(self, s, &mut streams),
            Output::Scatter(ix) => {
                add(self, &ix.data, &mut streams);
                add(self, &ix.index, &mut streams);
            }
        }
        let dtype = k.expr.dtype();
        let acc = matches!(body, Body::Register | Body::Scan).then(|| self.b.declare_var(clif_type(dtype)));
        // A vector read-modify-write needs distinct output lanes.
        let out_inner = streams[out_stream].strides.last().copied();
        let vector = body != Body::Scan && self.can_vectorize(k) && !(body == Body::Rmw && out_inner == Some(0));
        let unroll = if body == Body::Register { 2 } else { 1 };
        let nest = Nest { k, streams, leaf_stream, out_stream, body, combine, dtype, acc, acc_level, vector, unroll };
        self.level(&nest, 0, &ptrs)
    }

    fn can_vectorize(&self, k: &Kernel) -> bool {
        let direct_f64 = |s: &Strided| s.dtype == DType::F64;
        self.opts.vectorize
            && k.domain.last().is_some_and(|&n| n >= 4)
            && k.leaves.iter().all(|l| matches!(l, Leaf::Direct(s) if direct_f64(s)))
            && matches!(&k.out, Output::Direct(s) if direct_f64(s))
            && vectorizable(&k.expr)
    }

    /// Emits the loops from `level` inward, with `ptrs` the current address of each stream.
    fn level(&mut self, n: &Nest<'_>, level: usize, ptrs: &[Value]) -> Result<(), CodegenError> {
        let rank = n.k.domain.len();
        if level == n.acc_level
            && let Some(acc) = n.acc
        {
            let init = self.identity(n.combine, n.dtype, Lanes::One);
            self.b.def_var(acc, init);
        }
        if level == rank {
            self.element(n, ptrs, Lanes::One)?;
        } else if level + 1 == rank && n.vector {
            self.vector_level(n, level, ptrs)?;
        } else {
            let bytes: Vec<i64> = n.streams.iter().map(|s| s.strides[level]).collect();
            self.counted_loop(n.k.domain[level], 1, |em, i| {
                let inner: Vec<Value> = ptrs.iter().zip(&bytes).map(|(&p, &b)| em.advance(p, i, b)).collect();
                em.level(n, level + 1, &inner)
            })?;
        }
        if level == n.acc_level
            && n.body == Body::Register
            && let Some(acc) = n.acc
        {
            let v = self.b.use_var(acc);
            let v = match &n.k.mode {
                Mode::Reduce { finish: Some(f), .. } => self.expr(f, &[v], Lanes::One)?,
                _ => v,
            };
            self.store_out(n, ptrs, v, Lanes::One);
        }
        Ok(())
    }

    /// The innermost level two lanes at a time (`unroll` vectors per iteration), then the
    /// remaining pairs and the odd element.
    fn vector_level(&mut self, n: &Nest<'_>, level: usize, ptrs: &[Value]) -> Result<(), CodegenError> {
        let len = n.k.domain[level];
        let bytes: Vec<i64> = n.streams.iter().map(|s| s.strides[level]).collect();
        let reducing = n.body == Body::Register;
        let vaccs: Vec<Variable> = if reducing {
            (0..n.unroll)
                .map(|_| {
                    let v = self.b.declare_var(types::F64X2);
                    let init = self.identity(n.combine, n.dtype, Lanes::Two);
                    self.b.def_var(v, init);
                    v
                })
                .collect()
        } else {
            Vec::new()
        };
        let block = 2 * n.unroll;
        let trips = len / block;
        let at = |em: &mut Self, i: Value| -> Vec<Value> {
            ptrs.iter().zip(&bytes).map(|(&p, &b)| em.advance(p, i, b)).collect()
        };
        self.counted_loop(trips, block as i64, |em, i| {
            for u in 0..n.unroll {
                let iu = em.b.ins().iadd_imm_s(i, 2 * u as i64);
                let p = at(em, iu);
                em.vector_element(n, &p, &bytes, vaccs.get(u).copied())?;
            }
            Ok(())
        })?;
        let mut done = trips * block;
        let mut u = 0;
        while done + 2 <= len {
            let i = self.int(done as i64);
            let p = at(self, i);
            self.vector_element(n, &p, &bytes, vaccs.get(u).copied())?;
            done += 2;
            u = (u + 1) % n.unroll;
        }
        if reducing && let Some(acc) = n.acc {
            let mut total = self.b.use_var(vaccs[0]);
            for &v in &vaccs[1..] {
                let x = self.b.use_var(v);
                total = self.combine(n.combine, n.dtype, total, x);
            }
            let lo = self.b.ins().extractlane(total, 0);
            let hi = self.b.ins().extractlane(total, 1);
            let a = self.b.use_var(acc);
            let a = self.combine(n.combine, n.dtype, a, lo);
            let a = self.combine(n.combine, n.dtype, a, hi);
            self.b.def_var(acc, a);
        }
        if done < len {
            let i = self.int(done as i64);
            let p = at(self, i);
            self.element(n, &p, Lanes::One)?;
        }
        Ok(())
    }

    /// `for i in (0..trips·step).step_by(step) { f(i) }` as a bottom-tested loop.
    fn counted_loop(
        &mut self,
        trips: usize,
        step: i64,
        mut f: impl FnMut(&mut Self, Value) -> Result<(), CodegenError>,
    ) -> Result<(), CodegenError> {
        match trips {
            0 => return Ok(()),
            1 => {
                let zero = self.int(0);
                return f(self, zero);
            }
            _ => {}
        }
        let var = self.b.declare_var(types::I64);
        let zero = self.int(0);
        self.b.def_var(var, zero);
        let head = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let i = self.b.use_var(var);
        f(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        let more = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, next, trips as i64 * step);
        self.b.ins().brif(more, head, &[], exit, &[]);
        self.b.seal_block(head);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        Ok(())
    }

    /// The address of the element an indexed access reads or writes, with its bounds check.
    fn indexed_addr(&mut self, ix: &Indexed, data: Value, index: Value) -> Value {
        let idx = self.b.ins().load(types::I64, flags_of(ix.index.base), index, 0);
        if let Some(code) = ix.check {
            let ok = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, idx, ix.axis_len as i64);
            self.check(ok, code);
        }
        let bytes = ix.axis_stride * elem_size(ix.data.dtype) as i64;
        self.advance(data, idx, bytes)
    }

    /// One scalar element: load the leaves, evaluate, and store/accumulate.
    fn element(&mut self, n: &Nest<'_>, ptrs: &[Value], lanes: Lanes) -> Result<(), CodegenError> {
        let mut vals = Vec::with_capacity(n.k.leaves.len());
        for (leaf, &s) in n.k.leaves.iter().zip(&n.leaf_stream) {
            let v = match leaf {
                Leaf::Direct(st) => self.b.ins().load(clif_type(st.dtype), flags_of(st.base), ptrs[s], 0),
                Leaf::Gather(ix) => {
                    let addr = self.indexed_addr(ix, ptrs[s], ptrs[s + 1]);
                    self.b.ins().load(clif_type(ix.data.dtype), flags_of(ix.data.base), addr, 0)
                }
            };
            vals.push(v);
        }
        let v = self.expr(&n.k.expr, &vals, lanes)?;
        match n.body {
            Body::Map => self.store_out(n, ptrs, v, lanes),
            Body::Register => {
                if let Some(acc) = n.acc {
                    let a = self.b.use_var(acc);
                    let a = self.combine(n.combine, n.dtype, a, v);
                    self.b.def_var(acc, a);
                }
            }
            Body::Rmw => {
                let (ty, flags, p) = self.out_slot(n, ptrs);
                let old = self.b.ins().load(ty, flags, p, 0);
                let new = self.combine(n.combine, n.dtype, old, v);
                self.b.ins().store(flags, new, p, 0);
            }
            Body::Scan => {
                if let Some(acc) = n.acc {
                    let a = self.b.use_var(acc);
                    let a = self.combine(Combine::Sum, n.dtype, a, v);
                    self.b.def_var(acc, a);
                    self.store_out(n, ptrs, a, lanes);
                }
            }
        }
        Ok(())
    }

    /// The type, flags and address of the output element at `ptrs` (direct outputs).
    fn out_slot(&mut self, n: &Nest<'_>, ptrs: &[Value]) -> (types::Type, MemFlagsData, Value) {
        let s = match &n.k.out {
            Output::Direct(s) => s,
            Output::Scatter(ix) => &ix.data,
        };
        (clif_type(s.dtype), flags_of(s.base), ptrs[n.out_stream])
    }

    /// Stores `v` (one element) at the output, or adds it at the scattered index.
    fn store_out(&mut self, n: &Nest<'_>, ptrs: &[Value], v: Value, lanes: Lanes) {
        debug_assert_eq!(lanes, Lanes::One);
        match &n.k.out {
            Output::Direct(s) => {
                let flags = flags_of(s.base);
                self.b.ins().store(flags, v, ptrs[n.out_stream], 0);
            }
            Output::Scatter(ix) => {
                let addr = self.indexed_addr(ix, ptrs[n.out_stream], ptrs[n.out_stream + 1]);
                let flags = flags_of(ix.data.base);
                let old = self.b.ins().load(clif_type(ix.data.dtype), flags, addr, 0);
                let new = self.combine(Combine::Sum, ix.data.dtype, old, v);
                self.b.ins().store(flags, new, addr, 0);
            }
        }
    }

    /// Two f64 lanes starting at `ptrs` (inner byte strides `bytes`).
    fn vector_element(
        &mut self,
        n: &Nest<'_>,
        ptrs: &[Value],
        bytes: &[i64],
        vacc: Option<Variable>,
    ) -> Result<(), CodegenError> {
        let mut vals = Vec::with_capacity(n.k.leaves.len());
        for (leaf, &s) in n.k.leaves.iter().zip(&n.leaf_stream) {
            let Leaf::Direct(st) = leaf else {
                return Err(CodegenError::Cranelift("gather in a vector loop".into()));
            };
            let flags = flags_of(st.base);
            vals.push(self.load_x2(ptrs[s], bytes[s], flags));
        }
        let v = self.expr(&n.k.expr, &vals, Lanes::Two)?;
        let Output::Direct(out) = &n.k.out else {
            return Err(CodegenError::Cranelift("scatter in a vector loop".into()));
        };
        let flags = flags_of(out.base);
        let (p, ob) = (ptrs[n.out_stream], bytes[n.out_stream]);
        match n.body {
            Body::Register => {
                if let Some(acc) = vacc {
                    let a = self.b.use_var(acc);
                    let a = self.combine(n.combine, n.dtype, a, v);
                    self.b.def_var(acc, a);
                }
            }
            Body::Rmw => {
                let old = self.load_x2(p, ob, flags);
                let new = self.combine(n.combine, n.dtype, old, v);
                self.store_x2(p, ob, flags, new);
            }
            Body::Map | Body::Scan => self.store_x2(p, ob, flags, v),
        }
        Ok(())
    }

    /// Loads two f64 lanes `bytes` apart (a vector load, a splat, or two loads).
    fn load_x2(&mut self, p: Value, bytes: i64, flags: MemFlagsData) -> Value {
        // Vector accesses are only 8-byte aligned: never claim alignment for them.
        let vflags = if flags.readonly() { MemFlagsData::new().with_notrap().with_readonly() } else { MemFlagsData::new().with_notrap() };
        match bytes {
            8 => self.b.ins().load(types::F64X2, vflags, p, 0),
            0 => {
                let x = self.b.ins().load(types::F64, flags, p, 0);
                self.b.ins().splat(types::F64X2, x)
            }
            _ => {
                let x0 = self.b.ins().load(types::F64, flags, p, 0);
                let x1 = self.b.ins().load(types::F64, flags, p, bytes as i32);
                let v = self.b.ins().scalar_to_vector(types::F64X2, x0);
                self.b.ins().insertlane(v, x1, 1)
            }
        }
    }

    /// Stores two f64 lanes `bytes` apart.
    fn store_x2(&mut self, p: Value, bytes: i64, flags: MemFlagsData, v: Value) {
        if bytes == 8 {
            self.b.ins().store(MemFlagsData::new().with_notrap(), v, p, 0);
        } else {
            let x0 = self.b.ins().extractlane(v, 0);
            let x1 = self.b.ins().extractlane(v, 1);
            self.b.ins().store(flags, x0, p, 0);
            self.b.ins().store(flags, x1, p, bytes as i32);
        }
    }
}
