//! Fetching key material: `POST /keyMaterial/{targetUser}` (draft §5.3.1, digest §2.6.1).

use crate::codec::{
    Codec, MAX_BODY, MAX_MLS_OBJECT, Reader, code_point, put_codec_vec, put_opaque, put_optional,
    read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::messages::protocol::Protocol;
use crate::mls::{
    Capabilities, CipherSuite, Credential, KeyPackage, RequiredCapabilities, SignaturePublicKey,
};

/// A request for one KeyPackage per client of `target_user`, signed by the requesting client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterialRequest {
    /// The protocol; selects the fields below.
    pub protocol: Protocol,
    /// The user asking.
    pub requesting_user: IdentifierUri,
    /// The user whose clients' KeyPackages are wanted.
    pub target_user: IdentifierUri,
    /// The room the KeyPackages are for.
    pub room_id: IdentifierUri,
    /// Cipher suites the room accepts; non-empty.
    pub acceptable_ciphersuites: Vec<CipherSuite>,
    /// The room's required capabilities.
    pub required_capabilities: RequiredCapabilities,
    /// The requesting client's signature key.
    pub requester_signature_key: SignaturePublicKey,
    /// The requesting client's credential.
    pub requester_credential: Credential,
    /// `SignWithLabel(requester_signature_key, "KeyMaterialRequestTBS", tbs)`.
    pub key_material_request_signature: Vec<u8>,
}

impl KeyMaterialRequest {
    /// The signed part of the request.
    pub fn tbs(&self) -> KeyMaterialRequestTbs {
        KeyMaterialRequestTbs {
            protocol: self.protocol,
            requesting_user: self.requesting_user.clone(),
            target_user: self.target_user.clone(),
            room_id: self.room_id.clone(),
            acceptable_ciphersuites: self.acceptable_ciphersuites.clone(),
            required_capabilities: self.required_capabilities.clone(),
            requester_signature_key: self.requester_signature_key.clone(),
            requester_credential: self.requester_credential.clone(),
        }
    }
}

impl Codec for KeyMaterialRequest {
    const NAME: &'static str = "KeyMaterialRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tbs = KeyMaterialRequestTbs::read(r)?;
        let key_material_request_signature = r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?;
        Ok(tbs.with_signature(key_material_request_signature))
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.tbs().write(out);
        put_opaque(out, &self.key_material_request_signature);
    }
}

/// `KeyMaterialRequestTBS`: the request without its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterialRequestTbs {
    /// The protocol.
    pub protocol: Protocol,
    /// The user asking.
    pub requesting_user: IdentifierUri,
    /// The target user.
    pub target_user: IdentifierUri,
    /// The room.
    pub room_id: IdentifierUri,
    /// Acceptable cipher suites.
    pub acceptable_ciphersuites: Vec<CipherSuite>,
    /// Required capabilities.
    pub required_capabilities: RequiredCapabilities,
    /// The requesting client's signature key.
    pub requester_signature_key: SignaturePublicKey,
    /// The requesting client's credential.
    pub requester_credential: Credential,
}

impl KeyMaterialRequestTbs {
    /// Attaches a signature, giving the full request.
    pub fn with_signature(self, signature: Vec<u8>) -> KeyMaterialRequest {
        KeyMaterialRequest {
            protocol: self.protocol,
            requesting_user: self.requesting_user,
            target_user: self.target_user,
            room_id: self.room_id,
            acceptable_ciphersuites: self.acceptable_ciphersuites,
            required_capabilities: self.required_capabilities,
            requester_signature_key: self.requester_signature_key,
            requester_credential: self.requester_credential,
            key_material_request_signature: signature,
        }
    }
}

impl Codec for KeyMaterialRequestTbs {
    const NAME: &'static str = "KeyMaterialRequestTBS";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = Protocol::read(r)?;
        let requesting_user = IdentifierUri::read(r)?;
        let target_user = IdentifierUri::read(r)?;
        let room_id = IdentifierUri::read(r)?;
        let acceptable_ciphersuites = read_codec_vec(r, Self::NAME, MAX_MLS_OBJECT)?;
        // IN-PROTO-21: the draft requires a non-empty list.
        if acceptable_ciphersuites.is_empty() {
            return Err(DecodeError::Malformed {
                ty: Self::NAME,
                reason: "acceptable_ciphersuites is empty",
            });
        }
        Ok(Self {
            protocol,
            requesting_user,
            target_user,
            room_id,
            acceptable_ciphersuites,
            required_capabilities: RequiredCapabilities::read(r)?,
            requester_signature_key: SignaturePublicKey::read(r)?,
            requester_credential: Credential::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.requesting_user.write(out);
        self.target_user.write(out);
        self.room_id.write(out);
        put_codec_vec(out, &self.acceptable_ciphersuites);
        self.required_capabilities.write(out);
        self.requester_signature_key.write(out);
        self.requester_credential.write(out);
    }
}

code_point! {
    /// The per-user result of a key material request.
    KeyMaterialUserCode(u8) {
        /// Material for every client.
        SUCCESS = 0 => "success",
        /// Material for at least one client.
        PARTIAL_SUCCESS = 1 => "partialSuccess",
        /// The provider or no client supports the protocol.
        INCOMPATIBLE_PROTOCOL = 2 => "incompatibleProtocol",
        /// No client matches the required capabilities.
        NO_COMPATIBLE_MATERIAL = 3 => "noCompatibleMaterial",
        /// No such user.
        USER_UNKNOWN = 4 => "userUnknown",
        /// The requester has no consent (also a privacy-preserving catch-all).
        NO_CONSENT = 5 => "noConsent",
        /// No consent for this room.
        NO_CONSENT_FOR_THIS_ROOM = 6 => "noConsentForThisRoom",
        /// The user was deleted.
        USER_DELETED = 7 => "userDeleted",
    }
}

code_point! {
    /// The per-client result of a key material request.
    KeyMaterialClientCode(u8) {
        /// A KeyPackage follows.
        SUCCESS = 0 => "success",
        /// The client has no KeyPackages left.
        KEY_MATERIAL_EXHAUSTED = 1 => "keyMaterialExhausted",
        /// No KeyPackage matches; capabilities may follow.
        NOTHING_COMPATIBLE = 2 => "nothingCompatible",
    }
}

/// One client's entry in a [`KeyMaterialResponse`]. The variants are the draft's
/// `select (clientStatus)`; an unknown status cannot be skipped, so it is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeyMaterial {
    /// `success`: a KeyPackage for the client.
    Success {
        /// The client.
        client_uri: IdentifierUri,
        /// The claimed KeyPackage.
        key_package: KeyPackage,
    },
    /// `keyMaterialExhausted`.
    KeyMaterialExhausted {
        /// The client.
        client_uri: IdentifierUri,
    },
    /// `nothingCompatible`, optionally with the client's capabilities.
    NothingCompatible {
        /// The client.
        client_uri: IdentifierUri,
        /// The client's capabilities, if disclosed.
        client_capabilities: Option<Capabilities>,
    },
}

impl ClientKeyMaterial {
    /// The status code on the wire.
    pub fn client_status(&self) -> KeyMaterialClientCode {
        match self {
            Self::Success { .. } => KeyMaterialClientCode::SUCCESS,
            Self::KeyMaterialExhausted { .. } => KeyMaterialClientCode::KEY_MATERIAL_EXHAUSTED,
            Self::NothingCompatible { .. } => KeyMaterialClientCode::NOTHING_COMPATIBLE,
        }
    }

    /// The client's URI.
    pub fn client_uri(&self) -> &IdentifierUri {
        match self {
            Self::Success { client_uri, .. }
            | Self::KeyMaterialExhausted { client_uri }
            | Self::NothingCompatible { client_uri, .. } => client_uri,
        }
    }
}

impl Codec for ClientKeyMaterial {
    const NAME: &'static str = "ClientKeyMaterial";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let status = KeyMaterialClientCode::read(r)?;
        let client_uri = IdentifierUri::read(r)?;
        // IN-PROTO-7: the select on the outer response's protocol is implied (mls10 only).
        match status {
            KeyMaterialClientCode::SUCCESS => Ok(Self::Success {
                client_uri,
                key_package: KeyPackage::read(r)?,
            }),
            KeyMaterialClientCode::KEY_MATERIAL_EXHAUSTED => {
                Ok(Self::KeyMaterialExhausted { client_uri })
            }
            KeyMaterialClientCode::NOTHING_COMPATIBLE => Ok(Self::NothingCompatible {
                client_uri,
                client_capabilities: r.optional(Self::NAME, Capabilities::read)?,
            }),
            other => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: other.0.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.client_status().write(out);
        self.client_uri().write(out);
        match self {
            Self::Success { key_package, .. } => key_package.write(out),
            Self::KeyMaterialExhausted { .. } => {}
            Self::NothingCompatible {
                client_capabilities,
                ..
            } => put_optional(out, client_capabilities.as_ref(), |c, o| c.write(o)),
        }
    }
}

/// The answer to a [`KeyMaterialRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterialResponse {
    /// The protocol.
    pub protocol: Protocol,
    /// The per-user result.
    pub user_status: KeyMaterialUserCode,
    /// The user.
    pub user_uri: IdentifierUri,
    /// One entry per client; must be empty unless the user status is success, partialSuccess or
    /// noCompatibleMaterial (checked by the caller, not the decoder).
    pub clients: Vec<ClientKeyMaterial>,
}

impl Codec for KeyMaterialResponse {
    const NAME: &'static str = "KeyMaterialResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol: Protocol::read(r)?,
            user_status: KeyMaterialUserCode::read(r)?,
            user_uri: IdentifierUri::read(r)?,
            clients: read_codec_vec(r, Self::NAME, MAX_BODY)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.user_status.write(out);
        self.user_uri.write(out);
        put_codec_vec(out, &self.clients);
    }
}

wire_via_codec!(
    KeyMaterialRequest,
    KeyMaterialRequestTbs,
    KeyMaterialUserCode,
    KeyMaterialClientCode,
    ClientKeyMaterial,
    KeyMaterialResponse,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;

    fn request() -> KeyMaterialRequest {
        KeyMaterialRequest {
            protocol: Protocol::Mls10,
            requesting_user: IdentifierUri::new("mimi://a.example/u/alice"),
            target_user: IdentifierUri::new("mimi://b.example/u/bob"),
            room_id: IdentifierUri::new("mimi://a.example/r/clubhouse"),
            acceptable_ciphersuites: vec![CipherSuite(1), CipherSuite(3)],
            required_capabilities: RequiredCapabilities {
                extension_types: vec![6],
                proposal_types: vec![8, 10],
                credential_types: vec![2],
            },
            requester_signature_key: SignaturePublicKey(vec![1; 32]),
            requester_credential: Credential::X509 {
                certificates: vec![vec![0x30; 300]],
            },
            key_material_request_signature: vec![2; 64],
        }
    }

    #[test]
    fn key_material_request_round_trips_and_splits_tbs() {
        let req = request();
        check_wire(&req);
        let tbs = req.tbs();
        check_wire(&tbs);
        let mut expected = tbs.encode();
        put_opaque(&mut expected, &req.key_material_request_signature);
        assert_eq!(req.encode(), expected);
        assert_eq!(tbs.with_signature(vec![2; 64]), req);
    }

    #[test]
    fn rejects_empty_ciphersuite_list_and_unknown_protocol() {
        let mut req = request();
        req.acceptable_ciphersuites.clear();
        assert!(matches!(
            KeyMaterialRequest::decode(&req.encode()),
            Err(DecodeError::Malformed { .. })
        ));
        let mut bytes = request().encode();
        bytes[0] = 2;
        assert_eq!(
            KeyMaterialRequest::decode(&bytes),
            Err(DecodeError::UnknownValue {
                ty: "Protocol",
                value: 2
            })
        );
    }

    #[test]
    fn key_material_response_round_trips() {
        let kp = KeyPackage::from_bytes(&fx::key_package()).unwrap();
        let resp = KeyMaterialResponse {
            protocol: Protocol::Mls10,
            user_status: KeyMaterialUserCode::PARTIAL_SUCCESS,
            user_uri: IdentifierUri::new("mimi://b.example/u/bob"),
            clients: vec![
                ClientKeyMaterial::Success {
                    client_uri: IdentifierUri::new("mimi://b.example/d/bob/b1"),
                    key_package: kp,
                },
                ClientKeyMaterial::KeyMaterialExhausted {
                    client_uri: IdentifierUri::new("mimi://b.example/d/bob/b2"),
                },
                ClientKeyMaterial::NothingCompatible {
                    client_uri: IdentifierUri::new("mimi://b.example/d/bob/b3"),
                    client_capabilities: None,
                },
                ClientKeyMaterial::NothingCompatible {
                    client_uri: IdentifierUri::new("mimi://b.example/d/bob/b4"),
                    client_capabilities: Some(Capabilities::default()),
                },
            ],
        };
        check_wire(&resp);
        assert_eq!(
            resp.clients[1].client_status(),
            KeyMaterialClientCode::KEY_MATERIAL_EXHAUSTED
        );
        assert_eq!(
            resp.clients[2].client_uri().as_str(),
            "mimi://b.example/d/bob/b3"
        );
        check_wire(&KeyMaterialResponse {
            protocol: Protocol::Mls10,
            user_status: KeyMaterialUserCode(0x42),
            user_uri: IdentifierUri::new("mimi://b.example/u/bob"),
            clients: vec![],
        });
        check_wire(&KeyMaterialUserCode::NO_CONSENT);
        check_wire(&KeyMaterialClientCode::SUCCESS);
    }

    #[test]
    fn rejects_unknown_client_status() {
        let mut body = Vec::new();
        body.push(3);
        IdentifierUri::new("mimi://b.example/d/bob/b1").write(&mut body);
        assert_eq!(
            ClientKeyMaterial::decode(&body),
            Err(DecodeError::UnknownValue {
                ty: "ClientKeyMaterial",
                value: 3
            })
        );
    }
}
