//! Fuzz target: arbitrary bytes as an Azure Resource Manager template (or `az network lb show`
//! output) to import.
//!
//! Contract checked: the import never panics; a successful import yields syntactically valid TOML,
//! and loading that TOML (which may still hold placeholders to fill in) never panics either.
//!
//! Run: `scripts/fuzz.sh arm_import` (or `cargo fuzz run arm_import` from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipmux::config::azure::{import_str, ImportOptions};
use vipmux::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match import_str(text, &ImportOptions::default()) {
        Ok(imported) => {
            if let Err(e) = toml::from_str::<toml::Table>(&imported.toml) {
                panic!("import emitted invalid TOML: {e}\n{}", imported.toml);
            }
            let _ = Config::from_str(&imported.toml, "imported.toml");
        }
        Err(e) => {
            assert!(!e.field.is_empty(), "an import error names its field");
            let _ = e.to_string();
        }
    }
});
