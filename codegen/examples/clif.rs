//! Prints the CLIF of a graph in the text form (a development aid): `clif FILE.ir`.
fn main() {
    let path = std::env::args().nth(1).expect("FILE.ir");
    let g = tessera_graph::parse(&std::fs::read_to_string(path).expect("read")).expect("parse");
    println!("{}", tessera_codegen::emit_clif(&g, &Default::default()).expect("lower"));
}
