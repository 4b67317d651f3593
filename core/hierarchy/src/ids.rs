//! Names and numbers of the hierarchy: epochs, cluster generations, cluster and contract ids.

use core::fmt;

/// A MasterKey epoch. Epoch 0 is created at genesis; each council-approved rotation adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

/// A cluster's generation. Removing a worker bumps it, so the removed worker's ClusterKey opens
/// nothing written afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Generation(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub use keyward_crypto::ids::{IdError, MAX_ID_LEN};
keyward_crypto::id_type!(ClusterId, "cluster id", "The id of a cluster of workers.");
keyward_crypto::id_type!(
    ContractId,
    "contract id",
    "The id of a contract deployed to a cluster."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(ClusterId::new("cluster-1.eu_west").is_ok());
        assert_eq!(
            ClusterId::new(""),
            Err(IdError::Length { kind: "cluster id" })
        );
        assert_eq!(
            ContractId::new(&"a".repeat(65)),
            Err(IdError::Length {
                kind: "contract id"
            })
        );
        assert_eq!(
            ContractId::new("a b"),
            Err(IdError::Character {
                kind: "contract id"
            })
        );
        assert_eq!(
            ContractId::new("é"),
            Err(IdError::Character {
                kind: "contract id"
            })
        );
    }
}
