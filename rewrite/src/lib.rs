//! Rewrite engine and the optimization/stabilization pipeline (filled by the rewrite issue).
