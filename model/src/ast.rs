//! The syntax tree of a model file: statements, declared types and expressions, with spans.

use crate::error::Span;

/// A name with its place in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// One statement (one line of the model).
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What the statement says.
    pub kind: StmtKind,
    /// The whole statement.
    pub span: Span,
}

/// The statements of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `data NAME: TYPE`
    Data {
        /// The declared name.
        name: Ident,
        /// Its type.
        ty: TypeDecl,
    },
    /// `param NAME: TYPE`
    Param {
        /// The declared name.
        name: Ident,
        /// Its type.
        ty: TypeDecl,
    },
    /// `let NAME = EXPR`
    Let {
        /// The local's name.
        name: Ident,
        /// Its value.
        value: Expr,
    },
    /// `derived NAME = EXPR` (saved with the draws)
    Derived {
        /// The quantity's name.
        name: Ident,
        /// Its value.
        value: Expr,
    },
    /// `EXPR ~ DIST(ARGS)`
    Sample {
        /// The left-hand side.
        lhs: Expr,
        /// The distribution's name.
        dist: Ident,
        /// Its arguments.
        args: Vec<Expr>,
        /// The whole right-hand side `DIST(ARGS)`.
        rhs_span: Span,
    },
    /// `target += EXPR`
    Target {
        /// The added term (its sum is added).
        value: Expr,
    },
}

/// The base of a declared type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseType {
    /// `int`, `int[d…]`
    Int,
    /// `real`, `real[d…]`
    Real,
    /// `vector[n]`
    Vector,
    /// `matrix[n, m]`
    Matrix,
    /// `simplex[K]`
    Simplex,
    /// `ordered[K]`
    Ordered,
}

impl BaseType {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            BaseType::Int => "int",
            BaseType::Real => "real",
            BaseType::Vector => "vector",
            BaseType::Matrix => "matrix",
            BaseType::Simplex => "simplex",
            BaseType::Ordered => "ordered",
        }
    }

    /// The base type with this keyword.
    pub fn from_name(name: &str) -> Option<BaseType> {
        Some(match name {
            "int" => BaseType::Int,
            "real" => BaseType::Real,
            "vector" => BaseType::Vector,
            "matrix" => BaseType::Matrix,
            "simplex" => BaseType::Simplex,
            "ordered" => BaseType::Ordered,
            _ => return None,
        })
    }

    /// The number of dimensions the type requires (`None`: any number, as for `real[…]`).
    pub fn required_dims(self) -> Option<usize> {
        match self {
            BaseType::Int | BaseType::Real => None,
            BaseType::Vector | BaseType::Simplex | BaseType::Ordered => Some(1),
            BaseType::Matrix => Some(2),
        }
    }
}

/// A declared type: `BASE<lower=…, upper=…>[DIMS]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDecl {
    /// The base type.
    pub base: BaseType,
    /// Where the base keyword is.
    pub base_span: Span,
    /// The lower bound, if any.
    pub lower: Option<Expr>,
    /// The upper bound, if any.
    pub upper: Option<Expr>,
    /// The dimensions (empty for a scalar).
    pub dims: Vec<Expr>,
    /// The whole type.
    pub span: Span,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// Binary operators, all elementwise with NumPy broadcasting except `@`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// `@`
    MatMul,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl BinOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::MatMul => "@",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
        }
    }

    /// Whether the operator compares (giving bool).
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne)
    }
}

/// Expression forms.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A real literal.
    Real(f64),
    /// A name (data, parameter, local, derived quantity or builtin constant).
    Name(String),
    /// `-x`
    Neg(Box<Expr>),
    /// `a OP b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `f(args)`
    Call {
        /// The function's name.
        func: Ident,
        /// Its arguments, positional then keyword.
        args: Vec<Arg>,
    },
    /// `a[items]`
    Index {
        /// The indexed value.
        base: Box<Expr>,
        /// One item per indexed axis (or new axis).
        items: Vec<IndexItem>,
    },
    /// `[a, b, …]`: the elements stacked along a new first axis.
    List(Vec<Expr>),
}

/// A call argument, positional or `name=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, if given.
    pub keyword: Option<Ident>,
    /// The value.
    pub value: Expr,
}

/// One item of a subscript.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// An int scalar (picks one element, dropping the axis) or int array (gather).
    Expr(Expr),
    /// `start:stop:step`, each part optional.
    Slice {
        /// First index taken.
        start: Option<Expr>,
        /// One past the last index.
        stop: Option<Expr>,
        /// Distance between taken indices.
        step: Option<Expr>,
        /// The whole slice.
        span: Span,
    },
    /// `None`: a new axis of extent 1.
    NewAxis(Span),
}

impl IndexItem {
    /// Where the item is.
    pub fn span(&self) -> Span {
        match self {
            IndexItem::Expr(e) => e.span,
            IndexItem::Slice { span, .. } | IndexItem::NewAxis(span) => *span,
        }
    }
}

impl Expr {
    /// Calls `f` on each direct subexpression.
    pub fn for_each_child(&self, mut f: impl FnMut(&Expr)) {
        match &self.kind {
            ExprKind::Int(_) | ExprKind::Real(_) | ExprKind::Name(_) => {}
            ExprKind::Neg(e) => f(e),
            ExprKind::Binary(_, a, b) => {
                f(a);
                f(b);
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|a| f(&a.value)),
            ExprKind::Index { base, items } => {
                f(base);
                for item in items {
                    match item {
                        IndexItem::Expr(e) => f(e),
                        IndexItem::Slice { start, stop, step, .. } => {
                            [start, stop, step].into_iter().flatten().for_each(&mut f)
                        }
                        IndexItem::NewAxis(_) => {}
                    }
                }
            }
            ExprKind::List(items) => items.iter().for_each(f),
        }
    }

    /// Whether any name in the expression satisfies `pred`.
    pub fn any_name(&self, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        if let ExprKind::Name(n) = &self.kind {
            return pred(n);
        }
        let mut found = false;
        self.for_each_child(|c| found = found || c.any_name(pred));
        found
    }
}
