//! The `keyward` binary as a user drives it: happy paths, and every error as one clear line
#![allow(clippy::unwrap_used)] // test helpers
//! with a non-zero exit, never a panic.

use std::{path::PathBuf, process::Command};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn keyward(dir: &PathBuf, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The path of vendor sample evidence `name` (core/attest/tests/data).
fn data(name: &str) -> String {
    format!(
        "{}/../../core/attest/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(r: &Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// An error: exit 1, exactly one line on stderr starting with "error: ", no panic.
fn fails(r: &Run, needle: &str) {
    assert_eq!(r.code, 1, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{:?}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{:?} should mention {needle:?}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn derive_encrypt_decrypt_round_trip() {
    let d = tempdir("roundtrip");
    ok(&keyward(
        &d,
        &["keys", "new", "--kind", "master", "--out", "master.json"],
    ));
    let user = ok(&keyward(&d, &["keys", "new", "--out", "user.json"]));
    let derived = keyward(
        &d,
        &[
            "keys",
            "derive",
            "--master",
            "master.json",
            "--epoch",
            "2",
            "--cluster",
            "c1",
            "--generation",
            "1",
            "--contract",
            "kv",
        ],
    );
    let v = ok(&derived);
    assert!(
        v.get("secrets").is_none(),
        "no secret without --reveal-secrets"
    );
    assert_eq!(v["evaluation"]["proofVerified"], true);
    std::fs::write(d.join("kv.json"), &derived.stdout).unwrap();
    std::fs::write(d.join("msg.txt"), b"put k v").unwrap();
    ok(&keyward(
        &d,
        &[
            "keys",
            "encrypt",
            "--to",
            "kv.json",
            "--identity",
            "user.json",
            "--in",
            "msg.txt",
            "--out",
            "msg.kwe",
        ],
    ));
    let opened = ok(&keyward(
        &d,
        &[
            "keys",
            "decrypt",
            "--master",
            "master.json",
            "--in",
            "msg.kwe",
            "--out",
            "msg.out",
            "--expect-sender",
            user["public"].as_str().unwrap(),
        ],
    ));
    assert_eq!(opened["contract"], "kv");
    assert_eq!(opened["generation"], 1);
    assert_eq!(std::fs::read(d.join("msg.out")).unwrap(), b"put k v");

    // The printed proof verifies against the master public key, yet the printed evaluation is of
    // a blinded element: it is not the public input's evaluation, which would be key material.
    {
        use keyward_threshold::{
            Committee, Element, PartialEvaluation, Proof, PublicKey, ShareIndex,
        };
        let hex32 = |p: &str| -> [u8; 32] {
            hex::decode(
                v.pointer(p)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .trim_start_matches("0x"),
            )
            .unwrap()
            .try_into()
            .unwrap()
        };
        let master = PublicKey::from_bytes(&hex32("/masterPublicKey")).unwrap();
        let committee = Committee::classic(master, [ShareIndex::new(1).unwrap()]).unwrap();
        let proof = hex::decode(
            v["evaluation"]["proof"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
        )
        .unwrap();
        let partial = PartialEvaluation {
            index: ShareIndex::new(1).unwrap(),
            evaluated: Element::from_bytes(&hex32("/evaluation/evaluatedElement")).unwrap(),
            proof: Proof::from_bytes(&proof.try_into().unwrap()).unwrap(),
        };
        let blinded = Element::from_bytes(&hex32("/evaluation/blindedElement")).unwrap();
        assert!(committee.check_partial(&blinded, &partial).is_ok());
        let input = hex::decode(
            v["evaluation"]["input"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
        )
        .unwrap();
        assert!(committee.evaluate_input(&input, &[partial]).is_err());
    }

    // Derivation is deterministic: the same public keys every time; secrets only on request.
    let again = ok(&keyward(
        &d,
        &[
            "keys",
            "derive",
            "--master",
            "master.json",
            "--epoch",
            "2",
            "--cluster",
            "c1",
            "--generation",
            "1",
            "--contract",
            "kv",
            "--reveal-secrets",
        ],
    ));
    assert_eq!(again["contract"]["x25519"], v["contract"]["x25519"]);
    assert_eq!(again["clusterKey"], v["clusterKey"]);
    assert_ne!(
        again["evaluation"]["evaluatedElement"], v["evaluation"]["evaluatedElement"],
        "fresh blind each run"
    );
    assert!(again["secrets"]["clusterSeed"].is_string());

    // Another master, another sender, or a tampered envelope: refused, and no output written.
    ok(&keyward(
        &d,
        &["keys", "new", "--kind", "master", "--out", "other.json"],
    ));
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "decrypt",
                "--master",
                "other.json",
                "--in",
                "msg.kwe",
                "--out",
                "x.out",
            ],
        ),
        "msg.kwe",
    );
    ok(&keyward(&d, &["keys", "new", "--out", "mallory.json"]));
    let mallory = ok(&keyward(&d, &["keys", "show", "mallory.json"]));
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "decrypt",
                "--master",
                "master.json",
                "--in",
                "msg.kwe",
                "--out",
                "y.out",
                "--expect-sender",
                mallory["public"].as_str().unwrap(),
            ],
        ),
        "expected sender",
    );
    let mut env = std::fs::read(d.join("msg.kwe")).unwrap();
    let n = env.len();
    env[n - 70] ^= 1;
    std::fs::write(d.join("bad.kwe"), env).unwrap();
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "decrypt",
                "--master",
                "master.json",
                "--in",
                "bad.kwe",
                "--out",
                "z.out",
            ],
        ),
        "bad.kwe",
    );
    for f in ["x.out", "y.out", "z.out"] {
        assert!(!d.join(f).exists(), "{f} must not be written on refusal");
    }
}

#[test]
fn key_files_are_private_checked_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir("keyfiles");
    for kind in ["sr25519", "ed25519", "master"] {
        let file = format!("{kind}.json");
        let made = ok(&keyward(
            &d,
            &["keys", "new", "--kind", kind, "--out", &file],
        ));
        assert_eq!(
            std::fs::metadata(d.join(&file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let shown = ok(&keyward(&d, &["keys", "show", &file]));
        assert_eq!(shown["public"], made["public"]);
        fails(
            &keyward(&d, &["keys", "new", "--kind", kind, "--out", &file]),
            "already exists",
        );
        ok(&keyward(
            &d,
            &["keys", "new", "--kind", kind, "--out", &file, "--force"],
        ));
    }
    let solana: Vec<u8> =
        serde_json::from_str(&std::fs::read_to_string(d.join("ed25519.json")).unwrap()).unwrap();
    assert_eq!(solana.len(), 64, "Solana keypair-file layout");

    std::fs::write(
        d.join("garbage.json"),
        b"{\"kind\":\"sr25519\",\"secret\":\"0x12\",\"public\":\"0x\"}",
    )
    .unwrap();
    fails(
        &keyward(&d, &["keys", "show", "garbage.json"]),
        "garbage.json",
    );
    let mut master: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("master.json")).unwrap()).unwrap();
    master["public"] = serde_json::Value::String(format!("0x{}", "11".repeat(32)));
    std::fs::write(d.join("mismatch.json"), master.to_string()).unwrap();
    fails(
        &keyward(&d, &["keys", "show", "mismatch.json"]),
        "does not match",
    );
    std::fs::write(d.join("big.json"), vec![b' '; 100_000]).unwrap();
    fails(&keyward(&d, &["keys", "show", "big.json"]), "larger than");
    fails(
        &keyward(&d, &["keys", "show", "missing.json"]),
        "missing.json",
    );
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "derive",
                "--master",
                "sr25519.json",
                "--epoch",
                "0",
                "--cluster",
                "c",
            ],
        ),
        "expected a master key file",
    );
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "derive",
                "--master",
                "master.json",
                "--epoch",
                "0",
                "--cluster",
                "bad id!",
            ],
        ),
        "cluster id",
    );
    fails(
        &keyward(
            &d,
            &[
                "keys",
                "encrypt",
                "--to",
                "master.json",
                "--identity",
                "sr25519.json",
                "--in",
                "master.json",
                "--out",
                "o",
            ],
        ),
        "missing /epoch",
    );
}

#[test]
fn demo_checks_every_claim() {
    let d = tempdir("demo");
    let r = keyward(&d, &["keys", "demo"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("FAIL"));
    let summary = r
        .stdout
        .lines()
        .find(|l| l.ends_with("checks passed"))
        .expect("a summary line");
    let numbers: Vec<usize> = summary.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers.len(), 2, "{summary}");
    assert_eq!(numbers[0], numbers[1], "{summary}");
    assert!(numbers[1] >= 22, "checks were dropped: {summary}");
}

#[test]
fn attest_wrap_puts_vendor_evidence_in_the_envelope_verified_as_of_its_time() {
    let d = tempdir("attest-wrap");
    let (quote, collateral) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let wrap = |now: &str, out: &str| {
        keyward(
            &d,
            &[
                "attest",
                "wrap",
                "--dcap-quote",
                &quote,
                "--collateral",
                &collateral,
                "--now",
                now,
                "--out",
                out,
            ],
        )
    };
    let wrapped = ok(&wrap("1750332747", "tdx.kwat"));
    assert_eq!(wrapped["kind"], "dcap");
    assert_eq!(wrapped["verifiedAt"], 1750332747);
    // The envelope verifies as of the time it carries, whatever today is.
    let verified = ok(&keyward(
        &d,
        &["attest", "verify", "--evidence", "tdx.kwat"],
    ));
    assert_eq!(verified["verdict"], "verified");
    assert_eq!(verified["platform"], "dcap");
    assert_eq!(verified["insecure"], false);
    assert_eq!(verified["verifiedAt"], 1750332747);
    assert_eq!(verified["measurement"], wrapped["measurement"]);
    assert_eq!(verified["vendor"]["platform"], "tdx");
    assert_eq!(verified["vendor"]["tcbStatus"], "UpToDate");
    assert_eq!(verified["vendor"]["reportData"], wrapped["reportData"]);
    // A flipped bit in the quote inside the envelope is refused.
    let mut bytes = std::fs::read(d.join("tdx.kwat")).unwrap();
    bytes[300] ^= 0x01;
    std::fs::write(d.join("forged.kwat"), bytes).unwrap();
    fails(
        &keyward(&d, &["attest", "verify", "--evidence", "forged.kwat"]),
        "evidence rejected",
    );
    // Today the collateral has expired: nothing is written.
    fails(&wrap("1795219200", "expired.kwat"), "CrlExpired");
    assert!(!d.join("expired.kwat").exists());
    // With `--now`, the vendor's chain is checked at that time as well: good then, and no
    // longer today, when the collateral has expired.
    let at = |now: &str| {
        keyward(
            &d,
            &["attest", "verify", "--evidence", "tdx.kwat", "--now", now],
        )
    };
    let then = ok(&at("1750333000"));
    assert_eq!(then["verifiedAt"], 1750332747);
    assert_eq!(then["checkedAt"], 1750333000);
    assert_eq!(then["vendor"], verified["vendor"]);
    let today = at("1795219200");
    fails(&today, "CrlExpired");
    let rejected: serde_json::Value = serde_json::from_str(&today.stdout).unwrap();
    assert_eq!(rejected["verdict"], "rejected");
    assert_eq!(rejected["checkedAt"], 1795219200);
}

#[test]
fn attest_verify_prints_the_claims_and_exits_non_zero_on_rejected_evidence() {
    let d = tempdir("attest");
    let (quote, collateral) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let dcap = |now: &str| {
        keyward(
            &d,
            &[
                "attest",
                "verify",
                "--dcap-quote",
                &quote,
                "--collateral",
                &collateral,
                "--now",
                now,
            ],
        )
    };
    let verified = ok(&dcap("1750332747"));
    assert_eq!(verified["verdict"], "verified");
    assert_eq!(verified["platform"], "tdx");
    assert_eq!(verified["tcbStatus"], "UpToDate");
    assert_eq!(verified["tcbEvaluation"], 17);
    assert_eq!(verified["measurement"].as_str().unwrap().len(), 96);
    // A TD's measurement digests its registers, which are printed too.
    let registers = verified["registers"].as_object().unwrap();
    assert_eq!(registers.len(), 11);
    assert_eq!(registers["rtmr3"].as_str().unwrap().len(), 96);
    assert_eq!(verified["reportData"].as_str().unwrap().len(), 128);
    // At today's date the collateral has expired: the verdict is still JSON on stdout.
    let expired = dcap("1795219200");
    fails(&expired, "CrlExpired");
    let rejected: serde_json::Value = serde_json::from_str(&expired.stdout).unwrap();
    assert_eq!(rejected["verdict"], "rejected");

    let nitro = ok(&keyward(
        &d,
        &[
            "attest",
            "verify",
            "--nitro-doc",
            &data("nitro_attestation.cose"),
            "--now",
            "1736179625",
        ],
    ));
    assert_eq!(nitro["platform"], "nitro");
    assert_eq!(nitro["issuedAt"], 1736179625);
    // SEV-SNP, checked at a fixed time: its VCEK is valid until 2030-04-03T19:23:43Z.
    let vcek = data("vcek_milan.der");
    let snp = |report: &str, now: &str| {
        keyward(
            &d,
            &[
                "attest",
                "verify",
                "--snp-report",
                report,
                "--vcek",
                &vcek,
                "--now",
                now,
            ],
        )
    };
    let claims = ok(&snp(&data("report_milan.hex"), "1700000000"));
    assert_eq!(claims["platform"], "sev-snp");
    assert_eq!(claims["verifiedAt"], 1700000000);
    fails(
        &snp(&data("report_milan.hex"), "1901474624"),
        "the VCEK certificate is not valid",
    );
    let mut report = std::fs::read(data("report_milan.hex")).unwrap();
    report[200] = if report[200] == b'0' { b'1' } else { b'0' };
    std::fs::write(d.join("tampered.hex"), report).unwrap();
    fails(&snp("tampered.hex", "1700000000"), "does not verify");

    // keyward's own dev evidence: the signature is checked and it is labelled insecure.
    let platform = keyward_enclave::DevPlatformKey::from_identity(
        keyward_crypto::IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new([3; 32])),
    );
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let evidence = platform
        .attest([5; 32], &[], b"nonce", &mut rng)
        .unwrap()
        .to_bytes();
    std::fs::write(d.join("evidence.bin"), &evidence).unwrap();
    let dev = ok(&keyward(
        &d,
        &["attest", "verify", "--evidence", "evidence.bin"],
    ));
    assert_eq!(dev["platform"], "dev-insecure");
    assert_eq!(dev["insecure"], true);
    // It carries no time.
    assert!(dev["verifiedAt"].is_null(), "{dev}");
    assert_eq!(dev["measurement"], "05".repeat(32));
    let mut forged = evidence.clone();
    forged[40] ^= 1;
    std::fs::write(d.join("forged.bin"), &forged).unwrap();
    fails(
        &keyward(&d, &["attest", "verify", "--evidence", "forged.bin"]),
        "signature",
    );

    // A TPM quote (the test vector's): verified, not insecure, with its attestation key's
    // fingerprint for the verifier to pin; altered, refused.
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/test-vectors/keyward-v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let tq = &vectors["tpmQuoteEvidence"];
    let hex_field =
        |name: &str| hex::decode(tq[name].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let quote = hex_field("evidence");
    std::fs::write(d.join("quote.bin"), &quote).unwrap();
    let verified = ok(&keyward(
        &d,
        &["attest", "verify", "--evidence", "quote.bin"],
    ));
    assert_eq!(verified["platform"], "tpm-quote");
    assert_eq!(verified["insecure"], false);
    assert_eq!(
        verified["measurement"],
        hex::encode(hex_field("measurement"))
    );
    assert_eq!(
        verified["tpmKeyFingerprint"],
        hex::encode(hex_field("akFingerprint"))
    );
    let mut forged = quote.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    std::fs::write(d.join("forged-quote.bin"), &forged).unwrap();
    fails(
        &keyward(&d, &["attest", "verify", "--evidence", "forged-quote.bin"]),
        "signature",
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tpm_options_without_tpm_sealing_are_refused_not_ignored() {
    let d = tempdir("sealing");
    let genesis = format!("0x{}", "00".repeat(32));
    fails(
        &keyward(
            &d,
            &[
                "gatekeeper",
                "--genesis-hash",
                &genesis,
                "--data-dir",
                "gk",
                "--platform-key",
                "platform.key",
                "--tpm-pcrs",
                "0,7",
            ],
        ),
        "need --sealing tpm",
    );
    assert!(!d.join("gk").exists(), "nothing was made");
    // The dev platform key is the soft source's: required with it, refused with a TPM (which
    // attests itself), never silently ignored.
    let node = |extra: &[&'static str]| {
        let mut args = vec!["worker", "--genesis-hash", &genesis, "--data-dir", "w"];
        args.extend_from_slice(extra);
        keyward(&d, &args)
    };
    fails(&node(&[]), "--platform-key is required");
    fails(
        &node(&["--sealing", "tpm", "--platform-key", "platform.key"]),
        "with --sealing tpm the TPM attests",
    );
    assert!(!d.join("w").exists(), "nothing was made");
    let _ = std::fs::remove_dir_all(&d);
}

/// `keyward genesis` writes a genesis the ledger accepts, with the policies its description
/// gives; a signer outside the council, a gatekeeper policy weaker than the worker policy and an
/// existing output file are each refused with one line, and nothing is written.
#[test]
fn genesis_writes_a_verified_genesis_with_the_described_policies() {
    let d = tempdir("genesis");
    let member = ok(&keyward(&d, &["keys", "new", "--out", "member.json"]));
    ok(&keyward(&d, &["keys", "new", "--out", "outsider.json"]));
    let member = member["public"].as_str().unwrap().to_owned();
    let ak = "ab".repeat(32);
    let description = |gatekeeper: &str| {
        format!(
            "chain = \"tpm-net\"\ncouncil = [\"{member}\"]\n[params]\nmin_worker_stake = 5\n\
             [gatekeeper_policy]\n{gatekeeper}\n[worker_policy]\ntpm_keys = [\"{ak}\"]\n"
        )
    };
    std::fs::write(
        d.join("genesis.toml"),
        description(&format!("tpm_keys = [\"{ak}\"]")),
    )
    .unwrap();
    let args = |key: &'static str, out: &'static str| {
        [
            "genesis",
            "--config",
            "genesis.toml",
            "--sign-with",
            key,
            "--out",
            out,
        ]
    };
    let written = ok(&keyward(&d, &args("member.json", "genesis.bin")));
    let hash = written["genesis"].as_str().unwrap();
    let entry =
        keyward_ledger::Entry::from_bytes(std::fs::read(d.join("genesis.bin")).unwrap()).unwrap();
    let pinned = keyward_ledger::EntryHash(keyward_crypto::hex::from_hex("hash", hash).unwrap());
    let genesis = keyward_ledger::Genesis::from_entry(&entry, &pinned).unwrap();
    let config = genesis.config();
    assert_eq!(config.params.min_worker_stake, 5);
    assert_eq!(config.worker_policy.trusted_tpm_keys, vec![[0xab; 32]]);
    assert!(!config.worker_policy.accept_insecure_dev);

    fails(
        &keyward(&d, &args("member.json", "genesis.bin")),
        "genesis.bin",
    );
    fails(
        &keyward(&d, &args("outsider.json", "other.bin")),
        "not a council member",
    );
    // Accepting `dev` evidence the worker policy refuses makes the gatekeeper policy weaker.
    std::fs::write(
        d.join("genesis.toml"),
        description("accept_insecure_dev = true"),
    )
    .unwrap();
    fails(
        &keyward(&d, &args("member.json", "weak.bin")),
        "at least as strict",
    );
    assert!(!d.join("other.bin").exists() && !d.join("weak.bin").exists());
}
