//! Golden files: a plan, a rule dump or a result compared with a file reviewed by a person.
//!
//! `UPDATE_GOLDEN=1` rewrites the files from what the code produces (then read the diff), but
//! never under CI: a golden file written by the code under test passes whatever the code does.
//!
//! ```no_run
//! # fn plan() -> String { String::new() }
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/golden");
//! cni_testkit::golden::assert_golden(&dir.join("add.txt"), &plan());
//! ```

use std::path::Path;

/// The variable that rewrites golden files.
pub const UPDATE_VAR: &str = "UPDATE_GOLDEN";

/// Panics unless `have` equals the content of the golden file at `path`. With
/// `UPDATE_GOLDEN` set (and not under CI) the file is written first.
#[track_caller]
pub fn assert_golden(path: &Path, have: &str) {
    if std::env::var_os(UPDATE_VAR).is_some() {
        assert!(
            !crate::privilege::in_ci(),
            "{UPDATE_VAR} is refused under CI: regenerate golden files by hand and review them"
        );
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            panic!("creating {}: {e}", dir.display());
        }
        if let Err(e) = std::fs::write(path, have) {
            panic!("writing {}: {e}", path.display());
        }
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "golden file {}: {e} (write it with {UPDATE_VAR}=1 and review it)",
            path.display()
        )
    });
    assert_eq!(have, want, "golden file {} differs", path.display());
}
