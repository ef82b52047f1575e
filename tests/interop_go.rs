//! Interoperability with an independent implementation in Go (tests/goref), built
//! on the crypto libraries kube-apiserver uses: every value atrest writes, Go
//! reads, and every value Go writes, atrest reads — for every provider and key size.

use assert_cmd::Command;
use base64::Engine;
use std::path::{Path, PathBuf};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Build goref, or `None` when Go (or x/crypto) is not installed and the suite
/// does not require it.
fn goref(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("goref");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goref/main.go");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .output();
    match built {
        Ok(o) if o.status.success() => Some(out),
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var_os("ATREST_REQUIRE_GO").is_none(),
                "cannot build tests/goref (install golang-go and golang-golang-x-crypto-dev): {why}"
            );
            eprintln!("skipping: cannot build tests/goref: {why}");
            None
        }
    }
}

fn run(cmd: &mut std::process::Command, stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || sin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn atrest_and_go_read_each_others_values() {
    let d = tempfile::tempdir().unwrap();
    let Some(go) = goref(d.path()) else { return };
    let etcd_key = "/registry/secrets/default/db";
    let lengths = [0usize, 1, 15, 16, 17, 255, 4096, 70_000];
    for (provider, sizes) in [
        ("aescbc", &[16usize, 24, 32][..]),
        ("aesgcm", &[16, 24, 32][..]),
        ("secretbox", &[32][..]),
    ] {
        for &size in sizes {
            let key: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
            let cfg = d.path().join(format!("{provider}-{size}.yaml"));
            std::fs::write(
                &cfg,
                format!(
                    "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - {provider}:\n          keys:\n            - name: key1\n              secret: {}\n",
                    b64(&key)
                ),
            )
            .unwrap();
            let go_cmd = |verb: &str| {
                let mut c = std::process::Command::new(&go);
                c.args([
                    "-provider",
                    provider,
                    "-name",
                    "key1",
                    "-key",
                    &b64(&key),
                    "-etcd-key",
                    etcd_key,
                    verb,
                ]);
                c
            };
            for &len in &lengths {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                // atrest writes, Go reads.
                let stored = Command::cargo_bin("atrest")
                    .unwrap()
                    .args([
                        "encrypt",
                        "--config",
                        cfg.to_str().unwrap(),
                        "--etcd-key",
                        etcd_key,
                    ])
                    .write_stdin(plain.clone())
                    .output()
                    .unwrap();
                assert!(stored.status.success());
                assert_eq!(
                    run(&mut go_cmd("open"), &stored.stdout),
                    plain,
                    "{provider}/{size}/{len}: Go reads atrest"
                );
                // Go writes, atrest reads.
                let stored = run(&mut go_cmd("seal"), &plain);
                let read = Command::cargo_bin("atrest")
                    .unwrap()
                    .args([
                        "decrypt",
                        "--config",
                        cfg.to_str().unwrap(),
                        "--etcd-key",
                        etcd_key,
                    ])
                    .write_stdin(stored)
                    .output()
                    .unwrap();
                assert!(
                    read.status.success(),
                    "{}",
                    String::from_utf8_lossy(&read.stderr)
                );
                assert_eq!(
                    read.stdout, plain,
                    "{provider}/{size}/{len}: atrest reads Go"
                );
            }
        }
    }
}
