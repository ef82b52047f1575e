//! `atrest completions SHELL` and `atrest man`: shell completion scripts
//! (clap_complete) and roff manual pages (clap_mangen), both made from the same
//! command definitions as `--help`, so they never drift from the flags.

use super::{output::write_stdout, CmdResult, Failure};
use clap::CommandFactory;
use std::path::PathBuf;

pub const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  # bash (needs the bash-completion package)
  atrest completions bash > ~/.local/share/bash-completion/completions/atrest

  # zsh: a directory on $fpath, then restart the shell
  atrest completions zsh > ~/.zfunc/_atrest

  # fish
  atrest completions fish > ~/.config/fish/completions/atrest.fish";

pub const MAN_EXAMPLES: &str = "\
Examples:
  # Read the page without installing it
  atrest man > atrest.1 && man -l atrest.1

  # Install atrest(1) and one page per subcommand (atrest-audit(1), ...) where man
  # finds them for a binary in ~/.cargo/bin
  atrest man --out-dir ~/.cargo/share/man/man1";

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// Shell to print the completion script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write atrest.1 and one page per subcommand (atrest-audit.1, ...) into DIR
    /// (created if missing; existing pages are replaced) instead of printing
    /// atrest.1 to stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Print the completion script for `a.shell` on stdout.
pub fn completions(a: CompletionsArgs) -> CmdResult {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "atrest", &mut script);
    write_stdout(&script)
}

/// Print atrest(1) on stdout, or write every page into `--out-dir`.
pub fn man(a: ManArgs) -> CmdResult {
    // NAME wants one line; DESCRIPTION gets the whole summary. No page is made for
    // `help`, so the list of subcommands must not name one.
    let cmd = super::Cli::command()
        .disable_help_subcommand(true)
        .about("Kubernetes encryption at rest in etcd, byte-exact with kube-apiserver")
        .long_about(super::ABOUT);
    match a.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Failure::usage(format!("cannot render the manual page: {e}")))?;
            write_stdout(&page)
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Failure::usage(format!(
                    "cannot create {}: {e}; pass a directory you can write to",
                    dir.display()
                ))
            })?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| {
                Failure::usage(format!(
                    "cannot write manual pages into {}: {e}; pass a directory you can write to",
                    dir.display()
                ))
            })?;
            eprintln!("wrote manual pages into {}", dir.display());
            Ok(())
        }
    }
}
