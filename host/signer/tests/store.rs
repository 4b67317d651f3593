//! The store on disk: after a commit, an older copy of `signer.redb` put back beside the
//! monotonic counter is refused at start, so a vote the signer has refused stays refused; a
//! crash between a commit and its counter advance is caught up; a missing counter is an error.
//! With a TPM as sealing source (built with the `tpm` feature, run against swtpm), restoring the
//! whole data directory is refused too; with the soft source it is not (its documented limit).
#![allow(missing_docs, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use keyward_crypto::{SolanaKeypair, SolanaPubkey};
use keyward_host::counter::{FileCounter, MonotonicCounter};
use keyward_signer::config::Config;
use keyward_signer::runner::{Enclave, Runner};
use keyward_signer::service::{self, StartError};
use keyward_signer::store::Store;
use keyward_signer::votes::slots_message;
use keyward_vote::{Answer, Payload, Rejection, SignedRequest, VoteKeyInfo};
use rand::{SeedableRng, rngs::StdRng};

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-store-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

struct Validator {
    identity: SolanaKeypair,
    vote_account: SolanaPubkey,
}

impl Validator {
    fn new(rng: &mut StdRng) -> Self {
        Self {
            identity: SolanaKeypair::generate(rng),
            vote_account: SolanaKeypair::generate(rng).pubkey(),
        }
    }

    /// Registers with nonce 1: the vote key and its evidence.
    fn register(&self, enclave: &mut Enclave, store: &mut Store) -> VoteKeyInfo {
        let register = Payload::RegisterNode {
            vote_account: self.vote_account,
        };
        match self.send(enclave, store, 1, register) {
            Ok(Answer::VoteKey(info)) => info,
            other => panic!("not registered: {other:?}"),
        }
    }

    /// Signs `payload` with `nonce`, applies it and commits it as the writer does.
    fn send(
        &self,
        enclave: &mut Enclave,
        store: &mut Store,
        nonce: u64,
        payload: Payload,
    ) -> Result<Answer, Rejection> {
        let service = enclave.signer().unwrap().config().service;
        let request = SignedRequest::sign(payload, service, &self.identity, nonce);
        let record = enclave.apply(vec![request]).unwrap();
        let manifest = enclave.seal().unwrap();
        store.commit(&record, &manifest, None).unwrap();
        enclave.release().unwrap().pop().unwrap()
    }

    fn vote(&self, vote_key: &SolanaPubkey, slots: &[u64]) -> Payload {
        Payload::SignVote {
            message: slots_message(&self.identity.pubkey(), &self.vote_account, vote_key, slots)
                .unwrap(),
            evidence: Vec::new(),
        }
    }
}

/// A refusal under the lockout rules (codes 1301–1313, docs/SIGNER.md).
fn is_lockout(r: &Rejection) -> bool {
    (1301..1400).contains(&r.code)
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
}

#[test]
fn an_older_copy_of_the_store_is_refused_and_the_refused_vote_stays_refused() {
    let dir = data_dir("rollback");
    let config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    let mut rng = StdRng::seed_from_u64(7);
    let v = Validator::new(&mut rng);
    let backup = dir.with_extension("backup.redb");
    {
        let (mut enclave, mut store) = service::load(&config).unwrap();
        let key = v.register(&mut enclave, &mut store).vote_pubkey;
        v.send(&mut enclave, &mut store, 2, v.vote(&key, &[1]))
            .unwrap();
        // The operator (or an attacker) keeps a copy of the database here.
        copy(&dir.join("signer.redb"), &backup);
        v.send(&mut enclave, &mut store, 3, v.vote(&key, &[1, 2]))
            .unwrap();
        // Slot 3 on a fork without 2 breaks 2's lockout.
        assert!(matches!(
            v.send(&mut enclave, &mut store, 4, v.vote(&key, &[1, 3])),
            Err(r) if is_lockout(&r)
        ));
    }

    // The copy is put back: the signer does not start, and says why.
    let current = dir.join("signer.redb").with_extension("current");
    copy(&dir.join("signer.redb"), &current);
    copy(&backup, &dir.join("signer.redb"));
    let error = service::load(&config).err().unwrap();
    assert!(
        matches!(&error, StartError::Open(_)) && error.to_string().contains("rolled back"),
        "{error}"
    );

    // The current database starts, and the vote is still refused.
    copy(&current, &dir.join("signer.redb"));
    let (mut enclave, mut store) = service::load(&config).unwrap();
    let key = enclave
        .signer()
        .unwrap()
        .vote_key(&v.identity.pubkey())
        .unwrap()
        .vote_pubkey;
    assert!(matches!(
        v.send(&mut enclave, &mut store, 4, v.vote(&key, &[1, 3])),
        Err(r) if is_lockout(&r)
    ));
    drop((enclave, store));
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_file(&backup);
}

#[test]
fn the_counter_catches_up_after_a_crash_and_is_never_silently_recreated() {
    let dir = data_dir("counter");
    let config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    let counter = dir.join("sealing.counter");
    let mut rng = StdRng::seed_from_u64(8);
    let v = Validator::new(&mut rng);
    let before = {
        let (mut enclave, mut store) = service::load(&config).unwrap();
        let before = fs::read(&counter).unwrap();
        v.register(&mut enclave, &mut store);
        before
    };
    let committed = FileCounter::open(&counter, false).unwrap().value();
    assert!(committed > 0);

    // As if the signer crashed after the commit, before advancing the counter.
    fs::write(&counter, &before).unwrap();
    let (mut enclave, _store) = service::load(&config).unwrap();
    // The store loads, and the startup commit (two past it) moves the counter on.
    assert_eq!(enclave.signer().unwrap().pinned_at(), committed + 2);
    drop(enclave);
    assert_eq!(
        FileCounter::open(&counter, false).unwrap().value(),
        committed + 2
    );

    // Without the counter, the store does not start, and no counter is made up.
    fs::remove_file(&counter).unwrap();
    let error = service::load(&config).err().unwrap();
    assert!(error.to_string().contains("counter is missing"), "{error}");
    assert!(!counter.exists());
    let _ = fs::remove_dir_all(&dir);
}

/// Registers a validator and votes on slot 1, copies the whole data directory away, votes on
/// slot 2, then puts the copy back and starts the signer on it. If it starts, the vote on slot 3
/// (a fork without 2, which 2's lockout forbids) is sent to it and its answer returned.
fn restore_whole_directory(config: &Config) -> Result<Result<Answer, Rejection>, StartError> {
    let dir = &config.data_dir;
    let backup = dir.with_extension("backup");
    let _ = fs::remove_dir_all(&backup);
    let mut rng = StdRng::seed_from_u64(9);
    let v = Validator::new(&mut rng);
    let key = {
        let (mut enclave, mut store) = service::load(config).unwrap();
        let info = v.register(&mut enclave, &mut store);
        let key = info.vote_pubkey;
        v.send(&mut enclave, &mut store, 2, v.vote(&key, &[1]))
            .unwrap();
        drop((enclave, store));
        fs::create_dir_all(&backup).unwrap();
        for file in fs::read_dir(dir).unwrap() {
            let file = file.unwrap().path();
            copy(&file, &backup.join(file.file_name().unwrap()));
        }
        let (mut enclave, mut store) = service::load(config).unwrap();
        v.send(&mut enclave, &mut store, 3, v.vote(&key, &[1, 2]))
            .unwrap();
        key
    };
    fs::remove_dir_all(dir).unwrap();
    fs::rename(&backup, dir).unwrap();
    let (mut enclave, mut store) = service::load(config)?;
    Ok(v.send(&mut enclave, &mut store, 4, v.vote(&key, &[1, 3])))
}

#[test]
fn with_the_soft_source_a_whole_directory_restored_signs_the_conflicting_vote() {
    let config = Config {
        data_dir: data_dir("whole-soft"),
        ..Config::default()
    };
    // What the soft counter cannot stop, and why the README sends validators to a TPM.
    assert!(matches!(
        restore_whole_directory(&config),
        Ok(Ok(Answer::Signature(_)))
    ));
    let _ = fs::remove_dir_all(&config.data_dir);
}

#[cfg(feature = "tpm")]
use keyward_tpm::swtpm::Swtpm;

/// A signer configuration sealing with the TPM `swtpm` and its counter at `nv_index`.
#[cfg(feature = "tpm")]
fn tpm_config(name: &str, swtpm: &Swtpm, nv_index: u32) -> Config {
    use keyward_tpm::source::{SealingSource, TpmSource};
    Config {
        data_dir: data_dir(name),
        sealing: SealingSource::Tpm(TpmSource {
            tcti: swtpm.tcti(),
            pcrs: vec![16],
            nv_index,
        }),
        ..Config::default()
    }
}

#[cfg(feature = "tpm")]
#[test]
fn with_a_tpm_a_whole_directory_restored_is_refused() {
    let state = data_dir("swtpm");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let config = tpm_config("whole-tpm", &swtpm, 0x0150_0010);
    let error = restore_whole_directory(&config).err().unwrap();
    assert!(
        matches!(&error, StartError::Open(_)) && error.to_string().contains("rolled back"),
        "{error}"
    );
    assert!(!config.data_dir.join("sealing.key").exists());
    drop(swtpm);
    let _ = fs::remove_dir_all(&config.data_dir);
    let _ = fs::remove_dir_all(&state);
}

#[cfg(feature = "tpm")]
#[test]
fn with_a_tpm_a_vote_key_comes_with_a_quote_binding_it_to_its_validator() {
    use keyward_enclave::{BoundKey, Evidence, EvidenceKind, EvidencePolicy};
    use keyward_vote::signer::key_binding;

    let state = data_dir("swtpm-quote");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let config = tpm_config("tpm-quote", &swtpm, 0x0150_0011);
    let mut rng = StdRng::seed_from_u64(10);
    let v = Validator::new(&mut rng);
    let info = {
        let (mut enclave, mut store) = service::load(&config).unwrap();
        v.register(&mut enclave, &mut store)
    };
    // The signer has let go of the TPM (swtpm serves one client): ask it for its key directly.
    let ak = swtpm.connect().unwrap().attestation_key().unwrap();
    let evidence = Evidence::from_bytes(&info.evidence).unwrap();
    assert_eq!(evidence.kind(), EvidenceKind::TpmQuote);
    let policy = EvidencePolicy {
        trusted_tpm_keys: vec![ak.fingerprint()],
        ..EvidencePolicy::default()
    };
    let bound = [BoundKey::Ed25519(info.vote_pubkey)];
    let binding = key_binding(&v.identity.pubkey(), &v.vote_account);
    let verified = evidence.verify(&policy, &bound, &binding).unwrap();
    assert!(!verified.insecure);
    let other = SolanaKeypair::generate(&mut rng).pubkey();
    assert!(
        evidence
            .verify(&policy, &bound, &key_binding(&v.identity.pubkey(), &other))
            .is_err(),
        "bound to its vote account"
    );
    drop(swtpm);
    let _ = fs::remove_dir_all(&config.data_dir);
    let _ = fs::remove_dir_all(&state);
}

/// Vote key evidence is stored once, under its SHA-256, beside the records that name it: a
/// vote does not rewrite it, a store that lost it does not start, naming the validator, and it
/// is deleted once no record names it.
#[test]
fn evidence_is_stored_once_beside_the_records_and_must_be_there() {
    const EVIDENCE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("evidence");
    let dir = data_dir("evidence");
    let config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    let mut rng = StdRng::seed_from_u64(12);
    let v = Validator::new(&mut rng);
    let info = {
        let (mut enclave, mut store) = service::load(&config).unwrap();
        let info = v.register(&mut enclave, &mut store);
        v.send(&mut enclave, &mut store, 2, v.vote(&info.vote_pubkey, &[1]))
            .unwrap();
        assert_eq!(
            store.stored().unwrap().evidence,
            vec![info.evidence.clone()]
        );
        info
    };
    let digest = keyward_vote::signer::evidence_digest(&info.evidence);
    // The evidence table's entry: removed (`None`) or put back.
    let set = |blob: Option<&[u8]>| {
        let db = redb::Database::open(Store::path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(EVIDENCE).unwrap();
            match blob {
                Some(blob) => table.insert(&digest[..], blob).unwrap(),
                None => table.remove(&digest[..]).unwrap(),
            };
        }
        txn.commit().unwrap();
    };
    set(None);
    let error = service::load(&config).err().unwrap();
    assert!(
        error.to_string().contains("evidence")
            && error.to_string().contains(&v.identity.pubkey().to_string()),
        "{error}"
    );
    // Put back: the validator loads with its key and evidence.
    set(Some(&info.evidence));
    let (mut enclave, mut store) = service::load(&config).unwrap();
    assert_eq!(
        enclave.signer().unwrap().vote_key(&v.identity.pubkey()),
        Some(info)
    );
    // A rotation stores the new key's evidence; once no recent answer names the old key's
    // (four requests later), the commit that retires it deletes it.
    let Answer::VoteKey(rotated) = v
        .send(&mut enclave, &mut store, 3, Payload::RotateVoteKey)
        .unwrap()
    else {
        panic!("rotated")
    };
    assert_eq!(store.stored().unwrap().evidence.len(), 2);
    for (nonce, slots) in [
        (4, &[1, 2][..]),
        (5, &[1, 2, 3]),
        (6, &[1, 2, 3, 4]),
        (7, &[1, 2, 3, 4, 5]),
    ] {
        v.send(
            &mut enclave,
            &mut store,
            nonce,
            v.vote(&rotated.vote_pubkey, slots),
        )
        .unwrap();
    }
    assert_eq!(store.stored().unwrap().evidence, vec![rotated.evidence]);
    drop((enclave, store));
    let _ = service::load(&config).unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_deleted_store_beside_a_moved_counter_is_refused_and_not_remade() {
    let dir = data_dir("deleted");
    let config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    let mut rng = StdRng::seed_from_u64(11);
    let v = Validator::new(&mut rng);
    {
        let (mut enclave, mut store) = service::load(&config).unwrap();
        v.register(&mut enclave, &mut store);
    }
    fs::remove_file(dir.join("signer.redb")).unwrap();
    let error = service::load(&config).err().unwrap();
    assert!(
        error.to_string().contains("the store is missing"),
        "{error}"
    );
    assert!(!dir.join("signer.redb").exists(), "no new store was made");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_signer_whose_own_evidence_fails_its_attestation_policy_does_not_start() {
    use keyward_signer::config::AttestationConfig;
    let dir = data_dir("policy");
    let mut config = Config {
        data_dir: dir.clone(),
        attestation: Some(AttestationConfig::default()),
        ..Config::default()
    };
    // The soft source attests with `dev` evidence, which a policy refuses unless told.
    let error = service::load(&config).err().unwrap();
    assert!(
        error.to_string().contains("fails its attestation policy"),
        "{error}"
    );
    config.attestation = Some(AttestationConfig {
        accept_insecure_dev: true,
        ..AttestationConfig::default()
    });
    assert!(service::load(&config).is_ok());
    let _ = fs::remove_dir_all(&dir);
}

#[cfg(feature = "tpm")]
#[test]
fn with_a_tpm_the_signer_starts_only_under_a_policy_that_pins_its_attestation_key() {
    use keyward_signer::config::AttestationConfig;
    let state = data_dir("swtpm-policy");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let ak = swtpm.connect().unwrap().attestation_key().unwrap();
    let mut config = tpm_config("tpm-policy", &swtpm, 0x0150_0012);
    let pinned = |fingerprint: [u8; 32]| AttestationConfig {
        trusted_tpm_keys: vec![fingerprint.iter().map(|b| format!("{b:02x}")).collect()],
        ..AttestationConfig::default()
    };
    config.attestation = Some(pinned([0x11; 32]));
    let error = service::load(&config).err().unwrap();
    assert!(error.to_string().contains("attestation policy"), "{error}");
    config.attestation = Some(pinned(ak.fingerprint()));
    let (mut enclave, mut store) = service::load(&config).unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let v = Validator::new(&mut rng);
    v.register(&mut enclave, &mut store);
    drop((enclave, store, swtpm));
    let _ = fs::remove_dir_all(&config.data_dir);
    let _ = fs::remove_dir_all(&state);
}

/// An isolated configuration's sealing directory is locked while a core runs over it: a tower
/// command on a stopped signer is refused while its `keyward enclave` (here, a first command)
/// holds the directory, since the two would keep separate views of the counter.
#[test]
fn a_tower_command_is_refused_while_the_enclave_holds_its_state_directory() {
    use keyward_signer::config::{RunnerConfig, RunnerKind};
    let dir = data_dir("locked");
    let config = Config {
        data_dir: dir.clone(),
        runner: RunnerConfig {
            kind: RunnerKind::Isolated,
            ..RunnerConfig::default()
        },
        ..Config::default()
    };
    // Nothing to read yet: refused, and nothing is made.
    assert!(matches!(
        service::inspect(&config),
        Err(StartError::NoStore(_))
    ));
    assert!(!config.enclave_state_dir().exists());
    let held = service::load(&config).unwrap();
    let error = service::inspect(&config).err().unwrap();
    assert!(error.to_string().contains("lock"), "{error}");
    drop(held);
    service::inspect(&config).unwrap();
    let _ = fs::remove_dir_all(&dir);
}
