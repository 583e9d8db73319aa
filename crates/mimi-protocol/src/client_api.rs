//! The API between a client and its own provider (docs/client-api.md). The drafts leave it out
//! of scope (IN-SERVER-7), so it is ours; these are the bodies both `mimid` and `mimi-client`
//! use, so the two cannot drift apart. JSON bodies carry byte strings in lowercase hex; the
//! inbox also answers in binary ([`InboxPage`]) to clients that ask for it.

use serde::{Deserialize, Serialize};

use crate::codec::{
    Codec, MAX_BODY, MAX_URI, Reader, put_codec_vec, put_opaque, read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;

/// Path of the inbox read, `GET` with `after` and optionally `wait_ms`.
pub const INBOX_PATH: &str = "/client/v1/inbox";
/// The `Accept` value that asks the inbox for an [`InboxPage`] instead of JSON.
pub const INBOX_BINARY: &str = "application/octet-stream";
/// Most entries in one inbox answer; clients page with `after`.
pub const INBOX_PAGE_ENTRIES: usize = 256;

/// `GET /client/v1/info`: who the provider is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's domain.
    pub domain: String,
    /// `mimi://DOMAIN`, the hub's identity in rooms it hosts.
    pub provider_uri: String,
    /// The hub's raw Ed25519 external-sender key, hex.
    pub hub_signature_key: String,
}

/// `POST /client/v1/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The user name, canonical form (IN-SERVER-13).
    pub user: String,
    /// The device name, canonical form.
    pub device: String,
    /// The raw Ed25519 public key to vouch for, hex.
    pub signature_key: String,
    /// The proof of possession of `signature_key`, hex. Optional only so that a request
    /// without it gets a 400 that says so.
    #[serde(default)]
    pub proof: Option<String>,
    /// When the client signed the proof, Unix seconds.
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// `mimi://domain/d/user/device`.
    pub device_uri: String,
    /// `mimi://domain/u/user`.
    pub user_uri: String,
    /// The bearer token for every later call, hex.
    pub token: String,
    /// The credential chain the provider issued, DER in hex, client certificate first.
    pub chain: Vec<String>,
}

/// `POST /client/v1/key-packages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPackageUpload {
    /// KeyPackages (TLS-encoded, without MLSMessage framing), hex.
    pub key_packages: Vec<String>,
}

/// The answer to a KeyPackage upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPackagesStored {
    /// How many were stored.
    pub stored: usize,
}

/// `POST /client/v1/consent/mode`: who may fetch our KeyPackages without a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentModeRequest {
    /// `anyone` or `contacts`.
    pub mode: String,
}

/// `POST /client/v1/consent`: a consent action of ours about another user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentActionRequest {
    /// `request`, `cancel` (we are the requester), `grant`, `deny` or `revoke` (we are the
    /// target).
    pub action: String,
    /// The other user's URI.
    pub user: String,
    /// The one room the action is for; absent for any room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// With `grant`: hand over one KeyPackage of each of our clients.
    #[serde(default)]
    pub with_key_packages: bool,
}

/// `GET /client/v1/consent`: our mode and every consent scope we are part of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentList {
    /// `anyone` or `contacts`.
    pub mode: String,
    /// The scopes, newest first.
    pub entries: Vec<ConsentListEntry>,
}

/// One consent scope as `GET /client/v1/consent` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentListEntry {
    /// The user whose consent it is.
    pub target: String,
    /// The user who would add the target.
    pub requester: String,
    /// The one room it is for; absent for any room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// `requested`, `granted`, `denied` or `revoked`.
    pub state: String,
    /// KeyPackages of the target that came with a grant.
    pub key_packages: u64,
    /// When it last changed, seconds since the UNIX epoch.
    pub updated_at: u64,
}

/// `POST /client/v1/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    /// The room's name, the last segment of its URI.
    pub name: String,
    /// The group's GroupInfo as an MLSMessage, hex.
    pub group_info: String,
    /// The ratchet tree, TLS-encoded, hex.
    pub ratchet_tree: String,
}

/// The answer to a room creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreated {
    /// The room's URI.
    pub room: String,
}

/// One inbox entry in the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntryJson {
    /// Position in the client's inbox, increasing across all its rooms.
    pub id: i64,
    /// The room the entry belongs to.
    pub room: String,
    /// A `FanoutMessage`, hex.
    pub body: String,
}

/// `POST /client/v1/inbox/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    /// Every entry up to this id is acknowledged.
    pub up_to: i64,
}

/// `POST /client/v1/unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeRequest {
    /// The room to stop receiving.
    pub room: String,
}

/// `POST /client/v1/discovery/claim` and `/remove`: an identifier (`phone:+...` or
/// `email:...`), and for a removal the discovery providers to tell besides ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryClaimRequest {
    /// The identifier.
    pub identifier: String,
    /// Other discovery providers (domains) that keep a record of it, for a removal.
    #[serde(default)]
    pub from: Vec<String>,
}

/// `POST /client/v1/discovery/verify`: the code the identifier received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryVerifyRequest {
    /// The identifier.
    pub identifier: String,
    /// The one-time code.
    pub code: String,
}

/// `POST /client/v1/discovery/publish`: a record the client signed, for its provider to attest,
/// keep and send on to the discovery providers in `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryPublishRequest {
    /// The `MappingTbs`, hex.
    pub record: String,
    /// The client's signature over it, hex.
    pub user_signature: String,
    /// Other discovery providers (domains) to publish to.
    #[serde(default)]
    pub to: Vec<String>,
}

/// `GET /client/v1/discovery`: the identifiers our user claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryClaims {
    /// Each identifier and whether it is proved.
    pub claims: Vec<DiscoveryClaim>,
}

/// One claimed identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryClaim {
    /// The identifier, as a URI (`tel:` or `mailto:`).
    pub identifier: String,
    /// Whether its code was checked.
    pub verified: bool,
}

/// `GET /client/v1/profile`, and the answer to `POST`: the caller's profile fields and which
/// of them peers' identifier queries may match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    /// The caller's user URI.
    pub user: String,
    /// `handle`, `email`, `phone`, `name` and `nick`, in that order.
    pub fields: Vec<ProfileFieldView>,
}

/// One field of a [`ProfileView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFieldView {
    /// `handle`, `email`, `phone`, `name` or `nick`.
    pub field: String,
    /// The value, absent when unset; the nick's is the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Whether identifier queries may match the field (default off).
    pub searchable: bool,
}

/// `POST /client/v1/profile`: one change to the caller's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProfileChange {
    /// `{"action": "set", "field", "value"}`: sets `handle`, `email`, `phone` or `name`.
    Set {
        /// The field.
        field: String,
        /// Its new value, checked by the provider.
        value: String,
    },
    /// `{"action": "clear", "field"}`: unsets a field; its searchable flag stays.
    Clear {
        /// The field.
        field: String,
    },
    /// `{"action": "searchable", "field", "on"}`: lets identifier queries match the field, or
    /// stops them; `nick` too.
    Searchable {
        /// The field.
        field: String,
        /// Whether it is searchable.
        on: bool,
    },
}

/// The answer to an asset upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetStored {
    /// Where the asset can be downloaded (through a room's hub).
    pub url: String,
}

/// One inbox entry in the binary answer.
///
/// ```text
/// struct {
///     uint64 id;
///     opaque room<V>;
///     opaque body<V>;      // a FanoutMessage
/// } InboxEntry;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// Position in the client's inbox, increasing across all its rooms.
    pub id: u64,
    /// The room the entry belongs to.
    pub room: String,
    /// A `FanoutMessage`.
    pub body: Vec<u8>,
}

/// The binary inbox answer (`Accept: application/octet-stream`): half the size of the JSON
/// answer's hex and nothing to parse but lengths.
///
/// ```text
/// struct { InboxEntry entries<V>; } InboxPage;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxPage {
    /// The entries, oldest first.
    pub entries: Vec<InboxEntry>,
}

impl Codec for InboxEntry {
    const NAME: &'static str = "InboxEntry";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.u64(Self::NAME)?;
        let room = std::str::from_utf8(r.opaque(Self::NAME, MAX_URI)?)
            .map_err(|_| DecodeError::Malformed {
                ty: Self::NAME,
                reason: "room is not UTF-8",
            })?
            .to_owned();
        let body = r.opaque(Self::NAME, MAX_BODY)?.to_vec();
        Ok(Self { id, room, body })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        put_opaque(out, self.room.as_bytes());
        put_opaque(out, &self.body);
    }
}

impl Codec for InboxPage {
    const NAME: &'static str = "InboxPage";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            entries: read_codec_vec(r, Self::NAME, MAX_BODY)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.entries);
    }
}

wire_via_codec!(InboxEntry, InboxPage);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wire;

    fn page() -> InboxPage {
        InboxPage {
            entries: vec![
                InboxEntry {
                    id: 0x0102,
                    room: "r".into(),
                    body: vec![0xAA, 0xBB],
                },
                InboxEntry {
                    id: 7,
                    room: String::new(),
                    body: Vec::new(),
                },
            ],
        }
    }

    /// Written out by hand from the structure above; every vector is under 64 bytes, so each
    /// length is a one-byte varint.
    const PAGE: &[u8] = &[
        0x17, // entries<V>: 23 bytes
        0, 0, 0, 0, 0, 0, 0x01, 0x02, // id
        0x01, b'r', // room<V>
        0x02, 0xAA, 0xBB, // body<V>
        0, 0, 0, 0, 0, 0, 0, 0x07, // id
        0x00, // room<V>, empty
        0x00, // body<V>, empty
    ];

    #[test]
    fn a_page_encodes_to_the_bytes_written_by_hand_and_back() {
        assert_eq!(page().encode(), PAGE);
        assert_eq!(InboxPage::decode(PAGE).unwrap(), page());
        assert_eq!(InboxPage::default().encode(), [0x00]);
    }

    #[test]
    fn truncated_or_padded_pages_are_refused() {
        crate::codec::testing::assert_truncations_fail::<InboxPage>(PAGE);
        crate::codec::testing::assert_trailing_fails::<InboxPage>(PAGE);
        let mut not_utf8 = PAGE.to_vec();
        not_utf8[10] = 0xFF;
        assert!(matches!(
            InboxPage::decode(&not_utf8),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn json_bodies_keep_the_field_names_of_the_documented_api() {
        let entry = InboxEntryJson {
            id: 3,
            room: "mimi://a.example/r/x".into(),
            body: "00ff".into(),
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"id":3,"room":"mimi://a.example/r/x","body":"00ff"}"#
        );
        let register: RegisterRequest =
            serde_json::from_str(r#"{"user":"alice","device":"1","signature_key":"00"}"#).unwrap();
        assert_eq!(register.proof, None);
        assert_eq!(
            serde_json::to_string(&AckRequest { up_to: 9 }).unwrap(),
            r#"{"up_to":9}"#
        );
    }

    #[test]
    fn a_profile_change_is_tagged_by_its_action() {
        let cases = [
            (
                ProfileChange::Set {
                    field: "email".into(),
                    value: "al@a.example".into(),
                },
                r#"{"action":"set","field":"email","value":"al@a.example"}"#,
            ),
            (
                ProfileChange::Clear {
                    field: "phone".into(),
                },
                r#"{"action":"clear","field":"phone"}"#,
            ),
            (
                ProfileChange::Searchable {
                    field: "nick".into(),
                    on: true,
                },
                r#"{"action":"searchable","field":"nick","on":true}"#,
            ),
        ];
        for (change, json) in cases {
            assert_eq!(serde_json::to_string(&change).unwrap(), json);
            assert_eq!(serde_json::from_str::<ProfileChange>(json).unwrap(), change);
        }
        assert!(serde_json::from_str::<ProfileChange>(r#"{"action":"drop","field":"x"}"#).is_err());
    }
}
