//! The `atrest` command: a thin layer over the library that parses flags,
//! opens files and prints. See `atrest --help`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
