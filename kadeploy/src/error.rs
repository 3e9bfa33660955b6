//! Kadeploy's API error numbers (`APIError`) and the error type of requests the engine refuses.

use serde::Serialize;
use std::fmt;

/// Kadeploy's error numbers, with their generic texts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ApiError {
    /// 0: Error in configuration files.
    BadConfiguration,
    /// 1: Invalid workflow ID.
    InvalidWorkflowId,
    /// 2: Invalid node list.
    InvalidNodelist,
    /// 3: Invalid client's export.
    InvalidClient,
    /// 4: Invalid option in the request.
    InvalidOption,
    /// 5: Invalid file.
    InvalidFile,
    /// 6: Insufficient rights.
    InvalidRights,
    /// 7: Invalid environment specification.
    InvalidEnvironment,
    /// 8: Invalid custom operations specification.
    InvalidCustomop,
    /// 9: Invalid VLAN.
    InvalidVlan,
    /// 10: Element already exists.
    ExistingElement,
    /// 11: Some elements already exists and are conflicting.
    ConflictingElements,
    /// 12: Some options are missing.
    MissingOption,
    /// 13: Some options are conflicting.
    ConflictingOptions,
    /// 14: No element has been modified (every node discarded).
    NothingModified,
    /// 15: The execution of a command failed.
    ExecuteError,
    /// 20: Database issue.
    DatabaseError,
    /// 21: Something went wrong with the cache system.
    CacheError,
    /// 22: The cache is full.
    CacheFull,
    /// 30: The last deployed environment was destructive.
    DestructiveEnvironment,
}

impl ApiError {
    /// Kadeploy's number.
    pub fn code(self) -> u32 {
        match self {
            ApiError::BadConfiguration => 0,
            ApiError::InvalidWorkflowId => 1,
            ApiError::InvalidNodelist => 2,
            ApiError::InvalidClient => 3,
            ApiError::InvalidOption => 4,
            ApiError::InvalidFile => 5,
            ApiError::InvalidRights => 6,
            ApiError::InvalidEnvironment => 7,
            ApiError::InvalidCustomop => 8,
            ApiError::InvalidVlan => 9,
            ApiError::ExistingElement => 10,
            ApiError::ConflictingElements => 11,
            ApiError::MissingOption => 12,
            ApiError::ConflictingOptions => 13,
            ApiError::NothingModified => 14,
            ApiError::ExecuteError => 15,
            ApiError::DatabaseError => 20,
            ApiError::CacheError => 21,
            ApiError::CacheFull => 22,
            ApiError::DestructiveEnvironment => 30,
        }
    }

    /// Kadeploy's generic text.
    pub fn text(self) -> &'static str {
        match self {
            ApiError::BadConfiguration => "Error in configuration files",
            ApiError::InvalidWorkflowId => "Invalid workflow ID",
            ApiError::InvalidNodelist => "Invalid node list",
            ApiError::InvalidClient => "Invalid client's export",
            ApiError::InvalidOption => "Invalid option in the request",
            ApiError::InvalidFile => "Invalid file",
            ApiError::InvalidRights => {
                "You do not have sufficient rights to perform the operation on all the nodes"
            }
            ApiError::InvalidEnvironment => "Invalid environment specification",
            ApiError::InvalidCustomop => "Invalid custom operations specification",
            ApiError::InvalidVlan => "Invalid VLAN",
            ApiError::ExistingElement => "Element already exists",
            ApiError::ConflictingElements => "Some elements already exists and are conflicting",
            ApiError::MissingOption => "Some options are missing",
            ApiError::ConflictingOptions => "Some options are conflicting",
            ApiError::NothingModified => "No element has been modified",
            ApiError::ExecuteError => "The execution of a command failed",
            ApiError::DatabaseError => "Database issue",
            ApiError::CacheError => "Something went wrong with the cache system",
            ApiError::CacheFull => "The cache is full",
            ApiError::DestructiveEnvironment => {
                "Cannot reboot since the last deployed environment was destructive"
            }
        }
    }
}

/// A request the engine refuses before running anything: Kadeploy's number and a detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RequestError {
    /// Kadeploy's error.
    pub kind: ApiError,
    /// What exactly is wrong.
    pub detail: String,
}

impl RequestError {
    /// A new error of `kind` with `detail`.
    pub fn new(kind: ApiError, detail: impl Into<String>) -> Self {
        RequestError {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.text())
        } else {
            write!(f, "{} -- {}", self.kind.text(), self.detail)
        }
    }
}
