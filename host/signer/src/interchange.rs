//! The tower interchange format, modelled on EIP-3076 (slashing protection interchange):
//!
//! ```json
//! {
//!   "metadata": { "interchange_format": "keyward-solana-tower", "interchange_format_version": "1" },
//!   "data": [
//!     { "identity": "<base58>", "vote_account": "<base58>", "root": "100" | null,
//!       "lockouts": [ { "slot": "101", "confirmation_count": "3" }, … ] }
//!   ]
//! }
//! ```
//!
//! As in EIP-3076, integers are decimal strings (JavaScript numbers lose precision past 2^53).
//! Lockouts go oldest first. Importing never moves a tower backwards: see
//! [`keyward_vote::Signer::import`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use keyward_vote::{Lockout, LockoutPolicy, Tower, TowerExport};

/// The format's name.
pub const FORMAT: &str = "keyward-solana-tower";
/// The format's version.
pub const VERSION: &str = "1";

/// A whole interchange file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interchange {
    /// Format and version.
    pub metadata: Metadata,
    /// One entry per validator.
    pub data: Vec<Entry>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Always [`FORMAT`].
    pub interchange_format: String,
    /// Always [`VERSION`].
    pub interchange_format_version: String,
}

/// One validator's tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Validator identity, base58.
    pub identity: String,
    /// Vote account, base58.
    pub vote_account: String,
    /// Root slot, decimal, or null.
    pub root: Option<String>,
    /// Votes, oldest first.
    pub lockouts: Vec<EntryLockout>,
}

/// One vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLockout {
    /// Slot, decimal.
    pub slot: String,
    /// Confirmation count, decimal.
    pub confirmation_count: String,
}

/// Why an interchange document was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InterchangeError {
    /// Not JSON of this shape.
    #[error("not a tower interchange document: {0}")]
    Syntax(String),
    /// Another format or version.
    #[error(
        "unsupported interchange format {format:?} version {version:?} (this build reads {FORMAT:?} version {VERSION:?})"
    )]
    Unsupported {
        /// The format named.
        format: String,
        /// The version named.
        version: String,
    },
    /// A field does not decode.
    #[error("entry {index}: invalid {field}")]
    Field {
        /// The entry's position.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// An entry's tower breaks the lockout rules.
    #[error("entry {index}: {reason}")]
    Tower {
        /// The entry's position.
        index: usize,
        /// The rule broken.
        reason: String,
    },
}

/// The entry of one exported tower.
pub fn entry(export: &TowerExport) -> Entry {
    Entry {
        identity: export.identity.to_string(),
        vote_account: export.vote_account.to_string(),
        root: export.tower.root().map(|r| r.to_string()),
        lockouts: export
            .tower
            .votes()
            .iter()
            .map(|l| EntryLockout {
                slot: l.slot.to_string(),
                confirmation_count: l.confirmation_count.to_string(),
            })
            .collect(),
    }
}

/// A document holding `exports`.
pub fn document(exports: &[TowerExport]) -> Interchange {
    Interchange {
        metadata: Metadata {
            interchange_format: FORMAT.into(),
            interchange_format_version: VERSION.into(),
        },
        data: exports.iter().map(entry).collect(),
    }
}

/// Parses a document into towers checked against `policy`.
///
/// # Errors
/// [`InterchangeError`] for the first problem; nothing partial is returned.
pub fn parse(text: &str, policy: &LockoutPolicy) -> Result<Vec<TowerExport>, InterchangeError> {
    let doc: Interchange =
        serde_json::from_str(text).map_err(|e| InterchangeError::Syntax(e.to_string()))?;
    if doc.metadata.interchange_format != FORMAT
        || doc.metadata.interchange_format_version != VERSION
    {
        return Err(InterchangeError::Unsupported {
            format: doc.metadata.interchange_format,
            version: doc.metadata.interchange_format_version,
        });
    }
    doc.data
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let field = |field| InterchangeError::Field { index, field };
            let votes = e
                .lockouts
                .iter()
                .map(|l| {
                    Ok(Lockout {
                        slot: l.slot.parse().map_err(|_| field("slot"))?,
                        confirmation_count: l
                            .confirmation_count
                            .parse()
                            .map_err(|_| field("confirmation_count"))?,
                    })
                })
                .collect::<Result<Vec<_>, InterchangeError>>()?;
            let root = e
                .root
                .as_deref()
                .map(|r| r.parse().map_err(|_| field("root")))
                .transpose()?;
            let tower =
                Tower::from_parts(votes, root, policy).map_err(|err| InterchangeError::Tower {
                    index,
                    reason: err.to_string(),
                })?;
            Ok(TowerExport {
                identity: e.identity.parse().map_err(|_| field("identity"))?,
                vote_account: keyward_crypto::SolanaPubkey::parse_address(&e.vote_account)
                    .map_err(|_| field("vote_account"))?,
                tower,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_crypto::SolanaPubkey;

    fn export() -> TowerExport {
        let policy = LockoutPolicy::SOLANA;
        let tower = Tower::new()
            .apply_slots(&[5, 6, 7], &policy)
            .expect("fresh slots");
        TowerExport {
            identity: SolanaPubkey([9; 32]),
            vote_account: SolanaPubkey([4; 32]),
            tower,
        }
    }

    #[test]
    fn round_trips_with_integers_as_strings() {
        let doc = document(&[export()]);
        let text = serde_json::to_string_pretty(&doc).expect("serializes");
        assert!(text.contains("\"slot\": \"7\""), "{text}");
        let back = parse(&text, &LockoutPolicy::SOLANA).expect("parses");
        assert_eq!(back, vec![export()]);
    }

    #[test]
    fn refuses_other_formats_bad_numbers_and_invalid_towers() {
        let mut doc = document(&[export()]);
        doc.metadata.interchange_format_version = "2".into();
        let text = serde_json::to_string(&doc).expect("serializes");
        assert!(matches!(
            parse(&text, &LockoutPolicy::SOLANA),
            Err(InterchangeError::Unsupported { .. })
        ));

        let mut doc = document(&[export()]);
        doc.data[0].lockouts[0].slot = "-1".into();
        let text = serde_json::to_string(&doc).expect("serializes");
        assert!(matches!(
            parse(&text, &LockoutPolicy::SOLANA),
            Err(InterchangeError::Field { field: "slot", .. })
        ));

        let mut doc = document(&[export()]);
        doc.data[0].lockouts.reverse();
        let text = serde_json::to_string(&doc).expect("serializes");
        assert!(matches!(
            parse(&text, &LockoutPolicy::SOLANA),
            Err(InterchangeError::Tower { .. })
        ));
        assert!(matches!(
            parse("{", &LockoutPolicy::SOLANA),
            Err(InterchangeError::Syntax(_))
        ));
    }
}
