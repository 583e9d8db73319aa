//! Explicit consent: `POST /requestConsent/{targetDomain}` and `POST /updateConsent/
//! {requesterDomain}` (draft-ietf-mimi-protocol-06 §5.7, digest §2.6.6).

use crate::codec::{
    Codec, MAX_BODY, MAX_MLS_OBJECT, Reader, put_codec_vec, put_optional, put_varint,
    read_codec_vec, wire_via_codec,
};
use crate::components::ComponentId;
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::mls::KeyPackage;

/// `enum { cancel(0), request(1), grant(2), revoke(3), (255) } ConsentOperation`. Closed here
/// (IN-CONSENT-2): only `grant` selects extra fields, and a peer that sends an operation we do
/// not know asks for something we cannot carry out, so it is refused rather than skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentOperation {
    /// Withdraw an earlier request with the same scope (requestConsent).
    Cancel,
    /// Ask the target to consent (requestConsent).
    Request,
    /// The target consents, possibly handing over KeyPackages (updateConsent).
    Grant,
    /// The target withdraws or refuses consent (updateConsent).
    Revoke,
}

impl ConsentOperation {
    /// The code point on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Cancel => 0,
            Self::Request => 1,
            Self::Grant => 2,
            Self::Revoke => 3,
        }
    }

    /// The draft's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Request => "request",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
        }
    }
}

impl Codec for ConsentOperation {
    const NAME: &'static str = "ConsentOperation";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            0 => Ok(Self::Cancel),
            1 => Ok(Self::Request),
            2 => Ok(Self::Grant),
            3 => Ok(Self::Revoke),
            other => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: other.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

/// `ConsentScope`: who asks, about whom, and optionally for which room only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsentScope {
    /// The user who would fetch the target's KeyPackages.
    pub requester_uri: IdentifierUri,
    /// The user whose consent it is.
    pub target_uri: IdentifierUri,
    /// The one room the consent is for; `None` for any room (a connection).
    pub room_id: Option<IdentifierUri>,
}

impl Codec for ConsentScope {
    const NAME: &'static str = "ConsentScope";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            requester_uri: IdentifierUri::read(r)?,
            target_uri: IdentifierUri::read(r)?,
            room_id: r.optional(Self::NAME, IdentifierUri::read)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.requester_uri.write(out);
        self.target_uri.write(out);
        put_optional(out, self.room_id.as_ref(), |u, o| u.write(o));
    }
}

/// The operation of a [`ConsentEntry`] with what its `select` carries: only a grant has a field
/// of its own, so a KeyPackage list can exist only on a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentChange {
    /// `cancel`.
    Cancel,
    /// `request`.
    Request,
    /// `grant`, with KeyPackages of the target's clients (possibly none).
    Grant {
        /// `KeyPackage clientKeyPackages<V>`.
        client_key_packages: Vec<KeyPackage>,
    },
    /// `revoke` (also a preemptive denial).
    Revoke,
}

impl ConsentChange {
    /// The operation code point this change travels as.
    pub fn operation(&self) -> ConsentOperation {
        match self {
            Self::Cancel => ConsentOperation::Cancel,
            Self::Request => ConsentOperation::Request,
            Self::Grant { .. } => ConsentOperation::Grant,
            Self::Revoke => ConsentOperation::Revoke,
        }
    }
}

/// `ConsentEntry`: the body of both consent endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    /// The operation and, for a grant, its KeyPackages.
    pub change: ConsentChange,
    /// Requester, target and optional room.
    pub scope: ConsentScope,
    /// `AppDataDictionary consent_extensions` (new in -06).
    pub consent_extensions: AppDataDictionary,
}

impl ConsentEntry {
    /// An entry for `change` in `scope` without extensions.
    pub fn new(change: ConsentChange, scope: ConsentScope) -> Self {
        Self {
            change,
            scope,
            consent_extensions: AppDataDictionary::default(),
        }
    }
}

impl Codec for ConsentEntry {
    const NAME: &'static str = "ConsentEntry";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let operation = ConsentOperation::read(r)?;
        let scope = ConsentScope::read(r)?;
        let change = match operation {
            ConsentOperation::Cancel => ConsentChange::Cancel,
            ConsentOperation::Request => ConsentChange::Request,
            ConsentOperation::Grant => ConsentChange::Grant {
                client_key_packages: read_codec_vec(r, Self::NAME, MAX_BODY)?,
            },
            ConsentOperation::Revoke => ConsentChange::Revoke,
        };
        Ok(Self {
            change,
            scope,
            consent_extensions: AppDataDictionary::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.change.operation().write(out);
        self.scope.write(out);
        if let ConsentChange::Grant {
            client_key_packages,
        } = &self.change
        {
            put_codec_vec(out, client_key_packages);
        }
        self.consent_extensions.write(out);
    }
}

/// `struct { ComponentID component_id; opaque data<V>; } ComponentData` (mls-extensions §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentData {
    /// The component.
    pub component_id: ComponentId,
    /// Its data, opaque at this layer.
    pub data: Vec<u8>,
}

impl Codec for ComponentData {
    const NAME: &'static str = "ComponentData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            component_id: ComponentId::read(r)?,
            data: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.component_id.write(out);
        put_varint(out, self.data.len());
        out.extend_from_slice(&self.data);
    }
}

/// `struct { ComponentData component_data<V>; } AppDataDictionary` (mls-extensions §4.6): at
/// most one entry per component, sorted by component ID; anything else does not decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppDataDictionary {
    entries: Vec<ComponentData>,
}

impl AppDataDictionary {
    /// A dictionary of `entries`, or `None` if they are not strictly ascending by component ID.
    pub fn from_entries(entries: Vec<ComponentData>) -> Option<Self> {
        let sorted = entries
            .windows(2)
            .all(|w| w[0].component_id.0 < w[1].component_id.0);
        sorted.then_some(Self { entries })
    }

    /// The entries, ascending by component ID.
    pub fn entries(&self) -> &[ComponentData] {
        &self.entries
    }

    /// The data of `component`, if present.
    pub fn get(&self, component: ComponentId) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.component_id == component)
            .map(|e| e.data.as_slice())
    }
}

impl Codec for AppDataDictionary {
    const NAME: &'static str = "AppDataDictionary";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let entries: Vec<ComponentData> = read_codec_vec(r, Self::NAME, MAX_BODY)?;
        Self::from_entries(entries).ok_or(DecodeError::Malformed {
            ty: Self::NAME,
            reason: "component IDs not strictly ascending",
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.entries);
    }
}

wire_via_codec!(
    ConsentOperation,
    ConsentScope,
    ConsentEntry,
    ComponentData,
    AppDataDictionary,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;

    fn scope(room: Option<&str>) -> ConsentScope {
        ConsentScope {
            requester_uri: IdentifierUri::new("mimi://a.example/u/al"),
            target_uri: IdentifierUri::new("mimi://b.example/u/bo"),
            room_id: room.map(IdentifierUri::new),
        }
    }

    /// `opaque<V>` of a short ASCII string, written out by hand: one length byte (< 64), then
    /// the bytes.
    fn v(s: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(s.len()).unwrap()];
        assert!(out[0] < 64);
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// Written out by hand from the draft's structure: operation byte, requesterUri, targetUri,
    /// `optional<RoomId>` presence byte (and the room), the grant's KeyPackage vector, then the
    /// extensions vector.
    #[test]
    fn a_request_without_room_is_encoded_as_the_draft_writes_it() {
        let entry = ConsentEntry::new(ConsentChange::Request, scope(None));
        let mut expected = vec![1];
        expected.extend(v("mimi://a.example/u/al"));
        expected.extend(v("mimi://b.example/u/bo"));
        expected.push(0); // no room
        expected.push(0); // consent_extensions: empty vector
        assert_eq!(entry.encode(), expected);
        assert_eq!(ConsentEntry::decode(&expected), Ok(entry.clone()));
        check_wire(&entry);
    }

    #[test]
    fn a_revoke_for_one_room_with_an_extension_is_encoded_as_the_draft_writes_it() {
        let mut entry =
            ConsentEntry::new(ConsentChange::Revoke, scope(Some("mimi://a.example/r/x")));
        entry.consent_extensions = AppDataDictionary::from_entries(vec![ComponentData {
            component_id: ComponentId(0x8001),
            data: vec![0xaa, 0xbb],
        }])
        .unwrap();
        let mut expected = vec![3];
        expected.extend(v("mimi://a.example/u/al"));
        expected.extend(v("mimi://b.example/u/bo"));
        expected.push(1);
        expected.extend(v("mimi://a.example/r/x"));
        // One ComponentData of 2 + 1 + 2 bytes.
        expected.extend([5, 0x80, 0x01, 2, 0xaa, 0xbb]);
        assert_eq!(entry.encode(), expected);
        assert_eq!(ConsentEntry::decode(&expected), Ok(entry.clone()));
        check_wire(&entry);
    }

    #[test]
    fn a_grant_carries_its_key_packages_and_an_empty_grant_its_empty_vector() {
        let empty = ConsentEntry::new(
            ConsentChange::Grant {
                client_key_packages: vec![],
            },
            scope(None),
        );
        let mut expected = vec![2];
        expected.extend(v("mimi://a.example/u/al"));
        expected.extend(v("mimi://b.example/u/bo"));
        expected.extend([0, 0, 0]); // no room, no KeyPackages, no extensions
        assert_eq!(empty.encode(), expected);
        check_wire(&empty);

        let kp_bytes = fx::key_package();
        let kp = KeyPackage::from_bytes(&kp_bytes).unwrap();
        let grant = ConsentEntry::new(
            ConsentChange::Grant {
                client_key_packages: vec![kp.clone(), kp],
            },
            scope(None),
        );
        let mut expected = vec![2];
        expected.extend(v("mimi://a.example/u/al"));
        expected.extend(v("mimi://b.example/u/bo"));
        expected.push(0);
        let mut kps = kp_bytes.clone();
        kps.extend(&kp_bytes);
        put_varint(&mut expected, kps.len());
        expected.extend(kps);
        expected.push(0);
        assert_eq!(grant.encode(), expected);
        check_wire(&grant);
    }

    #[test]
    fn operations_outside_the_draft_are_refused_by_type() {
        for op in [4u8, 0x80, 255] {
            let mut bytes = ConsentEntry::new(ConsentChange::Cancel, scope(None)).encode();
            bytes[0] = op;
            assert_eq!(
                ConsentEntry::decode(&bytes),
                Err(DecodeError::UnknownValue {
                    ty: "ConsentOperation",
                    value: op.into()
                })
            );
        }
        for (op, name) in [(0u8, "cancel"), (1, "request"), (2, "grant"), (3, "revoke")] {
            let decoded = ConsentOperation::decode(&[op]).unwrap();
            assert_eq!((decoded.code(), decoded.name()), (op, name));
        }
    }

    #[test]
    fn a_non_grant_followed_by_key_packages_is_refused() {
        // A cancel's extensions vector claims the KeyPackage bytes: not a dictionary.
        let mut bytes = vec![0];
        bytes.extend(v("mimi://a.example/u/al"));
        bytes.extend(v("mimi://b.example/u/bo"));
        bytes.push(0);
        bytes.extend([0, 0]); // an empty KeyPackage vector, then an empty dictionary
        assert_eq!(
            ConsentEntry::decode(&bytes),
            Err(DecodeError::Trailing { ty: "ConsentEntry" })
        );
    }

    #[test]
    fn a_bad_presence_byte_or_unsorted_dictionary_is_refused() {
        let mut bytes = vec![1];
        bytes.extend(v("mimi://a.example/u/al"));
        bytes.extend(v("mimi://b.example/u/bo"));
        bytes.extend([2, 0]);
        assert!(matches!(
            ConsentEntry::decode(&bytes),
            Err(DecodeError::Malformed {
                ty: "ConsentScope",
                ..
            })
        ));
        // Two entries, 0x0002 before 0x0001; and the same ID twice.
        for dict in [
            [6u8, 0, 2, 0, 0, 1, 0].as_slice(),
            [6u8, 0, 1, 0, 0, 1, 0].as_slice(),
        ] {
            assert_eq!(
                AppDataDictionary::decode(dict),
                Err(DecodeError::Malformed {
                    ty: "AppDataDictionary",
                    reason: "component IDs not strictly ascending"
                })
            );
        }
    }

    #[test]
    fn a_scope_round_trips_with_and_without_room() {
        check_wire(&scope(None));
        check_wire(&scope(Some("mimi://c.example/r/y")));
        let mut expected = v("mimi://a.example/u/al");
        expected.extend(v("mimi://b.example/u/bo"));
        expected.push(0);
        assert_eq!(scope(None).encode(), expected);
    }
}
