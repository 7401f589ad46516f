//! The per-packet pipeline: classify, look up, decide, rewrite; drop reasons and counters.
