//! Fuzz target: arbitrary bytes as an Azure Resource Manager template (or `az network lb show`
//! output) to import.
//!
//! Contract checked: the import never panics; a successful import yields syntactically valid TOML,
//! and loading that TOML never panics either; importing is deterministic. The output need not
//! validate: placeholders aside, the importer carries the template's values over as they are
//! (missing ports, out-of-range timeouts) and leaves the verdict to the validation the CLI runs.
//!
//! Run: `scripts/fuzz.sh arm_import`, or from the repository root
//! `cargo fuzz run -s none arm_import`.
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
            assert_eq!(
                import_str(text, &ImportOptions::default()).as_ref(),
                Ok(&imported),
                "importing is deterministic"
            );
        }
        Err(e) => {
            assert!(!e.field.is_empty(), "an import error names its field");
            let _ = e.to_string();
        }
    }
});
