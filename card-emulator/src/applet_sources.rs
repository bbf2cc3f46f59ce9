//! The applets in card-emulator/applets/, as the tests and benchmarks build them.
//!
//! WebAssembly-text applets (`*.wat`) are returned as text: the callers compile them with
//! the `wat` crate. C applets are compiled here with Debian's clang and wasm-ld (packages
//! `clang` and `lld`), with the flags of card-emulator/applets/README.md ([`CLANG_FLAGS`]).
//! Standard library only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The clang flags for a C applet (then `-o OUT.wasm FILE.c`): wasm32 without libc or
/// entry point, exporting `memory` (wasm-ld's default), `process` (required: the link fails
/// without it) and whichever of `install`, `select`, `deselect` the file defines. Imports
/// are declared in the C file with `import_module("se")`; without `--allow-undefined`, any
/// other undefined symbol fails the link. An 8 KiB stack keeps the initial memory at one
/// page; `--strip-all` drops the name and producers sections.
pub const CLANG_FLAGS: &[&str] = &[
    "--target=wasm32",
    "-O2",
    "-nostdlib",
    "-fno-builtin",
    "-Wl,--no-entry",
    "-Wl,--export=process",
    "-Wl,--export-if-defined=install",
    "-Wl,--export-if-defined=select",
    "-Wl,--export-if-defined=deselect",
    "-Wl,-z,stack-size=8192",
    "-Wl,--strip-all",
];

const MISSING: &str = "the C applets are built with clang for wasm32 and wasm-ld; on Debian: \
                       apt-get install clang lld (or scripts/setup-debian.sh test)";

/// The directory card-emulator/applets (from CARGO_MANIFEST_DIR at compile time of card-emulator).
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("applets")
}

/// Read a .wat file under applets/ (e.g. "echo.wat", "hostile/infinite_loop.wat") and return its text.
pub fn wat_text(name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(dir().join(name))
}

/// Compile a C applet under applets/ (e.g. "hotp/hotp.c") with Debian's clang to wasm32 into `out_dir`
/// (the exact flags from the README), returning the module bytes; a clear error naming `apt-get install clang lld`
/// when clang or wasm-ld is missing. Never panics.
pub fn build_c(name: &str, out_dir: &Path) -> Result<Vec<u8>, String> {
    let source = dir().join(name);
    if !source.is_file() {
        return Err(format!("no C applet {}", source.display()));
    }
    if !c_toolchain_available() {
        return Err(format!("cannot build {name}: {MISSING}"));
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "applet".to_owned());
    let out = out_dir.join(format!("{stem}.wasm"));
    let output = Command::new("clang")
        .args(CLANG_FLAGS)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .output()
        .map_err(|e| format!("cannot run clang for {name}: {e} ({MISSING})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if (stderr.contains("wasm-ld") && stderr.contains("not found"))
            || stderr.contains("unable to execute command")
        {
            format!(" ({MISSING})")
        } else {
            String::new()
        };
        return Err(format!(
            "clang failed to build {name} ({}){hint}:\n{}",
            output.status,
            stderr.trim_end()
        ));
    }
    std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))
}

/// Whether clang can target wasm32 here (clang and wasm-ld on PATH).
pub fn c_toolchain_available() -> bool {
    on_path("clang") && on_path("wasm-ld")
}

/// Whether an executable file `program` is in one of the PATH directories.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| is_executable(&d.join(program)))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wat_applets_are_there() {
        for name in [
            "echo.wat",
            "hostile/infinite_loop.wat",
            "hostile/memory_bomb.wat",
            "hostile/huge_initial_memory.wat",
            "hostile/deep_recursion.wat",
            "hostile/storage_oob.wat",
            "hostile/unknown_import.wat",
            "hostile/foreign_module_import.wat",
            "hostile/bad_import_type.wat",
            "hostile/no_process.wat",
            "hostile/file_reader.wat",
            "hostile/storage_writer_trap.wat",
            "hostile/big_response.wat",
        ] {
            let text = wat_text(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(text.contains("(module"), "{name}");
        }
        assert!(wat_text("hostile/none.wat").is_err());
    }

    #[test]
    fn build_c_makes_a_module_or_says_what_is_missing() {
        let out = tempfile::tempdir().unwrap();
        assert!(build_c("hotp/none.c", out.path()).is_err());
        match build_c("hotp/hotp.c", out.path()) {
            Ok(wasm) => {
                assert!(c_toolchain_available());
                assert_eq!(&wasm[..4], b"\0asm");
                assert!(wasm.len() < 65_536, "{} bytes", wasm.len());
            }
            Err(e) => {
                assert!(!c_toolchain_available(), "{e}");
                assert!(e.contains("apt-get install clang lld"), "{e}");
            }
        }
    }
}
