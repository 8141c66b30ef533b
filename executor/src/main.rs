//! The `executor` command: parse arguments, run, map the error to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Counts what each Starlark evaluation allocates, so that a runaway `BUILD` file is
/// stopped before it exhausts memory (see `executor::load::CountingAllocator`).
#[global_allocator]
static ALLOCATOR: executor::load::CountingAllocator = executor::load::CountingAllocator;

fn main() -> ExitCode {
    let cli = executor::cli::Cli::parse();
    // On a thread whose stack is big enough to load Starlark on (once, for every package).
    let result = match executor::load::with_loading_stack(|| executor::cli::run(cli)) {
        Ok(result) => result,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the main thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
