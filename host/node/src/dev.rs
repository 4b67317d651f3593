//! The dev enclave platform: a platform key that signs evidence (insecure by construction: any
//! holder of the file can attest anything) and the measurements a dev build reports.

use std::path::Path;

use keyward_crypto::{IdentityKeypair, SecretBytes};
use keyward_enclave::{DevPlatformKey, EvidencePolicy};

/// What a dev gatekeeper build reports as its measurement.
pub const GATEKEEPER_MEASUREMENT: [u8; 32] = *b"keyward dev gatekeeper build v1.";
/// What a dev worker build reports as its measurement.
pub const WORKER_MEASUREMENT: [u8; 32] = *b"keyward dev worker build v1.....";

/// The dev policy for gatekeepers: only the gatekeeper build, from `platform`.
pub fn gatekeeper_policy(platform: &DevPlatformKey) -> EvidencePolicy {
    EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![GATEKEEPER_MEASUREMENT],
        trusted_dev_platforms: vec![platform.public()],
        ..EvidencePolicy::default()
    }
}

/// The dev policy for workers: either build, from `platform` (gatekeepers' is stricter).
pub fn worker_policy(platform: &DevPlatformKey) -> EvidencePolicy {
    EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![GATEKEEPER_MEASUREMENT, WORKER_MEASUREMENT],
        trusted_dev_platforms: vec![platform.public()],
        ..EvidencePolicy::default()
    }
}

/// A wrong answer to `request` (fault injection, [`crate::NodeConfig::dev_wrong_partials`]): a
/// partial evaluation under a random share, at the gatekeeper's own index and with its real
/// verification share, signed and sealed as an honest answer would be. Workers detect it, name
/// the gatekeeper and report it on the ledger.
pub(crate) fn wrong_answer(
    gatekeeper: &keyward_node::Gatekeeper,
    registry: &keyward_ledger::Registry,
    request: &[u8],
) -> Result<keyward_crypto::Envelope, keyward_node::ProvisionError> {
    let request = keyward_node::ProvisionRequest::from_bytes(request)?;
    let asked = &request.request;
    let not_holder = keyward_node::ProvisionError::NotHolder(asked.epoch);
    let current = registry
        .epoch(asked.epoch)
        .ok_or(not_holder.clone())?
        .current();
    let index = current
        .index_of(&gatekeeper.id())
        .ok_or(not_holder.clone())?;
    let verification = current
        .committee()
        .verification_share(index)
        .ok_or(not_holder.clone())?;
    let wrong = keyward_threshold::KeyShare::new(
        index,
        &keyward_threshold::SecretKey::random(&mut rand_core::OsRng),
    );
    let partial = asked.evaluate(&wrong, &mut rand_core::OsRng);
    let genesis = registry.genesis().hash();
    let plaintext = keyward_node::provision::answer_plaintext(
        gatekeeper.signer(),
        &genesis,
        asked,
        &verification,
        &partial,
        &mut rand_core::OsRng,
    );
    let worker = registry.node(&request.worker).ok_or(not_holder.clone())?;
    keyward_crypto::Envelope::seal(
        gatekeeper.signer(),
        &worker.channel,
        keyward_crypto::EnvelopePurpose::ClusterKey,
        &keyward_node::answer_aad(&genesis, &request.worker, asked),
        plaintext.expose(),
        &mut rand_core::OsRng,
    )
    .map_err(|_| not_holder)
}

/// Reads a dev platform key file (its 32-byte seed).
///
/// # Errors
/// The I/O error, or `InvalidData` if the file is not 32 bytes.
pub fn read_platform_key(path: &Path) -> std::io::Result<DevPlatformKey> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path)?);
    let seed = SecretBytes::<32>::from_slice(&bytes).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a 32-byte platform key", path.display()),
        )
    })?;
    Ok(DevPlatformKey::from_identity(IdentityKeypair::from_seed(
        seed,
    )))
}

/// Creates a new dev platform key file at `path` (never replacing one).
///
/// # Errors
/// The I/O error.
pub fn create_platform_key(path: &Path) -> std::io::Result<DevPlatformKey> {
    let seed = SecretBytes::<32>::random(&mut rand_core::OsRng);
    keyward_host::files::create_new(path, seed.expose())?;
    Ok(DevPlatformKey::from_identity(IdentityKeypair::from_seed(
        seed,
    )))
}

/// A dev genesis: `council` with a majority threshold (its first member signs), the default
/// parameters, both built-in contracts, and the dev policies for `platform`.
///
/// # Panics
/// If `council` is empty or `chain` is not a valid id (caller errors).
pub fn genesis(
    chain: &str,
    council: &[keyward_crypto::IdentityKeypair],
    platform: &DevPlatformKey,
) -> keyward_ledger::Entry {
    genesis_with(chain, council, platform, keyward_ledger::Params::default())
}

/// As [`genesis`], with the given parameters (threshold mode, for instance).
///
/// # Panics
/// As [`genesis_with_policies`]: `params` that break a genesis rule.
pub fn genesis_with(
    chain: &str,
    council: &[keyward_crypto::IdentityKeypair],
    platform: &DevPlatformKey,
    params: keyward_ledger::Params,
) -> keyward_ledger::Entry {
    genesis_with_policies(
        chain,
        council,
        params,
        gatekeeper_policy(platform),
        worker_policy(platform),
    )
}

/// As [`genesis_with`], with the evidence policies given: a network whose nodes attest with a
/// TPM pins their attestation keys (`trusted_tpm_keys`) here.
///
/// # Panics
/// As [`genesis`], and if the configuration breaks any genesis rule
/// ([`keyward_ledger::GenesisConfig::validate`]: `params` out of range, a gatekeeper policy
/// weaker than the worker policy, too many policy entries).
pub fn genesis_with_policies(
    chain: &str,
    council: &[keyward_crypto::IdentityKeypair],
    params: keyward_ledger::Params,
    gatekeeper_policy: EvidencePolicy,
    worker_policy: EvidencePolicy,
) -> keyward_ledger::Entry {
    use keyward_ledger::{Body, CodeId, Entry, EntryHash, GenesisConfig, Position};
    let config = GenesisConfig {
        chain: keyward_crypto::ChainId::new(chain).expect("a valid chain id"),
        council: council.iter().map(IdentityKeypair::public).collect(),
        threshold: GenesisConfig::majority(council.len()),
        params,
        contract_codes: ["kv-store", "sealed-auction"]
            .into_iter()
            .map(|c| CodeId::new(c).expect("valid"))
            .collect(),
        gatekeeper_policy,
        worker_policy,
    };
    config
        .validate(&council[0].public())
        .expect("a valid genesis configuration");
    let position = Position {
        height: 0,
        parent: EntryHash::ZERO,
        seq: 0,
    };
    Entry::sign(
        &council[0],
        position,
        &Body::Genesis(Box::new(config)),
        &mut rand_core::OsRng,
    )
}
