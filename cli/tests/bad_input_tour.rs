//! The bad-input tour: every conformance vector in testvectors/vectors goes
//! through `kapsel decrypt -o FILE`. Each must end with the exit code of its
//! outcome class and a one-line error (plus at most a hint), and a failed
//! decrypt must leave no FILE and no temporary file.

use std::fs;
use std::path::Path;
use std::process::Command;

fn exit_code(class: &str) -> i32 {
    match class {
        "success" => 0,
        "not_kapsel" | "unsupported" | "malformed_header" | "armor_failure" => 3,
        "no_match" => 4,
        "header_auth_failure" | "payload_failure" | "sender_verification_failure" => 5,
        other => panic!("unknown outcome class {other}"),
    }
}

#[test]
fn every_vector_gets_its_exit_code_one_line_and_no_output_file() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testvectors/vectors");
    let work = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = fs::read_dir(&vectors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(
        names.len() >= 120,
        "expected the conformance vectors in {}",
        vectors.display()
    );
    let mut per_class = std::collections::BTreeMap::<String, usize>::new();
    let version = Command::new(env!("CARGO_BIN_EXE_kapsel"))
        .arg("--version")
        .output()
        .unwrap();
    let fips = String::from_utf8_lossy(&version.stdout).contains("FIPS mode");
    for path in &names {
        let bytes = fs::read(path).unwrap();
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("header ends with an empty line");
        let header = std::str::from_utf8(&bytes[..split]).unwrap();
        let input = &bytes[split + 2..];
        let field = |key: &'static str| {
            header
                .lines()
                .filter_map(move |l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        };
        let mut expect = field("expect").next().unwrap().to_string();
        // The FIPS build opens no passphrase file: every one that parses and
        // is within the work limit is refused as unsupported (exit 3).
        let passphrase_file = field("passphrase_hex").next().is_some()
            || path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pass_");
        if fips
            && passphrase_file
            && matches!(
                expect.as_str(),
                "success" | "no_match" | "header_auth_failure"
            )
        {
            expect = "unsupported".into();
        }
        if field("armor").next() == Some("no")
            && kapsel_codec::is_armored(
                &input[..input.len().min(kapsel_codec::ARMOR_DETECTION_WINDOW)],
            )
        {
            // The vector feeds armor to a binary-only decoder; the CLI
            // detects armor by itself, so the class differs by design.
            continue;
        }
        let released_sha = field("released_sha256").next().unwrap().to_string();
        let mut identities: Vec<String> = field("identity").map(str::to_string).collect();
        if identities.is_empty() {
            // The CLI needs an identity; a stranger's key changes nothing for these vectors.
            identities.push(
                kapsel_codec::Identity::generate()
                    .to_secret_string()
                    .to_string(),
            );
        }
        let id_file = work.path().join("ids.key");
        fs::write(&id_file, identities.join("\n") + "\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&id_file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // A passphrase vector gives its passphrase as hex; a passphrase file
        // without one gets a wrong passphrase, which is the same class
        // (no matching recipient) and needs no terminal.
        let pw_file = work.path().join("passphrase.txt");
        let passphrase = field("passphrase_hex")
            .next()
            .map(|h| hex::decode(h).unwrap())
            .unwrap_or_else(|| b"not the passphrase".to_vec());
        let mut pw = passphrase;
        pw.push(b'\n');
        fs::write(&pw_file, pw).unwrap();
        let in_file = work.path().join("input");
        fs::write(&in_file, input).unwrap();
        let out_file = work.path().join("plain.out");
        let _ = fs::remove_file(&out_file);
        let out = Command::new(env!("CARGO_BIN_EXE_kapsel"))
            .args([
                "decrypt",
                "-q",
                "-i",
                id_file.to_str().unwrap(),
                "--passphrase-file",
                pw_file.to_str().unwrap(),
                "-o",
                out_file.to_str().unwrap(),
                in_file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(exit_code(&expect)),
            "{name} ({expect}): {stderr}"
        );
        if expect == "success" {
            assert!(stderr.is_empty(), "{name}: {stderr}");
            let plain = fs::read(&out_file).unwrap();
            assert_eq!(
                hex::encode(kapsel_codec::backend::sha256(&plain)),
                released_sha,
                "{name}: wrong plaintext"
            );
        } else {
            let lines: Vec<&str> = stderr.lines().collect();
            assert!(
                lines
                    .first()
                    .is_some_and(|l| l.starts_with("kapsel: error: ")),
                "{name}: {stderr}"
            );
            assert!(
                lines.len() <= 2 && lines.get(1).is_none_or(|l| l.starts_with("kapsel: hint: ")),
                "{name}: {stderr}"
            );
            assert!(
                !out_file.exists(),
                "{name}: output file left after a failed decrypt"
            );
        }
        let leftovers: Vec<_> = fs::read_dir(work.path())
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.contains("kapsel-partial").then_some(n)
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "{name}: temporary files left: {leftovers:?}"
        );
        *per_class.entry(expect).or_default() += 1;
    }
    let tested: usize = per_class.values().sum();
    eprintln!(
        "bad-input tour: {tested} of {} vectors through kapsel decrypt -o: {per_class:?}",
        names.len()
    );
    assert!(tested + 2 >= names.len(), "too many vectors skipped");
}
