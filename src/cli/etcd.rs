//! Connection flags shared by the commands that talk to a live etcd, the tokio
//! runtime they run on, and SIGINT/SIGTERM handling.

use super::output::shell_word;
use super::Failure;
use atrest::etcd::{ConnectOptions, Etcd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How to reach etcd (flattened into commands that need it).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "etcd connection (as etcdctl)")]
pub struct EtcdArgs {
    /// etcd client URLs, comma-separated; requests fail over between the members
    /// that answer. Without a scheme: https when TLS files are given [env: ETCDCTL_ENDPOINTS]
    #[arg(long, value_name = "URL,...")]
    pub endpoints: Option<String>,
    /// CA certificate that signed the etcd server certificates (PEM).
    #[arg(long, value_name = "FILE", env = "ETCDCTL_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate for TLS client authentication (PEM).
    #[arg(long, value_name = "FILE", env = "ETCDCTL_CERT")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(
        long,
        visible_alias = "client-key",
        value_name = "FILE",
        env = "ETCDCTL_KEY"
    )]
    pub key: Option<PathBuf>,
    /// etcd user for password authentication, NAME or NAME:PASSWORD.
    #[arg(
        long,
        value_name = "NAME[:PASSWORD]",
        env = "ETCDCTL_USER",
        hide_env_values = true
    )]
    pub user: Option<String>,
    /// Password of --user.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ETCDCTL_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Time allowed to connect to a member (e.g. 500ms, 5s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
    /// Time allowed for one request (a page read, a transaction).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub command_timeout: Duration,
}

impl EtcdArgs {
    /// The endpoints from the flag, else from ETCDCTL_ENDPOINTS.
    pub fn endpoints(&self) -> Option<String> {
        self.endpoints
            .clone()
            .or_else(|| std::env::var("ETCDCTL_ENDPOINTS").ok())
            .filter(|s| !s.trim().is_empty())
    }

    /// Library options; exit 2 when no endpoint is given.
    pub fn options(&self) -> Result<ConnectOptions, Failure> {
        let Some(eps) = self.endpoints() else {
            return Err(Failure::usage(
                "no etcd endpoints: pass --endpoints (or set ETCDCTL_ENDPOINTS)",
            ));
        };
        Ok(ConnectOptions {
            endpoints: eps.split(',').map(|s| s.trim().to_string()).collect(),
            ca_cert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            dial_timeout: self.dial_timeout,
            command_timeout: self.command_timeout,
        })
    }
}

/// Default of `--dial-timeout`.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of `--command-timeout`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection as flags of a command atrest suggests (shell-quoted): endpoints,
/// TLS files, `--user NAME` and timeouts that differ from the defaults. The password
/// is never printed; the second value says whether the command needs one (from
/// ETCDCTL_PASSWORD or --password). `key_flag` names the client key flag (`--key`,
/// or `--client-key` where `--key` means something else).
pub fn suggested_flags(o: &ConnectOptions, key_flag: &str) -> (String, bool) {
    let mut v = vec!["--endpoints".to_string(), shell_word(&o.endpoints_string())];
    for (flag, file) in [
        ("--cacert", &o.ca_cert),
        ("--cert", &o.cert),
        (key_flag, &o.key),
    ] {
        if let Some(f) = file {
            v.push(flag.to_string());
            v.push(shell_word(&f.display().to_string()));
        }
    }
    if let Some(u) = &o.user {
        // NAME:PASSWORD carries the password: keep the name only.
        let name = u.split_once(':').map_or(u.as_str(), |(n, _)| n);
        v.push("--user".to_string());
        v.push(shell_word(name));
    }
    for (flag, d, default) in [
        ("--dial-timeout", o.dial_timeout, DIAL_TIMEOUT),
        ("--command-timeout", o.command_timeout, COMMAND_TIMEOUT),
    ] {
        if d != default {
            v.push(flag.to_string());
            v.push(format!("{}ms", d.as_millis()));
        }
    }
    (v.join(" "), o.user.is_some())
}

/// `500ms`, `5s`, `2m`, or seconds without a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 5s, 1m)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("`{s}`: a duration must be positive"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

/// A runtime for one command: two workers (the machines atrest runs on are
/// control-plane nodes; it should not take them over).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

/// Connect; unreachable members are reported on stderr, total failure is exit 2.
pub async fn connect(o: &ConnectOptions) -> Result<Etcd, Failure> {
    let (etcd, bad) = Etcd::connect(o).await.map_err(Failure::usage)?;
    for e in bad {
        eprintln!("atrest: warning: {e}; continuing with the other endpoints");
    }
    Ok(etcd)
}

/// Set when SIGINT or SIGTERM arrives; remembers which (for the exit code).
#[derive(Clone, Default)]
pub struct Interrupt {
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicU8>,
}

impl Interrupt {
    /// Install handlers (inside the runtime). A second signal ends the process at
    /// once: every transaction is atomic in etcd, so nothing is left half-written.
    pub fn install() -> Interrupt {
        let it = Interrupt::default();
        let me = it.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                let code: u8 = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                };
                if me.flag.swap(true, Ordering::SeqCst) {
                    eprintln!("atrest: interrupted again, exiting now");
                    std::process::exit(i32::from(code));
                }
                me.signal.store(code, Ordering::SeqCst);
                eprintln!(
                    "atrest: interrupted: finishing the transactions in flight (again to exit at once)"
                );
            }
        });
        it
    }

    /// Exit code for an interrupted run: 130 (SIGINT) or 143 (SIGTERM).
    pub fn exit_code(&self) -> u8 {
        match self.signal.load(Ordering::SeqCst) {
            0 => 130,
            c => c,
        }
    }
}

/// A progress bar for a live scan of `ranges` at `revision`: sized by a count of
/// the keys when stderr is a terminal (the only place it shows), else without
/// the extra request.
pub async fn scan_progress(
    etcd: &Etcd,
    ranges: &[(Vec<u8>, Vec<u8>)],
    revision: i64,
    what: &'static str,
) -> Result<super::progress::Progress, Failure> {
    use std::io::IsTerminal;
    let total = if std::io::stderr().is_terminal() {
        atrest::source::live::count(etcd, ranges, revision)
            .await
            .map_err(Failure::usage)?
    } else {
        0
    };
    Ok(super::progress::Progress::new(total, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn suggested_flags_never_carry_the_password() {
        let o = ConnectOptions {
            endpoints: vec![
                "https://10.0.0.1:2379".into(),
                "https://10.0.0.2:2379".into(),
            ],
            ca_cert: Some("/etc/pki/ca.crt".into()),
            cert: Some("/etc/pki/client.crt".into()),
            key: Some("/etc/my pki/client.key".into()),
            user: Some("root:hunter2".into()),
            password: None,
            dial_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(90),
        };
        let (flags, password) = suggested_flags(&o, "--client-key");
        assert_eq!(
            flags,
            "--endpoints https://10.0.0.1:2379,https://10.0.0.2:2379 --cacert /etc/pki/ca.crt \
             --cert /etc/pki/client.crt --client-key '/etc/my pki/client.key' --user root \
             --command-timeout 90000ms"
        );
        assert!(password);
        let plain = ConnectOptions {
            endpoints: vec!["127.0.0.1:2379".into()],
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let (flags, password) = suggested_flags(&plain, "--key");
        assert_eq!(flags, "--endpoints 127.0.0.1:2379");
        assert!(!password && !flags.contains("hunter2"));
    }
}
