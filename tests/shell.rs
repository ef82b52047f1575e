//! `atrest completions` and `atrest man`: scripts the shells accept and manual
//! pages man(1) renders, naming every subcommand.

use assert_cmd::Command;
use std::process::Stdio;

/// Every subcommand, and the nested `rotate` steps.
const SUBCOMMANDS: &[&str] = &[
    "generate",
    "validate",
    "encrypt",
    "decrypt",
    "audit",
    "info",
    "dump",
    "rotate",
    "rewrite",
    "keys",
    "completions",
    "man",
];
const ROTATE_STEPS: &[&str] = &["status", "prepare", "promote", "retire"];
const KEYS_STEPS: &[&str] = &["list", "find"];

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("atrest")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `Some(true)` when `shell -n` accepts `script`, `None` when the shell is not installed.
fn syntax_ok(shell: &str, script: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().write_all(script.as_bytes()).unwrap();
    let out = std::process::Command::new(shell)
        .arg("-n")
        .arg(f.path())
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn completion_scripts_name_every_subcommand_and_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: {err}");
        for name in SUBCOMMANDS.iter().chain(ROTATE_STEPS) {
            assert!(script.contains(name), "{shell} script lacks {name}");
        }
        // Flags of a subcommand are completed too.
        assert!(
            script.contains("snapshot"),
            "{shell} script lacks --snapshot"
        );
        match syntax_ok(shell, &script) {
            Some((ok, why)) => assert!(ok, "{shell} -n rejects the script: {why}"),
            None if shell == "bash" => panic!("bash is not installed"),
            None => eprintln!("{shell} not installed; syntax not checked"),
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn man_page_is_roff_that_man_renders() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        page.lines().any(|l| l.starts_with(".TH atrest 1")),
        "no .TH line: {page}"
    );
    for name in SUBCOMMANDS {
        assert!(
            page.contains(&format!("atrest\\-{name}(1)")),
            "page lacks atrest-{name}(1)"
        );
    }
    assert!(!page.contains("atrest\\-help"), "no page exists for help");
    // Render it when man(1) is installed: no groff warnings, the sections are there.
    let rendered = std::process::Command::new("man")
        .args(["--warnings", "-l", "-"])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = rendered else {
        eprintln!("man not installed; page not rendered");
        return;
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(page.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (text, warn) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "man -l failed: {warn}");
    assert!(warn.trim().is_empty(), "groff warnings: {warn}");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SUBCOMMANDS"] {
        assert!(
            text.lines().any(|l| l.trim() == section),
            "{section} missing: {text}"
        );
    }
    assert!(text.contains("atrest-rewrite(1)"), "{text}");
}

#[test]
fn man_out_dir_writes_a_page_per_subcommand() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("man1");
    let (code, out, err) = run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "pages go to the directory, not stdout");
    let mut want = vec!["atrest.1".to_string()];
    want.extend(SUBCOMMANDS.iter().map(|s| format!("atrest-{s}.1")));
    want.extend(ROTATE_STEPS.iter().map(|s| format!("atrest-rotate-{s}.1")));
    want.extend(KEYS_STEPS.iter().map(|s| format!("atrest-keys-{s}.1")));
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    let audit = std::fs::read_to_string(dir.join("atrest-audit.1")).unwrap();
    assert!(audit.lines().any(|l| l.starts_with(".TH atrest-audit 1")));
    assert!(
        audit.contains("\\-\\-snapshot"),
        "audit page lacks --snapshot"
    );

    // A path that cannot be a directory: exit 2 naming it.
    let file = d.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, err) = run(&["man", "--out-dir", file.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a-file"), "{err}");
}
