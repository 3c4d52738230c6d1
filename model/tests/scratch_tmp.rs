use tessera_model::*;
#[test]
fn scratch() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/posteriordb");
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        let src = std::fs::read_to_string(&p).unwrap();
        let model = match parse_model(&src, &stem) { Ok(m) => m, Err(e) => { println!("{e}"); continue } };
        let data_path = if stem == "diamonds-diamonds" { "/work/shared/posteriordb/diamonds-diamonds/data.json".to_string() } else { format!("{}/tests/fixtures/posteriordb/{stem}.json", env!("CARGO_MANIFEST_DIR")) };
        let text = std::fs::read_to_string(&data_path).unwrap();
        let data = DataSet::from_json(&text, "data.json").unwrap();
        let t0 = std::time::Instant::now();
        let b = match model.bind(&data) { Ok(b) => b, Err(e) => { println!("{e}"); continue } };
        let theta: Vec<f64> = (0..b.dim()).map(|i| 0.1 * (i as f64 % 7.0) - 0.2).collect();
        let r = b.logp_and_grad_interp(&theta);
        match r {
            Ok((lp, g)) => {
                // FD check
                let h = 1e-6; let mut maxerr: f64 = 0.0;
                for i in 0..b.dim() { let mut tp = theta.clone(); tp[i] += h; let mut tm = theta.clone(); tm[i] -= h;
                  let fd = (b.logp_interp(&tp).unwrap() - b.logp_interp(&tm).unwrap()) / (2.0*h);
                  maxerr = maxerr.max((fd - g[i]).abs() / (1.0 + fd.abs())); }
                println!("{stem}: dim {} logp {lp} nodes {} maxrelerr {maxerr:e} time {:?}", b.dim(), b.logp_graph().live_nodes().len(), t0.elapsed());
            }
            Err(e) => println!("{stem}: eval error {e}"),
        }
    }
}
#[test]
fn print_graph() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/eight_schools.tess")).unwrap();
    let m = parse_model(&src, "e.tess").unwrap();
    let d = DataSet::from_json(r#"{"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}"#, "d.json").unwrap();
    let b = m.bind(&d).unwrap();
    println!("{}", tessera_graph::print(b.logp_graph()));
    println!("{}", tessera_graph::print(b.constrained_graph()));
    for l in b.layout() { println!("{l}"); }
    let src = "data N: int\ndata y: vector[N]\nparam mu: ordered[2]\nparam s: simplex[3]\nparam p: real<lower=0, upper=1>\nlet lp = logsumexp(normal_lpdf(y[:, None], mu[None, :], 1) + log(s[:2]), 1)\ntarget += lp\n";
    let m = parse_model(src, "m.tess").unwrap();
    let d = DataSet::from_json(r#"{"N": 3, "y": [1, 2, 3]}"#, "d.json").unwrap();
    let b = m.bind(&d).unwrap();
    println!("{}", tessera_graph::print(b.logp_graph()));
}
