//! TPM 2.0 quotes, the proof inside `tpm-quote` evidence: a TPM's attestation key (AK) signs a
//! `TPMS_ATTEST` that holds the digest of selected PCRs and the verifier's qualifying data.
//!
//! ```text
//! qualifying data = SHA-256(report data)          (32 bytes: every TPM takes a SHA-256 digest)
//! measurement     = SHA-256(var16("keyward/v1/tpm-measurement") || TPML_PCR_SELECTION
//!                           || pcrDigest)
//! AK fingerprint  = SHA-256(AK as an uncompressed SEC1 P-256 point, 65 bytes)
//! ```
//!
//! The measurement covers which PCRs were quoted, not only their digest: otherwise a host could
//! replay the boot event log into a resettable PCR and quote that instead. The AK is an ECDSA
//! P-256 restricted signing key (ECDSA with SHA-256), so it signs only quotes the TPM itself
//! made (TPM_GENERATED_VALUE). Nothing here says the AK belongs to a real TPM: a verifier trusts
//! only AKs it has pinned (`EvidencePolicy::trusted_tpm_keys`), enrolled out of band (or by EK
//! credential activation, which keyward does not do yet).

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use keyward_crypto::{DecodeError, Reader, Writer};

/// `TPM_GENERATED_VALUE`: the TPM made this structure.
const TPM_GENERATED: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
const ST_ATTEST_QUOTE: u16 = 0x8018;
/// `TPM_ALG_SHA256`.
const ALG_SHA256: u16 = 0x000b;
/// Longest `TPMS_ATTEST` accepted.
pub const MAX_ATTEST_LEN: usize = 1024;

/// An attestation key: an uncompressed SEC1 P-256 point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TpmAttestationKey([u8; 65]);

impl TpmAttestationKey {
    /// The key from its 65-byte SEC1 form (`0x04 || x || y`).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if it is not a point on P-256.
    pub fn from_sec1(bytes: [u8; 65]) -> Result<Self, DecodeError> {
        VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| DecodeError::Invalid {
            field: "TPM attestation key",
            reason: "not an uncompressed P-256 point",
        })?;
        if bytes[0] != 0x04 {
            return Err(DecodeError::Invalid {
                field: "TPM attestation key",
                reason: "not an uncompressed P-256 point",
            });
        }
        Ok(Self(bytes))
    }

    /// The 65-byte SEC1 form.
    pub fn to_sec1(&self) -> [u8; 65] {
        self.0
    }

    /// SHA-256 of the SEC1 form: how a policy pins the key.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

impl core::fmt::Debug for TpmAttestationKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "TpmAttestationKey({})",
            keyward_crypto::hex::to_0x(&self.fingerprint())
        )
    }
}

/// The qualifying data a quote for `report_data` carries.
pub fn qualifying_data(report_data: &[u8; 64]) -> [u8; 32] {
    Sha256::digest(report_data).into()
}

/// What keyward reads from a quote's `TPMS_ATTEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The qualifying data (`extraData`).
    pub extra_data: Vec<u8>,
    /// The measurement: the quoted PCR selection and their digest (module docs).
    pub measurement: [u8; 32],
}

/// Parses a marshalled quote `TPMS_ATTEST` (TPM 2.0 Part 2 §10.12.12), all of it. The quote must
/// cover at least one PCR, all in the SHA-256 bank: a TPM leaves out banks it has not allocated,
/// and a quote of nothing proves nothing.
///
/// # Errors
/// A [`DecodeError`] naming the field: not TPM-generated, not a quote, a PCR selection that is not
/// exactly one non-empty SHA-256 bitmap, a PCR digest that is not SHA-256, or bytes missing or
/// left over.
pub fn parse(attest: &[u8]) -> Result<Quote, DecodeError> {
    let invalid = |field, reason| DecodeError::Invalid { field, reason };
    let mut r = Reader::new(attest);
    if r.u32("TPMS_ATTEST magic")? != TPM_GENERATED {
        return Err(invalid("TPMS_ATTEST magic", "not TPM_GENERATED_VALUE"));
    }
    if r.u16("TPMS_ATTEST type")? != ST_ATTEST_QUOTE {
        return Err(invalid("TPMS_ATTEST type", "not a quote"));
    }
    r.var16("qualifiedSigner", 128)?;
    let extra_data = r.var16("extraData", 64)?.to_vec();
    r.u64("clock")?;
    r.u32("resetCount")?;
    r.u32("restartCount")?;
    r.u8("safe")?;
    r.u64("firmwareVersion")?;
    // TPML_PCR_SELECTION, kept as bytes for the measurement.
    let selection_start = attest.len() - r.remaining();
    if r.u32("PCR selection count")? != 1 {
        return Err(invalid("PCR selection count", "not exactly one bank"));
    }
    if r.u16("PCR selection hash")? != ALG_SHA256 {
        return Err(invalid("PCR selection hash", "not the SHA-256 bank"));
    }
    if r.var8("PCR selection bitmap", 32)?.iter().all(|&b| b == 0) {
        return Err(invalid("PCR selection bitmap", "no PCR selected"));
    }
    let selection = &attest[selection_start..attest.len() - r.remaining()];
    let digest = r.var16("pcrDigest", 64)?;
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| invalid("pcrDigest", "not a SHA-256 digest"))?;
    r.finish()?;
    Ok(Quote {
        extra_data,
        measurement: measurement(selection, &digest),
    })
}

fn measurement(selection: &[u8], pcr_digest: &[u8; 32]) -> [u8; 32] {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/tpm-measurement")
        .raw(selection)
        .raw(pcr_digest);
    Sha256::digest(w.as_slice()).into()
}

/// Whether `signature` (`r || s`, 32 bytes each, `s` in the lower half of the group order) is
/// `key`'s ECDSA P-256 / SHA-256 signature over `attest`. A high `s` is refused, so each quote
/// has one encoding (a TPM's signature is made low-S by [`low_s`] before it goes into evidence).
pub fn signature_verifies(key: &TpmAttestationKey, attest: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(&key.0) else {
        return false;
    };
    let Ok(parsed) = Signature::from_slice(signature) else {
        return false;
    };
    parsed.normalize_s() == parsed && key.verify(attest, &parsed).is_ok()
}

/// `signature` (`r || s`) with `s` replaced by `n - s` if it is in the upper half: the same
/// signature in its one accepted encoding. `None` if it is not a signature at all.
pub fn low_s(signature: &[u8; 64]) -> Option<[u8; 64]> {
    let normalized = Signature::from_slice(signature).ok()?.normalize_s();
    Some(normalized.to_bytes().into())
}

/// The `TPML_PCR_SELECTION` of `pcrs` in the SHA-256 bank, as a TPM marshals it: what a host
/// asks the TPM to quote, and what [`parse`] finds again.
pub fn sha256_selection(pcrs: &[u8]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for &pcr in pcrs.iter().filter(|&&p| p < 24) {
        bitmap[usize::from(pcr / 8)] |= 1 << (pcr % 8);
    }
    let mut w = Writer::new();
    w.u32(1).u16(ALG_SHA256).var8(&bitmap);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use proptest::prelude::*;

    impl TpmAttestationKey {
        /// Plain ECDSA verification, with no low-S rule.
        fn verifies_raw(&self, message: &[u8], signature: &[u8; 64]) -> bool {
            let key = VerifyingKey::from_sec1_bytes(&self.0).unwrap();
            key.verify(message, &Signature::from_slice(signature).unwrap())
                .is_ok()
        }
    }

    /// A quote as a TPM marshals one (`selection` is the whole `TPML_PCR_SELECTION`).
    fn attest(extra: &[u8], selection: &[u8], digest: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM_GENERATED)
            .u16(ST_ATTEST_QUOTE)
            .var16(&[0x00, 0x0b, 1, 2, 3])
            .var16(extra)
            .u64(1234)
            .u32(7)
            .u32(0)
            .u8(1)
            .u64(0x2019_1023)
            .raw(selection)
            .var16(digest);
        w.finish()
    }

    #[test]
    fn a_quote_parses_and_its_measurement_covers_the_selection() {
        let bytes = attest(&[9; 32], &sha256_selection(&[7]), &[5; 32]);
        let q = parse(&bytes).unwrap();
        assert_eq!(q.extra_data, vec![9; 32]);
        let other = parse(&attest(&[9; 32], &sha256_selection(&[16]), &[5; 32])).unwrap();
        assert_ne!(q.measurement, other.measurement, "same digest, other PCRs");
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse(&longer).is_err());
        let mut not_tpm = bytes.clone();
        not_tpm[0] = 0;
        assert!(parse(&not_tpm).is_err());
        assert!(parse(&attest(&[9; 32], &sha256_selection(&[7]), &[5; 20])).is_err());
        // A quote of nothing, of another bank, or of two banks proves nothing keyward reads.
        for selection in [
            sha256_selection(&[]),
            [0, 0, 0, 0].to_vec(),
            [0, 0, 0, 1, 0x00, 0x04, 3, 0x80, 0, 0].to_vec(),
            [
                [0, 0, 0, 2].as_slice(),
                &sha256_selection(&[7])[4..],
                &sha256_selection(&[8])[4..],
            ]
            .concat(),
        ] {
            assert!(
                parse(&attest(&[9; 32], &selection, &[5; 32])).is_err(),
                "{selection:?}"
            );
        }
    }

    #[test]
    fn only_the_attestation_key_s_signature_over_these_bytes_verifies() {
        let signing = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let sec1: [u8; 65] = signing
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .try_into()
            .unwrap();
        let key = TpmAttestationKey::from_sec1(sec1).unwrap();
        let bytes = attest(&[1; 32], &sha256_selection(&[7]), &[2; 32]);
        let signature: Signature = signing.sign(&bytes);
        let signature: [u8; 64] = signature.to_bytes().into();
        let signature = low_s(&signature).unwrap();
        assert!(signature_verifies(&key, &bytes, &signature));
        // The same signature with s and n - s swapped: refused, so a quote has one encoding.
        let high = Signature::from_slice(&signature).unwrap();
        let high = Signature::from_scalars(high.r(), -*high.s()).unwrap();
        let high: [u8; 64] = high.to_bytes().into();
        assert_ne!(high, signature);
        assert!(
            key.verifies_raw(&bytes, &high),
            "it is a valid ECDSA signature"
        );
        assert!(!signature_verifies(&key, &bytes, &high));
        assert_eq!(low_s(&high), Some(signature));
        let mut altered = bytes.clone();
        altered[40] ^= 1;
        assert!(!signature_verifies(&key, &altered, &signature));
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let other: [u8; 65] = other
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .try_into()
            .unwrap();
        let other = TpmAttestationKey::from_sec1(other).unwrap();
        assert!(!signature_verifies(&other, &bytes, &signature));
        assert!(TpmAttestationKey::from_sec1([4; 65]).is_err());
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }
    }
}
