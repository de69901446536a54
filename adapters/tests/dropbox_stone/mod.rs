//! The Dropbox API v2 types the emulator answers with, transcribed by hand from
//! `shared/contracts/dropbox/{files,sharing,auth}.stone`. Structs deny unknown fields; optional
//! (`T?`) and defaulted fields may be absent, all others are required. Unions are enums tagged by
//! `.tag`: a member with a union or primitive value nests it under a key of the tag's name, a
//! member with a plain struct value inlines its fields, void members are `{".tag": name}`.
//! Polymorphic structs (`union` / `union_closed` subtypes) carry `.tag` inline.
#![allow(dead_code, clippy::large_enum_variant)]

use serde::Deserialize;
use serde_json::Value;

/// `common.DropboxTimestamp`: `Timestamp("%Y-%m-%dT%H:%M:%SZ")`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Timestamp(String);

impl TryFrom<String> for Timestamp {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let b = s.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let ok = b.len() == 20
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && b[19] == b'Z';
        ok.then_some(Self(s.clone()))
            .ok_or(format!("not a DropboxTimestamp: {s}"))
    }
}

/// `Rev`: `String(min_length=9, pattern="[0-9a-f]+")`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Rev(String);

impl TryFrom<String> for Rev {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.len() >= 9
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        ok.then_some(Self(s.clone()))
            .ok_or(format!("not a Rev: {s}"))
    }
}

/// `Id`: `String(min_length=1)`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Id(String);

impl TryFrom<String> for Id {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        (!s.is_empty()).then_some(Self(s)).ok_or("empty Id".into())
    }
}

/// `FileMetadata extends Metadata` (Metadata's fields first).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetadata {
    pub name: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
    pub parent_shared_folder_id: Option<String>,
    pub preview_url: Option<String>,
    pub id: Id,
    pub client_modified: Timestamp,
    pub server_modified: Timestamp,
    pub rev: Rev,
    pub size: u64,
    pub media_info: Option<Value>,
    pub symlink_info: Option<Value>,
    pub sharing_info: Option<Value>,
    #[serde(default)]
    pub is_downloadable: Option<bool>,
    pub export_info: Option<Value>,
    pub property_groups: Option<Vec<Value>>,
    pub has_explicit_shared_members: Option<bool>,
    pub content_hash: Option<String>,
    pub file_lock_info: Option<Value>,
    pub is_restorable: Option<bool>,
}

/// `FolderMetadata extends Metadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderMetadata {
    pub name: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
    pub parent_shared_folder_id: Option<String>,
    pub preview_url: Option<String>,
    pub id: Id,
    pub shared_folder_id: Option<String>,
    pub sharing_info: Option<Value>,
    pub property_groups: Option<Vec<Value>>,
}

/// `DeletedMetadata extends Metadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedMetadata {
    pub name: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
    pub parent_shared_folder_id: Option<String>,
    pub preview_url: Option<String>,
}

/// `struct Metadata union_closed file / folder / deleted`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    Deleted(DeletedMetadata),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFolderResult {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetadataV2 {
    Metadata { metadata: Metadata },
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SearchMatchTypeV2 {
    Filename,
    FileContent,
    FilenameAndContent,
    ImageContent,
    Metadata,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchMatchV2 {
    pub metadata: MetadataV2,
    pub match_type: Option<SearchMatchTypeV2>,
    pub highlight_spans: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchV2Result {
    pub matches: Vec<SearchMatchV2>,
    pub has_more: bool,
    pub cursor: Option<String>,
}

/// `CreateFolderResult extends FileOpsResult` (which has no fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFolderResult {
    pub metadata: FolderMetadata,
}

/// `RelocationResult` and `DeleteResult`: both `{ metadata Metadata }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataResult {
    pub metadata: Metadata,
}

/// `LinkPermissions` (sharing.stone).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPermissions {
    pub resolved_visibility: Option<ResolvedVisibility>,
    pub requested_visibility: Option<ResolvedVisibility>,
    pub can_revoke: bool,
    pub revoke_failure_reason: Option<Value>,
    pub effective_audience: Option<LinkAudience>,
    pub link_access_level: Option<Value>,
    pub visibility_policies: Vec<Value>,
    pub can_set_expiry: bool,
    pub can_remove_expiry: bool,
    pub allow_download: bool,
    pub can_allow_download: bool,
    pub can_disallow_download: bool,
    pub allow_comments: bool,
    pub team_restricts_comments: bool,
    pub audience_options: Option<Vec<Value>>,
    pub can_set_password: Option<bool>,
    pub can_remove_password: Option<bool>,
    pub require_password: Option<bool>,
    pub can_use_extended_sharing_controls: Option<bool>,
    pub can_sync: Option<bool>,
    pub can_request_access: Option<bool>,
    pub enforce_shared_link_password_policy: Option<Value>,
    pub days_to_expire_policy: Option<Value>,
    pub change_shared_link_expiration_policy: Option<Value>,
}

/// `ResolvedVisibility extends RequestedVisibility` (public, team_only, password + its own).
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum ResolvedVisibility {
    Public,
    TeamOnly,
    Password,
    TeamAndPassword,
    SharedFolderOnly,
    NoOne,
    OnlyYou,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum LinkAudience {
    Public,
    Team,
    NoOne,
    Password,
    Members,
}

/// `FileLinkMetadata extends SharedLinkMetadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLinkMetadata {
    pub url: String,
    pub id: Option<Id>,
    pub name: String,
    pub expires: Option<Timestamp>,
    pub path_lower: Option<String>,
    pub link_permissions: LinkPermissions,
    pub team_member_info: Option<Value>,
    pub content_owner_team_info: Option<Value>,
    pub client_modified: Timestamp,
    pub server_modified: Timestamp,
    pub rev: Rev,
    pub size: u64,
}

/// `FolderLinkMetadata extends SharedLinkMetadata` (no fields of its own).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderLinkMetadata {
    pub url: String,
    pub id: Option<Id>,
    pub name: String,
    pub expires: Option<Timestamp>,
    pub path_lower: Option<String>,
    pub link_permissions: LinkPermissions,
    pub team_member_info: Option<Value>,
    pub content_owner_team_info: Option<Value>,
}

/// `struct SharedLinkMetadata union file / folder`.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum SharedLinkMetadata {
    File(FileLinkMetadata),
    Folder(FolderLinkMetadata),
}

/// `struct ListSharedLinksResult` (`sharing/list_shared_links`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSharedLinksResult {
    pub links: Vec<SharedLinkMetadata>,
    pub has_more: bool,
    #[serde(default)]
    pub cursor: Option<String>,
}

pub mod errors;
