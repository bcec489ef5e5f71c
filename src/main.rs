//! The `faultline` binary: a thin shim over the library; each verb lives in `cli/<verb>.rs`.

mod cli;

/// mimalloc: the decision path allocates small strings; glibc malloc costs ~30 % of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

/// Bulk verbs (ingest, analyze) free and allocate again hundreds of MB per batch. mimalloc
/// returns freed memory to the OS after 10 ms by default, and every batch then faults it
/// back in, zeroed page by page (a quarter of ingest's CPU time); keep it instead. An
/// explicit `MIMALLOC_PURGE_DELAY` still wins.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3).
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: mi_option_set is part of the mimalloc library linked in as the global
    // allocator; it only stores the option, which later purges read, and -1 is a documented
    // value ("no purging at all").
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if args.is_bulk() {
        keep_freed_memory();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (e.g. `| head`) is not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("faultline: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
