//! The TOML configuration model, its validation with precise errors, and compilation to a snapshot.
