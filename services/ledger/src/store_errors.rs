//! The store's errors as gRPC statuses. The mapping lives in the ledger, the only service with
//! a database, so `crates/rpc` (and with it every agency service) does not depend on `store`
//! and links no sqlx. The ledger only classifies; the codes are chosen in `rpc::errors`.

use rpc::errors::{self, StorageFailure};
use tonic::Status;

/// The class of a store error: transient, an unreadable stored row, or a defect.
pub fn storage_failure(error: &store::StoreError) -> StorageFailure {
    match error {
        store::StoreError::Unavailable(_) => StorageFailure::Unavailable,
        store::StoreError::Unreadable(_) => StorageFailure::Unreadable,
        store::StoreError::Migration(_)
        | store::StoreError::ValueOutOfRange { .. }
        | store::StoreError::AccessLogBatchTooLarge { .. } => StorageFailure::Internal,
    }
}

/// The status a read answers when the store failed.
pub fn from_store(error: &store::StoreError) -> Status {
    errors::from_storage(storage_failure(error), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_store_error_keeps_its_code() {
        let unreadable = from_store(&store::StoreError::Unreadable("bad row".into()));
        assert_eq!(unreadable.code(), tonic::Code::DataLoss);
        assert_eq!(
            unreadable
                .metadata()
                .get(errors::RULE_HEADER)
                .and_then(|value| value.to_str().ok()),
            Some("stored_history_unreadable")
        );
        let unavailable = from_store(&store::StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        assert_eq!(unavailable.code(), tonic::Code::Unavailable);
        let too_large = from_store(&store::StoreError::AccessLogBatchTooLarge {
            entries: 2,
            entries_max: 1,
        });
        assert_eq!(too_large.code(), tonic::Code::Internal);
    }
}
