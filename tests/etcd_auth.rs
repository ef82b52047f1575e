//! Password authentication against a real etcd whose auth tokens expire after one
//! second (`ETCD_AUTH_TOKEN_TTL`, etcd's `--auth-token-ttl`): the connection
//! renews its token when the server calls it invalid, also when several requests
//! find it expired at once. A separate test binary, so that the environment
//! variable reaches only the etcd started here.

mod common;

use atrest::etcd::{ConnectOptions, Etcd, FailureKind};
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn expired_token_is_renewed() {
    std::env::set_var("ETCD_AUTH_TOKEN_TTL", "1");
    let c = Cluster::start(1, false);
    let ep = c.endpoints();
    for a in [vec!["user", "add", "root:s3cret"], vec!["auth", "enable"]] {
        let st = Command::new("etcdctl")
            .args(["--endpoints", &ep])
            .args(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{a:?}");
    }
    let rt = rt();
    let opts = ConnectOptions {
        endpoints: vec![ep.clone()],
        user: Some("root".into()),
        password: Some("s3cret".into()),
        ..Default::default()
    };
    rt.block_on(async {
        let (etcd, bad) = Etcd::connect(&opts).await.expect("connect with password");
        assert!(bad.is_empty(), "{bad:?}");
        etcd.put(b"/registry/a", b"1").await.expect("put");
        // Past the token's TTL: the next requests get "invalid auth token" first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let e = etcd.clone();
            tasks.push(tokio::spawn(async move {
                e.put(format!("/registry/b{i}").as_bytes(), &[i]).await
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("put after the token expired");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let kv = etcd.get(b"/registry/b7").await.expect("get").expect("key");
        assert_eq!(kv.value, vec![7]);

        // A wrong password is an authentication failure at connect time.
        let wrong = ConnectOptions {
            password: Some("wrong".into()),
            ..opts.clone()
        };
        let e = Etcd::connect(&wrong).await.expect_err("wrong password");
        assert_eq!(e.kind(), Some(FailureKind::Auth), "{e}");
        assert!(!e.to_string().contains("wrong"), "{e}");
    });
}
