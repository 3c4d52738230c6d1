//! Kernels to loop nests: normalization of the iteration domain (drop extent-1 axes, order
//! axes so the innermost one is the most contiguous, merge axes that are contiguous together),
//! then one counted loop per axis with pointer arithmetic by strides, an f64x2 inner loop
//! with a scalar tail where the kernel allows it, and accumulation in registers for
//! reductions whose reduced axes are innermost (read-modify-write of the output otherwise).
//! A kernel with several outputs evaluates its expression once per element for all of them.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::Variable;
use smallvec::SmallVec;
use tessera_graph::DType;

use super::scalar::{Lanes, has_inline_math, vector_cost, vectorizable};
use super::{CacheKey, Emitter, clif_type, flags_of};
use crate::CodegenError;
use crate::expr::Expr;
use crate::kernel::{Combine, Indexed, Kernel, KernelOut, Leaf, Mode, Output, Strided, elem_size};

/// Removes the domain axes whose `keep` flag is false.
fn retain_axes(k: &mut Kernel, keep: &[bool]) {
    k.domain = k.domain.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    for reduced in k.reduced_mut() {
        *reduced = reduced.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    }
    for s in k.strided_mut() {
        s.strides = s.strides.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    }
}

/// Whether axes `a` and `a + 1` can be walked as one axis.
fn mergeable(k: &mut Kernel, a: usize) -> bool {
    let inner = k.domain[a + 1] as i64;
    let same_kind = k.reduced_mut().iter().all(|r| r[a] == r[a + 1]);
    same_kind && k.strided_mut().iter().all(|s| s.strides[a] == s.strides[a + 1] * inner)
}

fn merge(k: &mut Kernel, a: usize) {
    k.domain[a] *= k.domain[a + 1];
    k.domain.remove(a + 1);
    for reduced in k.reduced_mut() {
        reduced.remove(a + 1);
    }
    for s in k.strided_mut() {
        s.strides[a] = s.strides[a + 1];
        s.strides.remove(a + 1);
    }
}

fn is_scan(k: &Kernel) -> bool {
    k.outs.iter().any(|o| o.mode == Mode::Scan)
}

/// The kernel with its domain normalized (same semantics, fewer and better-ordered loops).
pub(crate) fn normalize(kernel: &Kernel) -> Kernel {
    let mut k = kernel.clone();
    let scan = is_scan(&k);
    let rank = k.domain.len();
    let keep: Vec<bool> = (0..rank).map(|a| k.domain[a] != 1 || (scan && a + 1 == rank)).collect();
    retain_axes(&mut k, &keep);
    if scan && k.domain.last() == Some(&1) {
        // A scan over one element is a copy.
        for o in &mut k.outs {
            o.mode = Mode::Map;
        }
        let keep: Vec<bool> = (0..k.domain.len()).map(|a| a + 1 != k.domain.len()).collect();
        retain_axes(&mut k, &keep);
    }
    let scan = is_scan(&k);
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
    // Reductions with nothing left to reduce (only extent-1 axes were) are maps of finish ∘ expr.
    for o in &mut k.outs {
        if let Mode::Reduce { reduced, finish, .. } = &o.mode
            && !reduced.contains(&true)
        {
            if let Some(f) = finish.clone() {
                let root = o.root;
                o.root = k.expr.splice(&f, &[root]);
            }
            o.mode = Mode::Map;
        }
    }
    k
}

/// Vector iterations of an inner loop emitted as straight-line code instead of a loop, at most.
const STRAIGHT_TRIPS: usize = 8;

/// Largest estimated size (CLIF instructions, see [`vector_cost`]) of an unrolled loop body
/// or of an inner loop written out as straight-line code.
const UNROLLED_BODY_COST: usize = 64;

/// The same for a body with inline exp/log: those are long serial polynomial chains, and
/// interleaving four still paid ~10 % on logistic regression's log-likelihood, while
/// unrolling gather-heavy bodies of a quarter that size only added compile time and register
/// pressure (lego).
const UNROLLED_MATH_BODY_COST: usize = 256;

/// How the element body uses an output's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// Store (or scatter-add).
    Store,
    /// Combine into a register accumulator, stored when the reduced loops end.
    Register,
    /// Combine into the output in memory.
    Rmw,
    /// Running sum along the last axis, stored at every element.
    Scan,
}

/// One output as the loop emitter sees it.
struct OutPlan {
    role: Role,
    combine: Combine,
    dtype: DType,
    acc: Option<Variable>,
    /// First stream of the output.
    stream: usize,
    /// A vector scatter's extra accumulation buffers (see [`Indexed::spread`]), where the
    /// lanes of the unrolled vectors go in turn; empty when every update goes to `data`.
    spread: SmallVec<[Value; 4]>,
}

/// Everything the recursive loop emitter needs about one kernel.
struct Nest<'k> {
    k: &'k Kernel,
    /// Byte strides per domain axis of every stream.
    streams: Vec<SmallVec<[i64; 4]>>,
    /// First stream of each leaf (a gather leaf has data then index).
    leaf_stream: Vec<usize>,
    outs: Vec<OutPlan>,
    /// Level at which register accumulators start (reductions and scans).
    acc_level: usize,
    vector: bool,
    unroll: usize,
    /// Estimated CLIF size of one vector evaluation of the body (see [`vector_cost`]).
    cost: usize,
    /// Per leaf, its value when it is one value for the whole domain (a broadcast scalar),
    /// loaded once before the loops (a workspace load inside a loop that stores cannot be
    /// hoisted by Cranelift, nor anything computed from it).
    invariant: Vec<Option<Value>>,
}

/// A register-tiled reduction (see [`Emitter::tile`]).
struct Tile<'k> {
    k: &'k Kernel,
    root: usize,
    /// Byte strides of the leaves, then of the output.
    streams: Vec<SmallVec<[i64; 4]>>,
    /// Vector accumulators of output pairs.
    accs: Vec<Variable>,
    /// Scalar accumulator of the last output when the tile is odd.
    odd: Option<Variable>,
    combine: Combine,
    dtype: DType,
    /// First reduced axis (the accumulators live from here inward).
    first: usize,
    finish: Option<&'k Expr>,
}

fn byte_strides(s: &Strided) -> SmallVec<[i64; 4]> {
    let size = elem_size(s.dtype) as i64;
    s.strides.iter().map(|&x| x * size).collect()
}

/// The first reduced axis, if the reduced axes are exactly the innermost ones.
fn register_level(reduced: &[bool]) -> Option<usize> {
    let first = reduced.iter().position(|&r| r).unwrap_or(reduced.len());
    reduced[first..].iter().all(|&r| r).then_some(first)
}

impl Emitter<'_> {
    /// Emits one kernel.
    pub(crate) fn kernel(&mut self, kernel: &Kernel) -> Result<(), CodegenError> {
        self.forget_loaded_indices();
        let k = normalize(kernel);
        let rank = k.domain.len();
        if k.outs.len() > 1 {
            // Shared loops need one reduction pattern with the reduced axes innermost;
            // otherwise each output gets its own loops.
            let masks: Vec<&SmallVec<[bool; 4]>> = k
                .outs
                .iter()
                .filter_map(|o| match &o.mode {
                    Mode::Reduce { reduced, .. } => Some(reduced),
                    _ => None,
                })
                .collect();
            let level = masks.first().map_or(Some(rank), |m| register_level(m));
            let agree = masks.windows(2).all(|w| w[0] == w[1]);
            let simple = !k.outs.iter().any(|o| o.mode == Mode::Scan);
            if let (Some(level), true, true) = (level, agree, simple) {
                return self.run(&k, level, false);
            }
            for o in &k.outs {
                let single = Kernel { outs: vec![o.clone()], ..k.clone() };
                self.kernel(&single)?;
            }
            return Ok(());
        }
        let Some(o) = k.outs.first() else { return Ok(()) };
        match &o.mode {
            Mode::Map => self.run(&k, rank, false),
            Mode::Scan => self.run(&k, rank - 1, false),
            Mode::Reduce { combine, reduced, finish } => match register_level(reduced) {
                Some(level) => self.run(&k, level, false),
                None if self.tileable(&k) => {
                    let first = reduced.iter().position(|&r| r).unwrap_or(0);
                    self.tile(&k, o, first)
                }
                None => {
                    let dtype = k.expr.nodes[o.root].dtype;
                    let fill = self.output_kernel(&k, o, Vec::new(), Expr::constant(combine.identity(dtype)))?;
                    self.kernel(&fill)?;
                    self.run(&k, rank, true)?;
                    if let (Some(f), Output::Direct(out)) = (finish, &o.out) {
                        let fin = self.output_kernel(&k, o, vec![Leaf::Direct(out.clone())], f.clone())?;
                        self.kernel(&fin)?;
                    }
                    Ok(())
                }
            },
        }
    }

    /// Whether reduction `k` (single output) has the shape `[kept…, reduced…, short kept]`
    /// that [`Emitter::tile`] handles: f64, direct leaves, at most 26 outputs per tile.
    fn tileable(&self, k: &Kernel) -> bool {
        let [o] = k.outs.as_slice() else { return false };
        let Mode::Reduce { reduced, .. } = &o.mode else { return false };
        let rank = reduced.len();
        let Some(first) = reduced.iter().position(|&r| r) else { return false };
        let shape_ok = rank >= 2
            && !reduced[rank - 1]
            && reduced[first..rank - 1].iter().all(|&r| r)
            && (2..=26).contains(&k.domain[rank - 1]);
        shape_ok && k.leaves.iter().all(|l| matches!(l, Leaf::Direct(_))) && self.can_vectorize(k)
    }

    /// A reduction over outer axes into a short innermost output axis (e.g. `rᵀX`): the
    /// outputs of one tile stay in vector registers across the reduced loops, instead of a
    /// read-modify-write of memory per element.
    fn tile(&mut self, k: &Kernel, o: &KernelOut, first: usize) -> Result<(), CodegenError> {
        let Mode::Reduce { combine, finish, .. } = &o.mode else { return Ok(()) };
        let Output::Direct(out) = &o.out else { return Ok(()) };
        let mut streams: Vec<SmallVec<[i64; 4]>> = Vec::new();
        let mut ptrs = Vec::new();
        for leaf in &k.leaves {
            if let Leaf::Direct(s) = leaf {
                streams.push(byte_strides(s));
                ptrs.push(self.start_ptr(s));
            }
        }
        streams.push(byte_strides(out));
        ptrs.push(self.start_ptr(out));
        let dtype = k.expr.nodes[o.root].dtype;
        let n = k.domain[k.domain.len() - 1];
        let accs: Vec<Variable> = (0..n / 2).map(|_| self.b.declare_var(types::F64X2)).collect();
        let odd = (n % 2 == 1).then(|| self.b.declare_var(types::F64));
        let t = Tile { k, root: o.root, streams, accs, odd, combine: *combine, dtype, first, finish: finish.as_ref() };
        self.tile_level(&t, 0, &ptrs, flags_of(out.base))
    }

    fn tile_level(&mut self, t: &Tile<'_>, level: usize, ptrs: &[Value], out_flags: MemFlagsData) -> Result<(), CodegenError> {
        let rank = t.k.domain.len();
        let bytes: Vec<i64> = t.streams.iter().map(|s| s[level]).collect();
        if level == t.first {
            for &a in &t.accs {
                let init = self.identity(t.combine, t.dtype, Lanes::Two);
                self.b.def_var(a, init);
            }
            if let Some(a) = t.odd {
                let init = self.identity(t.combine, t.dtype, Lanes::One);
                self.b.def_var(a, init);
            }
        }
        if level + 1 == rank {
            // The tile itself, unrolled: pairs of outputs, then the odd one.
            for (j, &acc) in t.accs.iter().enumerate() {
                let leaves: Vec<Value> = (0..t.k.leaves.len())
                    .map(|s| {
                        let p = self.add_imm(ptrs[s], 2 * j as i64 * bytes[s]);
                        let flags = match &t.k.leaves[s] {
                            Leaf::Direct(st) => flags_of(st.base),
                            Leaf::Gather(ix) => flags_of(ix.data.base),
                        };
                        self.load_x2(p, bytes[s], flags)
                    })
                    .collect();
                let v = self.expr(&t.k.expr, &leaves, Lanes::Two)?[t.root];
                let a = self.b.use_var(acc);
                let a = self.combine(t.combine, t.dtype, a, v);
                self.b.def_var(acc, a);
            }
            if let Some(acc) = t.odd {
                let last = (t.k.domain[level] - 1) as i64;
                let mut leaves = Vec::with_capacity(t.k.leaves.len());
                for (s, leaf) in t.k.leaves.iter().enumerate() {
                    let p = self.add_imm(ptrs[s], last * bytes[s]);
                    let (ty, flags) = match leaf {
                        Leaf::Direct(st) => (clif_type(st.dtype), flags_of(st.base)),
                        Leaf::Gather(ix) => (clif_type(ix.data.dtype), flags_of(ix.data.base)),
                    };
                    leaves.push(self.b.ins().load(ty, movable(flags), p, 0));
                }
                let v = self.expr(&t.k.expr, &leaves, Lanes::One)?[t.root];
                let a = self.b.use_var(acc);
                let a = self.combine(t.combine, t.dtype, a, v);
                self.b.def_var(acc, a);
            }
        } else {
            self.counted_loop(t.k.domain[level], 1, |em, i| {
                let inner = em.advance_all(ptrs, i, &bytes);
                em.tile_level(t, level + 1, &inner, out_flags)
            })?;
        }
        if level == t.first {
            let out = ptrs[t.streams.len() - 1];
            let ob = t.streams[t.streams.len() - 1][rank - 1];
            for (j, &acc) in t.accs.iter().enumerate() {
                let mut v = self.b.use_var(acc);
                if let Some(f) = t.finish {
                    v = self.expr_root(f, &[v], Lanes::Two)?;
                }
                let p = self.add_imm(out, 2 * j as i64 * ob);
                self.store_x2(p, ob, out_flags, v);
            }
            if let Some(acc) = t.odd {
                let mut v = self.b.use_var(acc);
                if let Some(f) = t.finish {
                    v = self.expr_root(f, &[v], Lanes::One)?;
                }
                let last = (t.k.domain[rank - 1] - 1) as i64;
                let p = self.add_imm(out, last * ob);
                self.b.ins().store(out_flags, v, p, 0);
            }
        }
        Ok(())
    }

    /// A map kernel over the non-reduced axes of reduction output `o`, writing its output.
    fn output_kernel(&mut self, k: &Kernel, o: &KernelOut, leaves: Vec<Leaf>, expr: Expr) -> Result<Kernel, CodegenError> {
        let (Mode::Reduce { reduced, .. }, Output::Direct(out)) = (&o.mode, &o.out) else {
            return Err(CodegenError::Cranelift("not a reduction with a direct output".into()));
        };
        let keep: Vec<bool> = reduced.iter().map(|r| !r).collect();
        let mut kk = Kernel::single(k.domain.clone(), leaves, expr, Output::Direct(out.clone()), Mode::Map, k.label.clone());
        retain_axes(&mut kk, &keep);
        Ok(kk)
    }

    /// Emits the loop nest of `k` with register accumulators starting at `acc_level`
    /// (`rmw`: reductions combine into memory instead).
    fn run(&mut self, k: &Kernel, acc_level: usize, rmw: bool) -> Result<(), CodegenError> {
        let mut streams = Vec::new();
        let mut leaf_stream = Vec::new();
        let mut ptrs = Vec::new();
        let mut add = |em: &mut Self, s: &Strided, streams: &mut Vec<SmallVec<[i64; 4]>>| {
            streams.push(byte_strides(s));
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
        let mut outs = Vec::with_capacity(k.outs.len());
        for o in &k.outs {
            let stream = streams.len();
            match &o.out {
                Output::Direct(s) => add(self, s, &mut streams),
                Output::Scatter(ix) => {
                    add(self, &ix.data, &mut streams);
                    add(self, &ix.index, &mut streams);
                }
            }
            let dtype = k.expr.nodes[o.root].dtype;
            let (role, combine) = match &o.mode {
                Mode::Map => (Role::Store, Combine::Sum),
                Mode::Scan => (Role::Scan, Combine::Sum),
                Mode::Reduce { combine, .. } if rmw => (Role::Rmw, *combine),
                Mode::Reduce { combine, .. } => (Role::Register, *combine),
            };
            let acc = matches!(role, Role::Register | Role::Scan).then(|| self.b.declare_var(clif_type(dtype)));
            outs.push(OutPlan { role, combine, dtype, acc, stream, spread: SmallVec::new() });
        }
        // A vector read-modify-write needs distinct output lanes.
        let lanes_distinct = outs.iter().all(|o| o.role != Role::Rmw || streams[o.stream].last() != Some(&0));
        let vector = outs.iter().all(|o| o.role != Role::Scan) && lanes_distinct && self.can_vectorize(k);
        // Independent vector accumulators hide the add latency of reductions: up to four per
        // output, at most eight in all (x86 has 16 vector registers), fewer when the inner
        // extent is short or the body is long (its own length hides the latency, and every
        // copy of a long body costs compile time: an unrolled exp+log body was 1,200 CLIF
        // instructions and most of a model's Cranelift time).
        let registers = outs.iter().filter(|o| o.role == Role::Register).count();
        let inner = k.domain.last().copied().unwrap_or(0);
        let cost = vector_cost(&k.expr, self.opts.inline_math);
        let budget = if self.opts.inline_math && has_inline_math(&k.expr) { UNROLLED_MATH_BODY_COST } else { UNROLLED_BODY_COST };
        let mut unroll = 8usize.checked_div(registers).map_or(1, |u| u.clamp(1, 4));
        while unroll > 1 && (inner < 8 * unroll || cost * unroll > budget) {
            unroll /= 2;
        }
        if vector {
            self.spread_pointers(k, &mut outs);
        }
        let nonempty = k.domain.iter().all(|&d| d > 0);
        let invariant = k
            .leaves
            .iter()
            .zip(&leaf_stream)
            .map(|(leaf, &s)| match leaf {
                Leaf::Direct(st) if nonempty && streams[s].iter().all(|&b| b == 0) => {
                    Some(self.b.ins().load(clif_type(st.dtype), movable(flags_of(st.base)), ptrs[s], 0))
                }
                _ => None,
            })
            .collect();
        let nest = Nest { k, streams, leaf_stream, outs, acc_level, vector, unroll, cost, invariant };
        self.level(&nest, 0, &ptrs)
    }

    /// The start of every spread buffer of the kernel's scatter outputs whose data pointer
    /// stays put (stride 0 on every domain axis: the index alone picks the element).
    fn spread_pointers(&mut self, k: &Kernel, outs: &mut [OutPlan]) {
        for (o, ko) in outs.iter_mut().zip(&k.outs) {
            if let Output::Scatter(ix) = &ko.out
                && ix.data.strides.iter().all(|&s| s == 0)
            {
                o.spread = ix.spread.iter().map(|&base| self.start_ptr(&Strided { base, ..ix.data.clone() })).collect();
            }
        }
    }

    fn can_vectorize(&self, k: &Kernel) -> bool {
        let f64_view = |s: &Strided| s.dtype == DType::F64;
        let roots: Vec<usize> = k.outs.iter().map(|o| o.root).collect();
        self.opts.vectorize
            && k.domain.last().is_some_and(|&n| n >= 4)
            && k.leaves.iter().all(|l| match l {
                Leaf::Direct(s) => f64_view(s),
                Leaf::Gather(ix) => f64_view(&ix.data),
            })
            && k.outs.iter().all(|o| match &o.out {
                Output::Direct(s) => f64_view(s),
                Output::Scatter(ix) => f64_view(&ix.data),
            })
            && vectorizable(&k.expr, &roots)
    }

    /// Emits the loops from `level` inward, with `ptrs` the current address of each stream.
    fn level(&mut self, n: &Nest<'_>, level: usize, ptrs: &[Value]) -> Result<(), CodegenError> {
        let rank = n.k.domain.len();
        if level == n.acc_level {
            for o in &n.outs {
                if let Some(acc) = o.acc {
                    let init = self.identity(o.combine, o.dtype, Lanes::One);
                    self.b.def_var(acc, init);
                }
            }
        }
        if level == rank {
            self.element(n, ptrs)?;
        } else if level + 1 == rank && n.vector {
            self.vector_level(n, level, ptrs)?;
        } else {
            let bytes: Vec<i64> = n.streams.iter().map(|s| s[level]).collect();
            self.counted_loop(n.k.domain[level], 1, |em, i| {
                let inner = em.advance_all(ptrs, i, &bytes);
                em.level(n, level + 1, &inner)
            })?;
        }
        if level == n.acc_level {
            for (o, ko) in n.outs.iter().zip(&n.k.outs) {
                if let (Role::Register, Some(acc)) = (o.role, o.acc) {
                    let v = self.b.use_var(acc);
                    let v = match &ko.mode {
                        Mode::Reduce { finish: Some(f), .. } => self.expr_root(f, &[v], Lanes::One)?,
                        _ => v,
                    };
                    self.store_out(ko, ptrs[o.stream], ptrs.get(o.stream + 1).copied(), v);
                }
            }
        }
        Ok(())
    }

    /// The innermost level two lanes at a time (`unroll` vectors per iteration), then the
    /// remaining pairs and the odd element.
    fn vector_level(&mut self, n: &Nest<'_>, level: usize, ptrs: &[Value]) -> Result<(), CodegenError> {
        let len = n.k.domain[level];
        let bytes: Vec<i64> = n.streams.iter().map(|s| s[level]).collect();
        // One set of `unroll` vector accumulators per register output.
        let mut vaccs: Vec<Vec<Variable>> = Vec::with_capacity(n.outs.len());
        for o in &n.outs {
            let mut set = Vec::new();
            if o.role == Role::Register {
                for _ in 0..n.unroll {
                    let v = self.b.declare_var(types::F64X2);
                    let init = self.identity(o.combine, o.dtype, Lanes::Two);
                    self.b.def_var(v, init);
                    set.push(v);
                }
            }
            vaccs.push(set);
        }
        let block = 2 * n.unroll;
        let trips = len / block;
        let at = |em: &mut Self, i: Value| -> Vec<Value> { em.advance_all(ptrs, i, &bytes) };
        let body = |em: &mut Self, i: Value| -> Result<(), CodegenError> {
            let first = at(em, i);
            for u in 0..n.unroll {
                // The unrolled copies address the same pointers at constant offsets.
                let p: Vec<Value> = first.iter().zip(&bytes).map(|(&p, &b)| em.add_imm(p, 2 * u as i64 * b)).collect();
                em.vector_element(n, &p, &bytes, &vaccs, u)?;
            }
            Ok(())
        };
        let body_cost = n.cost * n.unroll;
        if trips <= STRAIGHT_TRIPS && trips * body_cost <= UNROLLED_BODY_COST.max(body_cost) {
            // Short static extents: straight-line code, no loop overhead.
            for t in 0..trips {
                let i = self.int((t * block) as i64);
                body(self, i)?;
            }
        } else {
            self.counted_loop(trips, block as i64, body)?;
        }
        let mut done = trips * block;
        let mut u = 0;
        while done + 2 <= len {
            let i = self.int(done as i64);
            let p = at(self, i);
            self.vector_element(n, &p, &bytes, &vaccs, u)?;
            done += 2;
            u = (u + 1) % n.unroll;
        }
        for (o, set) in n.outs.iter().zip(&vaccs) {
            let (Some(acc), Some(&first)) = (o.acc, set.first()) else { continue };
            let mut total = self.b.use_var(first);
            for &v in &set[1..] {
                let x = self.b.use_var(v);
                total = self.combine(o.combine, o.dtype, total, x);
            }
            let lo = self.b.ins().extractlane(total, 0);
            let hi = self.b.ins().extractlane(total, 1);
            let a = self.b.use_var(acc);
            let a = self.combine(o.combine, o.dtype, a, lo);
            let a = self.combine(o.combine, o.dtype, a, hi);
            self.b.def_var(acc, a);
        }
        if done < len {
            let i = self.int(done as i64);
            let p = at(self, i);
            self.element(n, &p)?;
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
        let next = self.add_imm(i, step);
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
        let idx = self.cached(CacheKey::Index(index), |em| em.b.ins().load(types::I64, flags_of(ix.index.base), index, 0));
        if let Some(code) = ix.check {
            let ok = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, idx, ix.axis_len as i64);
            self.check(ok, code);
        }
        let bytes = ix.axis_stride * elem_size(ix.data.dtype) as i64;
        self.advance(data, idx, bytes)
    }

    /// One scalar element: load the leaves, evaluate, and feed every output.
    fn element(&mut self, n: &Nest<'_>, ptrs: &[Value]) -> Result<(), CodegenError> {
        let mut leaves = Vec::with_capacity(n.k.leaves.len());
        for ((leaf, &s), invariant) in n.k.leaves.iter().zip(&n.leaf_stream).zip(&n.invariant) {
            let v = match (leaf, invariant) {
                (Leaf::Direct(_), &Some(x)) => x,
                (Leaf::Direct(st), None) => self.b.ins().load(clif_type(st.dtype), movable(flags_of(st.base)), ptrs[s], 0),
                (Leaf::Gather(ix), _) => {
                    let addr = self.indexed_addr(ix, ptrs[s], ptrs[s + 1]);
                    self.b.ins().load(clif_type(ix.data.dtype), flags_of(ix.data.base), addr, 0)
                }
            };
            leaves.push(v);
        }
        let vals = self.expr(&n.k.expr, &leaves, Lanes::One)?;
        for (o, ko) in n.outs.iter().zip(&n.k.outs) {
            let v = vals[ko.root];
            match o.role {
                Role::Store => self.store_out(ko, ptrs[o.stream], ptrs.get(o.stream + 1).copied(), v),
                Role::Register => {
                    if let Some(acc) = o.acc {
                        let a = self.b.use_var(acc);
                        let a = self.combine(o.combine, o.dtype, a, v);
                        self.b.def_var(acc, a);
                    }
                }
                Role::Rmw => {
                    let flags = out_flags(ko);
                    let p = ptrs[o.stream];
                    let old = self.b.ins().load(clif_type(o.dtype), flags, p, 0);
                    let new = self.combine(o.combine, o.dtype, old, v);
                    self.b.ins().store(flags, new, p, 0);
                }
                Role::Scan => {
                    if let Some(acc) = o.acc {
                        let a = self.b.use_var(acc);
                        let a = self.combine(Combine::Sum, o.dtype, a, v);
                        self.b.def_var(acc, a);
                        self.store_out(ko, ptrs[o.stream], ptrs.get(o.stream + 1).copied(), a);
                    }
                }
            }
        }
        Ok(())
    }

    /// Stores `v` (one element) at a direct output, or adds it at the scattered index.
    fn store_out(&mut self, o: &KernelOut, data: Value, index: Option<Value>, v: Value) {
        match (&o.out, index) {
            (Output::Scatter(ix), Some(index)) => {
                let addr = self.indexed_addr(ix, data, index);
                let flags = flags_of(ix.data.base);
                let old = self.b.ins().load(clif_type(ix.data.dtype), flags, addr, 0);
                let new = self.combine(Combine::Sum, ix.data.dtype, old, v);
                self.b.ins().store(flags, new, addr, 0);
            }
            _ => {
                self.b.ins().store(out_flags(o), v, data, 0);
            }
        }
    }

    /// Two f64 lanes starting at `ptrs` (inner byte strides `bytes`); `u` picks the set of
    /// vector accumulators.
    fn vector_element(
        &mut self,
        n: &Nest<'_>,
        ptrs: &[Value],
        bytes: &[i64],
        vaccs: &[Vec<Variable>],
        u: usize,
    ) -> Result<(), CodegenError> {
        let mut leaves = Vec::with_capacity(n.k.leaves.len());
        for ((leaf, &s), invariant) in n.k.leaves.iter().zip(&n.leaf_stream).zip(&n.invariant) {
            let v = match (leaf, invariant) {
                (Leaf::Direct(_), &Some(x)) => self.b.ins().splat(types::F64X2, x),
                (Leaf::Direct(st), None) => self.load_x2(ptrs[s], bytes[s], flags_of(st.base)),
                (Leaf::Gather(ix), _) => {
                    // Two scalar gathers (x86 has no 128-bit gather before AVX2).
                    let flags = flags_of(ix.data.base);
                    let a0 = self.indexed_addr(ix, ptrs[s], ptrs[s + 1]);
                    let x0 = self.b.ins().load(types::F64, flags, a0, 0);
                    let d1 = self.add_imm(ptrs[s], bytes[s]);
                    let i1 = self.add_imm(ptrs[s + 1], bytes[s + 1]);
                    let a1 = self.indexed_addr(ix, d1, i1);
                    let x1 = self.b.ins().load(types::F64, flags, a1, 0);
                    let v = self.b.ins().scalar_to_vector(types::F64X2, x0);
                    self.b.ins().insertlane(v, x1, 1)
                }
            };
            leaves.push(v);
        }
        let vals = self.expr(&n.k.expr, &leaves, Lanes::Two)?;
        for ((o, ko), set) in n.outs.iter().zip(&n.k.outs).zip(vaccs) {
            let v = vals[ko.root];
            let flags = out_flags(ko);
            let (p, ob) = (ptrs[o.stream], bytes[o.stream]);
            match o.role {
                Role::Register => {
                    if let Some(&acc) = set.get(u) {
                        let a = self.b.use_var(acc);
                        let a = self.combine(o.combine, o.dtype, a, v);
                        self.b.def_var(acc, a);
                    }
                }
                Role::Rmw => {
                    let old = self.load_x2(p, ob, flags);
                    let new = self.combine(o.combine, o.dtype, old, v);
                    self.store_x2(p, ob, flags, new);
                }
                Role::Store | Role::Scan => match &ko.out {
                    Output::Scatter(_) => {
                        // Two scalar scatter-adds (repeated indices accumulate), the lanes of
                        // the unrolled copies taking the spread buffers in turn.
                        let ip = ptrs[o.stream + 1];
                        let ib = bytes[o.stream + 1];
                        for lane in 0..2u8 {
                            let x = self.b.ins().extractlane(v, lane);
                            let slot = (2 * u + usize::from(lane)) % (o.spread.len() + 1);
                            let d = if slot == 0 { self.add_imm(p, i64::from(lane) * ob) } else { o.spread[slot - 1] };
                            let i = self.add_imm(ip, i64::from(lane) * ib);
                            self.store_out(ko, d, Some(i), x);
                        }
                    }
                    Output::Direct(_) => self.store_x2(p, ob, flags, v),
                },
            }
        }
        Ok(())
    }

    /// Loads two f64 lanes `bytes` apart (a vector load, a splat, or two loads).
    fn load_x2(&mut self, p: Value, bytes: i64, flags: MemFlagsData) -> Value {
        // Vector accesses are only 8-byte aligned: never claim alignment for them.
        let vflags = if flags.readonly() {
            MemFlagsData::new().with_notrap().with_readonly().with_can_move()
        } else {
            MemFlagsData::new().with_notrap()
        };
        match bytes {
            8 => self.b.ins().load(types::F64X2, vflags, p, 0),
            0 => {
                let x = self.b.ins().load(types::F64, movable(flags), p, 0);
                self.b.ins().splat(types::F64X2, x)
            }
            _ => {
                let x0 = self.b.ins().load(types::F64, movable(flags), p, 0);
                let p1 = self.add_imm(p, bytes);
                let x1 = self.b.ins().load(types::F64, movable(flags), p1, 0);
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
            let p1 = self.add_imm(p, bytes);
            self.b.ins().store(flags, x0, p, 0);
            self.b.ins().store(flags, x1, p1, 0);
        }
    }
}

/// Flags of a strided (never gathered) load: loads of inputs and constants may move, so that
/// Cranelift places them next to their use (and hoists loop-invariant ones). Every strided
/// address the loops form is in bounds whether or not a check before it passes, and no loop
/// body is emitted for zero trips, so moving such a load never makes it fault. Gathered
/// loads never get this flag: their address is only valid after its bounds check.
fn movable(flags: MemFlagsData) -> MemFlagsData {
    if flags.readonly() { flags.with_can_move() } else { flags }
}

/// Memory flags of an output's element accesses.
fn out_flags(o: &KernelOut) -> MemFlagsData {
    match &o.out {
        Output::Direct(s) => flags_of(s.base),
        Output::Scatter(ix) => flags_of(ix.data.base),
    }
}
