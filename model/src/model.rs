//! A parsed model: syntax plus the checks that need no data (names declared before use,
//! known functions and distributions with the right number of arguments, dimensions and
//! bounds computable from data, real-valued parameters).

use std::collections::HashMap;

use crate::ast::{Arg, BaseType, Expr, ExprKind, Ident, IndexItem, Stmt, StmtKind, TypeDecl};
use crate::builder::BoundModel;
use crate::builtins::{self, Func};
use crate::data::DataSet;
use crate::dist::Dist;
use crate::error::{Diag, ErrorKind, ModelError, Source, Span, did_you_mean};

/// A model file, parsed and checked (everything that does not need data).
#[derive(Clone, Debug)]
pub struct Model {
    source: Source<'static>,
    stmts: Vec<Stmt>,
}

/// Parses and checks a model; `file_name` is used in error messages.
pub fn parse_model(src: &str, file_name: &str) -> Result<Model, ModelError> {
    let src = crate::without_bom(src);
    let source = Source::new(file_name, src);
    let stmts = crate::parser::parse(src).map_err(|d| source.error(d))?;
    Resolver::new(&stmts).check(&stmts).map_err(|d| source.error(d))?;
    Ok(Model { source, stmts })
}

impl Model {
    /// The statements, in file order.
    pub fn statements(&self) -> &[Stmt] {
        &self.stmts
    }

    /// The model file.
    pub fn source(&self) -> &Source<'static> {
        &self.source
    }

    /// The names declared with `data`, in order.
    pub fn data_names(&self) -> Vec<&str> {
        self.stmts
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Data { name, .. } => Some(name.name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The names declared with `param`, in order (the layout order).
    pub fn param_names(&self) -> Vec<&str> {
        self.stmts
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Param { name, .. } => Some(name.name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Binds the model to `data`: reads and checks the data fields, evaluates shapes and
    /// bounds, checks types and shapes, and builds the graphs.
    pub fn bind(&self, data: &DataSet<'_>) -> Result<BoundModel, ModelError> {
        crate::bind::bind(self, data)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SymKind {
    Data,
    Param,
    Local,
    Derived,
}

impl SymKind {
    fn describe(self) -> &'static str {
        match self {
            SymKind::Data => "data",
            SymKind::Param => "a parameter",
            SymKind::Local => "a local",
            SymKind::Derived => "a derived quantity",
        }
    }
}

struct Symbol {
    kind: SymKind,
    span: Span,
    /// Whether its value depends on parameters.
    param_dep: bool,
}

struct Resolver {
    symbols: HashMap<String, Symbol>,
    /// Every declaration in the file (for "used before its declaration").
    all_decls: HashMap<String, Span>,
}

fn declared_name(stmt: &Stmt) -> Option<&Ident> {
    match &stmt.kind {
        StmtKind::Data { name, .. }
        | StmtKind::Param { name, .. }
        | StmtKind::Let { name, .. }
        | StmtKind::Derived { name, .. } => Some(name),
        StmtKind::Sample { .. } | StmtKind::Target { .. } => None,
    }
}

impl Resolver {
    fn new(stmts: &[Stmt]) -> Resolver {
        let mut all_decls = HashMap::new();
        for name in stmts.iter().filter_map(declared_name) {
            all_decls.entry(name.name.clone()).or_insert(name.span);
        }
        Resolver { symbols: HashMap::new(), all_decls }
    }

    fn check(mut self, stmts: &[Stmt]) -> Result<(), Diag> {
        for stmt in stmts {
            self.stmt(stmt)?;
        }
        Ok(())
    }

    fn declare(&mut self, name: &Ident, kind: SymKind, param_dep: bool) -> Result<(), Diag> {
        if let Some(first) = self.symbols.get(&name.name) {
            return Err(Diag::new(ErrorKind::Duplicate, name.span, format!("`{}` is declared twice", name.name))
                .expected("a new name")
                .note(first.span, format!("`{}` is first declared here as {}", name.name, first.kind.describe())));
        }
        self.symbols.insert(name.name.clone(), Symbol { kind, span: name.span, param_dep });
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<(), Diag> {
        match &stmt.kind {
            StmtKind::Data { name, ty } => {
                self.type_decl(ty, false)?;
                self.declare(name, SymKind::Data, false)
            }
            StmtKind::Param { name, ty } => {
                self.type_decl(ty, true)?;
                self.declare(name, SymKind::Param, true)
            }
            StmtKind::Let { name, value } => {
                let dep = self.expr(value)?;
                self.declare(name, SymKind::Local, dep)
            }
            StmtKind::Derived { name, value } => {
                let dep = self.expr(value)?;
                self.declare(name, SymKind::Derived, dep)
            }
            StmtKind::Sample { lhs, dist, args, rhs_span } => {
                self.expr(lhs)?;
                let d = self.distribution(dist)?;
                let want = d.params().len();
                if args.len() != want {
                    return Err(Diag::new(
                        ErrorKind::ArgCount,
                        *rhs_span,
                        format!("{} takes {want} argument{}, got {}", d.name(), plural(want), args.len()),
                    )
                    .expected(d.signature()));
                }
                for a in args {
                    self.expr(a)?;
                }
                Ok(())
            }
            StmtKind::Target { value } => self.expr(value).map(|_| ()),
        }
    }

    fn distribution(&self, dist: &Ident) -> Result<Dist, Diag> {
        if let Some(d) = Dist::from_name(&dist.name) {
            return Ok(d);
        }
        let diag = Diag::new(ErrorKind::UnknownFunction, dist.span, format!("unknown distribution `{}`", dist.name))
            .expected("a distribution name");
        let base = dist.name.strip_suffix("_lpdf").or_else(|| dist.name.strip_suffix("_lpmf"));
        Err(match base.and_then(Dist::from_name) {
            Some(d) => diag.help(format!("after `~` write the distribution itself: `{}`", d.signature())),
            None => diag.maybe_help(did_you_mean(&dist.name, Dist::ALL.iter().map(|d| d.name()))),
        })
    }

    fn type_decl(&mut self, ty: &TypeDecl, is_param: bool) -> Result<(), Diag> {
        if is_param && ty.base == BaseType::Int {
            return Err(Diag::new(ErrorKind::Type, ty.base_span, "parameters must be real-valued")
                .expected("real, vector, matrix, simplex or ordered")
                .help("NUTS samples continuous parameters; discrete ones must be marginalized (e.g. with logsumexp)"));
        }
        if let Some(want) = ty.base.required_dims()
            && ty.dims.len() != want
        {
            let example = match ty.base {
                BaseType::Matrix => "matrix[n, m]",
                BaseType::Vector => "vector[n]",
                BaseType::Simplex => "simplex[K]",
                _ => "ordered[K]",
            };
            return Err(Diag::new(
                ErrorKind::Type,
                ty.span,
                format!("`{}` needs {want} dimension{}, got {}", ty.base.name(), plural(want), ty.dims.len()),
            )
            .expected(example));
        }
        match ty.base {
            BaseType::Simplex if ty.lower.is_some() || ty.upper.is_some() => {
                return Err(Diag::new(ErrorKind::Type, ty.span, "a simplex cannot have bounds").expected("simplex[K]"));
            }
            BaseType::Ordered if ty.upper.is_some() => {
                return Err(Diag::new(ErrorKind::Type, ty.span, "an ordered vector can only have a lower bound")
                    .expected("ordered[K] or ordered<lower=a>[K]"));
            }
            _ => {}
        }
        for (what, e) in ty.lower.iter().map(|e| ("bound", e)).chain(ty.upper.iter().map(|e| ("bound", e))).chain(ty.dims.iter().map(|e| ("dimension", e))) {
            if self.expr(e)? {
                let param = self.first_param_name(e).unwrap_or_default();
                return Err(Diag::new(ErrorKind::Type, e.span, format!("a {what} cannot depend on the parameter `{param}`"))
                    .expected(format!("a {what} computed from data")));
            }
        }
        Ok(())
    }

    fn first_param_name(&self, e: &Expr) -> Option<String> {
        let mut found = None;
        e.any_name(&mut |n| {
            let dep = self.symbols.get(n).is_some_and(|s| s.param_dep);
            if dep && found.is_none() {
                found = Some(n.to_string());
            }
            dep
        });
        found
    }

    /// Checks an expression; returns whether it depends on parameters.
    fn expr(&self, e: &Expr) -> Result<bool, Diag> {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Real(_) => Ok(false),
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::Neg(a) => self.expr(a),
            ExprKind::Binary(_, a, b) => Ok(self.expr(a)? | self.expr(b)?),
            ExprKind::Call { func, args } => self.call(func, args, e.span),
            ExprKind::Index { base, items } => {
                let mut dep = self.expr(base)?;
                for item in items {
                    match item {
                        IndexItem::Expr(i) => dep |= self.expr(i)?,
                        IndexItem::Slice { start, stop, step, .. } => {
                            for part in [start, stop, step].into_iter().flatten() {
                                dep |= self.expr(part)?;
                            }
                        }
                        IndexItem::NewAxis(_) => {}
                    }
                }
                Ok(dep)
            }
            ExprKind::List(items) => {
                let mut dep = false;
                for i in items {
                    dep |= self.expr(i)?;
                }
                Ok(dep)
            }
        }
    }

    fn name(&self, n: &str, span: Span) -> Result<bool, Diag> {
        if let Some(s) = self.symbols.get(n) {
            return Ok(s.param_dep);
        }
        if builtins::constant(n).is_some() {
            return Ok(false);
        }
        if let Some(&later) = self.all_decls.get(n) {
            return Err(Diag::new(ErrorKind::UnknownName, span, format!("`{n}` is used before its declaration"))
                .expected("a name declared on an earlier line")
                .note(later, format!("`{n}` is declared here")));
        }
        if builtins::lookup(n).is_some() {
            return Err(Diag::new(ErrorKind::UnknownName, span, format!("`{n}` is a function, not a value"))
                .expected("a value")
                .help(format!("call it: `{n}(…)`")));
        }
        let candidates = self.symbols.keys().map(String::as_str).chain(builtins::CONSTANTS.iter().map(|(c, _)| *c));
        Err(Diag::new(ErrorKind::UnknownName, span, format!("unknown name `{n}`"))
            .expected("a declared data, parameter, local or derived name")
            .maybe_help(did_you_mean(n, candidates)))
    }

    fn call(&self, func: &Ident, args: &[Arg], span: Span) -> Result<bool, Diag> {
        let Some(spec) = builtins::lookup(&func.name) else {
            return Err(self.unknown_function(func));
        };
        let positional = args.iter().filter(|a| a.keyword.is_none()).count();
        let mut given = positional;
        for (k, a) in args.iter().enumerate() {
            let Some(kw) = &a.keyword else { continue };
            let valid = kw.name == "axis" && spec.axis_arg.is_some();
            if !valid {
                let diag = Diag::new(ErrorKind::ArgCount, kw.span, format!("`{}` has no argument `{}`", spec.name, kw.name));
                return Err(if spec.axis_arg.is_some() { diag.expected("`axis`") } else { diag.expected("positional arguments only") });
            }
            if args[..k].iter().any(|b| b.keyword.as_ref().is_some_and(|b| b.name == kw.name)) {
                return Err(Diag::new(ErrorKind::Duplicate, kw.span, format!("`{}` is given twice", kw.name)).expected("each argument once"));
            }
            if spec.axis_arg.is_some_and(|p| positional > p) {
                return Err(Diag::new(ErrorKind::Duplicate, kw.span, "`axis` is also given as a positional argument")
                    .expected("each argument once"));
            }
            given += 1;
        }
        if given < spec.min_args || given > spec.max_args {
            let want = if spec.min_args == spec.max_args {
                format!("{} argument{}", spec.min_args, plural(spec.min_args))
            } else if spec.max_args == spec.min_args + 1 {
                format!("{} or {} arguments", spec.min_args, spec.max_args)
            } else {
                format!("{} to {} arguments", spec.min_args, spec.max_args)
            };
            return Err(Diag::new(ErrorKind::ArgCount, span, format!("`{}` takes {want}, got {given}", spec.name))
                .expected(want.to_string()));
        }
        if matches!(spec.func, Func::Stack | Func::Concatenate)
            && let Some(first) = args.first()
            && !matches!(first.value.kind, ExprKind::List(_))
        {
            return Err(Diag::new(ErrorKind::Type, first.value.span, format!("`{}` takes a list of values first", spec.name))
                .expected("a list `[a, b, …]`"));
        }
        let mut dep = false;
        for a in args {
            dep |= self.expr(&a.value)?;
        }
        Ok(dep)
    }

    fn unknown_function(&self, func: &Ident) -> Diag {
        let name = &func.name;
        let diag = Diag::new(ErrorKind::UnknownFunction, func.span, format!("unknown function `{name}`")).expected("a function name");
        if let Some(d) = Dist::from_name(name) {
            let params: Vec<&str> = d.params().iter().map(|(p, _)| *p).collect();
            return Diag::new(ErrorKind::UnknownFunction, func.span, format!("`{name}` is a distribution, not a function"))
                .expected("a function name")
                .help(format!("write `x ~ {}` or use `{}(x, {})`", d.signature(), d.density_fn_name(), params.join(", ")));
        }
        let swapped = name.strip_suffix("_lpdf").map(|b| format!("{b}_lpmf")).or_else(|| name.strip_suffix("_lpmf").map(|b| format!("{b}_lpdf")));
        if let Some(other) = swapped.filter(|o| builtins::lookup(o).is_some()) {
            return diag.help(format!("did you mean `{other}`? (`_lpmf` for discrete distributions, `_lpdf` for continuous ones)"));
        }
        diag.maybe_help(did_you_mean(name, builtins::all_function_names()))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
