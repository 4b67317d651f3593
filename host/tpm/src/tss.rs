//! The TPM through tpm2-tss (tss-esapi): built with the `tpm` feature.

use std::str::FromStr;

use tss_esapi::attributes::{NvIndexAttributesBuilder, ObjectAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::constants::nv_index_type::NvIndexType;
use tss_esapi::handles::{KeyHandle, NvIndexHandle, NvIndexTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, NvAuth, Provision};
use tss_esapi::interface_types::session_handles::PolicySession;
use tss_esapi::structures::{
    Data, Digest, EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, KeyedHashScheme,
    NvPublicBuilder, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private, Public,
    PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters, RsaExponent,
    SensitiveData, Signature, SignatureScheme, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, utils};
use zeroize::Zeroizing;

use keyward_crypto::{DecodeError, SecretBytes};
use keyward_enclave::evidence::report_data;
use keyward_enclave::{BoundKey, Evidence, TpmAttestationKey, tpm_quote};

use crate::{TpmError, TpmSealedKey};

fn command(command: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |e| TpmError::Command {
        command,
        reason: e.to_string(),
    }
}

fn unseal(e: tss_esapi::Error) -> TpmError {
    TpmError::Unseal(e.to_string())
}

/// A connection to a TPM.
pub struct Tpm {
    ctx: Context,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tpm(..)")
    }
}

impl Tpm {
    /// Connects through the TCTI `tcti` (tpm2-tss syntax, for example
    /// `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`).
    ///
    /// # Errors
    /// [`TpmError::Connect`].
    pub fn connect(tcti: &str) -> Result<Self, TpmError> {
        let connect = |reason: String| TpmError::Connect {
            tcti: tcti.to_owned(),
            reason,
        };
        let conf = TctiNameConf::from_str(tcti).map_err(|e| connect(e.to_string()))?;
        let ctx = Context::new(conf).map_err(|e| connect(e.to_string()))?;
        Ok(Self { ctx })
    }

    /// Seals the `N`-byte secret `key` (at most 128 bytes) under a policy on the current values
    /// of `pcrs` (SHA-256 bank), below the owner hierarchy's storage root key.
    ///
    /// # Errors
    /// [`TpmError::NoSuchPcr`] or [`TpmError::Command`].
    pub fn seal_key<const N: usize>(
        &mut self,
        key: &SecretBytes<N>,
        pcrs: &[u8],
    ) -> Result<TpmSealedKey, TpmError> {
        let selection = selection(pcrs)?;
        // A TPM leaves PCRs of a bank it has not allocated out of a policy: read them first, so
        // a key is never sealed to fewer PCRs than asked for.
        let (_, read, _) = self
            .ctx
            .pcr_read(selection.clone())
            .map_err(command("PCR_Read"))?;
        if read != selection {
            return Err(TpmError::PcrSelection {
                pcrs: pcrs.to_vec(),
                reason: "the TPM does not have them in its SHA-256 bank",
            });
        }
        let policy = self.pcr_policy(SessionType::Trial, &selection)?;
        let digest = self
            .ctx
            .policy_get_digest(policy)
            .map_err(command("PolicyGetDigest"))?;
        self.flush(session_object(policy))?;
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_no_da(true)
            .with_admin_with_policy(true)
            .with_user_with_auth(false)
            .build()
            .map_err(command("object attributes"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_auth_policy(digest)
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(Default::default())
            .build()
            .map_err(command("sealed object template"))?;
        let sensitive =
            SensitiveData::try_from(key.expose().to_vec()).map_err(command("sensitive data"))?;
        let srk = self.storage_root_key()?;
        let created = self
            .ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.create(srk, public, None, Some(sensitive), None, None)
            })
            .map_err(command("Create"));
        self.flush(srk.into())?;
        let created = created?;
        Ok(TpmSealedKey {
            pcrs: pcrs.to_vec(),
            public: created
                .out_public
                .marshall()
                .map_err(command("marshal public"))?,
            private: created.out_private.value().to_vec(),
        })
    }

    /// Has the TPM unseal `sealed`, which it does only if the PCRs hold the values they held at
    /// sealing and `sealed` was made by this TPM.
    ///
    /// # Errors
    /// [`TpmError::Unseal`] when the TPM refuses; [`TpmError::Command`] for the steps before;
    /// [`TpmError::Malformed`] if the secret is not `N` bytes.
    pub fn unseal_key<const N: usize>(
        &mut self,
        sealed: &TpmSealedKey,
    ) -> Result<SecretBytes<N>, TpmError> {
        let selection = selection(&sealed.pcrs)?;
        let public = Public::unmarshall(&sealed.public).map_err(unseal)?;
        let private = Private::try_from(sealed.private.clone()).map_err(unseal)?;
        let srk = self.storage_root_key()?;
        let loaded = self
            .ctx
            .execute_with_nullauth_session(|ctx| ctx.load(srk, private, public))
            .map_err(unseal);
        self.flush(srk.into())?;
        let object = loaded?;
        let policy = self.pcr_policy(SessionType::Policy, &selection);
        let unsealed = policy.and_then(|policy| {
            let result = self
                .ctx
                .execute_with_session(Some(policy.into()), |ctx| ctx.unseal(object.into()))
                .map_err(unseal);
            self.flush(session_object(policy))?;
            result
        });
        self.flush(object.into())?;
        let data = Zeroizing::new(unsealed?.value().to_vec());
        SecretBytes::<N>::from_slice(&data).ok_or(TpmError::Malformed(DecodeError::Invalid {
            field: "sealed key",
            reason: "not the expected length",
        }))
    }

    /// The existing NV counter at `index` (owner range `0x0100_0000`–`0x01FF_FFFF`).
    ///
    /// # Errors
    /// [`TpmError::NvIndex`] for an index outside the range, not defined, or not a counter;
    /// [`TpmError::Command`].
    pub fn counter(&mut self, index: u32) -> Result<NvCounter, TpmError> {
        let tpm_index = nv_index(index)?;
        let object = self
            .ctx
            .tr_from_tpm_public(TpmHandle::NvIndex(tpm_index))
            .map_err(|_| TpmError::NvIndex {
                index,
                reason: "the TPM has no NV index there",
            })?;
        let handle = NvIndexHandle::from(object);
        let (public, _) = self
            .ctx
            .execute_without_session(|ctx| ctx.nv_read_public(handle))
            .map_err(command("NV_ReadPublic"))?;
        if public.attributes().index_type().ok() != Some(NvIndexType::Counter) {
            return Err(TpmError::NvIndex {
                index,
                reason: "it holds something other than a counter",
            });
        }
        Ok(NvCounter { index, handle })
    }

    /// Defines a new NV counter at `index` (owner range) and initializes it. Its first value is
    /// at least the highest any counter on this TPM has had, never 0 again.
    ///
    /// # Errors
    /// [`TpmError::NvIndex`] for an index outside the range or already defined (by anyone: two
    /// users of one counter would each see the other's increments);
    /// [`TpmError::Command`].
    pub fn define_counter(&mut self, index: u32) -> Result<NvCounter, TpmError> {
        let tpm_index = nv_index(index)?;
        if self
            .ctx
            .tr_from_tpm_public(TpmHandle::NvIndex(tpm_index))
            .is_ok()
        {
            return Err(TpmError::NvIndex {
                index,
                reason: "it is already defined; choose another index, or remove it (tpm2_nvundefine) if nothing uses it",
            });
        }
        let attributes = NvIndexAttributesBuilder::new()
            .with_owner_write(true)
            .with_owner_read(true)
            .with_nv_index_type(NvIndexType::Counter)
            .build()
            .map_err(command("NV attributes"))?;
        let public = NvPublicBuilder::new()
            .with_nv_index(tpm_index)
            .with_index_name_algorithm(HashingAlgorithm::Sha256)
            .with_index_attributes(attributes)
            .with_data_area_size(8)
            .build()
            .map_err(command("NV public"))?;
        let handle = self
            .ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.nv_define_space(Provision::Owner, None, public)
            })
            .map_err(command("NV_DefineSpace"))?;
        // A counter reads only once incremented; its first value is at least the highest any
        // counter on this TPM has had.
        let counter = NvCounter { index, handle };
        if let Err(e) = self
            .ctx
            .execute_with_nullauth_session(|ctx| ctx.nv_increment(NvAuth::Owner, handle))
        {
            // Not left defined: the next first start would find the index taken.
            let _ = self.undefine_counter(counter);
            return Err(command("NV_Increment")(e));
        }
        Ok(counter)
    }

    /// The TPM's attestation key: an ECDSA P-256 restricted signing key, the primary of the
    /// endorsement hierarchy for a fixed template, so the same key on every call until the TPM
    /// is cleared. Its [`TpmAttestationKey::fingerprint`] is what verifiers pin.
    ///
    /// # Errors
    /// [`TpmError::Command`].
    pub fn attestation_key(&mut self) -> Result<TpmAttestationKey, TpmError> {
        let (handle, key) = self.load_attestation_key()?;
        self.flush(handle.into())?;
        Ok(key)
    }

    /// `tpm-quote` evidence that this machine's PCRs `pcrs` (SHA-256 bank) hold their current
    /// values and that it holds `keys`, fresh for `nonce`: a quote by the attestation key of the
    /// qualifying data of `report_data(keys, nonce)`.
    ///
    /// # Errors
    /// [`TpmError::NoSuchPcr`], [`TpmError::Command`], or [`TpmError::Evidence`] for keys or a
    /// nonce over the report data's limits.
    pub fn quote(
        &mut self,
        keys: &[BoundKey],
        nonce: &[u8],
        pcrs: &[u8],
    ) -> Result<Evidence, TpmError> {
        let report_data = report_data(keys, nonce)?;
        let selection = selection(pcrs)?;
        let qualifying = Data::try_from(tpm_quote::qualifying_data(&report_data).to_vec())
            .map_err(command("qualifying data"))?;
        let (handle, key) = self.load_attestation_key()?;
        let quoted = self
            .ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.quote(handle, qualifying, SignatureScheme::Null, selection)
            })
            .map_err(command("Quote"));
        self.flush(handle.into())?;
        let (attest, signature) = quoted?;
        let Signature::EcDsa(signature) = signature else {
            return Err(TpmError::Command {
                command: "Quote",
                reason: "the signature is not ECDSA".into(),
            });
        };
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&left_pad::<32>(signature.signature_r().value())?);
        rs[32..].copy_from_slice(&left_pad::<32>(signature.signature_s().value())?);
        // One accepted encoding per signature (tpm_quote::signature_verifies).
        let rs = tpm_quote::low_s(&rs).ok_or(TpmError::Command {
            command: "Quote",
            reason: "the signature is not a P-256 signature".into(),
        })?;
        let attest = attest.marshall().map_err(command("marshal TPMS_ATTEST"))?;
        Ok(Evidence::tpm_quote(key.to_sec1(), report_data, attest, rs)?)
    }

    fn load_attestation_key(&mut self) -> Result<(KeyHandle, TpmAttestationKey), TpmError> {
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_restricted(true)
            .with_sign_encrypt(true)
            .with_decrypt(false)
            .build()
            .map_err(command("attestation key attributes"))?;
        let parameters = PublicEccParametersBuilder::new()
            .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
            .with_curve(EccCurve::NistP256)
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .with_is_signing_key(true)
            .with_is_decryption_key(false)
            .with_restricted(true)
            .build()
            .map_err(command("attestation key parameters"))?;
        let template = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_ecc_parameters(parameters)
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .map_err(command("attestation key template"))?;
        let created = self
            .ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.create_primary(Hierarchy::Endorsement, template, None, None, None, None)
            })
            .map_err(command("CreatePrimary (attestation key)"))?;
        let handle = created.key_handle;
        let point = match created.out_public {
            Public::Ecc { unique, .. } => {
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..33].copy_from_slice(&left_pad::<32>(unique.x().value())?);
                sec1[33..].copy_from_slice(&left_pad::<32>(unique.y().value())?);
                TpmAttestationKey::from_sec1(sec1).map_err(TpmError::Malformed)
            }
            _ => Err(TpmError::Command {
                command: "CreatePrimary (attestation key)",
                reason: "the TPM returned no ECC point".into(),
            }),
        };
        match point {
            Ok(key) => Ok((handle, key)),
            Err(e) => {
                self.flush(handle.into())?;
                Err(e)
            }
        }
    }

    /// Removes the NV counter `counter` from the TPM: only for one that nothing has used yet (a
    /// data directory whose creation failed after defining it).
    ///
    /// # Errors
    /// [`TpmError::Command`].
    pub fn undefine_counter(&mut self, counter: NvCounter) -> Result<(), TpmError> {
        self.ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.nv_undefine_space(Provision::Owner, counter.handle)
            })
            .map_err(command("NV_UndefineSpace"))
    }

    /// A policy session (or trial session) with PolicyPCR over `selection`'s current values.
    fn pcr_policy(
        &mut self,
        kind: SessionType,
        selection: &PcrSelectionList,
    ) -> Result<PolicySession, TpmError> {
        let session = self
            .ctx
            .start_auth_session(
                None,
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(command("StartAuthSession"))?
            .ok_or(TpmError::NoSession)?;
        let policy = PolicySession::try_from(session).map_err(command("policy session"))?;
        // An empty digest: the TPM uses the PCRs' current values.
        let result = self
            .ctx
            .policy_pcr(policy, Digest::default(), selection.clone())
            .map_err(command("PolicyPCR"));
        if let Err(e) = result {
            self.flush(session_object(policy))?;
            return Err(e);
        }
        Ok(policy)
    }

    /// The owner hierarchy's storage root key: the same key every time for the same TPM.
    fn storage_root_key(&mut self) -> Result<KeyHandle, TpmError> {
        let template = utils::create_restricted_decryption_rsa_public(
            SymmetricDefinitionObject::AES_128_CFB,
            RsaKeyBits::Rsa2048,
            RsaExponent::default(),
        )
        .map_err(command("storage root key template"))?;
        self.ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map(|created| created.key_handle)
            .map_err(command("CreatePrimary"))
    }

    fn flush(&mut self, handle: tss_esapi::handles::ObjectHandle) -> Result<(), TpmError> {
        self.ctx
            .flush_context(handle)
            .map_err(command("FlushContext"))
    }
}

/// A TPM NV counter: it only goes up, by one per increment, and lives in the TPM.
#[derive(Debug)]
pub struct NvCounter {
    index: u32,
    handle: NvIndexHandle,
}

impl NvCounter {
    /// The NV index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The counter's value.
    ///
    /// # Errors
    /// [`TpmError::Command`].
    pub fn value(&self, tpm: &mut Tpm) -> Result<u64, TpmError> {
        let handle = self.handle;
        let bytes = tpm
            .ctx
            .execute_with_nullauth_session(|ctx| ctx.nv_read(NvAuth::Owner, handle, 8, 0))
            .map_err(command("NV_Read"))?;
        let bytes: [u8; 8] = bytes.value().try_into().map_err(|_| TpmError::NvIndex {
            index: self.index,
            reason: "it did not read as 8 bytes",
        })?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Raises the counter to at least `to`, one increment at a time; nothing to do if it is
    /// there already. Returns the new value.
    ///
    /// # Errors
    /// [`TpmError::Command`].
    pub fn advance(&self, tpm: &mut Tpm, to: u64) -> Result<u64, TpmError> {
        let value = self.value(tpm)?;
        if value >= to {
            return Ok(value);
        }
        self.increment(tpm, to - value)
    }

    /// Increments the counter `times` times, then reads it once: for a caller that knows the
    /// value already. Returns the new value (more than expected if someone else incremented it).
    ///
    /// # Errors
    /// [`TpmError::Command`].
    pub fn increment(&self, tpm: &mut Tpm, times: u64) -> Result<u64, TpmError> {
        let handle = self.handle;
        for _ in 0..times {
            tpm.ctx
                .execute_with_nullauth_session(|ctx| ctx.nv_increment(NvAuth::Owner, handle))
                .map_err(command("NV_Increment"))?;
        }
        self.value(tpm)
    }
}

/// A big-endian number the TPM may return without its leading zeros, at its full width.
fn left_pad<const N: usize>(bytes: &[u8]) -> Result<[u8; N], TpmError> {
    let start = N.checked_sub(bytes.len()).ok_or(TpmError::Command {
        command: "Quote",
        reason: "an ECC value is longer than the curve".into(),
    })?;
    let mut out = [0u8; N];
    out[start..].copy_from_slice(bytes);
    Ok(out)
}

fn nv_index(index: u32) -> Result<NvIndexTpmHandle, TpmError> {
    NvIndexTpmHandle::new(index).map_err(|_| TpmError::NvIndex {
        index,
        reason: "not an NV index",
    })
}

fn session_object(policy: PolicySession) -> tss_esapi::handles::ObjectHandle {
    tss_esapi::handles::SessionHandle::from(policy).into()
}

fn selection(pcrs: &[u8]) -> Result<PcrSelectionList, TpmError> {
    crate::check_pcrs(pcrs)?;
    let slots = pcrs
        .iter()
        .map(|&i| PcrSlot::try_from(1u32 << i).map_err(|_| TpmError::NoSuchPcr(i)))
        .collect::<Result<Vec<_>, _>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(command("PCR selection"))
}
