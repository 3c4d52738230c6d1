//! Debug helper: optimizes the gradient of an example and prints the trace.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&args[1]).unwrap();
    let wrt: Vec<&str> = args[2..].iter().map(String::as_str).collect();
    let g = tessera_graph::with_gradients(&tessera_graph::parse(&src).unwrap(), &wrt).unwrap();
    println!("{g}");
    let s = tessera_rewrite::PipelineSettings { trace: true, passes: tessera_rewrite::Pass::parse_list("canonicalize,simplify,stabilize,specialize").unwrap(), ..Default::default() };
    let (opt, report) = tessera_rewrite::optimize(&g, &s).unwrap();
    println!("{opt}\n{report}");
}
