//! The error unions of the routes the emulator serves, the `{error_summary, error}` envelope
//! they travel in (409 route errors, 401 `AuthError`, 429 `RateLimitError`), and `check`, which
//! deserializes an answer strictly as the type `routes.json` names.

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    CreateFolderResult, FileMetadata, ListFolderResult, ListSharedLinksResult, Metadata,
    MetadataResult, SearchV2Result, SharedLinkMetadata,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<E> {
    pub error_summary: String,
    pub error: E,
}

/// `MalformedPathError` is `String?`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum LookupError {
    MalformedPath { malformed_path: Option<String> },
    NotFound,
    NotFile,
    NotFolder,
    RestrictedContent,
    UnsupportedContentType,
    Locked,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum WriteConflictError {
    File,
    Folder,
    FileAncestor,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteError {
    MalformedPath { malformed_path: Option<String> },
    Conflict { conflict: WriteConflictError },
    NoWritePermission,
    InsufficientSpace,
    DisallowedName,
    TeamFolder,
    OperationSuppressed,
    TooManyWriteOperations,
    AccessRestricted,
}

/// `GetMetadataError` (`union_closed`).
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum GetMetadataError {
    Path { path: LookupError },
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum DownloadError {
    Path { path: LookupError },
    UnsupportedFile,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum ListFolderError {
    Path { path: LookupError },
    TemplateError { template_error: Value },
}

/// `union ListSharedLinksError`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum ListSharedLinksError {
    Path { path: LookupError },
    Reset,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum ListFolderContinueError {
    Path { path: LookupError },
    Reset,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum SearchError {
    Path { path: LookupError },
    InvalidArgument { invalid_argument: Option<String> },
    InternalError,
}

/// `CreateFolderError`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateFolderError {
    Path { path: WriteError },
}

/// `RelocationError` (the members the emulator can produce are checked strictly).
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum RelocationError {
    FromLookup { from_lookup: LookupError },
    FromWrite { from_write: WriteError },
    To { to: WriteError },
    CantCopySharedFolder,
    CantNestSharedFolder,
    CantMoveFolderIntoItself,
    TooManyFiles,
    DuplicatedOrNestedPaths,
    CantTransferOwnership,
    InsufficientQuota,
    InternalError,
    CantMoveSharedFolder,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeleteError {
    PathLookup { path_lookup: LookupError },
    PathWrite { path_write: WriteError },
    TooManyWriteOperations,
    TooManyFiles,
}

/// `UploadError`: `path` holds the struct `UploadWriteFailed`, so its fields are inlined.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum UploadError {
    Path {
        reason: WriteError,
        upload_session_id: String,
    },
    PropertiesError {
        properties_error: Value,
    },
    PayloadTooLarge,
    ContentHashMismatch,
    EncryptionNotSupported,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum SharedLinkAlreadyExistsMetadata {
    Metadata { metadata: SharedLinkMetadata },
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateSharedLinkWithSettingsError {
    Path {
        path: LookupError,
    },
    EmailNotVerified,
    SharedLinkAlreadyExists {
        shared_link_already_exists: Option<SharedLinkAlreadyExistsMetadata>,
    },
    SettingsError {
        settings_error: Value,
    },
    AccessDenied,
    BannedMember,
    TooManySharedFolders,
}

/// `auth.AuthError`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthError {
    InvalidAccessToken,
    InvalidSelectUser,
    InvalidSelectAdmin,
    UserSuspended,
    ExpiredAccessToken,
    MissingScope { required_scope: String },
    RouteAccessDenied,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum RateLimitReason {
    TooManyRequests,
    TooManyWriteOperations,
}

/// `auth.RateLimitError`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitError {
    pub reason: RateLimitReason,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

fn strict<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(value.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deserializes `value` strictly as the Stone type called `name`.
pub fn check(name: &str, value: &Value) -> Result<(), String> {
    match name {
        "ListFolderResult" => strict::<ListFolderResult>(value),
        "SearchV2Result" => strict::<SearchV2Result>(value),
        "Metadata" => strict::<Metadata>(value),
        "FileMetadata" => strict::<FileMetadata>(value),
        "CreateFolderResult" => strict::<CreateFolderResult>(value),
        "RelocationResult" | "DeleteResult" => strict::<MetadataResult>(value),
        "SharedLinkMetadata" => strict::<SharedLinkMetadata>(value),
        "ListSharedLinksResult" => strict::<ListSharedLinksResult>(value),
        "ListSharedLinksError" => strict::<Envelope<ListSharedLinksError>>(value),
        "GetMetadataError" => strict::<Envelope<GetMetadataError>>(value),
        "DownloadError" => strict::<Envelope<DownloadError>>(value),
        "ListFolderError" => strict::<Envelope<ListFolderError>>(value),
        "ListFolderContinueError" => strict::<Envelope<ListFolderContinueError>>(value),
        "SearchError" => strict::<Envelope<SearchError>>(value),
        "CreateFolderError" => strict::<Envelope<CreateFolderError>>(value),
        "RelocationError" => strict::<Envelope<RelocationError>>(value),
        "DeleteError" => strict::<Envelope<DeleteError>>(value),
        "UploadError" => strict::<Envelope<UploadError>>(value),
        "CreateSharedLinkWithSettingsError" => {
            strict::<Envelope<CreateSharedLinkWithSettingsError>>(value)
        }
        "AuthError" => strict::<Envelope<AuthError>>(value),
        "RateLimitError" => strict::<Envelope<RateLimitError>>(value),
        other => Err(format!("no hand-written type for {other}")),
    }
}
