//! The binary reports a bad configuration in one line and exits non-zero.

use std::process::Command;

fn run_with(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_exits_non_zero_naming_it_in_one_line() {
    let (code, stderr) = run_with("[http]\nlisen = \"127.0.0.1:8080\"\n");
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("lisen"), "{stderr}");
}

#[test]
fn a_bad_value_exits_non_zero_naming_the_key() {
    let (code, stderr) = run_with("[[tenants]]\nid = \"a\"\napi_key = \"short\"\n");
    assert_eq!(code, 2);
    assert!(stderr.contains("tenants[0].api_key"), "{stderr}");
}

#[test]
fn a_missing_file_exits_non_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["--config", "/nonexistent/smppd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/smppd.toml"));
}

#[test]
fn a_valid_file_passes_the_check() {
    let (code, stderr) = run_with("[http]\nlisten = \"127.0.0.1:8080\"\n");
    assert_eq!(code, 0, "{stderr}");
}
