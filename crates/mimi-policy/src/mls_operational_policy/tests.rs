use super::*;

fn sample() -> OperationalParameters {
    OperationalParameters {
        mandatory_capabilities: ExtendedCapabilities {
            versions: vec![1],
            cipher_suites: vec![1, 3],
            media_types: vec![MediaType::parse("text/plain").unwrap()],
            content_types: vec![1],
            ..ExtendedCapabilities::default()
        },
        default_capabilities: ExtendedCapabilities::default(),
        forbidden_capabilities: ExtendedCapabilities {
            wire_formats: vec![2],
            ..ExtendedCapabilities::default()
        },
        handshake_formats: vec![1],
        external_proposal_allowed: true,
        external_commit_allowed: false,
        pending_proposal_policy: PendingProposalPolicy::RandomDelay {
            minimum_delay_ms: 10,
            maximum_delay_ms: 500,
        },
        leaf_node_update_time: MinDefaultMaxTime {
            minimum_time: 1,
            default_time: 2,
            maximum_time: 3,
        },
        app_message_policy: AppMessagePolicy {
            epoch_tolerance: 2,
            pad_to_size: 256,
            max_generations_skipahead: 1000,
        },
        max_kp_lifetime: 4,
        max_credential_lifetime: 5,
        resumption_psk_lifetime: 6,
        sender_nonce_keypair_lifetime: MinDefaultMaxTime::default(),
        max_keypairs: 7,
        buffer_incoming_message_time: MinDefaultMaxTime {
            minimum_time: 0,
            default_time: 0,
            maximum_time: 9,
        },
        max_buffered_messages: 8,
    }
}

#[test]
fn encodes_the_draft_layout_byte_for_byte() {
    // Written out by hand from draft-ietf-mimi-room-policy-03 §7.1, with `WireFormat`
    // vectors (IN-POLICY-21), `uint64 max_kp_lifetime` (IN-POLICY-24) and `ContentType` as
    // `uint8` (RFC 9420 §6).
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // mandatory_capabilities
        0x02, 0x00, 0x01,             // versions<V>: mls10
        0x04, 0x00, 0x01, 0x00, 0x03, // cipher_suites<V>: 1, 3
        0x00, 0x00, 0x00, 0x00,       // extensions, proposals, credentials, wire_formats
        0x00, 0x00,                   // component_ids, safe_aad_types
        0x0c,                         // media_types<V>: 12 bytes
        0x0a, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n', // type<V>
        0x00,                         //   parameters<V> empty
        0x01, 0x01,                   // content_types<V>: application
        // default_capabilities: ten empty vectors
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // forbidden_capabilities
        0, 0, 0, 0, 0,                // versions .. credentials
        0x02, 0x00, 0x02,             // wire_formats<V>: mls_private_message
        0, 0, 0, 0,                   // component_ids .. content_types
        0x02, 0x00, 0x01,             // handshake_formats<V>: mls_public_message
        0x01,                         // external_proposal_allowed: true
        0x00,                         // external_commit_allowed: false
        0x02,                         // pending_proposal_strategy: random_delay
        0, 0, 0, 0, 0, 0, 0, 10,      //   minimum_delay_ms
        0, 0, 0, 0, 0, 0, 0x01, 0xf4, //   maximum_delay_ms: 500
        0, 0, 0, 0, 0, 0, 0, 1,       // LeafNode_update_time.minimum_time
        0, 0, 0, 0, 0, 0, 0, 2,       //   default_time
        0, 0, 0, 0, 0, 0, 0, 3,       //   maximum_time
        0x02,                         // app_message_policy.epoch_tolerance
        0x01, 0x00,                   //   pad_to_size: 256
        0x00, 0x00, 0x03, 0xe8,       //   max_generations_skipahead: 1000
        0, 0, 0, 0, 0, 0, 0, 4,       // max_kp_lifetime
        0, 0, 0, 0, 0, 0, 0, 5,       // max_credential_lifetime
        0, 0, 0, 0, 0, 0, 0, 6,       // resumption_psk_lifetime
        0, 0, 0, 0, 0, 0, 0, 0,       // sender_nonce_keypair_lifetime (all zero)
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x00, 0x00, 0x07,       // max_keypairs
        0, 0, 0, 0, 0, 0, 0, 0,       // buffer_incoming_message_time: 0, 0, 9
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 9,
        0x00, 0x00, 0x00, 0x08,       // max_buffered_messages
    ];
    assert_eq!(sample().encode().unwrap(), expected);
    assert_eq!(OperationalParameters::decode(expected).unwrap(), sample());
}

#[test]
fn strategies_without_parameters_encode_as_one_byte() {
    let mut params = OperationalParameters::default();
    for (policy, byte) in [
        (PendingProposalPolicy::Unspecified, 0u8),
        (PendingProposalPolicy::ImmediateCommit, 1u8),
    ] {
        params.pending_proposal_policy = policy;
        let bytes = params.encode().unwrap();
        // 30 empty capability vectors, handshake_formats (3 bytes), two bools.
        assert_eq!(bytes[35], byte);
        assert_eq!(bytes.len(), 36 + 24 + 7 + 24 + 24 + 4 + 24 + 4);
        assert_eq!(OperationalParameters::decode(&bytes).unwrap(), params);
    }
}

#[test]
fn rejects_bad_input() {
    let bytes = sample().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            OperationalParameters::decode(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        OperationalParameters::decode(&trailing),
        Err(Error::TrailingData { .. })
    ));
    let default = OperationalParameters::default().encode().unwrap();
    // The strategy byte: 3 (the draft's `extension` has no code point, IN-POLICY-22).
    let mut strategy = default.clone();
    assert_eq!(strategy[35], 0);
    strategy[35] = 3;
    assert_eq!(
        OperationalParameters::decode(&strategy),
        Err(Error::OutOfRange {
            type_name: "OperationalParameters",
            enum_name: "PendingProposalStrategy",
            value: 3
        })
    );
    let mut bool2 = default.clone();
    bool2[33] = 2; // external_proposal_allowed
    assert!(matches!(
        OperationalParameters::decode(&bool2),
        Err(Error::Decode { .. })
    ));
    let mut odd = default.clone();
    odd.splice(0..1, [0x01, 0x00]); // versions<V> of one byte
    assert!(matches!(
        OperationalParameters::decode(&odd),
        Err(Error::Decode { .. })
    ));
    let mut delay = sample();
    delay.pending_proposal_policy = PendingProposalPolicy::RandomDelay {
        minimum_delay_ms: 2,
        maximum_delay_ms: 1,
    };
    let bytes = codec::encode(&delay, "OperationalParameters").unwrap();
    assert!(matches!(
        OperationalParameters::decode(&bytes),
        Err(Error::InvalidField {
            field: "maximum_delay_ms",
            ..
        })
    ));
    let mut range = sample();
    range.leaf_node_update_time.default_time = 4;
    assert!(matches!(
        range.encode(),
        Err(Error::InvalidField {
            field: "LeafNode_update_time",
            ..
        })
    ));
    let mut many = sample();
    many.default_capabilities.cipher_suites = vec![1; MAX_CODE_POINTS + 1];
    let bytes = codec::encode(&many, "OperationalParameters").unwrap();
    assert!(matches!(
        OperationalParameters::decode(&bytes),
        Err(Error::VectorTooLong {
            field: "cipher_suites",
            ..
        })
    ));
}

#[test]
fn serializes_with_draft_names() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(
        json["pending_proposal_policy"],
        serde_json::json!({
            "pending_proposal_strategy": "random_delay",
            "minimum_delay_ms": 10,
            "maximum_delay_ms": 500
        })
    );
    assert_eq!(json["LeafNode_update_time"]["maximum_time"], 3);
    assert_eq!(
        json["mandatory_capabilities"]["media_types"],
        serde_json::json!(["text/plain"])
    );
    assert_eq!(
        json["mandatory_capabilities"]["content_types"],
        serde_json::json!([1])
    );
    let default = serde_json::to_value(OperationalParameters::default()).unwrap();
    assert_eq!(
        default["pending_proposal_policy"],
        serde_json::json!({"pending_proposal_strategy": "unspecified"})
    );
}
