//! audit and rewrite against real etcd processes: a single member (plain, TLS
//! with client certificates, password auth), three members with one killed
//! mid-run, a concurrent writer, interruption and re-run, connection errors.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sample cluster (testdata/sample_cluster.py) written into a live etcd: the
/// live audit reports what the writer recorded, as the snapshot audit does; rewrite
/// fixes what it can, leaves the rest alone, and a second run writes nothing.
#[test]
fn sample_cluster_live_audit_and_rewrite() {
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let (out, work) = (dir.path().join("out"), dir.path().join("work"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let st = Command::new("python3")
        .arg("testdata/sample_cluster.py")
        .args(["--atrest", ATREST, "--endpoint", &c.endpoints()])
        .arg("--out")
        .arg(&out)
        .arg("--work")
        .arg(&work)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let exp: Value =
        serde_json::from_slice(&std::fs::read(out.join("expected.json")).unwrap()).unwrap();
    let cfg = out.join("encryption-config.yaml").display().to_string();

    // Audit: the same classification and JSON schema as the snapshot audit; small
    // pages so the read spans many requests at one revision.
    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &["audit", "--config", &cfg, "-o", "json", "--page-size", "4"],
    ));
    assert_eq!(code, 1, "{err}");
    let v = json(&stdout);
    assert_eq!(v["source"], c.endpoints());
    assert_eq!(v["revision"], exp["revision"]);
    let got: BTreeMap<String, Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                serde_json::json!({"provider": o["provider"], "key_name": o["key_name"], "status": o["status"]}),
            )
        })
        .collect();
    let want: BTreeMap<String, Value> = exp["objects"]
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    assert_eq!(got, want);
    assert_eq!(v["summary"]["objects"], want.len() as u64);

    // The endpoints from ETCDCTL_ENDPOINTS; the table; a resource filter.
    let (code, stdout, _) = atrest_env(
        &args(&["audit", "--config", &cfg, "--resource", "pods,namespaces"]),
        &[("ETCDCTL_ENDPOINTS", &c.endpoints())],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("no findings"), "{stdout}");
    // --snapshot and --endpoints together, or neither: usage errors.
    let (code, _, err) = atrest(&args(&[
        "audit",
        "--snapshot",
        "x.db",
        "--endpoints",
        "127.0.0.1:1",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("mutually exclusive"), "{err}");
    let (code, _, err) = atrest(&args(&["audit"]));
    assert_eq!(code, 2);
    assert!(err.contains("--snapshot"), "{err}");

    let needs: Vec<&String> = want
        .iter()
        .filter(|(_, o)| o["status"] == "plaintext" || o["status"] == "stale")
        .map(|(k, _)| k)
        .collect();
    let broken: Vec<&String> = want
        .iter()
        .filter(|(_, o)| {
            ["unknown-key", "undecryptable", "malformed"].contains(&o["status"].as_str().unwrap())
        })
        .map(|(k, _)| k)
        .collect();
    let mod_revs = |v: &Value| -> BTreeMap<String, i64> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["key"].as_str().unwrap().to_string(),
                    o["mod_revision"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let before = mod_revs(&v);

    // Dry run: lists, writes nothing.
    let rev0 = revision_of(&c);
    let (code, stdout, _) = atrest(&with(
        &c.conn_args(),
        &[
            "rewrite",
            "--config",
            &cfg,
            "--all-resources",
            "--dry-run",
            "-o",
            "json",
        ],
    ));
    assert_eq!(code, 1, "the sample has objects that cannot be rewritten");
    let d = json(&stdout);
    assert_eq!(d["counts"]["rewritten"], needs.len() as u64);
    assert_eq!(d["would_rewrite"].as_array().unwrap().len(), needs.len());
    assert_eq!(revision_of(&c), rev0);

    // The real run.
    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &["rewrite", "--config", &cfg, "--all-resources", "-o", "json"],
    ));
    assert_eq!(code, 1, "{stdout}{err}");
    let r = json(&stdout);
    assert_eq!(r["counts"]["rewritten"], needs.len() as u64);
    assert_eq!(r["counts"]["failed"], broken.len() as u64);
    assert_eq!(r["counts"]["scanned"], want.len() as u64);
    let failed: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        broken.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(
        r["verification"]["summary"]["by_status"]["current"],
        (want.len() - broken.len()) as u64
    );
    // The broken objects were not written; everything else is current.
    let (_, stdout, _) = atrest(&with(
        &c.conn_args(),
        &["audit", "--config", &cfg, "-o", "json"],
    ));
    let after = json(&stdout);
    let after_revs = mod_revs(&after);
    for k in &broken {
        assert_eq!(after_revs[*k], before[*k], "{k} was written");
    }
    for o in after["objects"].as_array().unwrap() {
        let k = o["key"].as_str().unwrap();
        if !broken.contains(&&k.to_string()) {
            assert_eq!(o["status"], "current", "{o}");
        }
    }
    // The Secrets still hold what the writer stored (dump decodes them).
    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &[
            "audit",
            "--config",
            &cfg,
            "--resource",
            "secrets",
            "-o",
            "yaml",
        ],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(stdout.contains("source:"));

    // A second run writes nothing at all, with --all-resources or with the
    // default (the resources the config names).
    let rev1 = revision_of(&c);
    for which in [&["--all-resources"][..], &[][..]] {
        let mut args = vec!["rewrite", "--config", &cfg, "-o", "json"];
        args.extend_from_slice(which);
        let (code, stdout, err) = atrest(&with(&c.conn_args(), &args));
        assert_eq!(code, 1, "{err}");
        let r2 = json(&stdout);
        assert_eq!(r2["counts"]["rewritten"], 0);
        assert_eq!(revision_of(&c), rev1, "the second run wrote");
    }
}

/// TLS with client certificates: audit and rewrite work with the right files
/// (flags or ETCDCTL_* variables); a wrong CA, a client certificate from another
/// CA, no client certificate, http with TLS files, an unreachable endpoint and a
/// silent one are clear errors with exit 2.
#[test]
fn tls_client_certificates_and_connection_errors() {
    let c = Cluster::start(1, true);
    let t = c.tls.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = secrets_config(&[("key1", 1)]);
    let new = secrets_config(&[("key2", 2), ("key1", 1)]);
    let cfg = write_config(dir.path(), "new.yaml", &new);
    let cfg = cfg.display().to_string();
    let rt = rt();
    let want = rt.block_on(async {
        let e = connect(&c.options()).await;
        populate(&e, &transformer(&old), 50).await
    });

    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &["audit", "--config", &cfg, "-o", "json"],
    ));
    assert_eq!(code, 1, "{err}");
    let v = json(&stdout);
    assert_eq!(v["summary"]["by_status"]["plaintext"], 25);
    assert_eq!(v["summary"]["by_status"]["stale"], 25);

    // Environment variables instead of flags.
    let ep = c.members[0].client_url.clone();
    let (ca, cert, key) = (
        t.ca.display().to_string(),
        t.client_cert.display().to_string(),
        t.client_key.display().to_string(),
    );
    let env = [
        ("ETCDCTL_ENDPOINTS", ep.as_str()),
        ("ETCDCTL_CACERT", ca.as_str()),
        ("ETCDCTL_CERT", cert.as_str()),
        ("ETCDCTL_KEY", key.as_str()),
    ];
    let (code, stdout, err) = atrest_env(
        &args(&["rewrite", "--config", &cfg, "--resource", "secrets"]),
        &env,
    );
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("rewritten"), "{stdout}");
    let got = rt.block_on(async {
        let e = connect(&c.options()).await;
        read_secrets(&e, &transformer(&new)).await
    });
    assert_eq!(got.len(), want.len());
    for (k, (by, plain)) in &got {
        assert_eq!(by.as_deref(), Some("key2"), "{k}");
        assert_eq!(plain, &want[k]);
    }

    let (ok_ca, other_ca) = (t.ca.display().to_string(), t.other_ca.display().to_string());
    let (oc, ok) = (
        t.other_client_cert.display().to_string(),
        t.other_client_key.display().to_string(),
    );
    let check = |a: Vec<String>, words: &[&str]| {
        let started = Instant::now();
        let (code, stdout, err) = atrest(&a);
        assert_eq!(code, 2, "{a:?}: {stdout}{err}");
        for w in words {
            assert!(err.contains(w), "{a:?}: `{w}` not in: {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{a:?} took too long"
        );
    };
    // Wrong CA: the server certificate is not trusted.
    check(
        args(&[
            "audit",
            "--endpoints",
            &ep,
            "--cacert",
            &other_ca,
            "--cert",
            &cert,
            "--key",
            &key,
        ]),
        &[&ep, "TLS"],
    );
    // A client certificate the server does not trust.
    check(
        args(&[
            "audit",
            "--endpoints",
            &ep,
            "--cacert",
            &ok_ca,
            "--cert",
            &oc,
            "--key",
            &ok,
        ]),
        &[&ep, "TLS"],
    );
    // No client certificate at all.
    check(
        args(&["audit", "--endpoints", &ep, "--cacert", &ok_ca]),
        &[&ep, "TLS"],
    );
    // http:// with TLS files.
    let http = ep.replace("https://", "http://");
    check(
        args(&["audit", "--endpoints", &http, "--cacert", &ok_ca]),
        &["https://"],
    );
    // Unreachable: nothing listens there.
    let port = free_ports(1)[0];
    let dead = format!("127.0.0.1:{port}");
    check(
        args(&["audit", "--endpoints", &dead]),
        &[&dead, "unreachable"],
    );
    // A member that accepts connections but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_ep = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    check(
        args(&[
            "audit",
            "--endpoints",
            &silent_ep,
            "--dial-timeout",
            "1s",
            "--command-timeout",
            "1s",
        ]),
        &[&silent_ep, "timed out"],
    );
    // A missing certificate file.
    check(
        args(&[
            "audit",
            "--endpoints",
            &ep,
            "--cacert",
            "/nonexistent/ca.crt",
        ]),
        &["/nonexistent/ca.crt"],
    );
    // One dead endpoint among good ones: a warning, and the run goes on.
    let mut a = args(&["audit", "--endpoints", &format!("https://{dead},{ep}")]);
    a.extend(args(&[
        "--cacert", &ok_ca, "--cert", &cert, "--key", &key, "--config", &cfg,
    ]));
    let (code, _, err) = atrest(&a);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning") && err.contains(&dead), "{err}");
}

/// Password authentication (etcd users): the right password works, a wrong one is
/// an authentication error with exit 2.
#[test]
fn password_auth() {
    let c = Cluster::start(1, false);
    let ep = c.endpoints();
    for a in [vec!["user", "add", "root:s3cret"], vec!["auth", "enable"]] {
        // etcdctl 3.5 grants the root role itself on `auth enable` (logging a
        // retried FailedPrecondition); 3.4 needs none. Output shown only on failure.
        c.ctl(&a, b"");
    }
    let (code, stdout, err) = atrest(&args(&[
        "audit",
        "--endpoints",
        &ep,
        "--user",
        "root",
        "--password",
        "s3cret",
    ]));
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, _, err) = atrest_env(
        &args(&["audit", "--endpoints", &ep]),
        &[("ETCDCTL_USER", "root:wrong")],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("authentication failed") && err.contains(&ep),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password was printed: {err}");
}

/// Three members; the leader is killed while rewrite runs: the run finishes
/// through the others, nothing is lost, the audit afterwards is clean.
#[test]
fn three_members_one_killed_during_rewrite() {
    let mut c = Cluster::start(3, false);
    let dir = tempfile::tempdir().unwrap();
    let old = secrets_config(&[("key1", 1)]);
    let new = secrets_config(&[("key2", 2), ("key1", 1)]);
    let cfg = write_config(dir.path(), "new.yaml", &new)
        .display()
        .to_string();
    let rt = rt();
    let n = 3000;
    let want = rt.block_on(async {
        let e = connect(&c.options()).await;
        populate(&e, &transformer(&old), n).await
    });
    let mut child = Command::new(ATREST)
        .arg("rewrite")
        .args(c.conn_args())
        .args(["--config", &cfg, "--resource", "secrets", "-o", "json"])
        .args([
            "--batch",
            "25",
            "--max-rate",
            "2000",
            "--command-timeout",
            "5s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let victim = c
        .leader()
        .expect("etcdctl endpoint status names the leader");
    c.members[victim].kill();
    assert!(
        child.try_wait().unwrap().is_none(),
        "rewrite finished before the member was killed"
    );
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let r = json(&stdout);
    assert_eq!(
        r["counts"]["rewritten"].as_u64().unwrap()
            + r["counts"]["already_current"].as_u64().unwrap(),
        n as u64,
        "{r}"
    );
    assert_eq!(r["counts"]["failed"], 0);

    let alive: Vec<String> = c
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, m)| m.client_url.clone())
        .collect();
    let (code, stdout, err) = atrest(&args(&[
        "audit",
        "--endpoints",
        &alive.join(","),
        "--config",
        &cfg,
        "-o",
        "json",
        // Small pages: many keys-only scans and page reads at one revision.
        "--page-size",
        "7",
    ]));
    assert_eq!(code, 0, "{stdout}{err}");
    assert_eq!(json(&stdout)["summary"]["by_status"]["current"], n as u64);
    let got = rt.block_on(async {
        let o = atrest::etcd::ConnectOptions {
            endpoints: alive.clone(),
            ..Default::default()
        };
        let e = connect(&o).await;
        read_secrets(&e, &transformer(&new)).await
    });
    assert_eq!(got.len(), n);
    for (k, (by, plain)) in &got {
        assert_eq!(by.as_deref(), Some("key2"), "{k}");
        assert_eq!(plain, &want[k], "{k}");
    }
}

/// A writer (a kube-apiserver already on the new key) keeps updating the same
/// Secrets while rewrite runs: every Secret ends with the writer's last value (no
/// lost update) under the new key, and the run saw and retried conflicts.
#[test]
fn concurrent_writer_no_lost_update() {
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let old = secrets_config(&[("key1", 1)]);
    let new = secrets_config(&[("key2", 2), ("key1", 1)]);
    let cfg = write_config(dir.path(), "new.yaml", &new)
        .display()
        .to_string();
    let rt = rt();
    let n = 200;
    let mut want = rt.block_on(async {
        let e = connect(&c.options()).await;
        populate(&e, &transformer(&old), n).await
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, opts, t) = (Arc::clone(&stop), c.options(), transformer(&new));
        std::thread::spawn(move || {
            rt.block_on(async move {
                let e = connect(&opts).await;
                let mut last = BTreeMap::new();
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    // Mostly the first keys, which rewrite reaches first.
                    let idx = (i * 7919) % if i.is_multiple_of(3) { n } else { 40 };
                    let k = secret_key(idx);
                    let plain = secret_json(&k, &format!("writer-{i}"));
                    e.put(k.as_bytes(), &t.write(&plain, k.as_bytes()).unwrap())
                        .await
                        .unwrap();
                    last.insert(k, plain);
                    i += 1;
                }
                (last, i)
            })
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let (code, stdout, err) = atrest(
        &with(
            &c.conn_args(),
            &[
                "rewrite",
                "--config",
                &cfg,
                "--resource",
                "secrets",
                "-o",
                "json",
            ],
        )
        .into_iter()
        // Slow enough that the writer, even on a loaded machine, keeps writing
        // through the whole run.
        .chain(args(&["--batch", "5", "--max-rate", "150"]))
        .collect::<Vec<_>>(),
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (last, writes) = writer.join().unwrap();
    assert_eq!(code, 0, "{stdout}{err}");
    let r = json(&stdout);
    assert!(writes > 20, "the writer only wrote {writes} times");
    assert!(
        r["counts"]["conflicts_retried"].as_u64().unwrap() > 0,
        "{r}"
    );
    want.extend(last);
    let rt = common::rt();
    let got = rt.block_on(async {
        let e = connect(&c.options()).await;
        read_secrets(&e, &transformer(&new)).await
    });
    assert_eq!(got.len(), n);
    for (k, (by, plain)) in &got {
        assert_eq!(by.as_deref(), Some("key2"), "{k}");
        assert_eq!(
            String::from_utf8_lossy(plain),
            String::from_utf8_lossy(&want[k]),
            "{k}: lost update"
        );
    }
}

/// The library path of a conflict whose fresh value is still stale: it is
/// re-read, re-encrypted and written with the new content.
#[test]
fn conflict_with_stale_value_is_reread_and_retried() {
    let c = Cluster::start(1, false);
    let old = secrets_config(&[("key1", 1)]);
    let new = secrets_config(&[("key2", 2), ("key1", 1)]);
    let rt = rt();
    rt.block_on(async {
        let e = connect(&c.options()).await;
        let n = 40;
        let mut want = populate(&e, &transformer(&old), n).await;
        // Keys of the second page are read (prefetched) before the first page is
        // written; overwrite them then with stale values of new content.
        let second: Vec<String> = want.keys().skip(5).take(5).cloned().collect();
        let opts = atrest::rewrite::RewriteOptions {
            resources: Some(vec![atrest::etcd_key::GroupResource::parse("secrets")]),
            batch: 1,
            in_flight: 1,
            page_size: 5,
            max_rate: Some(100.0),
            ..Default::default()
        };
        let t_old = transformer(&old);
        let mut done = false;
        let mut updates = Vec::new();
        for k in &second {
            let plain = secret_json(k, "changed-while-rewriting");
            updates.push((
                k.clone(),
                plain.clone(),
                t_old.write(&plain, k.as_bytes()).unwrap(),
            ));
        }
        let conn = c.options();
        let mut observer = |ev: atrest::rewrite::Event<'_>| {
            if let atrest::rewrite::Event::Progress(_) = ev {
                if !done {
                    done = true;
                    let (u, conn) = (updates.clone(), conn.clone());
                    std::thread::spawn(move || {
                        common::rt().block_on(async move {
                            let e = connect(&conn).await;
                            for (k, _, v) in u {
                                e.put(k.as_bytes(), &v).await.unwrap();
                            }
                        })
                    })
                    .join()
                    .unwrap();
                }
            }
        };
        let ts = Arc::new(atrest::transformer::Transformers::new(&new).unwrap());
        let cancel = AtomicBool::new(false);
        let out = atrest::rewrite::rewrite(&e, ts, &opts, &cancel, &mut observer)
            .await
            .unwrap();
        assert_eq!(out.counts.conflicts_retried, 5, "{:?}", out.counts);
        assert_eq!(out.counts.rewritten, n as u64);
        assert!(!out.needs_action());
        for (k, plain, _) in &updates {
            want.insert(k.clone(), plain.clone());
        }
        let got = read_secrets(&e, &transformer(&new)).await;
        for (k, (by, plain)) in &got {
            assert_eq!(by.as_deref(), Some("key2"), "{k}");
            assert_eq!(plain, &want[k], "{k}");
        }
    });
}

/// SIGINT, then SIGTERM halfway: exit 130/143, counts so far, every object intact
/// (old or new, never damaged); a third run completes; a fourth writes nothing.
#[test]
fn interrupted_rewrite_can_be_run_again() {
    let c = Cluster::start(1, false);
    let dir = tempfile::tempdir().unwrap();
    let old = secrets_config(&[("key1", 1)]);
    let new = secrets_config(&[("key2", 2), ("key1", 1)]);
    let cfg = write_config(dir.path(), "new.yaml", &new)
        .display()
        .to_string();
    let rt = rt();
    let n = 2000;
    let want = rt.block_on(async {
        let e = connect(&c.options()).await;
        populate(&e, &transformer(&old), n).await
    });
    let check_intact = |min_new: usize| -> usize {
        let got = rt.block_on(async {
            let e = connect(&c.options()).await;
            read_secrets(&e, &transformer(&new)).await
        });
        assert_eq!(got.len(), n);
        let mut new_n = 0;
        for (k, (by, plain)) in &got {
            assert_eq!(plain, &want[k], "{k} damaged");
            if by.as_deref() == Some("key2") {
                new_n += 1;
            }
        }
        assert!(new_n >= min_new);
        new_n
    };
    let mut done = 0;
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = Command::new(ATREST)
            .arg("rewrite")
            .args(c.conn_args())
            .args(["--config", &cfg, "--resource", "secrets"])
            .args(["--batch", "20", "--max-rate", "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let st = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(code), "{stdout}{stderr}");
        assert!(stdout.contains("interrupted (counts so far)"), "{stdout}");
        assert!(stderr.contains("run the same command again"), "{stderr}");
        let now = check_intact(done + 1);
        assert!(now < n, "the run finished before the signal");
        done = now;
    }
    let (code, stdout, err) = atrest(&with(
        &c.conn_args(),
        &[
            "rewrite",
            "--config",
            &cfg,
            "--resource",
            "secrets",
            "-o",
            "json",
            // Small pages at the latest revision while writing.
            "--page-size",
            "13",
        ],
    ));
    assert_eq!(code, 0, "{stdout}{err}");
    let r = json(&stdout);
    assert_eq!(r["counts"]["scanned"].as_u64().unwrap(), n as u64);
    assert_eq!(
        r["counts"]["rewritten"].as_u64().unwrap(),
        (n - done) as u64
    );
    assert_eq!(
        r["counts"]["already_current"].as_u64().unwrap(),
        done as u64
    );
    assert_eq!(check_intact(n), n);
    let rev = revision_of(&c);
    let (code, _, _) = atrest(&with(
        &c.conn_args(),
        &["rewrite", "--config", &cfg, "--resource", "secrets"],
    ));
    assert_eq!(code, 0);
    assert_eq!(revision_of(&c), rev, "a run over current objects wrote");
}

/// Paged reads cut the range into tiles read several at a time: every key comes
/// once, in key order, as it was at the revision read, across several keys-only
/// discovery scans; keys written meanwhile are not seen at a fixed revision and
/// are seen at the latest.
#[test]
fn prefetched_pages_are_the_keyspace_at_one_revision_in_order() {
    let c = Cluster::start(1, false);
    rt().block_on(async {
        let etcd = connect(&c.options()).await;
        let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..700)
            .map(|i| {
                (
                    format!("/p/{i:05}").into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect();
        for chunk in kvs.chunks(100) {
            etcd.put_many(chunk).await.unwrap();
        }
        let revision = etcd.revision().await.unwrap();
        let read = |at, ahead| {
            let etcd = etcd.clone();
            async move {
                // 3 keys a page: 120 keys per discovery scan, so several scans.
                let mut rx = etcd.prefetch(b"/p/".to_vec(), b"/p0".to_vec(), at, 3, ahead, None);
                let mut got = Vec::new();
                while let Some(page) = rx.recv().await {
                    let page = page.unwrap();
                    assert!(!page.kvs.is_empty() && page.kvs.len() <= 3);
                    for kv in page.kvs {
                        got.push((kv.key, kv.value.to_vec()));
                    }
                }
                got
            }
        };
        // Written after `revision`: a new key inside the range, and a change.
        etcd.put(b"/p/00100x", b"new").await.unwrap();
        etcd.put(b"/p/00200", b"changed").await.unwrap();
        for ahead in [1, 4] {
            assert_eq!(
                read(atrest::etcd::ReadAt::Fixed(revision), ahead).await,
                kvs
            );
        }
        let latest = read(atrest::etcd::ReadAt::Latest, 4).await;
        assert_eq!(latest.len(), 701);
        assert!(latest.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(latest.contains(&(b"/p/00100x".to_vec(), b"new".to_vec())));
        assert!(latest.contains(&(b"/p/00200".to_vec(), b"changed".to_vec())));

        // Tiles given by the caller (no keys-only scans): any bounds, even out
        // of order, outside the range or between keys, give every key once.
        let known = |bounds: Vec<&str>, page_size| {
            let etcd = etcd.clone();
            let bounds: Vec<Vec<u8>> = bounds.iter().map(|b| b.as_bytes().to_vec()).collect();
            async move {
                let at = atrest::etcd::ReadAt::Fixed(revision);
                let mut rx = etcd.prefetch(
                    b"/p/".to_vec(),
                    b"/p0".to_vec(),
                    at,
                    page_size,
                    3,
                    Some(bounds),
                );
                let mut got = Vec::new();
                let mut pages = 0;
                while let Some(page) = rx.recv().await {
                    pages += 1;
                    for kv in page.unwrap().kvs {
                        got.push((kv.key, kv.value.to_vec()));
                    }
                }
                (got, pages)
            }
        };
        // Where a previous read's pages began: one page per tile.
        let firsts: Vec<String> = (1..7).map(|i| format!("/p/{:05}", i * 100)).collect();
        let (got, pages) = known(firsts.iter().map(String::as_str).collect(), 100).await;
        assert_eq!(got, kvs);
        assert_eq!(pages, 7, "bounds a page apart: one page per tile");
        for bounds in [
            vec![],
            vec![
                "/a",
                "/p/",
                "/p/00050",
                "/p/00040",
                "/p/00050",
                "/p/00300x",
                "/p0",
                "/q",
            ],
            vec!["/p/00699", "/p/00001"],
        ] {
            let (got, _) = known(bounds.clone(), 50).await;
            assert_eq!(got, kvs, "bounds {bounds:?}");
        }
    });
}

/// A live audit prints its report only once the scan is complete: at a
/// revision etcd has compacted away it exits 2 naming the cause, with nothing
/// on stdout in any format (not the start of a JSON document).
#[test]
fn live_audit_that_fails_mid_scan_prints_no_partial_report() {
    let c = Cluster::start(1, false);
    for i in 0..5 {
        c.put(&format!("/registry/secrets/ns/s{i}"), b"plaintext");
    }
    let first = revision_of(&c);
    c.put("/registry/secrets/ns/later", b"plaintext");
    let at_first = |format: &str| {
        atrest(&with(
            &c.conn_args(),
            &["audit", "--revision", &first.to_string(), "-o", format],
        ))
    };
    // Before compaction: the keyspace as it was (plaintext Secrets: exit 1).
    let (code, out, err) = at_first("json");
    assert_eq!(code, 1, "{err}");
    assert_eq!(json(&out)["summary"]["objects"], 5);

    c.ctl(&["compact", &revision_of(&c).to_string()], b"");
    for format in ["json", "yaml", "table"] {
        let (code, out, err) = at_first(format);
        assert_eq!(code, 2, "-o {format}: {err}");
        assert!(
            out.is_empty(),
            "-o {format}: partial output on stdout:\n{out}"
        );
        assert!(err.contains("compacted"), "-o {format}: {err}");
    }
}

/// The start of a protobuf `v1.Secret` as kube-apiserver stores it (`k8s\0`,
/// then `runtime.Unknown.typeMeta {apiVersion: v1, kind: Secret}`).
const SECRET_MARKER: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret";

/// A snapshot of an etcd that stored a filler ConfigMap of `filler` bytes, then a
/// plaintext Secret, then deleted the Secret: each write commits a new leaf of the
/// `key` bucket, and the leaf that held the filler and the Secret (two records
/// larger than a page, so one leaf over a run of two pages) is left free. Returns
/// the snapshot and the file offsets of every Secret marker in it.
fn snapshot_with_freed_two_page_leaf(dir: &std::path::Path, filler: usize) -> (String, Vec<usize>) {
    let c = Cluster::start(1, false);
    let pause = || std::thread::sleep(Duration::from_millis(300));
    c.put("/registry/configmaps/ns/filler", &vec![b'f'; filler]);
    pause();
    c.put(
        "/registry/secrets/ns/s",
        &fixtures::stored_secret("ns", "s", &[("password", b"hunter2")]),
    );
    pause();
    c.ctl(&["del", "/registry/secrets/ns/s"], b"");
    pause();
    let snap = dir.join(format!("snap-{filler}.db"));
    c.snapshot(&snap);
    let bytes = std::fs::read(&snap).unwrap();
    let at = memchr::memmem::find_iter(&bytes, SECRET_MARKER).collect();
    (snap.to_str().unwrap().to_string(), at)
}

/// bbolt stores a leaf larger than a page over a run of consecutive pages, so a
/// value in a freed leaf can start near the end of one free page and go on in the
/// next. `--deep` must find such a plaintext Secret like any other.
#[test]
fn deep_scan_finds_a_free_secret_that_crosses_a_page_boundary() {
    if !etcd_available() {
        return;
    }
    const PAGE: usize = 4096;
    let dir = tempfile::tempdir().unwrap();
    // First, where the freed leaf's Secret lands with a 4000-byte filler: in the
    // second page of its leaf (the filler fills the first), before the live leaf's
    // copy (which has one more 16-byte element header ahead of it).
    let (_, at) = snapshot_with_freed_two_page_leaf(dir.path(), 4000);
    let first = at
        .iter()
        .map(|o| o % PAGE)
        .min()
        .expect("the Secret is in the file");
    // Shorten the filler so that the marker starts 10 bytes before a page ends.
    let filler = 4000 - (first + 10);
    let (snap, at) = snapshot_with_freed_two_page_leaf(dir.path(), filler);
    let crossing: Vec<usize> = at
        .iter()
        .copied()
        .filter(|o| o % PAGE + SECRET_MARKER.len() > PAGE)
        .collect();
    assert_eq!(
        crossing.len(),
        1,
        "markers at {at:?}: the layout is not the expected one"
    );

    let (code, out, err) = atrest(&args(&[
        "audit",
        "--snapshot",
        &snap,
        "--deep",
        "-o",
        "json",
    ]));
    let v = json(&out);
    let found: Vec<u64> = v["free_pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["offset"].as_u64().unwrap())
        .collect();
    assert!(
        found.contains(&(crossing[0] as u64)),
        "the Secret at offset {} (page {}, {} bytes before its end) is not reported: {found:?}",
        crossing[0],
        crossing[0] / PAGE,
        PAGE - crossing[0] % PAGE
    );
    assert_eq!(code, 1, "{err}");
}
