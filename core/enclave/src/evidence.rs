//! Attestation evidence: a platform's signed statement binding an enclave's public keys and a
//! verifier's nonce.
//!
//! ```text
//! report data = SHA-512(var16("keyward/v1/report-data") || var16(nonce)
//!                       || u16(count) || for each bound key: var8(kind) || var16(key bytes))
//! evidence    = "KWAT" || 0x01 || u8(kind) || proof
//! dev (1)       proof = platform key(32) || measurement(32) || report data(64) || signature(64)
//!               signature = sr25519 by the platform key, purpose "keyward/v1/evidence", over
//!                           u8(kind) || measurement || report data
//! tpm-quote (2) proof = AK(65, SEC1) || report data(64) || var16(TPMS_ATTEST) || r(32) || s(32)
//!               the quote's qualifying data is SHA-256(report data), its measurement is
//!               derived from the quoted PCRs ([`crate::tpm_quote`])
//! dcap (3), nitro (4), sev-snp (5)
//!               proof = measurement(32) || report data(64) || u64(verified_at)
//!                       || var16(vendor evidence) || var16(endorsement)   ([`crate::vendor`])
//! ```
//!
//! Kind 1 is `dev`: the "platform" is a key the host generated, so the evidence proves nothing
//! about the hardware. It exists so every flow that needs evidence runs today; it is marked
//! insecure in its kind, its name (`dev-insecure`) and in [`Verified::insecure`], and
//! [`Evidence::verify`] refuses it unless the policy says `accept_insecure_dev`.
//!
//! Kind 2 is `tpm-quote`: a TPM 2.0 quote of PCRs by its attestation key. A policy accepts it
//! only from attestation keys it pins (`trusted_tpm_keys`): the quote proves the PCR values and
//! the report data to whoever knows the key is a real TPM's.
//!
//! Kinds 3 to 5 carry a TEE vendor's own evidence (an Intel SGX or TDX DCAP quote, an AWS Nitro
//! document, an AMD SEV-SNP report) with its endorsements, checked by `keyward_attest` at the
//! time the envelope names, then against the policy's vendor part: platforms, the vendor's
//! measurements, the minimum TCB status and the age of evidence that carries its own time.

use core::fmt;
use sha2::{Digest, Sha512};
use thiserror::Error;

use keyward_crypto::{
    ChannelPublicKey, DecodeError, IdentityKeypair, IdentityPublicKey, IdentitySignature, Reader,
    SigningPurpose, SolanaPubkey, Writer,
};

use keyward_attest::{AttestationPolicy, Claims};

use crate::tpm_quote::{self, MAX_ATTEST_LEN, TpmAttestationKey};
use crate::vendor::{self, Source, VendorProof};

const MAGIC: &[u8; 4] = b"KWAT";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward attestation evidence";
/// Longest verifier nonce.
pub const MAX_NONCE_LEN: usize = 1024;

/// The kind of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceKind {
    /// Signed by a local, host-generated platform key. Insecure.
    Dev,
    /// A TPM 2.0 quote by a pinned attestation key.
    TpmQuote,
    /// An Intel SGX or TDX DCAP quote with its collateral.
    Dcap,
    /// An AWS Nitro Enclaves attestation document.
    Nitro,
    /// An AMD SEV-SNP attestation report with the chip's VCEK.
    SevSnp,
}

impl EvidenceKind {
    fn code(self) -> u8 {
        match self {
            Self::Dev => 1,
            Self::TpmQuote => 2,
            Self::Dcap => 3,
            Self::Nitro => 4,
            Self::SevSnp => 5,
        }
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dev => "dev-insecure",
            Self::TpmQuote => "tpm-quote",
            Self::Dcap => "dcap",
            Self::Nitro => "nitro",
            Self::SevSnp => "sev-snp",
        }
    }

    fn source(self) -> Option<Source> {
        match self {
            Self::Dev | Self::TpmQuote => None,
            Self::Dcap => Some(Source::Dcap),
            Self::Nitro => Some(Source::Nitro),
            Self::SevSnp => Some(Source::SevSnp),
        }
    }
}

/// A public key an enclave binds into its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKey {
    /// An sr25519 identity key.
    Identity(IdentityPublicKey),
    /// An X25519 channel key.
    Channel(ChannelPublicKey),
    /// An ed25519 (Solana) key, such as a vote key.
    Ed25519(SolanaPubkey),
}

impl BoundKey {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Identity(k) => w.var8(b"sr25519").var16(&k.to_bytes()),
            Self::Channel(k) => w.var8(b"x25519").var16(&k.0),
            Self::Ed25519(k) => w.var8(b"ed25519").var16(&k.0),
        };
    }
}

/// Most keys one piece of evidence binds.
pub const MAX_BOUND_KEYS: usize = 16;

/// The 64-byte report data binding `keys` and `nonce` (the value a hardware quote would carry).
///
/// # Errors
/// [`EvidenceError::Malformed`] for a nonce over [`MAX_NONCE_LEN`] or more than
/// [`MAX_BOUND_KEYS`] keys.
pub fn report_data(keys: &[BoundKey], nonce: &[u8]) -> Result<[u8; 64], EvidenceError> {
    if nonce.len() > MAX_NONCE_LEN {
        return Err(DecodeError::TooLong {
            field: "evidence nonce",
            len: nonce.len(),
            max: MAX_NONCE_LEN,
        }
        .into());
    }
    if keys.len() > MAX_BOUND_KEYS {
        return Err(DecodeError::TooLong {
            field: "bound keys",
            len: keys.len(),
            max: MAX_BOUND_KEYS,
        }
        .into());
    }
    let mut w = Writer::new();
    w.var16(b"keyward/v1/report-data")
        .var16(nonce)
        .u16(u16::try_from(keys.len()).expect("bounded by MAX_BOUND_KEYS"));
    for k in keys {
        k.encode(&mut w);
    }
    Ok(Sha512::digest(w.as_slice()).into())
}

/// A local platform key that signs `dev` evidence. Insecure: it is only as safe as the host.
pub struct DevPlatformKey(IdentityKeypair);

impl DevPlatformKey {
    /// A fresh platform key.
    pub fn generate(rng: &mut impl keyward_crypto::Rng) -> Self {
        Self(IdentityKeypair::generate(rng))
    }

    /// The platform key from a sealed seed.
    pub fn from_identity(identity: IdentityKeypair) -> Self {
        Self(identity)
    }

    /// The platform's public key.
    pub fn public(&self) -> IdentityPublicKey {
        self.0.public()
    }

    /// Dev evidence that an enclave with `measurement` holds `keys`, fresh for `nonce`.
    ///
    /// # Errors
    /// [`EvidenceError::Malformed`] for a nonce or key list over the limits of [`report_data`].
    pub fn attest(
        &self,
        measurement: [u8; 32],
        keys: &[BoundKey],
        nonce: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Evidence, EvidenceError> {
        let report_data = report_data(keys, nonce)?;
        let signature = self.0.sign(
            SigningPurpose::Evidence,
            &signed(EvidenceKind::Dev, &measurement, &report_data),
            rng,
        );
        Ok(Evidence {
            measurement,
            report_data,
            proof: Proof::Dev {
                platform: self.public(),
                signature,
            },
        })
    }
}

/// The platform's half of attestation: it makes evidence binding keys the core generated to the
/// platform's state. The core calls it when it makes a key; the host hands in what its platform
/// has. What the evidence proves depends on it: a [`DevPlatformKey`] proves nothing; a TPM
/// (`keyward_tpm`) proves the machine's boot state, not which process asked; a TEE's report
/// function (later) proves the enclave's measurement.
pub trait Attester: Send {
    /// Evidence that an enclave with `measurement` holds `keys`, fresh for `nonce`. A platform
    /// that measures the software itself (a TPM's PCRs) reports its own measurement instead.
    ///
    /// # Errors
    /// [`AttestFailed`] when the platform cannot attest (a TPM unreachable, or limits exceeded).
    fn attest(
        &mut self,
        measurement: [u8; 32],
        keys: &[BoundKey],
        nonce: &[u8],
        rng: &mut dyn keyward_crypto::Rng,
    ) -> Result<Evidence, AttestFailed>;
}

/// Why a platform could not attest.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("the platform could not attest: {0}")]
pub struct AttestFailed(pub String);

impl Attester for DevPlatformKey {
    fn attest(
        &mut self,
        measurement: [u8; 32],
        keys: &[BoundKey],
        nonce: &[u8],
        mut rng: &mut dyn keyward_crypto::Rng,
    ) -> Result<Evidence, AttestFailed> {
        DevPlatformKey::attest(self, measurement, keys, nonce, &mut rng)
            .map_err(|e| AttestFailed(e.to_string()))
    }
}

impl fmt::Debug for DevPlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevPlatformKey({})", self.public())
    }
}

fn signed(kind: EvidenceKind, measurement: &[u8; 32], report_data: &[u8; 64]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(kind.code()).raw(measurement).raw(report_data);
    w.finish()
}

/// What a verifier accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidencePolicy {
    /// Accept `dev` evidence. Off by default; never on in production.
    pub accept_insecure_dev: bool,
    /// If non-empty, only these measurements: keyward's 32-byte measurement, for every kind
    /// (for vendor evidence, a digest of the vendor's, which `vendor` pins directly).
    pub allowed_measurements: Vec<[u8; 32]>,
    /// If non-empty, only `dev` evidence signed by these platform keys.
    pub trusted_dev_platforms: Vec<IdentityPublicKey>,
    /// The TPM attestation keys (their fingerprints, [`TpmAttestationKey::fingerprint`]) whose
    /// `tpm-quote` evidence is accepted. Empty: none (an unpinned AK proves nothing).
    pub trusted_tpm_keys: Vec<[u8; 32]>,
    /// What vendor TEE evidence (`dcap`, `nitro`, `sev-snp`) must meet: its platforms, the
    /// vendor's measurements (an empty list accepts none), the worst TCB status, and the age of
    /// evidence that carries its own time. `None`: no vendor evidence is accepted.
    pub vendor: Option<AttestationPolicy>,
}

/// Most measurements or platform keys one encoded policy lists.
pub const MAX_POLICY_ENTRIES: usize = 64;

impl EvidencePolicy {
    /// Appends the canonical encoding (PROTOCOL §13.3): `u8(accept_insecure_dev) ||
    /// u16(m) || m × measurement(32) || u16(p) || p × platform key(32) || u16(t) || t × TPM key
    /// fingerprint(32) || u8(0)` or `u8(1) || vendor policy`, every list sorted and without
    /// duplicates, so equal policies encode to equal bytes.
    ///
    /// # Panics
    /// If the policy is not [`EvidencePolicy::within_limits`].
    pub fn encode(&self, w: &mut Writer) {
        assert!(
            self.within_limits(),
            "a policy within its limits (EvidencePolicy::within_limits)"
        );
        let mut measurements = self.allowed_measurements.clone();
        measurements.sort_unstable();
        measurements.dedup();
        let mut platforms = self.trusted_dev_platforms.clone();
        platforms.sort_unstable();
        platforms.dedup();
        let mut tpm_keys = self.trusted_tpm_keys.clone();
        tpm_keys.sort_unstable();
        tpm_keys.dedup();
        w.u8(u8::from(self.accept_insecure_dev));
        w.u16(u16::try_from(measurements.len()).expect("bounded above"));
        for m in &measurements {
            w.raw(m);
        }
        w.u16(u16::try_from(platforms.len()).expect("bounded above"));
        for p in &platforms {
            w.raw(&p.to_bytes());
        }
        w.u16(u16::try_from(tpm_keys.len()).expect("bounded above"));
        for k in &tpm_keys {
            w.raw(k);
        }
        match &self.vendor {
            None => {
                w.u8(0);
            }
            Some(v) => {
                w.u8(1);
                vendor::encode_policy(v, w);
            }
        }
    }

    /// Reads the encoding of [`EvidencePolicy::encode`]; refuses a list that is not strictly
    /// ascending (unsorted or duplicated), so every policy has exactly one encoding.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the field.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let accept_insecure_dev = match r.u8("accept insecure dev")? {
            0 => false,
            1 => true,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "accept insecure dev",
                    reason: "not 0 or 1",
                });
            }
        };
        let allowed_measurements = read_set(r, "allowed measurements", Ok)?;
        let trusted_dev_platforms = read_set(r, "trusted dev platforms", |bytes| {
            IdentityPublicKey::from_bytes(&bytes)
        })?;
        let trusted_tpm_keys = read_set(r, "trusted TPM keys", Ok)?;
        let vendor = match r.u8("vendor policy flag")? {
            0 => None,
            1 => Some(vendor::decode_policy(r)?),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "vendor policy flag",
                    reason: "not 0 or 1",
                });
            }
        };
        Ok(Self {
            accept_insecure_dev,
            allowed_measurements,
            trusted_dev_platforms,
            trusted_tpm_keys,
            vendor,
        })
    }

    /// Whether every list holds at most [`MAX_POLICY_ENTRIES`] distinct items and a vendor
    /// policy names a platform and no measurement over 64 bytes, as [`EvidencePolicy::encode`]
    /// requires.
    pub fn within_limits(&self) -> bool {
        fn distinct<T: Ord + Clone>(items: &[T]) -> usize {
            items
                .iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        }
        distinct(&self.allowed_measurements) <= MAX_POLICY_ENTRIES
            && distinct(&self.trusted_dev_platforms) <= MAX_POLICY_ENTRIES
            && distinct(&self.trusted_tpm_keys) <= MAX_POLICY_ENTRIES
            && self.vendor.as_ref().is_none_or(vendor::within_limits)
    }

    /// Whether everything this policy accepts, `weaker` accepts too: it accepts `dev` evidence
    /// only if `weaker` does, each non-empty allow-list of `weaker` is matched by a non-empty
    /// subset here, it trusts only TPM keys that `weaker` trusts, and it accepts vendor evidence
    /// only if `weaker` does, from a subset of its platforms and measurements, with a TCB status,
    /// age limit and acceptance of unrated evidence no looser.
    pub fn is_at_least_as_strict_as(&self, weaker: &Self) -> bool {
        fn subset<T: PartialEq>(strict: &[T], weak: &[T]) -> bool {
            weak.is_empty() || (!strict.is_empty() && strict.iter().all(|x| weak.contains(x)))
        }
        (!self.accept_insecure_dev || weaker.accept_insecure_dev)
            && subset(&self.allowed_measurements, &weaker.allowed_measurements)
            && subset(&self.trusted_dev_platforms, &weaker.trusted_dev_platforms)
            && self
                .trusted_tpm_keys
                .iter()
                .all(|k| weaker.trusted_tpm_keys.contains(k))
            && match (&self.vendor, &weaker.vendor) {
                (None, _) => true,
                (Some(strict), Some(weak)) => vendor::at_least_as_strict(strict, weak),
                (Some(_), None) => false,
            }
    }
}

/// A `u16` count of 32-byte items, strictly ascending, at most [`MAX_POLICY_ENTRIES`].
fn read_set<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    parse: impl Fn([u8; 32]) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let count = usize::from(r.u16(field)?);
    if count > MAX_POLICY_ENTRIES {
        return Err(DecodeError::TooLong {
            field,
            len: count,
            max: MAX_POLICY_ENTRIES,
        });
    }
    let mut out = Vec::with_capacity(count);
    let mut previous: Option<[u8; 32]> = None;
    for _ in 0..count {
        let bytes: [u8; 32] = r.array(field)?;
        if previous.is_some_and(|p| p >= bytes) {
            return Err(DecodeError::Invalid {
                field,
                reason: "not strictly ascending",
            });
        }
        previous = Some(bytes);
        out.push(parse(bytes)?);
    }
    Ok(out)
}

/// Why evidence was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    /// Not well-formed evidence.
    #[error("malformed evidence: {0}")]
    Malformed(#[from] DecodeError),
    /// `dev` evidence under a policy that does not accept it.
    #[error("dev evidence is insecure and this policy does not accept it")]
    InsecureNotAccepted,
    /// Signed by a platform key the policy does not trust.
    #[error("evidence is signed by an untrusted platform key {}", keyward_crypto::hex::to_0x(.0))]
    UntrustedPlatform([u8; 32]),
    /// A TPM quote by an attestation key the policy does not pin (its fingerprint).
    #[error("TPM quote by an untrusted attestation key {}", keyward_crypto::hex::to_0x(.0))]
    UntrustedTpmKey([u8; 32]),
    /// The platform's signature does not verify.
    #[error("evidence signature does not verify")]
    BadSignature,
    /// The report data does not bind the expected keys and nonce.
    #[error("evidence does not bind the expected keys and nonce")]
    ReportDataMismatch,
    /// The measurement is not allowed by the policy.
    #[error("measurement {} is not allowed", keyward_crypto::hex::to_0x(.0))]
    MeasurementNotAllowed([u8; 32]),
    /// Vendor evidence under a policy with no vendor part.
    #[error("{} evidence is not accepted: the policy accepts no vendor evidence", .0.name())]
    VendorNotAccepted(EvidenceKind),
    /// The vendor's chain does not verify at the envelope's time.
    #[error(transparent)]
    Vendor(#[from] keyward_attest::AttestError),
    /// Verified vendor evidence fails the policy's vendor part.
    #[error(transparent)]
    VendorPolicy(#[from] keyward_attest::PolicyError),
    /// The envelope's measurement or report data is not what the vendor signed.
    #[error("the envelope's {0} differs from the vendor evidence's")]
    VendorMismatch(&'static str),
}

/// Attestation evidence. Construct with [`DevPlatformKey::attest`], [`Evidence::tpm_quote`],
/// [`Evidence::vendor`] or [`Evidence::from_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    measurement: [u8; 32],
    report_data: [u8; 64],
    proof: Proof,
}

/// What vouches for the measurement and report data, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    Dev {
        platform: IdentityPublicKey,
        signature: IdentitySignature,
    },
    TpmQuote {
        key: TpmAttestationKey,
        attest: Vec<u8>,
        signature: [u8; 64],
    },
    Vendor(VendorProof),
}

/// Evidence that passed [`Evidence::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The evidence kind.
    pub kind: EvidenceKind,
    /// The attested measurement.
    pub measurement: [u8; 32],
    /// `true` for kinds that prove nothing about hardware (`dev`).
    pub insecure: bool,
    /// For vendor evidence, what the vendor's verifier said (platform, its own measurement,
    /// TCB status, advisories).
    pub vendor: Option<Claims>,
}

impl Evidence {
    /// `tpm-quote` evidence from what a TPM returned for a quote of `report_data`'s qualifying
    /// data ([`tpm_quote::qualifying_data`]) by the attestation key `key` (SEC1): the marshalled
    /// `TPMS_ATTEST` and the signature's `r || s`. The measurement is read from the quote.
    ///
    /// # Errors
    /// [`EvidenceError::Malformed`] for a key that is not a P-256 point or a quote that does not
    /// parse; [`Evidence::check_signature`] checks the rest.
    pub fn tpm_quote(
        key: [u8; 65],
        report_data: [u8; 64],
        attest: Vec<u8>,
        signature: [u8; 64],
    ) -> Result<Self, EvidenceError> {
        let key = TpmAttestationKey::from_sec1(key)?;
        if attest.len() > MAX_ATTEST_LEN {
            return Err(DecodeError::TooLong {
                field: "TPMS_ATTEST",
                len: attest.len(),
                max: MAX_ATTEST_LEN,
            }
            .into());
        }
        let quote = tpm_quote::parse(&attest)?;
        Ok(Self {
            measurement: quote.measurement,
            report_data,
            proof: Proof::TpmQuote {
                key,
                attest,
                signature,
            },
        })
    }

    /// Vendor evidence of `kind` (`Dcap`: a quote and its collateral JSON; `Nitro`: a document
    /// and no endorsement; `SevSnp`: a report and the VCEK), whose chain is checked at
    /// `verified_at` (UNIX seconds), then and whenever it is verified. The measurement and
    /// report data are read from the verified evidence.
    ///
    /// # Errors
    /// [`EvidenceError::Malformed`] for a kind that is not a vendor's, oversized inputs, or a
    /// Nitro endorsement; [`EvidenceError::Vendor`] when the chain does not verify at
    /// `verified_at`.
    pub fn vendor(
        kind: EvidenceKind,
        evidence: Vec<u8>,
        endorsement: Vec<u8>,
        verified_at: u64,
    ) -> Result<Self, EvidenceError> {
        let source = kind.source().ok_or(DecodeError::Invalid {
            field: "evidence kind",
            reason: "not a vendor kind",
        })?;
        let proof = VendorProof::new(source, verified_at, evidence, endorsement)?;
        let claims = proof.verify()?;
        Ok(Self {
            measurement: vendor::measurement_digest(claims.platform, &claims.measurement),
            report_data: claims.report_data.as_slice().try_into().map_err(|_| {
                DecodeError::Invalid {
                    field: "vendor report data",
                    reason: "not 64 bytes, so it binds no keyward report data",
                }
            })?,
            proof: Proof::Vendor(proof),
        })
    }

    /// The kind.
    pub fn kind(&self) -> EvidenceKind {
        match &self.proof {
            Proof::Dev { .. } => EvidenceKind::Dev,
            Proof::TpmQuote { .. } => EvidenceKind::TpmQuote,
            Proof::Vendor(v) => match v.source {
                Source::Dcap => EvidenceKind::Dcap,
                Source::Nitro => EvidenceKind::Nitro,
                Source::SevSnp => EvidenceKind::SevSnp,
            },
        }
    }

    /// For vendor evidence, the time its chain is checked at (UNIX seconds). A verifier with a
    /// clock compares it with its own: [`Evidence::verify`] reads no clock. `None` for the kinds
    /// checked at no time (`dev`, `tpm-quote`).
    pub fn verified_at(&self) -> Option<u64> {
        match &self.proof {
            Proof::Vendor(v) => Some(v.verified_at),
            Proof::Dev { .. } | Proof::TpmQuote { .. } => None,
        }
    }

    /// For vendor evidence, the vendor verifier's claims once they check out against the
    /// envelope ([`Evidence::check_signature`], which this runs).
    ///
    /// # Errors
    /// As [`Evidence::check_signature`].
    pub fn vendor_claims(&self) -> Option<Result<Claims, EvidenceError>> {
        match &self.proof {
            Proof::Vendor(v) => Some(v.claims(&self.measurement, &self.report_data)),
            Proof::Dev { .. } | Proof::TpmQuote { .. } => None,
        }
    }

    /// [`Evidence::vendor_claims`] with the vendor's chain checked at `at` (UNIX seconds)
    /// instead of the envelope's time: whether the evidence is still good at a verifier's "now".
    ///
    /// # Errors
    /// As [`Evidence::vendor_claims`].
    pub fn vendor_claims_at(&self, at: u64) -> Option<Result<Claims, EvidenceError>> {
        match &self.proof {
            Proof::Vendor(v) => Some(v.claims_at(at, &self.measurement, &self.report_data)),
            Proof::Dev { .. } | Proof::TpmQuote { .. } => None,
        }
    }

    /// The attested measurement.
    pub fn measurement(&self) -> [u8; 32] {
        self.measurement
    }

    /// The report data.
    pub fn report_data(&self) -> [u8; 64] {
        self.report_data
    }

    /// The platform key that signed `dev` evidence.
    pub fn platform(&self) -> Option<IdentityPublicKey> {
        match &self.proof {
            Proof::Dev { platform, .. } => Some(*platform),
            Proof::TpmQuote { .. } | Proof::Vendor(_) => None,
        }
    }

    /// The attestation key of `tpm-quote` evidence.
    pub fn tpm_key(&self) -> Option<TpmAttestationKey> {
        match &self.proof {
            Proof::TpmQuote { key, .. } => Some(*key),
            Proof::Dev { .. } | Proof::Vendor(_) => None,
        }
    }

    /// Checks the evidence against `policy`, and that it binds exactly `keys` and `nonce`.
    /// Vendor evidence is checked at its own `verified_at` (the vendor's chain, then the
    /// policy's vendor part, Nitro's age included), so the verdict never depends on when this
    /// runs; how recent `verified_at` is, is for a verifier with a clock to judge.
    ///
    /// # Errors
    /// An [`EvidenceError`] naming the first failed check.
    pub fn verify(
        &self,
        policy: &EvidencePolicy,
        keys: &[BoundKey],
        nonce: &[u8],
    ) -> Result<Verified, EvidenceError> {
        self.verify_against(policy, report_data(keys, nonce).ok())
    }

    /// [`Evidence::verify`] for a verifier that computed the expected report data itself.
    ///
    /// # Errors
    /// As [`Evidence::verify`].
    pub fn verify_bound(
        &self,
        policy: &EvidencePolicy,
        report_data: &[u8; 64],
    ) -> Result<Verified, EvidenceError> {
        self.verify_against(policy, Some(*report_data))
    }

    /// `expected`: `None` when the keys and nonce exceed [`report_data`]'s limits, which binds
    /// nothing.
    fn verify_against(
        &self,
        policy: &EvidencePolicy,
        expected: Option<[u8; 64]>,
    ) -> Result<Verified, EvidenceError> {
        let mut claims = None;
        match &self.proof {
            Proof::Dev { platform, .. } => {
                if !policy.accept_insecure_dev {
                    return Err(EvidenceError::InsecureNotAccepted);
                }
                if !policy.trusted_dev_platforms.is_empty()
                    && !policy.trusted_dev_platforms.contains(platform)
                {
                    return Err(EvidenceError::UntrustedPlatform(platform.to_bytes()));
                }
            }
            Proof::TpmQuote { key, .. } => {
                if !policy.trusted_tpm_keys.contains(&key.fingerprint()) {
                    return Err(EvidenceError::UntrustedTpmKey(key.fingerprint()));
                }
            }
            Proof::Vendor(proof) => {
                let Some(vendor_policy) = &policy.vendor else {
                    return Err(EvidenceError::VendorNotAccepted(self.kind()));
                };
                // The byte comparison before the vendor's chain, which costs far more: anyone can
                // attach someone else's genuine evidence.
                if expected != Some(self.report_data) {
                    return Err(EvidenceError::ReportDataMismatch);
                }
                let verified = proof.claims(&self.measurement, &self.report_data)?;
                vendor_policy.check(&verified, proof.verified_at, &self.report_data)?;
                claims = Some(verified);
            }
        }
        if claims.is_none() {
            self.check_signature()?;
        }
        if expected != Some(self.report_data) {
            return Err(EvidenceError::ReportDataMismatch);
        }
        if !policy.allowed_measurements.is_empty()
            && !policy.allowed_measurements.contains(&self.measurement)
        {
            return Err(EvidenceError::MeasurementNotAllowed(self.measurement));
        }
        Ok(Verified {
            kind: self.kind(),
            measurement: self.measurement,
            insecure: matches!(self.proof, Proof::Dev { .. }),
            vendor: claims,
        })
    }

    /// Checks only what vouches for the measurement and report data: the platform key's
    /// signature (`dev`), the attestation key's signature over the quote and the quote's
    /// qualifying data (`tpm-quote`), or the vendor's chain at the envelope's time and that it
    /// signed this measurement and report data (vendor kinds). That is what a verifier can check
    /// without a policy, the bound keys or the nonce (`keyward attest verify`); it says nothing
    /// about whether the key deserves trust.
    ///
    /// # Errors
    /// [`EvidenceError::BadSignature`]; [`EvidenceError::ReportDataMismatch`] for a quote of
    /// other qualifying data; [`EvidenceError::Vendor`] or [`EvidenceError::VendorMismatch`].
    pub fn check_signature(&self) -> Result<(), EvidenceError> {
        match &self.proof {
            Proof::Dev {
                platform,
                signature,
            } => platform
                .verify(
                    SigningPurpose::Evidence,
                    &signed(EvidenceKind::Dev, &self.measurement, &self.report_data),
                    signature,
                )
                .map_err(|_| EvidenceError::BadSignature),
            Proof::TpmQuote {
                key,
                attest,
                signature,
            } => {
                if !tpm_quote::signature_verifies(key, attest, signature) {
                    return Err(EvidenceError::BadSignature);
                }
                let quote = tpm_quote::parse(attest)?;
                if quote.extra_data != tpm_quote::qualifying_data(&self.report_data) {
                    return Err(EvidenceError::ReportDataMismatch);
                }
                Ok(())
            }
            Proof::Vendor(proof) => proof
                .claims(&self.measurement, &self.report_data)
                .map(|_| ()),
        }
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u8(self.kind().code());
        match &self.proof {
            Proof::Dev {
                platform,
                signature,
            } => w
                .raw(&platform.to_bytes())
                .raw(&self.measurement)
                .raw(&self.report_data)
                .raw(&signature.to_bytes()),
            Proof::TpmQuote {
                key,
                attest,
                signature,
            } => w
                .raw(&key.to_sec1())
                .raw(&self.report_data)
                .var16(attest)
                .raw(signature),
            Proof::Vendor(proof) => {
                w.raw(&self.measurement).raw(&self.report_data);
                proof.encode(&mut w);
                &mut w
            }
        };
        w.finish()
    }

    /// Decodes the wire encoding (framing, and a quote's structure; [`Evidence::verify`] checks
    /// the rest).
    ///
    /// # Errors
    /// [`EvidenceError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let mut r = Reader::new(bytes);
        r.header(FORMAT, MAGIC, VERSION)?;
        let evidence = match r.u8("evidence kind")? {
            1 => {
                let platform = IdentityPublicKey::from_bytes(&r.array("platform key")?)?;
                let measurement = r.array("measurement")?;
                let report_data = r.array("report data")?;
                let signature = IdentitySignature::from_bytes(&r.array("evidence signature")?)?;
                Self {
                    measurement,
                    report_data,
                    proof: Proof::Dev {
                        platform,
                        signature,
                    },
                }
            }
            2 => {
                let key = r.array("TPM attestation key")?;
                let report_data = r.array("report data")?;
                let attest = r.var16("TPMS_ATTEST", MAX_ATTEST_LEN)?.to_vec();
                let signature = r.array("TPM quote signature")?;
                Self::tpm_quote(key, report_data, attest, signature)?
            }
            code @ 3..=5 => {
                let source = [Source::Dcap, Source::Nitro, Source::SevSnp][usize::from(code - 3)];
                Self {
                    measurement: r.array("measurement")?,
                    report_data: r.array("report data")?,
                    proof: Proof::Vendor(VendorProof::decode(source, &mut r)?),
                }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    field: "evidence kind",
                    reason: "unknown kind",
                }
                .into());
            }
        };
        r.finish()?;
        Ok(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_crypto::ChannelKeypair;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn setup(seed: u64) -> (StdRng, DevPlatformKey, Vec<BoundKey>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let platform = DevPlatformKey::generate(&mut rng);
        let keys = vec![
            BoundKey::Identity(IdentityKeypair::generate(&mut rng).public()),
            BoundKey::Channel(ChannelKeypair::generate(&mut rng).public()),
        ];
        (rng, platform, keys)
    }

    fn policy(dev: bool, measurements: &[u8], platforms: &[&DevPlatformKey]) -> EvidencePolicy {
        EvidencePolicy {
            accept_insecure_dev: dev,
            allowed_measurements: measurements.iter().map(|m| [*m; 32]).collect(),
            trusted_dev_platforms: platforms.iter().map(|p| p.public()).collect(),
            trusted_tpm_keys: Vec::new(),
            vendor: None,
        }
    }

    fn encoded(p: &EvidencePolicy) -> Vec<u8> {
        let mut w = Writer::new();
        p.encode(&mut w);
        w.finish()
    }

    #[test]
    fn policy_encoding_is_canonical_and_round_trips() {
        let (mut rng, a, _) = setup(9);
        let b = DevPlatformKey::generate(&mut rng);
        let p = policy(true, &[3, 1, 2, 1], &[&b, &a]);
        let bytes = encoded(&p);
        let mut r = Reader::new(&bytes);
        let q = EvidencePolicy::decode(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(encoded(&q), bytes);
        assert_eq!(q.allowed_measurements, vec![[1; 32], [2; 32], [3; 32]]);
        // Same policy, other order: same bytes.
        assert_eq!(encoded(&policy(true, &[2, 3, 1], &[&a, &b])), bytes);
    }

    #[test]
    fn policy_decoder_refuses_unsorted_and_duplicate_lists() {
        for (first, second) in [([2u8; 32], [1u8; 32]), ([1; 32], [1; 32])] {
            let mut w = Writer::new();
            w.u8(0).u16(2).raw(&first).raw(&second).u16(0);
            let bytes = w.finish();
            assert!(matches!(
                EvidencePolicy::decode(&mut Reader::new(&bytes)),
                Err(DecodeError::Invalid { .. })
            ));
        }
        let mut w = Writer::new();
        w.u8(2).u16(0).u16(0);
        assert!(EvidencePolicy::decode(&mut Reader::new(&w.finish())).is_err());
        let mut w = Writer::new();
        w.u8(0).u16(65);
        assert!(matches!(
            EvidencePolicy::decode(&mut Reader::new(&w.finish())),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn strictness_compares_what_each_policy_accepts() {
        let (mut rng, a, _) = setup(10);
        let b = DevPlatformKey::generate(&mut rng);
        let any_dev = policy(true, &[], &[]);
        assert!(policy(false, &[], &[]).is_at_least_as_strict_as(&any_dev));
        assert!(!any_dev.is_at_least_as_strict_as(&policy(false, &[], &[])));
        assert!(policy(true, &[1], &[]).is_at_least_as_strict_as(&policy(true, &[1, 2], &[])));
        assert!(!policy(true, &[1, 3], &[]).is_at_least_as_strict_as(&policy(true, &[1, 2], &[])));
        // An empty allow-list allows everything, so it is weaker than any non-empty one.
        assert!(!policy(true, &[], &[]).is_at_least_as_strict_as(&policy(true, &[1], &[])));
        assert!(policy(true, &[], &[&a]).is_at_least_as_strict_as(&policy(true, &[], &[&a, &b])));
        assert!(!policy(true, &[], &[&b]).is_at_least_as_strict_as(&policy(true, &[], &[&a])));
    }

    proptest! {
        #[test]
        fn policy_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EvidencePolicy::decode(&mut Reader::new(&bytes));
        }
    }

    fn dev_ok() -> EvidencePolicy {
        EvidencePolicy {
            accept_insecure_dev: true,
            ..Default::default()
        }
    }

    #[test]
    fn dev_evidence_verifies_only_when_insecure_is_accepted() {
        let (mut rng, platform, keys) = setup(1);
        let ev = platform
            .attest([7; 32], &keys, b"nonce-1", &mut rng)
            .unwrap();
        let ev = Evidence::from_bytes(&ev.to_bytes()).unwrap();
        let v = ev.verify(&dev_ok(), &keys, b"nonce-1").unwrap();
        assert!(v.insecure);
        assert_eq!(
            ev.verify(&EvidencePolicy::default(), &keys, b"nonce-1"),
            Err(EvidenceError::InsecureNotAccepted)
        );
    }

    #[test]
    fn oversized_inputs_are_errors_not_panics() {
        let (mut rng, platform, keys) = setup(3);
        let long_nonce = vec![0u8; MAX_NONCE_LEN + 1];
        assert!(matches!(
            platform.attest([0; 32], &keys, &long_nonce, &mut rng),
            Err(EvidenceError::Malformed(_))
        ));
        let many = vec![keys[0]; MAX_BOUND_KEYS + 1];
        assert!(matches!(
            report_data(&many, b"n"),
            Err(EvidenceError::Malformed(_))
        ));
        let ev = platform.attest([0; 32], &keys, b"n", &mut rng).unwrap();
        assert_eq!(
            ev.verify(&dev_ok(), &many, b"n"),
            Err(EvidenceError::ReportDataMismatch)
        );
        assert_eq!(
            ev.verify(&dev_ok(), &keys, &long_nonce),
            Err(EvidenceError::ReportDataMismatch)
        );
    }

    #[test]
    fn binding_nonce_platform_and_measurement_are_enforced() {
        let (mut rng, platform, keys) = setup(2);
        let ev = platform.attest([7; 32], &keys, b"n", &mut rng).unwrap();
        assert_eq!(
            ev.verify(&dev_ok(), &keys, b"other nonce"),
            Err(EvidenceError::ReportDataMismatch)
        );
        assert_eq!(
            ev.verify(&dev_ok(), &keys[..1], b"n"),
            Err(EvidenceError::ReportDataMismatch)
        );
        let stranger = DevPlatformKey::generate(&mut rng).public();
        let pinned = EvidencePolicy {
            trusted_dev_platforms: vec![stranger],
            ..dev_ok()
        };
        assert!(matches!(
            ev.verify(&pinned, &keys, b"n"),
            Err(EvidenceError::UntrustedPlatform(_))
        ));
        let measured = EvidencePolicy {
            allowed_measurements: vec![[8; 32]],
            ..dev_ok()
        };
        assert_eq!(
            ev.verify(&measured, &keys, b"n"),
            Err(EvidenceError::MeasurementNotAllowed([7; 32]))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn tampered_evidence_is_refused(pos in any::<usize>(), bit in 0u8..8, seed in any::<u64>()) {
            let (mut rng, platform, keys) = setup(seed);
            let mut bytes = platform.attest([1; 32], &keys, b"n", &mut rng).unwrap().to_bytes();
            let i = pos % bytes.len();
            bytes[i] ^= 1 << bit;
            let verdict = Evidence::from_bytes(&bytes).and_then(|e| e.verify(&dev_ok(), &keys, b"n"));
            prop_assert!(verdict.is_err());
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..250)) {
            let _ = Evidence::from_bytes(&bytes);
        }
    }
}
