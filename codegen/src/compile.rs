//! The compiler driver: plan → CLIF → Cranelift → finalized native code, with options and
//! per-stage statistics.

use std::fmt;
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{ExternalName, Function};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{CompiledCode, Context, FinalizedRelocTarget};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, ModuleReloc};
use tessera_graph::Graph;
use tessera_graph::threads::spawn_beside_owned;

use crate::emit::{EmitOptions, emit_part};
use crate::kernel::{Program, Step};
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
    /// CLIF instructions per compiled part (default 400): the program is emitted as a
    /// sequence of functions, each closed at the first step boundary past this size, and
    /// the parts compile on several threads. A program this small or smaller is one
    /// function. Cranelift costs ~2 µs per instruction and a part ~2 ns per call; smaller
    /// functions also give the register allocator less to keep alive (hierarchical radon's
    /// logp+gradient runs ~15 % faster as two parts than as one).
    pub part_budget: usize,
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
            part_budget: 400,
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
    /// Cranelift compilation (CLIF → machine code): the wall time from the end of emission
    /// until every part is compiled (parts compile on other threads while later parts are
    /// still being emitted, so some of the work overlaps `lower`).
    pub compile: Duration,
    /// Relocation and making the code executable.
    pub finalize: Duration,
    /// All stages, graph → callable.
    pub total: Duration,
    /// Functions the program was split into (compiled in parallel; called in order).
    pub parts: usize,
    /// Loop-nest kernels emitted.
    pub kernels: usize,
    /// Calls of Rust linear-algebra kernels emitted.
    pub calls: usize,
    /// CLIF instructions in all parts.
    pub clif_instructions: usize,
    /// CLIF basic blocks in all parts.
    pub clif_blocks: usize,
    /// Bytes of machine code.
    pub code_bytes: usize,
    /// Bytes of workspace each call needs.
    pub workspace_bytes: usize,
    /// The CLIF text of the parts, when [`CompileOptions::clif_text`] was set.
    pub clif: Option<String>,
}

impl fmt::Display for CompileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        if !self.gradient.is_zero() {
            writeln!(f, "gradient  {:>10.1} µs", us(self.gradient))?;
        }
        writeln!(f, "plan      {:>10.1} µs  ({} kernels, {} calls)", us(self.plan), self.kernels, self.calls)?;
        writeln!(
            f,
            "lower     {:>10.1} µs  ({} CLIF instructions, {} blocks, {} part{})",
            us(self.lower),
            self.clif_instructions,
            self.clif_blocks,
            self.parts,
            if self.parts == 1 { "" } else { "s" }
        )?;
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

/// The JIT module, and its target ISA shared with the threads that compile parts.
fn make_module(opts: &CompileOptions) -> Result<(JITModule, OwnedTargetIsa), CodegenError> {
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
    let mut jb = JITBuilder::with_isa(isa.clone(), Box::new(crate::runtime::libcall_name));
    crate::runtime::register(&mut jb);
    Ok((JITModule::new(jb), isa))
}

/// Every external reference of the compiled code must be a registered symbol: checked here so
/// that a missing one is an error, not a panic in `finalize_definitions`.
fn check_relocations(code: &CompiledCode) -> Result<(), CodegenError> {
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

/// Most threads compiling parts beside the emitting one.
const MAX_PART_WORKERS: usize = 3;

/// Threads that may compile parts beside the emitting one: the cores beyond this thread's
/// (asked once: the answer reads cgroup files), at most [`MAX_PART_WORKERS`].
fn part_workers() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())).saturating_sub(1).min(MAX_PART_WORKERS)
}

/// Emits `program` part by part, handing each part's function to `each` in step order
/// (with whether it is the last).
fn emit_parts(
    program: &Program,
    module: &mut JITModule,
    opts: EmitOptions,
    budget: usize,
    mut each: impl FnMut(Function, bool) -> Result<(), CodegenError>,
) -> Result<(), CodegenError> {
    let mut fctx = FunctionBuilderContext::new();
    let mut start = 0;
    loop {
        let (func, taken) = emit_part(program, &program.steps[start..], module, &mut fctx, opts, budget)?;
        start += taken;
        let last = start >= program.steps.len();
        each(func, last)?;
        if last {
            return Ok(());
        }
    }
}

/// The Cranelift IR (CLIF text) that compiling `graph` with `opts` would hand to Cranelift,
/// without compiling it (for `tessera compile FILE.ir --emit clif`).
pub fn emit_clif(graph: &Graph, opts: &CompileOptions) -> Result<String, CodegenError> {
    let plan_opts = PlanOptions { fuse: opts.fuse, dgemm_min_work: opts.dgemm_min_work };
    let program = plan(graph, &plan_opts)?;
    let (mut module, _) = make_module(opts)?;
    let mut parts = Vec::new();
    emit_parts(&program, &mut module, emit_options(opts), opts.part_budget, |func, _| {
        parts.push(func.display().to_string());
        Ok(())
    })?;
    Ok(parts.join("\n"))
}

fn emit_options(opts: &CompileOptions) -> EmitOptions {
    EmitOptions { vectorize: opts.vectorize, inline_math: opts.inline_math, fma: host_has_fma() }
}

/// One compiled part: its function (for its signature and external names) and machine code.
struct CompiledPart {
    func: Function,
    code: CompiledCode,
}

/// Compiles parts one after another in one Cranelift [`Context`], whose analyses and register
/// allocator keep their memory from part to part (a fresh context per part allocated and
/// faulted in all of it again).
struct PartCompiler {
    ctx: Context,
}

impl PartCompiler {
    fn new() -> Self {
        Self { ctx: Context::new() }
    }

    fn compile(&mut self, isa: &dyn TargetIsa, func: Function) -> Result<CompiledPart, CodegenError> {
        self.ctx.clear();
        self.ctx.func = func;
        self.ctx.compile(isa, &mut ControlPlane::default()).map_err(|e| CodegenError::Cranelift(format!("{:?}", e.inner)))?;
        let code = self.ctx.take_compiled_code().ok_or_else(|| CodegenError::Cranelift("a part has no code".into()))?;
        Ok(CompiledPart { func: std::mem::replace(&mut self.ctx.func, Function::new()), code })
    }
}

/// Emits `program` part by part and compiles the parts, on worker threads while later parts
/// are still being emitted (started when a second part exists), then on this thread too.
/// Returns the compiled parts in step order and when emission ended.
fn emit_and_compile(
    program: &Program,
    module: &mut JITModule,
    isa: &OwnedTargetIsa,
    opts: &CompileOptions,
    stats: &mut CompileStats,
) -> Result<(Vec<CompiledPart>, Instant), CodegenError> {
    let (emit_opts, budget, keep_clif) = (emit_options(opts), opts.part_budget, opts.clif_text);
    let workers = part_workers();
    let (job_tx, job_rx) = mpsc::channel::<(usize, Function)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<CompiledPart, CodegenError>)>();
    let mut clif = Vec::new();
    let mut compiler = PartCompiler::new();
    let (mut parts, mut spawned, mut emitted) = (0, false, None);
    emit_parts(program, module, emit_opts, budget, |func, last| {
        stats.clif_blocks += func.layout.blocks().count();
        stats.clif_instructions += func.layout.blocks().map(|b| func.layout.block_insts(b).count()).sum::<usize>();
        if keep_clif {
            clif.push(func.display().to_string());
        }
        if last {
            emitted = Some(Instant::now());
        }
        if last && parts == 0 {
            // One part: no threads.
            let _ = done_tx.send((0, compiler.compile(&**isa, func)));
            parts = 1;
            return Ok(());
        }
        if !spawned {
            spawned = true;
            for w in 0..workers {
                let (done, jobs, isa) = (done_tx.clone(), job_rx.clone(), isa.clone());
                let work = move || {
                    let mut compiler = PartCompiler::new();
                    while let Some((k, func)) = take_job(&jobs, true) {
                        let _ = done.send((k, compiler.compile(&*isa, func)));
                    }
                };
                // Without the thread (the system refused one), this thread compiles its
                // share. A worker ends when the jobs run out; its results are awaited below.
                let _ = spawn_beside_owned(&format!("tessera-part-worker-{w}"), work);
            }
        }
        let _ = job_tx.send((parts, func));
        parts += 1;
        Ok(())
    })?;
    drop(job_tx);
    while let Some((k, func)) = take_job(&job_rx, false) {
        let _ = done_tx.send((k, compiler.compile(&**isa, func)));
    }
    let emitted = emitted.unwrap_or_else(Instant::now);
    // The workers hold the other senders: the loop below ends when every part is in.
    drop(done_tx);
    if keep_clif {
        stats.clif = Some(clif.join("\n"));
    }
    let mut compiled: Vec<Option<CompiledPart>> = (0..parts).map(|_| None).collect();
    for (k, part) in done_rx {
        compiled[k] = Some(part?);
    }
    let compiled = compiled.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| CodegenError::Cranelift("a part was not compiled".into()))?;
    Ok((compiled, emitted))
}

/// The next part to compile: waiting for one (a worker) or only if one is queued.
fn take_job(jobs: &Mutex<mpsc::Receiver<(usize, Function)>>, wait: bool) -> Option<(usize, Function)> {
    let rx = jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if wait { rx.recv().ok() } else { rx.try_recv().ok() }
}

/// Places the compiled parts in `module` and returns their finalized entry points in order.
fn define_parts(module: &mut JITModule, parts: &[CompiledPart], stats: &mut CompileStats) -> Result<Vec<*const u8>, CodegenError> {
    let mut ids = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let code = &part.code;
        check_relocations(code)?;
        let id = module.declare_function(&format!("tessera_part{k}"), Linkage::Export, &part.func.signature).map_err(cranelift_err)?;
        let relocs: Vec<ModuleReloc> = code.buffer.relocs().iter().map(|r| ModuleReloc::from_mach_reloc(r, &part.func, id)).collect();
        module.define_function_bytes(id, u64::from(code.buffer.alignment), code.code_buffer(), &relocs).map_err(cranelift_err)?;
        stats.code_bytes += code.code_buffer().len();
        ids.push(id);
    }
    module.finalize_definitions().map_err(cranelift_err)?;
    Ok(ids.into_iter().map(|id| module.get_finalized_function(id)).collect())
}

/// Compiles `graph` and reports what each stage took.
pub fn compile_with_stats(graph: &Graph, opts: &CompileOptions) -> Result<(Compiled, CompileStats), CodegenError> {
    let t0 = Instant::now();
    let plan_opts = PlanOptions { fuse: opts.fuse, dgemm_min_work: opts.dgemm_min_work };
    let program = plan(graph, &plan_opts)?;
    // Every call needs the workspace: one too big to allocate is an error now, not an abort
    // when the first workspace is made.
    if !tessera_graph::memory::can_allocate(program.workspace_bytes) {
        return Err(CodegenError::InvalidGraph(format!("its workspace of {} bytes is more than this machine can allocate", program.workspace_bytes)));
    }
    let t1 = Instant::now();
    let (mut module, isa) = make_module(opts)?;
    let mut stats = CompileStats::default();
    let (parts, t2) = emit_and_compile(&program, &mut module, &isa, opts, &mut stats)?;
    let t3 = Instant::now();
    let entries = define_parts(&mut module, &parts, &mut stats)?;
    let t4 = Instant::now();
    stats.plan = t1 - t0;
    stats.lower = t2 - t1;
    stats.compile = t3 - t2;
    stats.finalize = t4 - t3;
    stats.total = t4 - t0;
    stats.parts = parts.len();
    stats.kernels = program.steps.iter().filter(|s| matches!(s, Step::Kernel(_))).count();
    stats.calls = program.steps.iter().filter(|s| matches!(s, Step::Call(_))).count();
    stats.workspace_bytes = program.workspace_bytes;
    // SAFETY: every entry was just finalized by `module`, from a part that `emit_part` generated
    // with exactly the `EntryFn` signature, and the parts are in step order; `Compiled`
    // keeps the module alive for as long as the pointers can be called.
    let compiled = unsafe { Compiled::new(module, &entries, program) };
    Ok((compiled, stats))
}
