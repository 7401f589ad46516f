//! Build script: generates DPDK bindings (filled in by the foundation work).
fn main() {}
