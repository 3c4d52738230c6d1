//! The compiler driver: plan → CLIF → Cranelift → finalized native code, with options and
//! per-stage statistics.

use std::fmt;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::ExternalName;
use cranelift_codegen::FinalizedRelocTarget;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, ModuleError};
use tessera_graph::Graph;

use crate::emit::{EmitOptions, emit_function};
use crate::kernel::Step;
use crate::plan::{PlanOptions, plan};
use crate::{CodegenError, Compiled};

/// Cranelift's optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    /// No mid-end optimization (fastest compile).
    None,
    /// GVN, LICM, constant folding and alias analysis (the default).
    Speed,
}

/// Options of [`compile_with_stats`].
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Cranelift optimization level.
    pub opt_level: OptLevel,
    /// Run Cranelift's IR verifier (on by default in debug builds; costs ~25 % compile time).
    pub verifier: bool,
    /// Keep the CLIF text of the function in the statistics (`--emit clif`).
    pub clif_text: bool,
    /// Emit f64x2 inner loops for f64 elementwise and reduction kernels.
    pub vectorize: bool,
    /// Inline vector exp/log/log1p/softplus/sigmoid in vector loops (else call std per lane).
    pub inline_math: bool,
    /// Compute single-use elementwise nodes and gathers inside their consumer's loop.
    pub fuse: bool,
    /// Matrix products with at least this many multiply-adds call `matrixmultiply::dgemm`.
    pub dgemm_min_work: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        let plan = PlanOptions::default();
        CompileOptions {
            opt_level: OptLevel::Speed,
            verifier: cfg!(debug_assertions),
            clif_text: false,
            vectorize: true,
            inline_math: true,
            fuse: plan.fuse,
            dgemm_min_work: plan.dgemm_min_work,
        }
    }
}

/// What compiling took and produced.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    /// Building the symbolic gradient (only by [`crate::LogDensityFn::from_logp_with_options`];
    /// zero otherwise).
    pub gradient: std::time::Duration,
    /// Planning: views, fusion, workspace layout (graph → kernels).
    pub plan: Duration,
    /// Building the Cranelift IR (kernels → CLIF).
    pub lower: Duration,
    /// Cranelift compilation (CLIF → machine code).
    pub compile: Duration,
    /// Relocation and making the code executable.
    pub finalize: Duration,
    /// All stages, graph → callable.
    pub total: Duration,
    /// Loop-nest kernels emitted.
    pub kernels: usize,
    /// Calls of Rust linear-algebra kernels emitted.
    pub calls: usize,
    /// CLIF instructions in the function.
    pub clif_instructions: usize,
    /// CLIF basic blocks in the function.
    pub clif_blocks: usize,
    /// Bytes of machine code.
    pub code_bytes: usize,
    /// Bytes of workspace each call needs.
    pub workspace_bytes: usize,
    /// The CLIF text, when [`CompileOptions::clif_text`] was set.
    pub clif: Option<String>,
}

impl fmt::Display for CompileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        if !self.gradient.is_zero() {
            writeln!(f, "gradient  {:>10.1} µs", us(self.gradient))?;
        }
        writeln!(f, "plan      {:>10.1} µs  ({} kernels, {} calls)", us(self.plan), self.kernels, self.calls)?;
        writeln!(f, "lower     {:>10.1} µs  ({} CLIF instructions, {} blocks)", us(self.lower), self.clif_instructions, self.clif_blocks)?;
        writeln!(f, "cranelift {:>10.1} µs  ({} bytes of code)", us(self.compile), self.code_bytes)?;
        writeln!(f, "finalize  {:>10.1} µs", us(self.finalize))?;
        writeln!(f, "total     {:>10.1} µs  (workspace {} bytes)", us(self.total), self.workspace_bytes)
    }
}

/// Compiles `graph` (inputs in signature order, outputs in return order) to native code.
pub fn compile(graph: &Graph) -> Result<Compiled, CodegenError> {
    compile_with_stats(graph, &CompileOptions::default()).map(|(c, _)| c)
}

fn cranelift_err(e: impl fmt::Display) -> CodegenError {
    CodegenError::Cranelift(e.to_string())
}

/// Whether the host has fused multiply-add (the emitter uses `fma` only then).
fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

fn make_module(opts: &CompileOptions) -> Result<JITModule, CodegenError> {
    let mut fb = settings::builder();
    let level = match opts.opt_level {
        OptLevel::None => "none",
        OptLevel::Speed => "speed",
    };
    fb.set("opt_level", level).map_err(cranelift_err)?;
    // JITModule requires non-PIC code and absolute calls into the registered Rust functions.
    fb.set("is_pic", "false").map_err(cranelift_err)?;
    fb.set("use_colocated_libcalls", "false").map_err(cranelift_err)?;
    fb.set("enable_verifier", if opts.verifier { "true" } else { "false" }).map_err(cranelift_err)?;
    let isa = cranelift_native::builder()
        .map_err(cranelift_err)?
        .finish(settings::Flags::new(fb))
        .map_err(cranelift_err)?;
    let mut jb = JITBuilder::with_isa(isa, Box::new(crate::runtime::libcall_name));
    crate::runtime::register(&mut jb);
    Ok(JITModule::new(jb))
}

/// Every external reference of the compiled code must be a registered symbol: checked here so
/// that a missing one is an error, not a panic in `finalize_definitions`.
fn check_relocations(ctx: &cranelift_codegen::Context) -> Result<(), CodegenError> {
    let Some(code) = ctx.compiled_code() else { return Ok(()) };
    for r in code.buffer.relocs() {
        let ok = match &r.target {
            FinalizedRelocTarget::ExternalName(ExternalName::LibCall(lc)) => crate::runtime::libcall_registered(*lc),
            FinalizedRelocTarget::ExternalName(ExternalName::User(_)) | FinalizedRelocTarget::Func(_) => true,
            FinalizedRelocTarget::ExternalName(_) => false,
        };
        if !ok {
            return Err(CodegenError::Cranelift(format!("unresolvable reference {:?}", r.target)));
        }
    }
    Ok(())
}

/// The Cranelift IR (CLIF text) that compiling `graph` with `opts` would hand to Cranelift,
/// without compiling it (for `tessera compile FILE.ir --emit clif`).
pub fn emit_clif(graph: &Graph, opts: &CompileOptions) -> Result<String, CodegenError> {
    let plan_opts = PlanOptions { fuse: opts.fuse, dgemm_min_work: opts.dgemm_min_work };
    let program = plan(graph, &plan_opts)?;
    let mut module = make_module(opts)?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let emit_opts = EmitOptions { vectorize: opts.vectorize, inline_math: opts.inline_math, fma: host_has_fma() };
    emit_function(&program, &mut module, &mut ctx.func, &mut fctx, emit_opts)?;
    Ok(ctx.func.display().to_string())
}

/// Compiles `graph` and reports what each stage took.
pub fn compile_with_stats(graph: &Graph, opts: &CompileOptions) -> Result<(Compiled, CompileStats), CodegenError> {
    let t0 = Instant::now();
    let plan_opts = PlanOptions { fuse: opts.fuse, dgemm_min_work: opts.dgemm_min_work };
    let program = plan(graph, &plan_opts)?;
    let t1 = Instant::now();
    let mut module = make_module(opts)?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let emit_opts = EmitOptions { vectorize: opts.vectorize, inline_math: opts.inline_math, fma: host_has_fma() };
    emit_function(&program, &mut module, &mut ctx.func, &mut fctx, emit_opts)?;
    let clif = opts.clif_text.then(|| ctx.func.display().to_string());
    let clif_blocks = ctx.func.layout.blocks().count();
    let clif_instructions = ctx.func.layout.blocks().map(|b| ctx.func.layout.block_insts(b).count()).sum();
    let t2 = Instant::now();
    let id = module
        .declare_function("tessera_main", Linkage::Export, &ctx.func.signature)
        .map_err(cranelift_err)?;
    module.define_function(id, &mut ctx).map_err(|e| match e {
        ModuleError::Compilation(inner) => CodegenError::Cranelift(format!("{inner:?}")),
        other => cranelift_err(other),
    })?;
    check_relocations(&ctx)?;
    let code_bytes = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
    module.clear_context(&mut ctx);
    let t3 = Instant::now();
    module.finalize_definitions().map_err(cranelift_err)?;
    let entry = module.get_finalized_function(id);
    let t4 = Instant::now();
    let stats = CompileStats {
        gradient: Duration::ZERO,
        plan: t1 - t0,
        lower: t2 - t1,
        compile: t3 - t2,
        finalize: t4 - t3,
        total: t4 - t0,
        kernels: program.steps.iter().filter(|s| matches!(s, Step::Kernel(_))).count(),
        calls: program.steps.iter().filter(|s| matches!(s, Step::Call(_))).count(),
        clif_instructions,
        clif_blocks,
        code_bytes,
        workspace_bytes: program.workspace_bytes,
        clif,
    };
    // SAFETY: `entry` was just finalized by `module`, whose code was generated by
    // `emit_function` with exactly the `EntryFn` signature; `Compiled` keeps the module
    // alive for as long as the pointer can be called.
    let compiled = unsafe { Compiled::new(module, entry, program) };
    Ok((compiled, stats))
}
