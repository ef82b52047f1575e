//! `atrest dump`: decrypt objects of an etcd snapshot back into manifests.

use super::flags::{resource_filter, threads};
use super::gate::GatedWriter;
use super::output::ManifestFormat;
use super::snapshot::{open_snapshot, with_verified_stdout};
use super::{CmdResult, Failure};
use atrest::audit::{AuditOptions, Auditor};
use atrest::dump::{recover_serialized, ListFormat, ListWriter};
use atrest::etcd_key::{GroupResource, ObjectKey, DEFAULT_PREFIX};
use atrest::fsutil::PrivateTree;
use atrest::keyring::ExtraKeys;
use atrest::kube::ExpectedObject;
use atrest::source::{prefetching, Record, SnapshotSource};
use atrest::transformer::{ChainCache, Transformers};
use std::io::Write;
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  # Every Secret in a backup, as a List ready for kubectl apply
  atrest dump --snapshot backup.db --config /etc/kubernetes/enc/encryption-config.yaml --clean > secrets.yaml

  # One Secret, as JSON
  atrest dump --snapshot backup.db --config enc.yaml --namespace prod --name db-password -o json

  # A backup older than the last rotation: the retired keys come from the archive
  atrest dump --snapshot backup-2026-01.db --config enc.yaml --archive /srv/backups/key-archive.yaml

  # Secrets and ConfigMaps as one file per object (files 0600, directories 0700)
  atrest dump --snapshot backup.db --config enc.yaml --resource secrets,configmaps --out-dir ./restore

Objects that cannot be decrypted are listed on stderr with the reason, and the exit code is 1.
A Secret or ConfigMap (or the metadata of any object) holding a field atrest does not
decode (one a newer Kubernetes added), or text that is not UTF-8, is printed without
that field (or with U+FFFD, as kubectl prints it), named on stderr, and the exit code is 1.
A KMS plugin that dies or stops answering mid-run stops the dump (exit 2): nothing is
printed on stdout, and with --out-dir the error says the tree is incomplete.
Exit codes: 0 every selected object recovered in full, 1 some could not be (or lack fields),
2 the snapshot or config cannot be read.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// etcd snapshot (`etcdctl snapshot save`) or member db file to read.
    #[arg(long, value_name = "FILE")]
    snapshot: PathBuf,
    /// EncryptionConfiguration with the keys that encrypted the data; repeat it for
    /// older configs, whose keys are tried after the first's.
    #[arg(long, value_name = "FILE", required = true)]
    config: Vec<PathBuf>,
    /// Key archive (`rotate retire --archive`) whose keys are tried after the
    /// configs' (repeatable): recovers objects of backups older than a rotation.
    #[arg(long, value_name = "FILE")]
    archive: Vec<PathBuf>,
    /// Resources to recover, comma-separated.
    #[arg(
        long,
        value_name = "R,...",
        value_delimiter = ',',
        default_value = "secrets"
    )]
    resource: Vec<String>,
    /// Only objects in this namespace.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// Only objects with this name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Objects as they were at this revision (default: the latest).
    #[arg(long, value_name = "N")]
    revision: Option<i64>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: ManifestFormat,
    /// Write one file per object under DIR/<resource>/<namespace>/<name>.<ext> instead of a List on stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Drop uid, resourceVersion, creationTimestamp, managedFields (and other server-set metadata) for kubectl apply.
    #[arg(long)]
    clean: bool,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = super::flags::etcd_prefix)]
    etcd_prefix: String,
    /// Read a backup whose sha256 trailer does not match, as far as it goes.
    #[arg(long)]
    skip_hash_check: bool,
    /// Worker threads that decrypt and decode (0: one per CPU). The output is
    /// the same whatever the number.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    #[arg(long = "kms-endpoint", value_name = "NAME=ENDPOINT", help = super::kms::HELP)]
    kms_endpoint: Vec<String>,
}

/// What one chunk of records became, on a worker thread: the serialised
/// objects back to back in one buffer, and for each selected record its key
/// (borrowed from the snapshot) and where its bytes are.
struct RecoveredChunk<'f> {
    bytes: Vec<u8>,
    items: Vec<Recovered<'f>>,
}

struct Recovered<'f> {
    key: &'f [u8],
    object: ObjectKey<'f>,
    /// The object's bytes in [`RecoveredChunk::bytes`], or why it was not recovered.
    result: Result<std::ops::Range<usize>, String>,
    /// The extra key (further config, archive) that read it.
    read_with: Option<String>,
    /// What the manifest leaves out of the stored object.
    omitted: atrest::kube::Omissions,
}

/// A path component taken from an etcd key: refuse anything that could escape DIR.
fn safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

pub fn run(a: Args) -> CmdResult {
    let (ts, extra) = super::keys::read_keys(&a.config, &a.archive, &a.kms_endpoint)?;
    let Some(ts) = ts else {
        return Err(Failure::usage("--config FILE is required"));
    };
    let snap = open_snapshot(&a.snapshot, a.skip_hash_check)?;
    let auditor = Auditor::new(
        None,
        AuditOptions {
            prefix: a.etcd_prefix.clone(),
            resources: resource_filter(&a.resource),
        },
    );
    let list_format = match a.output {
        ManifestFormat::Yaml => ListFormat::Yaml,
        ManifestFormat::Json => ListFormat::Json,
    };
    // The hash is checked while the keyspace is read and recovered. Through a
    // KMS plugin, the List is held until the run is complete: a plugin that
    // fails mid-run leaves no partial List.
    let hold = super::kms::in_use(Some(&ts));
    with_verified_stdout(&snap, hold, |gate| {
        let source = SnapshotSource::open(snap.bolt(), a.revision)
            .map_err(|e| Failure::usage(format!("{}: {e}", a.snapshot.display())))?;
        dump(&a, (&ts, &extra), &source, &auditor, list_format, gate)
    })
}

fn dump<'f>(
    a: &Args,
    (ts, extra): (&Transformers, &ExtraKeys),
    source: &SnapshotSource<'f>,
    auditor: &Auditor<'_>,
    list_format: ListFormat,
    gate: &mut GatedWriter<'_, std::io::StdoutLock<'static>>,
) -> CmdResult {
    let hashing = gate.hash_running();
    let tree = match &a.out_dir {
        Some(dir) => {
            // Files are written one by one: wait for the snapshot's hash check first.
            gate.open().map_err(Failure::output)?;
            Some(PrivateTree::open(dir).map_err(Failure::usage)?)
        }
        None => None,
    };
    let mut list = match a.out_dir {
        None => Some(
            ListWriter::new(
                std::io::BufWriter::with_capacity(1 << 16, &mut *gate),
                list_format,
            )
            .map_err(Failure::output)?,
        ),
        Some(_) => None,
    };
    let progress = super::progress::Progress::new(source.len() as u64, "recovering");
    let (mut recovered, mut failed, mut partial) =
        (0usize, 0usize, std::collections::BTreeSet::new());
    let mut incomplete = 0usize;
    let mut by_extra: std::collections::BTreeMap<String, usize> = Default::default();
    let work = |records: &[Record<'f>]| -> RecoveredChunk<'f> {
        let mut chunk = RecoveredChunk {
            bytes: Vec::with_capacity(records.iter().map(|r| 2 * r.value.len() + 1024).sum()),
            items: Vec::with_capacity(records.len()),
        };
        let mut chains = ts.chain_cache();
        for rec in prefetching(records) {
            let keys = (&mut chains, extra);
            if let Some(r) = recover_one(a, keys, auditor, list_format, rec, &mut chunk.bytes) {
                chunk.items.push(r);
            }
        }
        chunk
    };
    let scanned = source.par_map(
        threads(a.threads),
        hashing,
        &|n| progress.inc(n),
        work,
        |chunk| {
            super::kms::check(Some(ts))?;
            for r in chunk.items {
                if let (Some(k), Ok(_)) = (&r.read_with, &r.result) {
                    *by_extra.entry(k.clone()).or_default() += 1;
                }
                match r.result {
                    Ok(range) => {
                        let bytes = &chunk.bytes[range];
                        let gr = &r.object.resource;
                        if r.omitted.metadata_only {
                            partial.insert(gr.to_string());
                        }
                        match (&mut list, &tree) {
                            (Some(l), _) => l.push_serialized(bytes).map_err(Failure::output)?,
                            (None, Some(tree)) => {
                                if let Err(msg) = write_object_file(
                                    tree,
                                    gr,
                                    r.object.namespace,
                                    r.object.name,
                                    a.output,
                                    bytes,
                                ) {
                                    eprintln!(
                                        "atrest: cannot write {}: {msg}",
                                        String::from_utf8_lossy(r.key)
                                    );
                                    failed += 1;
                                    continue;
                                }
                            }
                            (None, None) => {}
                        }
                        let undecoded = &r.omitted.undecoded;
                        if !undecoded.is_empty() {
                            eprintln!(
                                "atrest: WARNING: the manifest of {} is NOT the whole stored object: {} (\"... field N\" is a field atrest does not know, from a newer Kubernetes?, left out: read the object through a kube-apiserver that knows it)",
                                String::from_utf8_lossy(r.key),
                                undecoded.join(", ")
                            );
                            incomplete += 1;
                        }
                        recovered += 1;
                    }
                    Err(msg) => {
                        eprintln!(
                            "atrest: cannot recover {}: {msg}",
                            String::from_utf8_lossy(r.key)
                        );
                        failed += 1;
                    }
                }
            }
            Ok::<(), Failure>(())
        },
    );
    if let Err(f) = scanned.and_then(|()| super::kms::check(Some(ts))) {
        // Files already written stay (each one whole, 0600), but the tree is
        // not the dump that was asked for: say so, never leave it silently.
        return Err(match &a.out_dir {
            Some(dir) => Failure::usage(format!(
                "{}; the tree under {} is INCOMPLETE: {recovered} object file(s) were written before the dump stopped; delete it, or dump again into it once the cause is fixed (files are overwritten)",
                f.message,
                dir.display()
            )),
            None => f,
        });
    }
    progress.finish();
    if let Some(l) = list.take() {
        let mut out = l.finish().map_err(Failure::output)?;
        out.flush().map_err(Failure::output)?;
    }
    drop(list);
    gate.open().map_err(Failure::output)?;
    gate.flush().map_err(Failure::output)?;
    for res in &partial {
        eprintln!("atrest: note: {res} objects are printed with apiVersion, kind and metadata only (atrest decodes Secret and ConfigMap in full, and JSON-stored objects as stored)");
    }
    for (k, n) in &by_extra {
        eprintln!("atrest: {n} object(s) read with {k} (the first config cannot read them)");
    }
    if let Some(dir) = &a.out_dir {
        eprintln!(
            "atrest: wrote {recovered} object(s) under {}",
            dir.display()
        );
    }
    if failed > 0 || incomplete > 0 {
        return Err(Failure::findings(format!(
            "{failed} object(s) could not be recovered, {incomplete} recovered without some of their stored fields (see above); {recovered} recovered"
        )));
    }
    Ok(())
}

/// Select, decrypt, decode and serialise one record (on a worker thread) at
/// the end of `out`; `None` when the filters leave it out.
fn recover_one<'f>(
    a: &Args,
    (chains, extra): (&mut ChainCache<'_>, &ExtraKeys),
    auditor: &Auditor<'_>,
    list_format: ListFormat,
    rec: &Record<'f>,
    out: &mut Vec<u8>,
) -> Option<Recovered<'f>> {
    let object = auditor.select(rec.key)?;
    if a.namespace
        .as_deref()
        .is_some_and(|ns| object.namespace != Some(ns))
        || a.name.as_deref().is_some_and(|n| object.name != n)
    {
        return None;
    }
    let per_file = a.out_dir.is_some();
    let expected = ExpectedObject::from_object_key(&a.etcd_prefix, &object)?;
    let start = out.len();
    let result = recover_serialized(
        (chains, extra),
        &object.resource,
        &expected,
        &rec.stored(),
        a.clean,
        (list_format, !per_file),
        out,
    );
    let (result, read_with, omitted) = match result {
        Ok(r) => (
            Ok(start..out.len()),
            r.read_with.map(|k| k.to_string()),
            r.omitted,
        ),
        Err(e) => {
            out.truncate(start);
            (Err(e.to_string()), None, Default::default())
        }
    };
    Some(Recovered {
        key: rec.key,
        object,
        result,
        read_with,
        omitted,
    })
}

fn write_object_file(
    tree: &PrivateTree,
    gr: &GroupResource,
    namespace: Option<&str>,
    name: &str,
    format: ManifestFormat,
    item: &[u8],
) -> Result<(), String> {
    let resource = gr.to_string();
    let parts: Vec<&str> = [Some(resource.as_str()), namespace]
        .into_iter()
        .flatten()
        .collect();
    if !parts.iter().chain([&name]).all(|c| safe_component(c)) {
        return Err(format!(
            "unsafe path component in {resource}/{}/{name}",
            namespace.unwrap_or("")
        ));
    }
    let ext = match format {
        ManifestFormat::Yaml => "yaml",
        ManifestFormat::Json => "json",
    };
    tree.write_file(&parts, &format!("{name}.{ext}"), item)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
