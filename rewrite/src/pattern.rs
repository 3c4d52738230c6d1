//! The pattern language of rules: `log(add(?x, 1.0))`, `reduce_logsumexp[?a](?x)`, with
//! named side conditions `nonneg(?x), scalar(?c)`. Parsed once into a matcher tree.
//!
//! Grammar: `pat := ?name | NUMBER | opname ['[' ?attrs ']'] '(' pat (',' pat)* ')'`, where
//! `opname` is a text-form name of a unary or binary elementwise op, `where`, or a reduction.
//! - `?x` binds any node; a variable used twice must bind the same node (hash-consing makes
//!   structurally equal subterms one node). `?root` in a condition is the matched node.
//! - A number matches a scalar constant of that value, or a constant tensor whose elements
//!   all equal it (sound because the engine keeps every node's type: if dropping such an
//!   operand would shrink the result, the replacement is broadcast back to the old shape).
//!   On the right-hand side a number becomes a scalar constant of its neighbour's dtype.
//! - `?m@pat` binds the node matched by `pat` to `?m` (for conditions such as `single_use(?m)`).
//! - `[?a]` on a reduction binds its axes and keepdims, reused on the right-hand side.

use smallvec::SmallVec;
use tessera_graph::{Axes, BinaryOp, Constant, DType, Graph, NodeId, Op, ReduceOp, UnaryOp};

/// The head of a pattern node: which op it matches or builds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Head {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Where,
    Reduce(ReduceOp),
}

/// A parsed pattern.
#[derive(Clone, Debug)]
pub(crate) enum Pat {
    /// A node variable (slot index).
    Var(usize),
    /// A numeric literal.
    Lit(f64),
    /// `?m@pat`: binds the node matched by `pat` to a variable (for conditions).
    Bind(usize, Box<Pat>),
    /// An op applied to sub-patterns, with an optional attribute variable (reductions).
    Node { head: Head, attrs: Option<usize>, args: Vec<Pat> },
}

/// A named side condition on bound nodes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cond {
    /// Provably ≥ 0 or NaN (never a negative number).
    NonNeg(usize),
    /// Provably finite (never ±inf or NaN).
    Finite(usize),
    /// Provably finite and nonzero.
    NonZeroFinite(usize),
    /// A rank-0 value.
    Scalar(usize),
    /// Two nodes of the same shape.
    SameShape(usize, usize),
    /// The first node has fewer elements than the second (it is broadcast against it).
    Smaller(usize, usize),
    /// An f64 value.
    Float(usize),
    /// Not a constant.
    NotConst(usize),
    /// A constant.
    IsConst(usize),
    /// Used by one node only (so rewriting its user does not keep it alive beside the
    /// replacement); use counts come from the graph being rewritten.
    SingleUse(usize),
}

/// A rule's parsed left side, right side and conditions, with its variable names.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub lhs: Pat,
    pub rhs: Pat,
    pub conds: Vec<Cond>,
    pub vars: Vec<String>,
    pub attr_vars: Vec<String>,
}

/// The slot of `?root` (the matched node), always 0.
const ROOT: usize = 0;

/// Parses a rule's three strings (conditions may be empty).
pub(crate) fn compile(lhs: &str, rhs: &str, conds: &str) -> Result<Compiled, String> {
    let mut vars = vec!["root".to_string()];
    let mut attr_vars = Vec::new();
    let lhs_pat = Parser::new(lhs, &mut vars, &mut attr_vars, true).whole()?;
    let rhs_pat = Parser::new(rhs, &mut vars, &mut attr_vars, false).whole()?;
    let mut parsed_conds = Vec::new();
    for c in conds.split("),").map(str::trim).filter(|c| !c.is_empty()) {
        let c = c.trim_end_matches(')');
        let (name, args) = c.split_once('(').ok_or_else(|| format!("condition `{c}` must look like `name(?x)`"))?;
        let slots: Vec<usize> = args
            .split(',')
            .map(|a| {
                let a = a.trim().strip_prefix('?').ok_or_else(|| format!("condition argument `{a}` must be `?var`"))?;
                vars.iter().position(|v| v == a).ok_or_else(|| format!("condition uses unbound `?{a}`"))
            })
            .collect::<Result<_, String>>()?;
        let one = |f: fn(usize) -> Cond| if slots.len() == 1 { Ok(f(slots[0])) } else { Err(format!("`{name}` takes one variable")) };
        parsed_conds.push(match name.trim() {
            "nonneg" => one(Cond::NonNeg)?,
            "finite" => one(Cond::Finite)?,
            "nonzero_finite" => one(Cond::NonZeroFinite)?,
            "scalar" => one(Cond::Scalar)?,
            "float" => one(Cond::Float)?,
            "not_const" => one(Cond::NotConst)?,
            "is_const" => one(Cond::IsConst)?,
            "single_use" => one(Cond::SingleUse)?,
            "same_shape" if slots.len() == 2 => Cond::SameShape(slots[0], slots[1]),
            "smaller" if slots.len() == 2 => Cond::Smaller(slots[0], slots[1]),
            other => return Err(format!("unknown condition `{other}`")),
        });
    }
    Ok(Compiled { lhs: lhs_pat, rhs: rhs_pat, conds: parsed_conds, vars, attr_vars })
}

struct Parser<'a, 'v> {
    src: &'a str,
    pos: usize,
    vars: &'v mut Vec<String>,
    attr_vars: &'v mut Vec<String>,
    /// On the left side new variables may be introduced; on the right they must exist.
    binding: bool,
}

impl<'a, 'v> Parser<'a, 'v> {
    fn new(src: &'a str, vars: &'v mut Vec<String>, attr_vars: &'v mut Vec<String>, binding: bool) -> Self {
        Parser { src, pos: 0, vars, attr_vars, binding }
    }

    fn whole(mut self) -> Result<Pat, String> {
        let p = self.pat()?;
        self.skip_ws();
        if self.pos != self.src.len() {
            return Err(format!("trailing text in pattern `{}` at {}", self.src, self.pos));
        }
        Ok(p)
    }

    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+'))).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn var(&mut self, attr: bool) -> Result<usize, String> {
        let name = self.word().to_string();
        let list = if attr { &mut *self.attr_vars } else { &mut *self.vars };
        if let Some(i) = list.iter().position(|v| *v == name) {
            return Ok(i);
        }
        if !self.binding || name == "root" {
            return Err(format!("`?{name}` is not bound by the left side of `{}`", self.src));
        }
        list.push(name);
        Ok(list.len() - 1)
    }

    fn pat(&mut self) -> Result<Pat, String> {
        if self.eat('?') {
            let slot = self.var(false)?;
            if self.eat('@') {
                return Ok(Pat::Bind(slot, Box::new(self.pat()?)));
            }
            return Ok(Pat::Var(slot));
        }
        let w = self.word();
        if let Ok(x) = w.parse::<f64>() {
            return Ok(Pat::Lit(x));
        }
        let head = if let Some(u) = UnaryOp::from_name(w) {
            Head::Unary(u)
        } else if let Some(b) = BinaryOp::from_name(w) {
            Head::Binary(b)
        } else if let Some(r) = ReduceOp::from_name(w) {
            Head::Reduce(r)
        } else if w == "where" {
            Head::Where
        } else {
            return Err(format!("unknown op `{w}` in pattern `{}`", self.src));
        };
        let attrs = if self.eat('[') {
            if !self.eat('?') {
                return Err(format!("expected `[?attrs]` in `{}`", self.src));
            }
            let a = self.var(true)?;
            if !self.eat(']') {
                return Err(format!("expected `]` in `{}`", self.src));
            }
            Some(a)
        } else {
            None
        };
        if !self.eat('(') {
            return Err(format!("expected `(` after `{w}` in `{}`", self.src));
        }
        let mut args = vec![self.pat()?];
        while self.eat(',') {
            args.push(self.pat()?);
        }
        if !self.eat(')') {
            return Err(format!("expected `)` in `{}`", self.src));
        }
        let arity = match head {
            Head::Unary(_) | Head::Reduce(_) => 1,
            Head::Binary(_) => 2,
            Head::Where => 3,
        };
        if args.len() != arity {
            return Err(format!("`{w}` takes {arity} operand(s) in `{}`", self.src));
        }
        if attrs.is_some() && !matches!(head, Head::Reduce(_)) {
            return Err(format!("only reductions take `[?attrs]` in `{}`", self.src));
        }
        Ok(Pat::Node { head, attrs, args })
    }
}

/// What a successful match bound: nodes per variable slot, reduction attributes per attribute slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bindings {
    // Inline: a binding set is made for every rule tried on every node.
    pub nodes: SmallVec<[Option<NodeId>; 8]>,
    pub attrs: SmallVec<[Option<(Axes, bool)>; 1]>,
}

impl Bindings {
    pub(crate) fn new(c: &Compiled, root: NodeId) -> Bindings {
        let mut nodes: SmallVec<[Option<NodeId>; 8]> = smallvec::smallvec![None; c.vars.len()];
        nodes[ROOT] = Some(root);
        Bindings { nodes, attrs: smallvec::smallvec![None; c.attr_vars.len()] }
    }
}

/// The op key a pattern's root matches (for rule indexing), if it has one.
pub(crate) fn head_of(p: &Pat) -> Option<Head> {
    match p {
        Pat::Node { head, .. } => Some(*head),
        Pat::Bind(_, inner) => head_of(inner),
        _ => None,
    }
}

/// Whether node `id` of `g` has the shape of `p` (op heads and literals), ignoring variables
/// and attributes: a cheap test that rejects most rules before bindings are made.
pub(crate) fn may_match(g: &Graph, p: &Pat, id: NodeId) -> bool {
    let node = g.node(id);
    match p {
        Pat::Var(_) => true,
        Pat::Bind(_, inner) => may_match(g, inner, id),
        Pat::Lit(x) => matches!(&node.op, Op::Const(c) if c.uniform_value() == Some(*x)),
        Pat::Node { head, args, .. } => {
            let head_ok = match (head, &node.op) {
                (Head::Unary(u), Op::Unary(v)) => u == v,
                (Head::Binary(u), Op::Binary(v)) => u == v,
                (Head::Where, Op::Where) => true,
                (Head::Reduce(k), Op::Reduce { kind, .. }) => k == kind,
                _ => false,
            };
            head_ok && node.operands.len() == args.len() && args.iter().zip(node.operands.iter()).all(|(sub, &o)| may_match(g, sub, o))
        }
    }
}

/// Whether node `id` of `g` matches `p`, extending `b`.
pub(crate) fn matches(g: &Graph, p: &Pat, id: NodeId, b: &mut Bindings) -> bool {
    let node = g.node(id);
    match p {
        Pat::Var(slot) => match b.nodes[*slot] {
            Some(bound) => bound == id,
            None => {
                b.nodes[*slot] = Some(id);
                true
            }
        },
        Pat::Bind(slot, inner) => {
            let ok = match b.nodes[*slot] {
                Some(bound) => bound == id,
                None => {
                    b.nodes[*slot] = Some(id);
                    true
                }
            };
            ok && matches(g, inner, id, b)
        }
        Pat::Lit(x) => match &node.op {
            Op::Const(c) => c.uniform_value() == Some(*x),
            _ => false,
        },
        Pat::Node { head, attrs, args } => {
            let head_ok = match (head, &node.op) {
                (Head::Unary(u), Op::Unary(v)) => u == v,
                (Head::Binary(u), Op::Binary(v)) => u == v,
                (Head::Where, Op::Where) => true,
                (Head::Reduce(k), Op::Reduce { kind, axes, keepdims }) if k == kind => {
                    if let Some(a) = attrs {
                        match &b.attrs[*a] {
                            Some((ax, kd)) if ax != axes || kd != keepdims => return false,
                            Some(_) => {}
                            None => b.attrs[*a] = Some((axes.clone(), *keepdims)),
                        }
                    }
                    true
                }
                _ => false,
            };
            head_ok
                && node.operands.len() == args.len()
                && args.iter().zip(node.operands.iter()).all(|(sub, &o)| matches(g, sub, o, b))
        }
    }
}

/// Whether every condition holds for the bindings.
pub(crate) fn conditions_hold(g: &Graph, conds: &[Cond], b: &Bindings, uses: &dyn Fn(NodeId) -> usize) -> bool {
    let n = |s: usize| b.nodes[s];
    conds.iter().all(|c| match *c {
        Cond::NonNeg(s) => n(s).is_some_and(|x| nonneg(g, x, 8)),
        Cond::Finite(s) => n(s).is_some_and(|x| finite(g, x, 8)),
        Cond::NonZeroFinite(s) => n(s).is_some_and(|x| nonzero_finite(g, x)),
        Cond::Scalar(s) => n(s).is_some_and(|x| g.ty(x).shape.is_scalar()),
        Cond::SameShape(p, q) => matches!((n(p), n(q)), (Some(x), Some(y)) if g.ty(x).shape == g.ty(y).shape),
        Cond::Smaller(p, q) => matches!((n(p), n(q)), (Some(x), Some(y)) if g.ty(x).shape.size() < g.ty(y).shape.size()),
        Cond::Float(s) => n(s).is_some_and(|x| g.ty(x).dtype == DType::F64),
        Cond::NotConst(s) => n(s).is_some_and(|x| !matches!(g.node(x).op, Op::Const(_))),
        Cond::IsConst(s) => n(s).is_some_and(|x| matches!(g.node(x).op, Op::Const(_))),
        Cond::SingleUse(s) => n(s).is_some_and(|x| uses(x) <= 1),
    })
}

/// Every element of constant `c` satisfies `f`.
fn all_elements(c: &Constant, f: impl Fn(f64) -> bool) -> bool {
    (0..c.data().len()).all(|i| f(c.data().get_f64(i)))
}

/// Provably never a negative number (NaN allowed: every rule guarded by this maps NaN to NaN).
pub(crate) fn nonneg(g: &Graph, id: NodeId, depth: usize) -> bool {
    use UnaryOp::*;
    let node = g.node(id);
    let sub = |k: usize| depth > 0 && nonneg(g, node.operands[k], depth - 1);
    match &node.op {
        Op::Const(c) => all_elements(c, |x| x >= 0.0 || x.is_nan()),
        Op::Unary(Exp | Square | Abs | Sqrt | Softplus | Sigmoid) => true,
        Op::Unary(Reciprocal) => sub(0),
        Op::Binary(BinaryOp::Mul) => node.operands[0] == node.operands[1] || (sub(0) && sub(1)),
        Op::Binary(BinaryOp::Add | BinaryOp::Div | BinaryOp::Minimum) => sub(0) && sub(1),
        Op::Binary(BinaryOp::Maximum) => sub(0) || sub(1),
        Op::Reduce { kind: ReduceOp::Sum | ReduceOp::Prod | ReduceOp::Max | ReduceOp::Min | ReduceOp::Mean, .. } => sub(0),
        Op::BroadcastTo { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. } => sub(0),
        Op::Cast { to: DType::F64 } => g.ty(node.operands[0]).dtype == DType::Bool || sub(0),
        _ => false,
    }
}

/// Provably finite (never ±inf or NaN).
pub(crate) fn finite(g: &Graph, id: NodeId, depth: usize) -> bool {
    use UnaryOp::*;
    let node = g.node(id);
    let sub = |k: usize| depth > 0 && finite(g, node.operands[k], depth - 1);
    match &node.op {
        Op::Const(c) => all_elements(c, f64::is_finite),
        Op::Unary(Sigmoid | Tanh | Sin | Cos | Erf | Erfc | Neg | Abs | Sign | Floor | Ceil) => sub(0),
        Op::Cast { to: DType::F64 } => g.ty(node.operands[0]).dtype != DType::F64,
        Op::BroadcastTo { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. } => sub(0),
        _ => false,
    }
}

/// Provably finite and nonzero (only constants qualify).
pub(crate) fn nonzero_finite(g: &Graph, id: NodeId) -> bool {
    matches!(&g.node(id).op, Op::Const(c) if all_elements(c, |x| x.is_finite() && x != 0.0))
}
