//! Finding a user's stable URI at a provider: `POST /identifierQuery/{domain}`
//! (draft-ietf-mimi-protocol-06 §5.8, digest §2.6.7).
//!
//! The code points are closed here (IN-IDQ-2): a search type we do not know could carry a
//! `select` arm we cannot skip, and a response or field source we do not know cannot be acted
//! on, so each is a typed decode error. The draft's `string` is `opaque<V>` holding UTF-8
//! (IN-IDQ-1, IN-PROTO-1).

use crate::codec::{
    Codec, MAX_BODY, Reader, put_codec_vec, put_opaque, read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::messages::AppDataDictionary;

/// Most query elements one request may carry on the wire. A provider forbids far fewer
/// (IN-IDQ-4); this only bounds what a decoder builds.
pub const MAX_QUERY_ELEMENTS: usize = 64;

/// Longest `searchValue`, bytes: more than any handle, address, number or name people type.
pub const MAX_SEARCH_VALUE: usize = 1024;

/// Longest `claimName`, `propertyName` or `fieldName`, bytes; OIDC claim and vCard property
/// names are a few dozen characters.
pub const MAX_FIELD_NAME: usize = 256;

/// Longest `fieldValue`, bytes.
pub const MAX_FIELD_VALUE: usize = 16 << 10;

/// Most users (URIs, and profiles) one answer may list.
pub const MAX_FOUND_USERS: usize = 256;

/// Most fields one [`UserProfile`] may carry.
pub const MAX_PROFILE_FIELDS: usize = 64;

/// Largest `query_elements` vector, bytes: every element at its largest.
const MAX_QUERY_BYTES: usize = MAX_QUERY_ELEMENTS * (1 + 2 * 4 + MAX_FIELD_NAME + MAX_SEARCH_VALUE);

/// `enum { reserved(0), handle(1), nick(2), email(3), phone(4), partialName(5),
/// wholeProfile(6), oidcStdClaim(7), vcardField(8), (255) } SearchIdentifierType`. Closed
/// (IN-IDQ-2): `reserved` and values above 8 do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchIdentifierType {
    /// The whole handle URI, exactly (`im:alice.smith@a.example`).
    Handle,
    /// The user part of the handle or user URI, exactly (`alice.smith`).
    Nick,
    /// An RFC 5322 addr-spec, exactly.
    Email,
    /// An E.164 number with its `+`, exactly.
    Phone,
    /// A case-insensitive substring of a name.
    PartialName,
    /// A substring of any searchable field.
    WholeProfile,
    /// An OpenID Connect standard claim, exactly; the element names the claim.
    OidcStdClaim,
    /// A vCard property, exactly; the element names the property.
    VcardField,
}

impl SearchIdentifierType {
    /// The code point on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Handle => 1,
            Self::Nick => 2,
            Self::Email => 3,
            Self::Phone => 4,
            Self::PartialName => 5,
            Self::WholeProfile => 6,
            Self::OidcStdClaim => 7,
            Self::VcardField => 8,
        }
    }

    /// The draft's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Handle => "handle",
            Self::Nick => "nick",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::PartialName => "partialName",
            Self::WholeProfile => "wholeProfile",
            Self::OidcStdClaim => "oidcStdClaim",
            Self::VcardField => "vcardField",
        }
    }
}

impl Codec for SearchIdentifierType {
    const NAME: &'static str = "SearchIdentifierType";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8(Self::NAME)? {
            1 => Self::Handle,
            2 => Self::Nick,
            3 => Self::Email,
            4 => Self::Phone,
            5 => Self::PartialName,
            6 => Self::WholeProfile,
            7 => Self::OidcStdClaim,
            8 => Self::VcardField,
            value => {
                return Err(DecodeError::UnknownValue {
                    ty: Self::NAME,
                    value: value.into(),
                });
            }
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

/// What one [`QueryElement`] searches, with what its `select` carries: only the two
/// standard-field types name a field, so a name can exist only on them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SearchField {
    /// `handle`.
    Handle,
    /// `nick`.
    Nick,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `partialName`.
    PartialName,
    /// `wholeProfile`.
    WholeProfile,
    /// `oidcStdClaim`, with `opaque claimName<V>`.
    OidcStdClaim {
        /// The claim, e.g. `given_name`.
        claim_name: Vec<u8>,
    },
    /// `vcardField`, with `opaque propertyName<V>`.
    VcardField {
        /// The property, e.g. `ORG`.
        property_name: Vec<u8>,
    },
}

impl SearchField {
    /// The search type this field travels as.
    pub fn search_type(&self) -> SearchIdentifierType {
        match self {
            Self::Handle => SearchIdentifierType::Handle,
            Self::Nick => SearchIdentifierType::Nick,
            Self::Email => SearchIdentifierType::Email,
            Self::Phone => SearchIdentifierType::Phone,
            Self::PartialName => SearchIdentifierType::PartialName,
            Self::WholeProfile => SearchIdentifierType::WholeProfile,
            Self::OidcStdClaim { .. } => SearchIdentifierType::OidcStdClaim,
            Self::VcardField { .. } => SearchIdentifierType::VcardField,
        }
    }
}

/// `QueryElement`: one condition of a query; a user matches a request when it matches every
/// element (AND).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryElement {
    /// `searchType` and, for the standard-field types, the field's name.
    pub field: SearchField,
    /// `opaque searchValue<V>`, UTF-8 (checked when decoding), at most [`MAX_SEARCH_VALUE`]
    /// bytes.
    pub search_value: String,
}

impl QueryElement {
    /// An element searching `field` for `value`.
    pub fn new(field: SearchField, value: impl Into<String>) -> Self {
        Self {
            field,
            search_value: value.into(),
        }
    }
}

impl Codec for QueryElement {
    const NAME: &'static str = "QueryElement";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        let field = match SearchIdentifierType::read(r)? {
            SearchIdentifierType::Handle => SearchField::Handle,
            SearchIdentifierType::Nick => SearchField::Nick,
            SearchIdentifierType::Email => SearchField::Email,
            SearchIdentifierType::Phone => SearchField::Phone,
            SearchIdentifierType::PartialName => SearchField::PartialName,
            SearchIdentifierType::WholeProfile => SearchField::WholeProfile,
            SearchIdentifierType::OidcStdClaim => SearchField::OidcStdClaim {
                claim_name: r.opaque_vec(n, MAX_FIELD_NAME)?,
            },
            SearchIdentifierType::VcardField => SearchField::VcardField {
                property_name: r.opaque_vec(n, MAX_FIELD_NAME)?,
            },
        };
        let search_value = utf8(
            r.opaque_vec(n, MAX_SEARCH_VALUE)?,
            n,
            "searchValue is not UTF-8",
        )?;
        Ok(Self {
            field,
            search_value,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.field.search_type().write(out);
        match &self.field {
            SearchField::OidcStdClaim { claim_name } => put_opaque(out, claim_name),
            SearchField::VcardField { property_name } => put_opaque(out, property_name),
            _ => {}
        }
        put_opaque(out, self.search_value.as_bytes());
    }
}

/// `struct { QueryElement query_elements<V>; AppDataDictionary id_request_extensions; }
/// IdentifierRequest`: the body of `POST /identifierQuery/{domain}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentifierRequest {
    /// The conditions, all of which must hold; at most [`MAX_QUERY_ELEMENTS`] decode.
    pub query_elements: Vec<QueryElement>,
    /// Extension point; we send none and ignore what we get.
    pub id_request_extensions: AppDataDictionary,
}

impl IdentifierRequest {
    /// A request for users matching every one of `elements`, without extensions.
    pub fn new(elements: Vec<QueryElement>) -> Self {
        Self {
            query_elements: elements,
            id_request_extensions: AppDataDictionary::default(),
        }
    }
}

impl Codec for IdentifierRequest {
    const NAME: &'static str = "IdentifierRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let query_elements: Vec<QueryElement> = read_codec_vec(r, Self::NAME, MAX_QUERY_BYTES)?;
        if query_elements.len() > MAX_QUERY_ELEMENTS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            query_elements,
            id_request_extensions: AppDataDictionary::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.query_elements);
        self.id_request_extensions.write(out);
    }
}

/// `enum { success(0), notFound(1), ambiguous(2), forbidden(3), unsupportedField(4), (255) }
/// IdentifierQueryCode`. Closed (IN-IDQ-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierQueryCode {
    /// At least one user matched.
    Success,
    /// The query was acceptable and nobody (searchable) matched.
    NotFound,
    /// The query must be more exact before the provider answers with users.
    Ambiguous,
    /// The endpoint, or this field or combination of fields, is not allowed.
    Forbidden,
    /// The provider does not search one of the fields queried.
    UnsupportedField,
}

impl IdentifierQueryCode {
    /// The code point on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::NotFound => 1,
            Self::Ambiguous => 2,
            Self::Forbidden => 3,
            Self::UnsupportedField => 4,
        }
    }

    /// The draft's name of the code.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::NotFound => "notFound",
            Self::Ambiguous => "ambiguous",
            Self::Forbidden => "forbidden",
            Self::UnsupportedField => "unsupportedField",
        }
    }
}

impl Codec for IdentifierQueryCode {
    const NAME: &'static str = "IdentifierQueryCode";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8(Self::NAME)? {
            0 => Self::Success,
            1 => Self::NotFound,
            2 => Self::Ambiguous,
            3 => Self::Forbidden,
            4 => Self::UnsupportedField,
            value => {
                return Err(DecodeError::UnknownValue {
                    ty: Self::NAME,
                    value: value.into(),
                });
            }
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

/// `enum { reserved(0), oidcStdClaim(7), vcardField(8), (255) } FieldSource`: which standard
/// a [`ProfileField`]'s name comes from. Closed (IN-IDQ-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldSource {
    /// An OpenID Connect standard claim name.
    OidcStdClaim,
    /// A vCard property name.
    VcardField,
}

impl FieldSource {
    /// The code point on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::OidcStdClaim => 7,
            Self::VcardField => 8,
        }
    }

    /// The draft's name of the source.
    pub fn name(self) -> &'static str {
        match self {
            Self::OidcStdClaim => "oidcStdClaim",
            Self::VcardField => "vcardField",
        }
    }
}

impl Codec for FieldSource {
    const NAME: &'static str = "FieldSource";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            7 => Ok(Self::OidcStdClaim),
            8 => Ok(Self::VcardField),
            value => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: value.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

/// `struct { FieldSource fieldSource; string fieldName; opaque fieldValue<V>; }
/// ProfileField`: one field of a found user's profile. `string` is `opaque<V>` holding UTF-8
/// (IN-IDQ-1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileField {
    /// Which standard names the field.
    pub field_source: FieldSource,
    /// The claim or property name, e.g. `EMAIL`; at most [`MAX_FIELD_NAME`] bytes.
    pub field_name: String,
    /// The value, opaque at this layer (ours are UTF-8); at most [`MAX_FIELD_VALUE`] bytes.
    pub field_value: Vec<u8>,
}

impl Codec for ProfileField {
    const NAME: &'static str = "ProfileField";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        Ok(Self {
            field_source: FieldSource::read(r)?,
            field_name: utf8(
                r.opaque_vec(n, MAX_FIELD_NAME)?,
                n,
                "fieldName is not UTF-8",
            )?,
            field_value: r.opaque_vec(n, MAX_FIELD_VALUE)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.field_source.write(out);
        put_opaque(out, self.field_name.as_bytes());
        put_opaque(out, &self.field_value);
    }
}

/// `struct { IdentifierUri stableUri; ProfileField fields<V>; } UserProfile`: a found user and
/// the fields of its profile the provider discloses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserProfile {
    /// The user's stable URI.
    pub stable_uri: IdentifierUri,
    /// The disclosed fields, at most [`MAX_PROFILE_FIELDS`].
    pub fields: Vec<ProfileField>,
}

impl Codec for UserProfile {
    const NAME: &'static str = "UserProfile";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let stable_uri = IdentifierUri::read(r)?;
        let fields: Vec<ProfileField> = read_codec_vec(r, Self::NAME, MAX_BODY)?;
        if fields.len() > MAX_PROFILE_FIELDS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self { stable_uri, fields })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.stable_uri.write(out);
        put_codec_vec(out, &self.fields);
    }
}

/// `struct { IdentifierQueryCode responseCode; IdentifierUri uri<V>; UserProfile
/// foundProfiles<V>; AppDataDictionary id_response_extensions; } IdentifierResponse`: the
/// answer to an [`IdentifierRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierResponse {
    /// What became of the query.
    pub response_code: IdentifierQueryCode,
    /// The stable URIs of the users found, at most [`MAX_FOUND_USERS`].
    pub uri: Vec<IdentifierUri>,
    /// Their profiles, at most [`MAX_FOUND_USERS`].
    pub found_profiles: Vec<UserProfile>,
    /// Extension point; we send none and ignore what we get.
    pub id_response_extensions: AppDataDictionary,
}

impl IdentifierResponse {
    /// An answer with `code` and nobody in it (every code but `success`).
    pub fn empty(code: IdentifierQueryCode) -> Self {
        Self {
            response_code: code,
            uri: Vec::new(),
            found_profiles: Vec::new(),
            id_response_extensions: AppDataDictionary::default(),
        }
    }
}

impl Codec for IdentifierResponse {
    const NAME: &'static str = "IdentifierResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        let response_code = IdentifierQueryCode::read(r)?;
        let uri: Vec<IdentifierUri> = read_codec_vec(r, n, MAX_BODY)?;
        let found_profiles: Vec<UserProfile> = read_codec_vec(r, n, MAX_BODY)?;
        if uri.len() > MAX_FOUND_USERS || found_profiles.len() > MAX_FOUND_USERS {
            return Err(DecodeError::TooLong { ty: n });
        }
        Ok(Self {
            response_code,
            uri,
            found_profiles,
            id_response_extensions: AppDataDictionary::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.response_code.write(out);
        put_codec_vec(out, &self.uri);
        put_codec_vec(out, &self.found_profiles);
        self.id_response_extensions.write(out);
    }
}

wire_via_codec!(
    SearchIdentifierType,
    QueryElement,
    IdentifierRequest,
    IdentifierQueryCode,
    FieldSource,
    ProfileField,
    UserProfile,
    IdentifierResponse,
);

/// `bytes` as a string, or `Malformed` with `reason`.
fn utf8(bytes: Vec<u8>, ty: &'static str, reason: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes).map_err(|_| DecodeError::Malformed { ty, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::{assert_trailing_fails, assert_truncations_fail, check_wire};
    use crate::components::ComponentId;
    use crate::messages::ComponentData;

    /// `opaque<V>` of a short string written out by hand: one length byte (< 64), the bytes.
    fn v(s: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(s.len()).unwrap()];
        assert!(out[0] < 64);
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// The draft's §5.8 example of an AND query, OIDC `given_name` and vCard `ORG`, written out
    /// by hand: the vector of two elements, each type byte, the name, the value; then the empty
    /// extensions.
    #[test]
    fn an_and_query_of_two_standard_fields_is_encoded_as_the_draft_writes_it() {
        let request = IdentifierRequest::new(vec![
            QueryElement::new(
                SearchField::OidcStdClaim {
                    claim_name: b"given_name".to_vec(),
                },
                "Xavier",
            ),
            QueryElement::new(
                SearchField::VcardField {
                    property_name: b"ORG".to_vec(),
                },
                "XYZ",
            ),
        ]);
        let first = [&[7u8][..], &v("given_name"), &v("Xavier")].concat();
        let second = [&[8u8][..], &v("ORG"), &v("XYZ")].concat();
        assert_eq!((first.len(), second.len()), (19, 9));
        let mut expected = vec![28];
        expected.extend(&first);
        expected.extend(&second);
        expected.push(0); // id_request_extensions
        assert_eq!(request.encode(), expected);
        assert_eq!(IdentifierRequest::decode(&expected), Ok(request.clone()));
        check_wire(&request);
    }

    #[test]
    fn the_six_plain_types_carry_no_field_name() {
        let cases = [
            (SearchField::Handle, 1u8, "im:alice.smith@a.example"),
            (SearchField::Nick, 2, "alice.smith"),
            (SearchField::Email, 3, "asmith@a.example"),
            (SearchField::Phone, 4, "+12125551212"),
            (SearchField::PartialName, 5, "mat"),
            (SearchField::WholeProfile, 6, "smith"),
        ];
        for (field, code, value) in cases {
            let element = QueryElement::new(field.clone(), value);
            let expected = [&[code][..], &v(value)].concat();
            assert_eq!(element.encode(), expected, "{field:?}");
            assert_eq!(QueryElement::decode(&expected), Ok(element.clone()));
            assert_eq!(field.search_type().code(), code);
            check_wire(&element);
        }
    }

    #[test]
    fn a_success_answer_lists_uris_then_profiles_as_the_draft_writes_it() {
        let alice = IdentifierUri::new("mimi://a.example/u/alice");
        let response = IdentifierResponse {
            response_code: IdentifierQueryCode::Success,
            uri: vec![alice.clone()],
            found_profiles: vec![UserProfile {
                stable_uri: alice,
                fields: vec![ProfileField {
                    field_source: FieldSource::VcardField,
                    field_name: "EMAIL".into(),
                    field_value: b"al@a.example".to_vec(),
                }],
            }],
            id_response_extensions: AppDataDictionary::default(),
        };
        let uri = v("mimi://a.example/u/alice"); // 25 bytes
        let field = [&[8u8][..], &v("EMAIL"), &v("al@a.example")].concat(); // 20 bytes
        let mut profile = uri.clone();
        profile.push(20);
        profile.extend(&field);
        let mut expected = vec![0]; // success
        expected.push(25);
        expected.extend(&uri);
        expected.push(46);
        expected.extend(&profile);
        expected.push(0);
        assert_eq!(response.encode(), expected);
        assert_eq!(IdentifierResponse::decode(&expected), Ok(response.clone()));
        check_wire(&response);
    }

    #[test]
    fn every_empty_answer_is_its_code_and_three_empty_vectors() {
        for (code, byte) in [
            (IdentifierQueryCode::Success, 0u8),
            (IdentifierQueryCode::NotFound, 1),
            (IdentifierQueryCode::Ambiguous, 2),
            (IdentifierQueryCode::Forbidden, 3),
            (IdentifierQueryCode::UnsupportedField, 4),
        ] {
            let answer = IdentifierResponse::empty(code);
            assert_eq!(answer.encode(), [byte, 0, 0, 0], "{}", code.name());
            assert_eq!(IdentifierResponse::decode(&[byte, 0, 0, 0]), Ok(answer));
        }
    }

    #[test]
    fn extensions_travel_in_both_directions() {
        let extensions = AppDataDictionary::from_entries(vec![ComponentData {
            component_id: ComponentId(0x8001),
            data: vec![0xaa],
        }])
        .unwrap();
        let mut request = IdentifierRequest::new(vec![QueryElement::new(SearchField::Nick, "x")]);
        request.id_request_extensions = extensions.clone();
        assert_eq!(
            request.encode(),
            [3, 2, 1, b'x', 4, 0x80, 0x01, 1, 0xaa].to_vec()
        );
        check_wire(&request);
        let mut response = IdentifierResponse::empty(IdentifierQueryCode::NotFound);
        response.id_response_extensions = extensions;
        assert_eq!(
            response.encode(),
            [1, 0, 0, 4, 0x80, 0x01, 1, 0xaa].to_vec()
        );
        check_wire(&response);
    }

    #[test]
    fn reserved_and_unknown_code_points_are_refused_by_type() {
        for bad in [0u8, 9, 0x80, 255] {
            assert_eq!(
                QueryElement::decode(&[bad, 1, b'x']),
                Err(DecodeError::UnknownValue {
                    ty: "SearchIdentifierType",
                    value: bad.into()
                })
            );
        }
        for bad in [5u8, 255] {
            assert_eq!(
                IdentifierResponse::decode(&[bad, 0, 0, 0]),
                Err(DecodeError::UnknownValue {
                    ty: "IdentifierQueryCode",
                    value: bad.into()
                })
            );
        }
        for bad in [0u8, 1, 6, 9, 255] {
            let mut field = vec![bad];
            field.extend(v("EMAIL"));
            field.extend(v("x"));
            assert_eq!(
                ProfileField::decode(&field),
                Err(DecodeError::UnknownValue {
                    ty: "FieldSource",
                    value: bad.into()
                })
            );
        }
    }

    #[test]
    fn strings_that_are_not_utf8_are_refused() {
        assert_eq!(
            QueryElement::decode(&[1, 2, 0xc3, 0x28]),
            Err(DecodeError::Malformed {
                ty: "QueryElement",
                reason: "searchValue is not UTF-8"
            })
        );
        assert_eq!(
            ProfileField::decode(&[8, 1, 0xff, 0]),
            Err(DecodeError::Malformed {
                ty: "ProfileField",
                reason: "fieldName is not UTF-8"
            })
        );
        // A field value is opaque: any bytes.
        check_wire(&ProfileField {
            field_source: FieldSource::OidcStdClaim,
            field_name: "picture".into(),
            field_value: vec![0xff, 0x00],
        });
    }

    #[test]
    fn truncated_and_padded_bodies_are_refused() {
        let request = IdentifierRequest::new(vec![
            QueryElement::new(SearchField::Email, "al@a.example"),
            QueryElement::new(
                SearchField::VcardField {
                    property_name: b"ORG".to_vec(),
                },
                "A",
            ),
        ]);
        assert_truncations_fail::<IdentifierRequest>(&request.encode());
        assert_trailing_fails::<IdentifierRequest>(&request.encode());
        assert_eq!(
            IdentifierRequest::decode(&[]),
            Err(DecodeError::Truncated {
                ty: "IdentifierRequest"
            })
        );
        // A vector claiming more than it holds, and a value longer than the limit.
        assert!(matches!(
            IdentifierRequest::decode(&[5, 1, 1, b'x', 0]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = vec![1u8];
        crate::codec::put_varint(&mut long, MAX_SEARCH_VALUE + 1);
        long.extend(vec![b'a'; MAX_SEARCH_VALUE + 1]);
        assert_eq!(
            QueryElement::decode(&long),
            Err(DecodeError::TooLong { ty: "QueryElement" })
        );
        let response = IdentifierResponse::decode(&[0, 0, 0, 0]).unwrap();
        assert_truncations_fail::<IdentifierResponse>(&response.encode());
        assert_trailing_fails::<IdentifierResponse>(&response.encode());
    }

    #[test]
    fn too_many_elements_or_users_do_not_decode() {
        let many = IdentifierRequest::new(vec![
            QueryElement::new(SearchField::Nick, "x");
            MAX_QUERY_ELEMENTS + 1
        ]);
        assert_eq!(
            IdentifierRequest::decode(&many.encode()),
            Err(DecodeError::TooLong {
                ty: "IdentifierRequest"
            })
        );
        let most = IdentifierRequest::new(vec![
            QueryElement::new(SearchField::Nick, "x");
            MAX_QUERY_ELEMENTS
        ]);
        check_wire(&most);
        let mut crowd = IdentifierResponse::empty(IdentifierQueryCode::Success);
        crowd.uri = vec![IdentifierUri::new("mimi://a/u/x"); MAX_FOUND_USERS + 1];
        assert_eq!(
            IdentifierResponse::decode(&crowd.encode()),
            Err(DecodeError::TooLong {
                ty: "IdentifierResponse"
            })
        );
    }
}
