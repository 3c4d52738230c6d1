//! Prints a benchmark model's gradient graph and its lowered kernels (a development aid).
#[path = "../tests/models/mod.rs"]
mod models;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "radon".into());
    let (g, _) = match which.as_str() {
        "logistic" => { let (g, h) = models::logistic(); (g, Box::new(h) as Box<dyn models::Hand>) }
        "eight" => { let (g, h) = models::eight_schools(); (g, Box::new(h) as Box<dyn models::Hand>) }
        _ => { let (g, h) = models::radon(); (g, Box::new(h) as Box<dyn models::Hand>) }
    };
    let gg = tessera_graph::with_gradients(&g, &[tessera_graph::Graph::input_name(&g, g.inputs()[0]).unwrap()]).unwrap();
    if which != "logistic" { println!("{}", tessera_graph::print(&gg)); }
    let p = tessera_codegen::plan::plan(&gg, &Default::default()).unwrap();
    for s in &p.steps {
        match s {
            tessera_codegen::kernel::Step::Kernel(k) => {
                let modes: Vec<String> = k
                    .outs
                    .iter()
                    .map(|o| match &o.mode {
                        tessera_codegen::kernel::Mode::Reduce { reduced, .. } => format!("reduce{reduced:?}"),
                        m => format!("{m:?}"),
                    })
                    .collect();
                println!("{:<40} domain {:?} leaves {} nodes {} outs {:?}", k.label, k.domain, k.leaves.len(), k.expr.nodes.len(), modes)
            }
            tessera_codegen::kernel::Step::Call(c) => println!("call {:?}", std::mem::discriminant(c)),
        }
    }
}
