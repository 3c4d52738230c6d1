//! The rewrite engine: rules (patterns or Rust functions), rule sets indexed by op name, and a
//! bottom-up rebuilding driver run to a fixpoint.
//!
//! How a pass works: the live nodes of the graph are re-added, in topological order, to a fresh
//! graph through a *smart constructor* ([`Ctx::add`]): every node is hash-consed and then
//! rewritten by the pass's rules until none applies (each replacement is itself built through
//! the smart constructor, so it is already in normal form). One sweep therefore reaches a
//! local fixpoint; the pass repeats sweeps until a sweep fires no rule (or the iteration
//! limit), and dead nodes vanish because only what the outputs reach is rebuilt
//! ([`tessera_graph::Graph::compact`] at the end of each sweep).
//!
//! **Types never change.** A replacement must have the node's dtype. If its shape differs but
//! broadcasts to the node's shape (e.g. `add(%x: f64[], zeros[3])` → `%x`), the engine wraps
//! it in `broadcast_to`; any other mismatch refuses the rewrite (counted as "refused" in the
//! report, which in a correct rule set stays empty).

use std::fmt::Write;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use tessera_graph::{ConstData, Constant, DType, Graph, NodeId, Op, Operands, TensorType, Value};

use crate::pattern::{self, Bindings, Compiled, Head, Pat};

/// A rule written as a Rust function: given the context and a node (already in the context's
/// graph), returns its replacement, or `None` when the rule does not apply.
pub type RuleFn = fn(&mut Ctx<'_>, NodeId) -> Option<NodeId>;

/// What a rule does.
#[derive(Clone)]
pub(crate) enum RuleKind {
    /// A parsed pattern rule (or the parse error, which makes the rule inert; a test checks
    /// that every shipped rule parses). Shared: rule sets that include the same group of
    /// rules clone it rather than parse it again.
    Pattern(Result<Arc<Compiled>, String>),
    /// A Rust rule and the op names it looks at (`"*"` for every op).
    Func { f: RuleFn, on: &'static [&'static str] },
}

/// A named, directional rewrite rule (cheap to clone).
#[derive(Clone)]
pub struct Rule {
    /// The rule's name (shown in the report and trace).
    pub name: &'static str,
    pub(crate) kind: RuleKind,
}

impl Rule {
    /// A pattern rule `lhs => rhs if conds` (see [`crate::pattern`] for the language).
    pub fn pattern(name: &'static str, lhs: &str, rhs: &str, conds: &str) -> Rule {
        Rule { name, kind: RuleKind::Pattern(pattern::compile(lhs, rhs, conds).map(Arc::new)) }
    }

    /// A Rust-function rule applying to nodes whose op name is in `on` (`"*"`: any).
    pub fn func(name: &'static str, on: &'static [&'static str], f: RuleFn) -> Rule {
        Rule { name, kind: RuleKind::Func { f, on } }
    }

    /// The pattern's parse error, if this is a malformed pattern rule.
    pub fn error(&self) -> Option<&str> {
        match &self.kind {
            RuleKind::Pattern(Err(e)) => Some(e),
            _ => None,
        }
    }
}

/// `rule!(name, "lhs" => "rhs")` or `rule!(name, "lhs" => "rhs", if "cond(?x), …")`.
macro_rules! rule {
    ($name:ident, $lhs:literal => $rhs:literal) => {
        $crate::engine::Rule::pattern(stringify!($name), $lhs, $rhs, "")
    };
    ($name:ident, $lhs:literal => $rhs:literal, if $cond:literal) => {
        $crate::engine::Rule::pattern(stringify!($name), $lhs, $rhs, $cond)
    };
}

/// `func_rule!(name, ["op", …], function)`.
macro_rules! func_rule {
    ($name:ident, [$($on:literal),*], $f:path) => {
        $crate::engine::Rule::func(stringify!($name), &[$($on),*], $f)
    };
}

pub(crate) use {func_rule, rule};

/// Rules indexed by the op name they apply to.
pub struct RuleSet {
    rules: Vec<Rule>,
    // FxHash: looked up once per node and rewrite, keyed by our own op names.
    by_op: FxHashMap<&'static str, Vec<usize>>,
    any: Vec<usize>,
}

impl RuleSet {
    /// Indexes `rules` (their order is the order in which they are tried).
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut by_op: FxHashMap<&'static str, Vec<usize>> = FxHashMap::default();
        let mut any = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.kind {
                RuleKind::Pattern(Ok(c)) => {
                    if let Some(h) = pattern::head_of(&c.lhs) {
                        by_op.entry(head_name(h)).or_default().push(i);
                    }
                }
                RuleKind::Pattern(Err(_)) => {}
                RuleKind::Func { on, .. } => {
                    for &name in *on {
                        if name == "*" {
                            any.push(i);
                        } else {
                            by_op.entry(name).or_default().push(i);
                        }
                    }
                }
            }
        }
        // Keep each list in declaration order, with the catch-all rules merged in.
        for list in by_op.values_mut() {
            list.extend(any.iter().copied());
            list.sort_unstable();
            list.dedup();
        }
        RuleSet { rules, by_op, any }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    fn candidates<'s>(&'s self, op: &Op) -> &'s [usize] {
        self.by_op.get(op.name()).map_or(&self.any, Vec::as_slice)
    }
}

fn head_name(h: Head) -> &'static str {
    match h {
        Head::Unary(u) => u.name(),
        Head::Binary(b) => b.name(),
        Head::Where => "where",
        Head::Reduce(r) => r.name(),
    }
}

/// One rule firing, for the trace: the node before and after in the text form's expression
/// style (operands nested a few levels deep).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// The pass it fired in.
    pub pass: &'static str,
    /// The rule's name.
    pub rule: &'static str,
    /// The node before.
    pub before: String,
    /// Its replacement.
    pub after: String,
}

/// Limits of one pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_iterations: usize,
    pub max_nodes: usize,
}

/// How often each rule fired (and was refused) in one pass, and whether a limit stopped it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Sweeps run.
    pub iterations: usize,
    /// Firings per rule name, in rule order (rules that never fired are left out).
    pub firings: Vec<(&'static str, usize)>,
    /// Rewrites refused because the replacement's type could not be made the node's type.
    pub refused: Vec<(&'static str, usize)>,
    /// The last sweep still fired rules when the iteration limit was reached.
    pub hit_iteration_limit: bool,
    /// The graph reached the node limit and rewriting stopped growing it.
    pub hit_node_limit: bool,
}

/// Deepest nesting of smart-constructor calls (a replacement built by a rule whose parts
/// fire further rules, …) before new nodes are added without rewriting.
const MAX_DEPTH: usize = 24;
/// Most rewrites of one node in a row (guards against a cycle between rules).
const MAX_REWRITES_PER_NODE: usize = 32;

/// The rewriting context: the graph being built and the counters. Rust rules build their
/// replacements with [`Ctx::add`] and friends.
pub struct Ctx<'a> {
    /// The graph being built.
    pub g: Graph,
    set: &'a RuleSet,
    pass: &'static str,
    fired: Vec<usize>,
    refused: Vec<usize>,
    trace: Option<&'a mut Vec<TraceEntry>>,
    depth: usize,
    max_nodes: usize,
    hit_node_limit: bool,
    /// Users of each node of the graph being rewritten, carried over from the previous
    /// sweep's graph (nodes built by rules count as unused until they are used).
    uses: Vec<usize>,
}

impl Ctx<'_> {
    /// How many users node `id` had in the graph being rewritten.
    pub fn uses(&self, id: NodeId) -> usize {
        self.uses.get(id.index()).copied().unwrap_or(0)
    }

    /// Adds `op(operands)` and rewrites it to normal form; `None` when the op does not type
    /// check (so a rule whose replacement would be ill-typed simply does not apply).
    pub fn add(&mut self, op: Op, operands: &[NodeId]) -> Option<NodeId> {
        let id = self.g.add(op, operands).ok()?;
        Some(self.normalize(id))
    }

    /// A constant node (constants are never rewritten).
    pub fn constant(&mut self, c: Constant) -> NodeId {
        self.g.constant(c)
    }

    /// A scalar constant `x` of dtype `dtype` (`None` for bool, or a non-integral value as i64).
    pub fn scalar(&mut self, x: f64, dtype: DType) -> Option<NodeId> {
        let c = scalar_constant(x, dtype)?;
        Some(self.g.constant(c))
    }

    /// The type of node `id`.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        self.g.ty(id)
    }

    /// The op of node `id`.
    pub fn op(&self, id: NodeId) -> &Op {
        &self.g.node(id).op
    }

    /// Operand `k` of node `id`.
    pub fn operand(&self, id: NodeId, k: usize) -> NodeId {
        self.g.node(id).operands[k]
    }

    /// The constant of node `id`, if it is one.
    pub fn as_const(&self, id: NodeId) -> Option<&Constant> {
        self.g.node(id).op.as_const()
    }

    /// Rewrites node `id` until no rule applies.
    fn normalize(&mut self, mut id: NodeId) -> NodeId {
        if self.depth >= MAX_DEPTH || self.g.arena_len() >= self.max_nodes {
            self.hit_node_limit |= self.g.arena_len() >= self.max_nodes;
            return id;
        }
        self.depth += 1;
        'outer: for _ in 0..MAX_REWRITES_PER_NODE {
            if matches!(self.g.node(id).op, Op::Input { .. } | Op::Const(_)) {
                break;
            }
            let set = self.set;
            for &r in set.candidates(&self.g.node(id).op) {
                let Some(new) = self.apply(r, id) else { continue };
                if new == id {
                    continue;
                }
                let want = self.g.ty(id).clone();
                match self.fit_type(new, &want) {
                    Some(fitted) if fitted != id => {
                        self.fired[r] += 1;
                        if self.trace.is_some() {
                            let entry = TraceEntry {
                                pass: self.pass,
                                rule: self.set.rules[r].name,
                                before: expr(&self.g, id, 3),
                                after: expr(&self.g, fitted, 3),
                            };
                            if let Some(t) = self.trace.as_mut() {
                                t.push(entry);
                            }
                        }
                        id = fitted;
                        continue 'outer;
                    }
                    Some(_) => {}
                    None => self.refused[r] += 1,
                }
            }
            break;
        }
        self.depth -= 1;
        id
    }

    /// Applies rule `r` to node `id`.
    fn apply(&mut self, r: usize, id: NodeId) -> Option<NodeId> {
        let set = self.set;
        match &set.rules[r].kind {
            RuleKind::Func { f, .. } => f(self, id),
            RuleKind::Pattern(Ok(c)) => {
                if !pattern::may_match(&self.g, &c.lhs, id) {
                    return None;
                }
                let mut b = Bindings::new(c, id);
                let uses = &self.uses;
                let count = |n: NodeId| uses.get(n.index()).copied().unwrap_or(0);
                if !pattern::matches(&self.g, &c.lhs, id, &mut b) || !pattern::conditions_hold(&self.g, &c.conds, &b, &count) {
                    return None;
                }
                let dtype = self.g.ty(id).dtype;
                self.build(&c.rhs, &b, dtype)
            }
            RuleKind::Pattern(Err(_)) => None,
        }
    }

    /// Builds a pattern's right side; literals take the dtype of their context.
    fn build(&mut self, p: &Pat, b: &Bindings, dtype: DType) -> Option<NodeId> {
        match p {
            Pat::Var(slot) => b.nodes[*slot],
            Pat::Bind(_, inner) => self.build(inner, b, dtype),
            Pat::Lit(x) => self.scalar(*x, dtype),
            Pat::Node { head, attrs, args } => {
                // Build the non-literal operands first, so literals can take their dtype.
                let mut built: Vec<Option<NodeId>> = vec![None; args.len()];
                for (k, a) in args.iter().enumerate() {
                    if !matches!(a, Pat::Lit(_)) {
                        let d = if matches!(head, Head::Where) && k == 0 { DType::Bool } else { dtype };
                        built[k] = Some(self.build(a, b, d)?);
                    }
                }
                let sibling = built.iter().enumerate().filter(|(k, _)| !(matches!(head, Head::Where) && *k == 0)).find_map(|(_, x)| *x);
                let lit_dtype = sibling.map_or(dtype, |s| self.g.ty(s).dtype);
                let mut ids = Vec::with_capacity(args.len());
                for (k, a) in args.iter().enumerate() {
                    ids.push(match (a, built[k]) {
                        (_, Some(id)) => id,
                        (Pat::Lit(x), None) => self.scalar(*x, lit_dtype)?,
                        _ => return None,
                    });
                }
                let op = match head {
                    Head::Unary(u) => Op::Unary(*u),
                    Head::Binary(bo) => Op::Binary(*bo),
                    Head::Where => Op::Where,
                    Head::Reduce(kind) => {
                        let (axes, keepdims) = match attrs {
                            Some(a) => b.attrs[*a].clone()?,
                            None => ((0..self.g.ty(ids[0]).shape.rank()).collect(), false),
                        };
                        Op::Reduce { kind: *kind, axes, keepdims }
                    }
                };
                self.add(op, &ids)
            }
        }
    }

    /// `new` with type `want`: itself, broadcast to `want`'s shape, or `None`.
    fn fit_type(&mut self, new: NodeId, want: &TensorType) -> Option<NodeId> {
        let got = self.g.ty(new);
        if got == want {
            return Some(new);
        }
        if got.dtype != want.dtype || !got.shape.broadcasts_to(&want.shape) {
            return None;
        }
        self.g.add(Op::BroadcastTo { shape: want.shape.clone() }, &[new]).ok()
    }
}

/// A scalar constant of `dtype` with value `x`.
pub(crate) fn scalar_constant(x: f64, dtype: DType) -> Option<Constant> {
    match dtype {
        DType::F64 => Some(Constant::f64(x)),
        DType::I64 if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(Constant::i64(x as i64)),
        _ => None,
    }
}

/// A value as a constant.
pub(crate) fn value_to_constant(v: &Value) -> Option<Constant> {
    let shape = v.shape();
    // A standard-layout array is one copy of its slice; others are walked in row-major order.
    fn elements<T: Copy>(a: &ndarray::ArrayD<T>) -> Vec<T> {
        a.as_slice().map_or_else(|| a.iter().copied().collect(), <[T]>::to_vec)
    }
    let data = match v {
        Value::F64(a) => ConstData::F64(elements(a).into()),
        Value::I64(a) => ConstData::I64(elements(a).into()),
        Value::Bool(a) => ConstData::Bool(elements(a).into()),
    };
    Constant::new(shape, data)
}

/// Runs `set` over `graph` to a fixpoint. Returns the rewritten graph (dead nodes may remain
/// in its arena; [`Graph::compact`] drops them), its number of live nodes, and the pass
/// statistics; firings are appended to `trace` when given.
pub(crate) fn run_pass(
    graph: Graph,
    set: &RuleSet,
    pass: &'static str,
    limits: Limits,
    mut trace: Option<&mut Vec<TraceEntry>>,
) -> Result<(Graph, usize, PassStats), tessera_graph::GraphError> {
    let n = set.rules.len();
    let mut fired_total = vec![0usize; n];
    let mut refused_total = vec![0usize; n];
    let mut stats = PassStats::default();
    // Sweeps walk only the live nodes, so garbage left by rewrites costs nothing until the
    // pipeline compacts once at the end (each compaction re-interns every node).
    let mut g = graph;
    let mut live = g.live_nodes();
    for _ in 0..limits.max_iterations.max(1) {
        // A sweep that would fire nothing is skipped: checking costs only matching, while a
        // sweep re-interns every node. So a pass that finds its input in normal form costs
        // one walk, and a pass that fires costs one rebuild plus one check.
        let old_uses = g.use_counts_among(&live);
        let (unchanged, checked, old_uses) = already_normal(g, set, &live, old_uses);
        g = checked;
        if unchanged {
            stats.hit_iteration_limit = false;
            break;
        }
        stats.iterations += 1;
        let mut ctx = Ctx {
            g: Graph::new(g.name()),
            set,
            pass,
            fired: vec![0; n],
            refused: vec![0; n],
            trace: trace.as_deref_mut(),
            depth: 0,
            max_nodes: limits.max_nodes,
            hit_node_limit: false,
            uses: Vec::with_capacity(live.len()),
        };
        let mut map: Vec<Option<NodeId>> = vec![None; g.arena_len()];
        for &i in g.inputs() {
            let Op::Input { name, ty } = &g.node(i).op else { continue };
            map[i.index()] = Some(ctx.g.input(name, ty.clone())?);
        }
        for &id in &live {
            if map[id.index()].is_some() {
                continue;
            }
            let node = g.node(id);
            let operands: Operands =
                node.operands.iter().map(|o| map[o.index()].ok_or(tessera_graph::GraphError::UnknownNode(*o))).collect::<Result<_, _>>()?;
            let new = match &node.op {
                Op::Const(c) => ctx.g.constant(c.clone()),
                op => {
                    let raw = ctx.g.add(op.clone(), &operands)?;
                    ctx.normalize(raw)
                }
            };
            map[id.index()] = Some(new);
            if ctx.uses.len() <= new.index() {
                ctx.uses.resize(new.index() + 1, 0);
            }
            ctx.uses[new.index()] += old_uses[id.index()];
        }
        let outputs: Vec<NodeId> =
            g.outputs().iter().map(|o| map[o.index()].ok_or(tessera_graph::GraphError::UnknownNode(*o))).collect::<Result<_, _>>()?;
        ctx.g.set_outputs(&outputs)?;
        let fired: usize = ctx.fired.iter().sum();
        for r in 0..n {
            fired_total[r] += ctx.fired[r];
            refused_total[r] += ctx.refused[r];
        }
        stats.hit_node_limit |= ctx.hit_node_limit;
        g = ctx.g;
        live = g.live_nodes();
        stats.hit_iteration_limit = fired > 0;
        if fired == 0 {
            break;
        }
    }
    let named = |counts: &[usize]| -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for (r, &k) in counts.iter().enumerate().filter(|(_, k)| **k > 0) {
            let name = set.rules[r].name;
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += k,
                None => out.push((name, k)),
            }
        }
        out
    };
    stats.firings = named(&fired_total);
    stats.refused = named(&refused_total);
    Ok((g, live.len(), stats))
}

/// Whether no rule of `set` applies to any of the `live` nodes of `g` (rules that would fire
/// may leave unused nodes behind in the returned graph; they are dead and dropped by
/// compaction). `uses` are `g`'s use counts, handed back.
fn already_normal(g: Graph, set: &RuleSet, live: &[NodeId], uses: Vec<usize>) -> (bool, Graph, Vec<usize>) {
    let n = set.rules.len();
    let mut ctx = Ctx {
        g,
        set,
        pass: "",
        fired: vec![0; n],
        refused: vec![0; n],
        trace: None,
        depth: 0,
        max_nodes: usize::MAX,
        hit_node_limit: false,
        uses,
    };
    let normal = live.iter().all(|&id| !rule_applies(&mut ctx, set, id));
    (normal, ctx.g, ctx.uses)
}

/// Whether some rule of `set` rewrites node `id`.
fn rule_applies(ctx: &mut Ctx<'_>, set: &RuleSet, id: NodeId) -> bool {
    if matches!(ctx.g.node(id).op, Op::Input { .. } | Op::Const(_)) {
        return false;
    }
    for &r in set.candidates(&ctx.g.node(id).op) {
        let Some(new) = ctx.apply(r, id) else { continue };
        if new == id {
            continue;
        }
        let want = ctx.g.ty(id).clone();
        if ctx.fit_type(new, &want).is_some_and(|f| f != id) {
            return true;
        }
    }
    false
}

/// Node `id` in the text form's expression style: `log(add(%x, 1.0:f64))`, operands nested
/// `depth` levels, deeper ones shown as `…`.
pub fn expr(g: &Graph, id: NodeId, depth: usize) -> String {
    let mut s = String::new();
    write_expr(&mut s, g, id, depth);
    s
}

fn write_expr(s: &mut String, g: &Graph, id: NodeId, depth: usize) {
    let node = g.node(id);
    match &node.op {
        Op::Input { name, .. } => {
            let _ = write!(s, "%{name}");
        }
        Op::Const(c) => match c.scalar_value() {
            Some(_) => {
                let _ = write!(s, "{}", scalar_text(c));
            }
            None => match c.uniform_value() {
                Some(v) => {
                    let _ = write!(s, "const[{v:?}; {}]", c.ty());
                }
                None => {
                    let _ = write!(s, "const:{}", c.ty());
                }
            },
        },
        op => {
            if depth == 0 {
                s.push('…');
                return;
            }
            s.push_str(op.name());
            s.push_str(&attr_text(op));
            s.push('(');
            for (k, &o) in node.operands.iter().enumerate() {
                if k > 0 {
                    s.push_str(", ");
                }
                write_expr(s, g, o, depth - 1);
            }
            s.push(')');
        }
    }
}

/// `VALUE:DTYPE` of a scalar constant, as in the text form.
fn scalar_text(c: &Constant) -> String {
    match c.data() {
        ConstData::F64(v) => format!("{:?}:f64", v[0]),
        ConstData::I64(v) => format!("{}:i64", v[0]),
        ConstData::Bool(v) => format!("{}:bool", v[0]),
    }
}

/// The attributes of an op, briefly, for trace lines.
fn attr_text(op: &Op) -> String {
    let list = |xs: &[usize]| xs.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    match op {
        Op::Reduce { axes, keepdims, .. } => {
            if *keepdims {
                format!("[axes=[{}], keepdims=true]", list(axes))
            } else {
                format!("[axes=[{}]]", list(axes))
            }
        }
        Op::Cast { to } => format!("[to={to}]"),
        Op::Reshape { shape } | Op::BroadcastTo { shape } => format!("[shape={shape}]"),
        Op::Transpose { perm } => format!("[perm=[{}]]", list(perm)),
        Op::ExpandDims { axis } | Op::Gather { axis } | Op::Concatenate { axis } | Op::Stack { axis } => format!("[axis={axis}]"),
        Op::Squeeze { axes } => format!("[axes=[{}]]", list(axes)),
        _ => String::new(),
    }
}
