//! What a failed database call means for the message that caused it, decided in one place.
//!
//! The ledger must tell apart a message PostgreSQL will never accept (a NUL character in a
//! free-text field is refused by `jsonb` with SQLSTATE 22P05, whatever the retry) from an outage
//! or a misconfiguration (connection lost, out of resources, shutting down, a missing grant or
//! table), which is nobody's message's fault. Parking on an outage would park healthy messages;
//! retrying a data error forever stalls every participant of the lane. So the SQLSTATE class
//! decides, and only the data classes are the message's fault.

/// What a store failure means for the message being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The statement's data is unacceptable (SQLSTATE class 22, or class 23 other than a
    /// unique violation): the same message fails the same way every time, so after a bounded
    /// number of attempts it is parked.
    MessageData,
    /// A unique violation (23505): the optimistic check on (aggregate, sequence) or the
    /// event-id guard; another writer got there first, reload and decide again.
    UniqueConflict,
    /// Anything else: connection loss, resources, shutdown, a missing grant or table, a
    /// timeout. Retried without limit and alerted; it parks nothing.
    Unavailable,
}

impl FailureClass {
    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::MessageData => "message_data",
            FailureClass::UniqueConflict => "unique_conflict",
            FailureClass::Unavailable => "unavailable",
        }
    }
}

/// The class of a PostgreSQL SQLSTATE code.
pub fn class_of_sqlstate(sqlstate: &str) -> FailureClass {
    if sqlstate == "23505" {
        return FailureClass::UniqueConflict;
    }
    match sqlstate.get(..2) {
        Some("22") | Some("23") => FailureClass::MessageData,
        _ => FailureClass::Unavailable,
    }
}

/// A classified failure: its class and the SQLSTATE, when the database reported one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    /// What it means for the message.
    pub class: FailureClass,
    /// The SQLSTATE, if a database error was found.
    pub sqlstate: Option<String>,
}

/// Classifies a sqlx error.
pub fn classify_sqlx(error: &sqlx::Error) -> Classified {
    match error {
        sqlx::Error::Database(database_error) => match database_error.code() {
            Some(code) => Classified {
                class: class_of_sqlstate(&code),
                sqlstate: Some(code.into_owned()),
            },
            None => Classified {
                class: FailureClass::Unavailable,
                sqlstate: None,
            },
        },
        // A value sqlx could not encode for this statement: the message's value.
        sqlx::Error::Encode(_) => Classified {
            class: FailureClass::MessageData,
            sqlstate: None,
        },
        _ => Classified {
            class: FailureClass::Unavailable,
            sqlstate: None,
        },
    }
}

/// Classifies any error by the first `sqlx::Error` in its source chain (postgres-es boxes them
/// inside its own errors). Without one, the failure is treated as unavailability: retried, not
/// blamed on the message.
pub fn classify(error: &(dyn std::error::Error + 'static)) -> Classified {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(sqlx_error) = error.downcast_ref::<sqlx::Error>() {
            return classify_sqlx(sqlx_error);
        }
        if let Some(crate::StoreError::Unavailable(sqlx_error)) =
            error.downcast_ref::<crate::StoreError>()
        {
            return classify_sqlx(sqlx_error);
        }
        current = error.source();
    }
    Classified {
        class: FailureClass::Unavailable,
        sqlstate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_classes_are_the_message_s_fault() {
        let cases = [
            // Data exceptions: the message's fault.
            ("22P05", FailureClass::MessageData), // unsupported Unicode escape (NUL in jsonb)
            ("22021", FailureClass::MessageData), // character not in repertoire
            ("22023", FailureClass::MessageData), // invalid parameter value
            ("22001", FailureClass::MessageData), // string data right truncation
            ("23502", FailureClass::MessageData), // not null violation
            ("23514", FailureClass::MessageData), // check violation
            ("23503", FailureClass::MessageData), // foreign key violation
            // The expected unique conflicts.
            ("23505", FailureClass::UniqueConflict),
            // Outages and misconfiguration: never the message's fault.
            ("08006", FailureClass::Unavailable), // connection failure
            ("08001", FailureClass::Unavailable),
            ("53300", FailureClass::Unavailable), // too many connections
            ("53100", FailureClass::Unavailable), // disk full
            ("57P01", FailureClass::Unavailable), // admin shutdown
            ("57P03", FailureClass::Unavailable), // cannot connect now
            ("57014", FailureClass::Unavailable), // query canceled (statement timeout)
            ("42501", FailureClass::Unavailable), // insufficient privilege (a missing grant)
            ("42P01", FailureClass::Unavailable), // undefined table
            ("40001", FailureClass::Unavailable), // serialization failure
            ("40P01", FailureClass::Unavailable), // deadlock
            ("XX000", FailureClass::Unavailable), // internal error
            ("", FailureClass::Unavailable),
        ];
        for (sqlstate, expected) in cases {
            assert_eq!(class_of_sqlstate(sqlstate), expected, "{sqlstate}");
        }
    }

    #[test]
    fn errors_without_a_database_code_are_unavailability() {
        assert_eq!(
            classify_sqlx(&sqlx::Error::PoolTimedOut).class,
            FailureClass::Unavailable
        );
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert_eq!(classify_sqlx(&io).class, FailureClass::Unavailable);
        let wrapped: Box<dyn std::error::Error + Send + Sync> = Box::new(sqlx::Error::PoolClosed);
        assert_eq!(classify(wrapped.as_ref()).class, FailureClass::Unavailable);
    }
}
