//! The `faultline` binary: a thin shim over the library; each verb lives in `cli/<verb>.rs`.

/// `eprintln!` that never panics: a closed standard error (`faultline analyze … 2>&1 | head`)
/// loses the text instead of aborting the run with exit 101. Every message of the binary to
/// standard error goes through it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod cli;

/// mimalloc: the decision path allocates small strings; glibc malloc costs ~30 % of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

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
    let args = cli::Cli::parse_args();
    if args.is_bulk() {
        keep_freed_memory();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (e.g. `| head`) is not an error.
        Err(err) if closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            say!("faultline: error: {}", render(&err));
            ExitCode::from(2)
        }
    }
}

/// Whether the error is a write to a pipe whose reader has gone: an `io::Error` anywhere in
/// the chain, or one inside a `serde_json::Error` (which does not expose it as its source).
fn closed_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
    })
}

/// The error and its causes joined by ": ", each cause left out when the text before it
/// already ends with it (the library's errors end their message with their cause).
fn render(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let lib = faultline::train::TrainError::Io {
            path: "nope.toml".into(),
            source: io,
        };
        let err = Err::<(), _>(lib).context("cannot read rules").unwrap_err();
        assert_eq!(
            render(&err),
            "cannot read rules: nope.toml: No such file or directory"
        );
        let err = anyhow::anyhow!("outer").context("middle");
        assert_eq!(render(&err), "middle: outer");
    }

    #[test]
    fn a_closed_pipe_is_recognised_inside_json_errors() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(closed_pipe(&anyhow::Error::from(pipe()).context("writing")));
        let json = serde_json::Error::io(pipe());
        assert!(closed_pipe(&anyhow::Error::from(json)));
        let other = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!closed_pipe(&anyhow::Error::from(other)));
    }
}
