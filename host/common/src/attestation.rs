//! The vendor part of an attestation policy as configuration files write it (a genesis
//! description's `[…_policy.vendor]`, the signer's `[attestation.vendor]`).

use serde::Deserialize;

use keyward_attest::{AttestationPolicy, Platform, TcbStatus};

/// `platforms = ["tdx"]`, `measurements = ["<hex>"]`, and optionally `minimum_tcb` (default
/// `"UpToDate"`), `accept_unrated` (default false) and `max_age_secs` (default 600).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorPolicyConfig {
    /// `sgx`, `tdx`, `nitro`, `sev-snp`; at least one.
    pub platforms: Vec<String>,
    /// The vendor's measurements accepted (MRENCLAVE, a TD's register digest, PCR0,
    /// MEASUREMENT), hex, as `keyward attest verify` prints them. Empty: none.
    #[serde(default)]
    pub measurements: Vec<String>,
    /// The worst TCB status accepted, as Intel spells it.
    #[serde(default)]
    pub minimum_tcb: Option<String>,
    /// Whether evidence with no TCB status (Nitro, SEV-SNP) is accepted.
    #[serde(default)]
    pub accept_unrated: bool,
    /// How old evidence that carries its own time (Nitro) may be, and how far behind a
    /// verifier's clock an envelope's verification time may be.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
}

impl VendorPolicyConfig {
    /// The policy; `table` names the TOML table in errors.
    ///
    /// # Errors
    /// One line naming the table and field: an unknown platform or status, no platform, a
    /// measurement that is not hex or over 64 bytes.
    pub fn policy(&self, table: &str) -> Result<AttestationPolicy, String> {
        if self.platforms.is_empty() {
            return Err(format!("[{table}] platforms: name at least one"));
        }
        let platforms = self
            .platforms
            .iter()
            .map(|name| {
                Platform::from_name(name).ok_or_else(|| {
                    format!(
                        "[{table}] platforms: unknown platform {name:?} (sgx, tdx, nitro, sev-snp)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let measurements = self
            .measurements
            .iter()
            .map(|text| {
                hex::decode(text.trim_start_matches("0x"))
                    .ok()
                    .filter(|m| !m.is_empty() && m.len() <= 64)
                    .ok_or_else(|| {
                        format!("[{table}] measurements: {text:?} is not 1 to 64 bytes of hex")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let minimum_tcb = match &self.minimum_tcb {
            None => TcbStatus::UpToDate,
            Some(name) => TcbStatus::from_name(name)
                .ok_or_else(|| format!("[{table}] minimum_tcb: unknown status {name:?}"))?,
        };
        let strict = AttestationPolicy::strict(platforms, measurements);
        Ok(AttestationPolicy {
            minimum_tcb,
            accept_unrated: self.accept_unrated,
            max_age_secs: self.max_age_secs.unwrap_or(strict.max_age_secs),
            ..strict
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AttestationPolicy, String> {
        toml::from_str::<VendorPolicyConfig>(text)
            .map_err(|e| e.to_string())?
            .policy("t")
    }

    #[test]
    fn defaults_are_strict_and_errors_name_the_field() {
        let p = parse("platforms = [\"tdx\"]\nmeasurements = [\"0x0a0b\"]").unwrap();
        assert_eq!(
            p,
            AttestationPolicy::strict(vec![Platform::Tdx], vec![vec![10, 11]])
        );
        let p = parse("platforms = [\"sev-snp\"]\nminimum_tcb = \"OutOfDate\"\naccept_unrated = true\nmax_age_secs = 5").unwrap();
        assert_eq!(p.minimum_tcb, TcbStatus::OutOfDate);
        assert!(p.accept_unrated);
        assert_eq!(p.max_age_secs, 5);
        for (text, field) in [
            ("platforms = []", "platforms"),
            ("platforms = [\"sev\"]", "platforms"),
            (
                "platforms = [\"tdx\"]\nmeasurements = [\"zz\"]",
                "measurements",
            ),
            (
                "platforms = [\"tdx\"]\nminimum_tcb = \"Fine\"",
                "minimum_tcb",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(&format!("[t] {field}")), "{e}");
        }
        assert!(parse("platforms = [\"tdx\"]\nextra = 1").is_err());
    }
}
