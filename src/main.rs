//! The `atrest` command: a thin layer over the library that parses flags,
//! opens files and prints. See `atrest --help`.

mod cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOC: cli::alloc::HugeAlloc = cli::alloc::HugeAlloc;

fn main() -> ExitCode {
    cli::run()
}
