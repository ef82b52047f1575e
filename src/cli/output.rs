//! Output formats shared by the commands: one data model, printed as a table,
//! JSON or YAML.

use clap::ValueEnum;

/// `-o table|json|yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable summary.
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Print a serialisable report as JSON or YAML on stdout.
pub fn print_structured(
    value: &serde_json::Value,
    format: OutputFormat,
) -> Result<(), super::Failure> {
    let text = match format {
        OutputFormat::Json | OutputFormat::Table => {
            serde_json::to_string_pretty(value).map_err(super::Failure::usage)? + "\n"
        }
        OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(super::Failure::usage)?,
    };
    write_stdout(text.as_bytes())
}

/// Write bytes to stdout; a closed pipe is not an error worth a panic.
pub fn write_stdout(bytes: &[u8]) -> Result<(), super::Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(super::Failure::usage(format!(
            "cannot write to stdout: {e}"
        ))),
    }
}

/// `s` as one word of a POSIX shell command line (quoted when it needs it).
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
