//! `atrest encrypt` / `atrest decrypt`: one stored value, byte for byte as
//! kube-apiserver writes and reads it.

use super::output::write_stdout;
use super::{load_config, CmdResult, Failure};
use atrest::etcd_key::{parse_object_key, GroupResource, DEFAULT_PREFIX};
use atrest::transformer::{ReadMode, WriteError};
use std::io::Read;
use std::path::PathBuf;

pub const ENCRYPT_EXAMPLES: &str = "\
Examples:
  # Encrypt a Secret's stored bytes for /registry/secrets/default/db
  atrest encrypt --config enc.yaml --etcd-key /registry/secrets/default/db < secret.pb > stored.bin

  # Then write it to etcd (values with NUL bytes must come on stdin)
  etcdctl put /registry/secrets/default/db < stored.bin

  # A config whose write provider is KMS: encrypted through the plugin (v2: one seed
  # per run, Encrypted by the plugin; keyID and annotations from its answer)
  atrest encrypt --config enc.yaml --etcd-key /registry/secrets/default/db \\
    --kms-endpoint vault=unix:///run/kms/vault.sock < secret.pb > stored.bin

Exit codes: 0 encrypted, 1 the value cannot be encrypted, 2 usage or I/O error, or a
KMS plugin that cannot be reached or cannot write (named with its endpoint).";

pub const DECRYPT_EXAMPLES: &str = "\
Examples:
  # Read a stored value from etcd and decrypt it as kube-apiserver would
  etcdctl get --print-value-only /registry/secrets/default/db | head -c -1 \\
    | atrest decrypt --config enc.yaml --etcd-key /registry/secrets/default/db > secret.pb

  # A custom resource under a non-default prefix
  atrest decrypt --config enc.yaml --etcd-prefix /k3s --etcd-key /k3s/example.com/widgets/ns/w \\
    --resource widgets.example.com < stored.bin

Exit codes: 0 decrypted, 1 no configured key could read the value, 2 usage or I/O error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// EncryptionConfiguration file (as given to kube-apiserver). decrypt: repeat it
    /// to also try the keys of older configs, after the first's.
    #[arg(long, value_name = "FILE", required = true)]
    config: Vec<PathBuf>,
    /// The etcd key the value is stored at (aesgcm authenticates it).
    #[arg(long, value_name = "KEY")]
    etcd_key: String,
    /// Resource (e.g. secrets, deployments.apps); derived from the etcd key by default.
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    #[arg(long = "kms-endpoint", value_name = "NAME=ENDPOINT", help = super::kms::HELP)]
    kms_endpoint: Vec<String>,
}

fn resource_of(a: &Args) -> Result<GroupResource, Failure> {
    if let Some(r) = &a.resource {
        return Ok(GroupResource::parse(r));
    }
    parse_object_key(a.etcd_key.as_bytes(), &a.etcd_prefix)
        .map(|k| k.resource)
        .ok_or_else(|| {
            Failure::usage(format!(
                "cannot tell the resource from etcd key {:?} (expected {}/<resource>/[<namespace>/]<name>); pass --resource",
                a.etcd_key, a.etcd_prefix
            ))
        })
}

/// Values at least this large on a regular-file stdin are mapped, not read.
#[cfg(unix)]
const MAP_MIN: u64 = 1 << 20;

/// Stdin's bytes: mapped when stdin is a large regular file (no copy, no
/// anonymous page faults), else read into a buffer sized from the file's length.
enum Input {
    Read(Vec<u8>),
    #[cfg(unix)]
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Read(v) => v,
            #[cfg(unix)]
            Input::Mapped(m) => m,
        }
    }
}

fn read_stdin() -> Result<Input, Failure> {
    let fail = |e: std::io::Error| Failure::usage(format!("cannot read stdin: {e}"));
    let mut buf = Vec::new();
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() {
            let mut file = std::fs::File::from(fd);
            let meta = file.metadata().ok().filter(|m| m.is_file());
            if let Some(meta) = meta {
                if meta.len() >= MAP_MIN {
                    use std::io::Seek;
                    let offset = file.stream_position().map_err(fail)?;
                    // SAFETY: the map is only read, as untrusted bytes. As with any
                    // mapped file, another process truncating it while we run would
                    // fault; changing it would only change the (unchecked) input.
                    let map = unsafe {
                        memmap2::MmapOptions::new()
                            .offset(offset)
                            .populate()
                            .map(&file)
                    };
                    if let Ok(map) = map {
                        return Ok(Input::Mapped(map));
                    }
                }
                // `File::read_to_end` sizes the buffer from the file's length.
                file.read_to_end(&mut buf).map_err(fail)?;
                return Ok(Input::Read(buf));
            }
        }
    }
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(fail)?;
    Ok(Input::Read(buf))
}

/// `atrest decrypt`: [`Args`] and key archives.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    common: Args,
    /// Key archive (`rotate retire --archive`) whose keys are tried after the
    /// configs', read only (repeatable).
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
}

pub fn encrypt(a: Args) -> CmdResult {
    let gr = resource_of(&a)?;
    let [config] = a.config.as_slice() else {
        return Err(Failure::usage(
            "encrypt writes with one config: give --config once",
        ));
    };
    let loaded = load_config(config)?;
    let ts = super::kms::transformers(&loaded.config, config, &a.kms_endpoint)?;
    let (t, _) = ts.for_resource(&gr);
    let input = read_stdin()?;
    let out = t
        .write(&input, a.etcd_key.as_bytes())
        .map_err(|e| match &e {
            // A plugin that cannot write is an environment problem (exit 2, naming it).
            WriteError::Kms(k) if k.is_fatal() => {
                Failure::usage(format!("cannot encrypt for {gr}: {e}"))
            }
            _ => Failure::findings(format!("cannot encrypt for {gr}: {e}")),
        })?;
    write_stdout(&out)
}

pub fn decrypt(d: DecryptArgs) -> CmdResult {
    let a = &d.common;
    let gr = resource_of(a)?;
    let (ts, extra) = super::keys::read_keys(&a.config, &d.archive, &a.kms_endpoint)?;
    let Some(ts) = ts else {
        return Err(Failure::usage("--config FILE is required"));
    };
    let (t, covered) = ts.for_resource(&gr);
    let input = read_stdin()?;
    let first = t.read(&input, a.etcd_key.as_bytes(), ReadMode::Apiserver);
    if first.is_err() {
        // A plugin that became unusable stops the command (exit 2, naming it).
        super::kms::check(Some(&ts))?;
        // Only after the config's own keys have failed, and checked: the extra keys
        // are not kube-apiserver's.
        if let Some(r) = extra.read(&input, a.etcd_key.as_bytes(), &a.etcd_prefix) {
            eprintln!(
                "atrest: {} read with {} (the first config cannot read it)",
                a.etcd_key, r.key
            );
            return write_stdout(&r.plaintext);
        }
    }
    let read = first.map_err(|e| {
        let scope = if covered {
            format!("{gr}")
        } else {
            format!("{gr} (not in the config: identity only)")
        };
        Failure::findings(format!("cannot decrypt {} ({scope}): {e}", a.etcd_key))
    })?;
    if !read.looks_like_object {
        eprintln!(
            "atrest: warning: {} read by {} does not look like a Kubernetes object (wrong key with valid padding, or not an object)",
            a.etcd_key, read.by
        );
    }
    write_stdout(&read.plaintext)
}
