//! Command-line definitions (one place for every flag, its help and examples)
//! and dispatch to the command modules.

pub mod alloc;
mod audit;
mod crypt;
mod dump;
mod etcd;
mod flags;
mod gate;
mod generate;
mod info;
mod keys;
mod kms;
mod output;
mod progress;
mod rewrite;
mod rotate;
mod shell;
mod snapshot;
mod validate;

use clap::{Parser, Subcommand};
use std::fmt;
use std::process::ExitCode;

const ABOUT: &str = "Kubernetes encryption at rest in etcd: generate and validate \
EncryptionConfiguration files, encrypt and decrypt stored values byte for byte as \
kube-apiserver does, audit etcd data and snapshots, rewrite and rotate keys, and \
recover Secrets from etcd backups.";

const EXIT_CODES: &str = "\
Exit codes:
  0  success, nothing needs action
  1  findings or failure (invalid config, value that cannot be read, objects needing action)
  2  usage or I/O error (bad flags, missing or unreadable file, etcd unreachable)
  130/143  rewrite interrupted by SIGINT/SIGTERM (run it again to finish)";

/// atrest: Kubernetes encryption at rest, byte-exact with kube-apiserver.
#[derive(Debug, Parser)]
#[command(name = "atrest", version, about = ABOUT, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new EncryptionConfiguration with a fresh key from the OS RNG.
    #[command(after_help = generate::EXAMPLES)]
    Generate(generate::Args),
    /// Check EncryptionConfiguration files as kube-apiserver would, plus lints; compare several.
    #[command(after_help = validate::EXAMPLES)]
    Validate(validate::Args),
    /// Encrypt a plaintext value (stdin) exactly as kube-apiserver would store it (stdout).
    #[command(after_help = crypt::ENCRYPT_EXAMPLES)]
    Encrypt(crypt::Args),
    /// Decrypt a stored value (stdin) to exactly the bytes kube-apiserver would read (stdout).
    #[command(after_help = crypt::DECRYPT_EXAMPLES)]
    Decrypt(crypt::DecryptArgs),
    /// Classify every object of an etcd snapshot or live etcd: plaintext, provider, key, readable or not.
    #[command(after_help = audit::EXAMPLES)]
    Audit(audit::Args),
    /// What an etcd snapshot holds: storage version, revisions, members, leases, objects, pages, hash.
    #[command(after_help = info::EXAMPLES)]
    Info(info::Args),
    /// Decrypt objects from an etcd snapshot back into Kubernetes manifests (break-glass).
    #[command(after_help = dump::EXAMPLES)]
    Dump(dump::Args),
    /// Rotate keys across control-plane nodes: status, prepare, promote, retire.
    #[command(after_help = rotate::EXAMPLES)]
    Rotate(rotate::Args),
    /// List the keys of configs and key archives; find the keys a backup needs.
    #[command(after_help = keys::EXAMPLES)]
    Keys(keys::Args),
    /// Re-encrypt plaintext and stale objects of a live etcd in place, under the config's write key.
    #[command(after_help = rewrite::EXAMPLES)]
    Rewrite(rewrite::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = shell::COMPLETIONS_EXAMPLES)]
    Completions(shell::CompletionsArgs),
    /// Print the manual page atrest(1) in roff, or write every page into a directory.
    #[command(after_help = shell::MAN_EXAMPLES)]
    Man(shell::ManArgs),
}

/// How a command ended when it did not succeed.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code (1 findings/failure, 2 usage or I/O, 130/143 interrupted).
    pub code: u8,
    /// Message for stderr; empty when the command already printed its report.
    pub message: String,
}

impl Failure {
    /// Exit 1: the command ran and found a problem.
    pub fn findings(message: impl fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }

    /// Exit 1 with nothing more to say (the report was printed).
    pub fn silent_findings() -> Failure {
        Failure {
            code: 1,
            message: String::new(),
        }
    }

    /// An output error: a closed pipe (`| head`) ends the command quietly, as
    /// other Unix tools do; anything else is exit 2.
    pub fn output(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Failure {
                code: 0,
                message: String::new(),
            };
        }
        if let Some(snap) = gate::snapshot_error(&e) {
            return Failure::usage(snap);
        }
        Failure::usage(format!("cannot write output: {e}"))
    }

    /// Exit 2: usage or I/O error.
    pub fn usage(message: impl fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;

/// Parse arguments, run the command, map the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Encrypt(a) => crypt::encrypt(a),
        Command::Decrypt(a) => crypt::decrypt(a),
        Command::Audit(a) => audit::run(a),
        Command::Info(a) => info::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Rotate(a) => rotate::run(a),
        Command::Rewrite(a) => rewrite::run(a),
        Command::Keys(a) => keys::run(a),
        Command::Completions(a) => shell::completions(a),
        Command::Man(a) => shell::man(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("atrest: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Load a config for a command that uses it (not `validate`): any problem is exit 2,
/// and a config with validation errors is refused as kube-apiserver would refuse it.
pub fn load_config(path: &std::path::Path) -> Result<atrest::config::LoadedConfig, Failure> {
    let loaded = atrest::config::EncryptionConfiguration::load(path).map_err(Failure::usage)?;
    let errors: Vec<String> = loaded
        .config
        .validate()
        .into_iter()
        .filter(|f| f.severity == atrest::config::Severity::Error)
        .map(|f| f.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(Failure::usage(format!(
            "{} is not a valid EncryptionConfiguration (kube-apiserver would refuse it):\n  {}\nrun `atrest validate {}` for details",
            path.display(),
            errors.join("\n  "),
            path.display()
        )));
    }
    Ok(loaded)
}

/// Build the chains of `--config`, if given.
pub fn transformers(
    config: Option<&std::path::Path>,
) -> Result<Option<atrest::transformer::Transformers>, Failure> {
    match config {
        Some(p) => {
            let loaded = load_config(p)?;
            Ok(Some(
                atrest::transformer::Transformers::new(&loaded.config)
                    .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
            ))
        }
        None => Ok(None),
    }
}
