//! The TPM in a build without the `tpm` feature: connecting says how to get TPM support, so
//! nothing else can be called.

use keyward_crypto::SecretBytes;
use keyward_enclave::{BoundKey, Evidence, TpmAttestationKey};

use crate::{TpmError, TpmSealedKey};

enum Never {}

/// A connection to a TPM; this build cannot make one.
pub struct Tpm(Never);

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tpm(..)")
    }
}

impl Tpm {
    /// Always [`TpmError::NotBuilt`] in this build.
    ///
    /// # Errors
    /// [`TpmError::NotBuilt`].
    pub fn connect(_tcti: &str) -> Result<Self, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn seal_key<const N: usize>(
        &mut self,
        _key: &SecretBytes<N>,
        _pcrs: &[u8],
    ) -> Result<TpmSealedKey, TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn unseal_key<const N: usize>(
        &mut self,
        _sealed: &TpmSealedKey,
    ) -> Result<SecretBytes<N>, TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn counter(&mut self, _index: u32) -> Result<NvCounter, TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn attestation_key(&mut self) -> Result<TpmAttestationKey, TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn quote(
        &mut self,
        _keys: &[BoundKey],
        _nonce: &[u8],
        _pcrs: &[u8],
    ) -> Result<Evidence, TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn undefine_counter(&mut self, _counter: NvCounter) -> Result<(), TpmError> {
        match self.0 {}
    }

    /// Never called: no [`Tpm`] exists in this build.
    ///
    /// # Errors
    /// None.
    pub fn define_counter(&mut self, _index: u32) -> Result<NvCounter, TpmError> {
        match self.0 {}
    }
}

/// A TPM NV counter; this build cannot open one.
#[derive(Debug)]
pub struct NvCounter(Never);

impl std::fmt::Debug for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl NvCounter {
    /// Never called: no [`NvCounter`] exists in this build.
    pub fn index(&self) -> u32 {
        match self.0 {}
    }

    /// Never called.
    ///
    /// # Errors
    /// None.
    pub fn value(&self, _tpm: &mut Tpm) -> Result<u64, TpmError> {
        match self.0 {}
    }

    /// Never called.
    ///
    /// # Errors
    /// None.
    pub fn advance(&self, _tpm: &mut Tpm, _to: u64) -> Result<u64, TpmError> {
        match self.0 {}
    }

    /// Never called.
    ///
    /// # Errors
    /// None.
    pub fn increment(&self, _tpm: &mut Tpm, _times: u64) -> Result<u64, TpmError> {
        match self.0 {}
    }
}
