//! A TPM 2.0 as a PKCS#11 token, through the real binary: a software TPM
//! (swtpm) behind the access broker (tpm2-abrmd, on a private D-Bus
//! session bus) and the tpm2-pkcs11 module, all from Debian's packages and
//! started per test in a temporary directory. `tokens`, `keygen --pkcs11`,
//! `pubkey` and `--sign-as` run on the TPM; decryption needs
//! `CKM_ECDH1_DERIVE`, which tpm2-pkcs11 1.9 (Debian 12) does not
//! implement, so it must fail with the token exit code and a message that
//! says so, or, with a module that has it, decrypt. Without the packages
//! the test skips (and fails when `CI=true`).

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Env;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so";
const TOOLS: [&str; 5] = [
    "swtpm",
    "tpm2-abrmd",
    "dbus-daemon",
    "tpm2_ptool",
    "tpm2_getrandom",
];
/// How long the TPM, the bus and the broker may take to come up.
const START_PATIENCE: Duration = Duration::from_secs(60);

fn found(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|dir| Path::new(dir).join(tool).exists())
}

/// Two free neighbouring ports: the swtpm TCTI expects the control port
/// right after the command port.
fn free_port_pair() -> (u16, u16) {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
}

/// The software TPM, its session bus and its broker; killed on drop.
struct Tpm {
    env: Env,
    children: Vec<Child>,
    bus: String,
}

impl Drop for Tpm {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Tpm {
    fn start() -> Option<Tpm> {
        let missing: Vec<_> = TOOLS.iter().filter(|t| !found(t)).collect();
        if !missing.is_empty() || !Path::new(MODULE).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the software TPM stack is missing under CI: {missing:?}, {MODULE}"
            );
            eprintln!("skipped: no software TPM stack ({missing:?} or {MODULE} missing)");
            return None;
        }
        let env = Env::new();
        for dir in ["tpm-state", "store"] {
            std::fs::create_dir(env.path(dir)).unwrap();
        }
        let mut tpm = Tpm {
            env,
            children: Vec::new(),
            bus: String::new(),
        };
        let (port, ctrl) = free_port_pair();
        tpm.children.push(
            Command::new("swtpm")
                .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
                .arg("--tpmstate")
                .arg(format!("dir={}", tpm.env.p("tpm-state")))
                .args(["--server", &format!("type=tcp,port={port}")])
                .args(["--ctrl", &format!("type=tcp,port={ctrl}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < START_PATIENCE, "swtpm did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        tpm.children.push(bus);
        tpm.bus = address.trim().to_string();
        assert!(!tpm.bus.is_empty(), "dbus-daemon printed no address");
        tpm.children.push(
            Command::new("tpm2-abrmd")
                .args(["--session", "--allow-root", "--flush-all"])
                .arg(format!("--tcti=swtpm:host=127.0.0.1,port={port}"))
                .env("DBUS_SESSION_BUS_ADDRESS", &tpm.bus)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // The broker is up once a TPM command goes through it.
        let start = Instant::now();
        loop {
            let probe = tpm
                .tool("tpm2_getrandom")
                .args(["--hex", "4"])
                .output()
                .unwrap();
            if probe.status.success() {
                break;
            }
            assert!(
                start.elapsed() < START_PATIENCE,
                "tpm2-abrmd did not come up: {}",
                text(&probe.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let store = tpm.env.p("store");
        for args in [
            vec!["init", "--path", &store],
            vec![
                "addtoken",
                "--pid",
                "1",
                "--label",
                "backup",
                "--userpin",
                "1234",
                "--sopin",
                "5678",
                "--path",
                &store,
            ],
        ] {
            let out = tpm.tool("tpm2_ptool").args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "tpm2_ptool {args:?}: {}",
                text(&out.stderr)
            );
        }
        Some(tpm)
    }

    /// A command with the environment that reaches the TPM through the broker.
    fn tool(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("TPM2TOOLS_TCTI", "tabrmd:bus_type=session")
            .env("TPM2_PKCS11_TCTI", "tabrmd:bus_type=session")
            .env("TPM2_PKCS11_STORE", self.env.p("store"))
            .env("TPM2_PKCS11_LOG_LEVEL", "0")
            .stdin(Stdio::null());
        c
    }

    fn kapsel(&self, args: &[&str]) -> Output {
        let mut c = self.tool(env!("CARGO_BIN_EXE_kapsel"));
        c.env("KAPSEL_STATE_DIR", self.env.p("state"))
            .env("KAPSEL_PKCS11_MODULE", MODULE)
            .env("KAPSEL_PKCS11_PIN", "1234")
            .env_remove("KAPSEL_SERIAL_DB")
            .args(args);
        c.output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_tpm_key_is_made_listed_and_signs_through_tpm2_pkcs11() {
    let Some(tpm) = Tpm::start() else { return };
    let uri = "pkcs11:token=backup;object=kapsel";
    let listed = tpm.kapsel(&["tokens"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains("token=backup"),
        "{}",
        text(&listed.stdout)
    );

    let made = tpm.kapsel(&["keygen", "--pkcs11", uri]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let recipient = text(&made.stdout).trim().to_string();
    let shown = tpm.kapsel(&["pubkey", uri]);
    assert_eq!(
        text(&shown.stdout).trim(),
        recipient,
        "{}",
        text(&shown.stderr)
    );

    // Sign on the TPM; a software identity receives and checks the sender.
    let (bob_key, bob) = tpm.env.identity("bob.key");
    let plain: Vec<u8> = (0..1_500_000u32).map(|i| (i % 249) as u8).collect();
    let src = tpm.env.write("plain", &plain);
    let signed = tpm.env.p("signed.kap");
    let enc = tpm.kapsel(&[
        "encrypt",
        "-r",
        &bob.to_recipient().to_string(),
        "--sign-as",
        uri,
        "-o",
        &signed,
        &src,
    ]);
    assert_eq!(enc.status.code(), Some(0), "{}", text(&enc.stderr));
    let dec = tpm.kapsel(&[
        "decrypt",
        "-i",
        &bob_key,
        "--expect-sender",
        &recipient,
        &signed,
    ]);
    assert_eq!(dec.status.code(), Some(0), "{}", text(&dec.stderr));
    assert!(dec.stdout == plain);

    // Decrypting with the TPM key: either the module derives, or it says
    // it cannot, with the token exit code and no output.
    let to_tpm = tpm.env.p("to-tpm.kap");
    let enc = tpm.kapsel(&["encrypt", "-r", &recipient, "-o", &to_tpm, &src]);
    assert_eq!(enc.status.code(), Some(0), "{}", text(&enc.stderr));
    let out = tpm.env.p("out");
    let dec = tpm.kapsel(&["decrypt", "-i", uri, "-o", &out, &to_tpm]);
    match dec.status.code() {
        Some(0) => assert!(std::fs::read(&out).unwrap() == plain),
        Some(9) => {
            let err = text(&dec.stderr);
            assert!(err.contains("cannot derive"), "{err}");
            assert!(err.contains("CKM_ECDH1_DERIVE"), "{err}");
            assert!(!tpm.env.path("out").exists());
        }
        other => panic!("decrypt with the TPM key: {other:?}: {}", text(&dec.stderr)),
    }
}
