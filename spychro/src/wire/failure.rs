//! How a worker reports an item's failure on the wire: a record of the wire's own, so that
//! the public [`FailureKind`] can change (a variant renamed, a field added) without changing
//! the protocol. Only failures a worker can see travel; the caller adds the rest (crashes,
//! timeouts, its own decoding).

use serde::{Deserialize, Serialize};

use crate::error::FailureKind;

/// An item's failure, as the last outcome of a results frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireFailure {
    Panicked {
        message: String,
        location: Option<String>,
        backtrace: Option<String>,
    },
    Returned {
        message: String,
    },
    DeserializeItem {
        message: String,
    },
    SerializeOutput {
        message: String,
    },
}

impl WireFailure {
    /// The record of a failure seen in a worker; a kind that only a caller can see (never
    /// made in a worker) travels as its text.
    pub(crate) fn from_kind(kind: FailureKind) -> WireFailure {
        match kind {
            FailureKind::Panicked {
                message,
                location,
                backtrace,
            } => WireFailure::Panicked {
                message,
                location,
                backtrace,
            },
            FailureKind::Returned { message } => WireFailure::Returned { message },
            FailureKind::DeserializeItem { message } => WireFailure::DeserializeItem { message },
            FailureKind::SerializeOutput { message } => WireFailure::SerializeOutput { message },
            other => WireFailure::Returned {
                message: other.to_string(),
            },
        }
    }

    /// The failure as users see it.
    pub(crate) fn into_kind(self) -> FailureKind {
        match self {
            WireFailure::Panicked {
                message,
                location,
                backtrace,
            } => FailureKind::Panicked {
                message,
                location,
                backtrace,
            },
            WireFailure::Returned { message } => FailureKind::Returned { message },
            WireFailure::DeserializeItem { message } => FailureKind::DeserializeItem { message },
            WireFailure::SerializeOutput { message } => FailureKind::SerializeOutput { message },
        }
    }
}
