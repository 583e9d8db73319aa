use super::*;

fn sample() -> AssetPolicy {
    AssetPolicy {
        asset_upload_location: AssetUploadLocation::LocalProvider,
        upload_domains: vec![ProviderAssetUploadDomains {
            provider: DomainName::new("a.ex"),
            asset_upload_destinations: vec![DomainName::new("up.a.ex")],
        }],
        download_privacy: DownloadPrivacy {
            allowed_download_types: vec![DownloadPrivacyType::HubProxy, DownloadPrivacyType::Ohttp],
            forbidden_download_types: vec![DownloadPrivacyType::Direct],
            default_download_type: DownloadPrivacyType::HubProxy,
        },
        max_image: 1,
        max_audio: 2,
        max_video: 0x0102_0304_0506_0708,
        max_attachment: 4,
        forbidden_media_types: vec![MediaType::parse("text/html").unwrap()],
        permitted_media_types: Some(vec![MediaType::parse("image/png").unwrap()]),
    }
}

#[test]
fn encodes_the_draft_layout_byte_for_byte() {
    // Written out by hand from draft-ietf-mimi-room-policy-03 §6.4 and MediaType of
    // draft-ietf-mls-extensions; `optional<MediaType> permitted_media_types<V>` as a presence
    // byte then a vector (IN-POLICY-16).
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x01,                               // asset_upload_location: localProvider
        0x0e,                               // upload_domains<V>: 14 bytes
        0x04, b'a', b'.', b'e', b'x',       //   provider.domain<V> "a.ex"
        0x08,                               //   asset_upload_destinations<V>: 8 bytes
        0x07, b'u', b'p', b'.', b'a', b'.', b'e', b'x', // domain<V> "up.a.ex"
        0x02, 0x01, 0x02,                   // allowed_download_types<V>: hubProxy, ohttp
        0x01, 0x00,                         // forbidden_download_types<V>: direct
        0x01,                               // default_download_type: hubProxy
        0, 0, 0, 0, 0, 0, 0, 1,             // max_image
        0, 0, 0, 0, 0, 0, 0, 2,             // max_audio
        1, 2, 3, 4, 5, 6, 7, 8,             // max_video
        0, 0, 0, 0, 0, 0, 0, 4,             // max_attachment
        0x0b,                               // forbidden_media_types<V>: 11 bytes
        0x09, b't', b'e', b'x', b't', b'/', b'h', b't', b'm', b'l', // type<V>
        0x00,                               //   parameters<V> empty
        0x01,                               // permitted_media_types present
        0x0b,                               //   vector: 11 bytes
        0x09, b'i', b'm', b'a', b'g', b'e', b'/', b'p', b'n', b'g', // type<V>
        0x00,                               //   parameters<V> empty
    ];
    assert_eq!(sample().encode().unwrap(), expected);
    assert_eq!(AssetPolicy::decode(expected).unwrap(), sample());
}

#[test]
fn default_round_trips_with_absent_permitted_list() {
    let bytes = AssetPolicy::default().encode().unwrap();
    assert_eq!(*bytes.last().unwrap(), 0x00, "permitted_media_types absent");
    assert_eq!(AssetPolicy::decode(&bytes).unwrap(), AssetPolicy::default());
    // Present but empty is a different policy: nothing is permitted.
    let none = AssetPolicy {
        permitted_media_types: Some(Vec::new()),
        ..AssetPolicy::default()
    };
    let bytes = none.encode().unwrap();
    assert_eq!(bytes[bytes.len() - 2..], [0x01, 0x00]);
    assert_eq!(AssetPolicy::decode(&bytes).unwrap(), none);
    assert!(!none.media_type_allowed("image/png"));
}

#[test]
fn rejects_bad_input() {
    let bytes = sample().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(AssetPolicy::decode(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        AssetPolicy::decode(&trailing),
        Err(Error::TrailingData { .. })
    ));
    let mut location = bytes.clone();
    location[0] = 3;
    assert_eq!(
        AssetPolicy::decode(&location),
        Err(Error::OutOfRange {
            type_name: "AssetPolicy",
            enum_name: "AssetUploadLocation",
            value: 3
        })
    );
    let mut download = bytes.clone();
    download[17] = 0xff; // first allowed_download_types entry
    assert!(matches!(
        AssetPolicy::decode(&download),
        Err(Error::OutOfRange {
            enum_name: "DownloadPrivacyType",
            ..
        })
    ));
    let mut presence = bytes.clone();
    let at = presence.len() - 13;
    assert_eq!(presence[at], 0x01);
    presence[at] = 2;
    assert!(matches!(
        AssetPolicy::decode(&presence),
        Err(Error::Decode { .. })
    ));
    let mut utf8 = bytes.clone();
    utf8[3] = 0xff; // inside provider "a.ex"
    assert!(matches!(
        AssetPolicy::decode(&utf8),
        Err(Error::Decode { detail, .. }) if detail.contains("utf-8")
    ));
}

#[test]
fn rejects_contradictions_and_over_long_lists() {
    let mut both = sample();
    both.download_privacy
        .forbidden_download_types
        .push(DownloadPrivacyType::Ohttp);
    let bytes = codec::encode(&both, "AssetPolicy").unwrap();
    assert!(matches!(
        AssetPolicy::decode(&bytes),
        Err(Error::InvalidField {
            field: "forbidden_download_types",
            ..
        })
    ));
    let mut default_forbidden = sample();
    default_forbidden.download_privacy.default_download_type = DownloadPrivacyType::Direct;
    assert!(default_forbidden.encode().is_err());
    let mut hub = sample();
    hub.asset_upload_location = AssetUploadLocation::Hub;
    hub.upload_domains.push(hub.upload_domains[0].clone());
    assert!(matches!(
        hub.encode(),
        Err(Error::InvalidField {
            field: "upload_domains",
            ..
        })
    ));
    let mut many = sample();
    many.forbidden_media_types = vec![MediaType::parse("a/b").unwrap(); MAX_MEDIA_TYPES + 1];
    let bytes = codec::encode(&many, "AssetPolicy").unwrap();
    assert!(matches!(
        AssetPolicy::decode(&bytes),
        Err(Error::VectorTooLong {
            field: "forbidden_media_types",
            ..
        })
    ));
}

#[test]
fn max_size_follows_the_top_level_type() {
    let policy = sample();
    let size = |t| policy.max_size_for(AssetKind::of_media_type(t));
    assert_eq!(size("image/png"), 1);
    assert_eq!(size("IMAGE/jpeg"), 1);
    assert_eq!(size("audio/ogg; codecs=opus"), 2);
    assert_eq!(size("video/mp4"), 0x0102_0304_0506_0708);
    assert_eq!(size("application/pdf"), 4);
    assert_eq!(size("imagery/x"), 4);
    assert_eq!(size(""), 4);
}

#[test]
fn media_types_follow_the_forbidden_and_permitted_lists() {
    let mut policy = AssetPolicy::default();
    assert!(policy.media_type_allowed("application/x-anything"));
    assert!(!policy.media_type_allowed("not a media type"));
    policy.forbidden_media_types = vec![
        MediaType::parse("text/html").unwrap(),
        MediaType::parse("text/plain; charset=latin1").unwrap(),
    ];
    assert!(!policy.media_type_allowed("text/html"));
    assert!(!policy.media_type_allowed("Text/HTML; charset=UTF-8"));
    assert!(!policy.media_type_allowed("text/plain; charset=latin1"));
    assert!(policy.media_type_allowed("text/plain; charset=UTF-8"));
    assert!(policy.media_type_allowed("text/plain"));
    policy.permitted_media_types = Some(vec![
        MediaType::parse("image/png").unwrap(),
        MediaType::parse("text/plain").unwrap(),
    ]);
    assert!(policy.media_type_allowed("image/PNG"));
    assert!(policy.media_type_allowed("text/plain; charset=UTF-8"));
    assert!(
        !policy.media_type_allowed("text/plain; charset=latin1"),
        "forbidden wins"
    );
    assert!(!policy.media_type_allowed("image/jpeg"));
}

#[test]
fn upload_hosts_follow_the_upload_location() {
    let mut policy = sample();
    policy.upload_domains.push(ProviderAssetUploadDomains {
        provider: DomainName::new("b.ex"),
        asset_upload_destinations: vec![DomainName::new("cdn.b.ex")],
    });
    // localProvider: only the sender's own provider's hosts.
    assert!(policy.upload_domain_allowed("a.ex", "up.a.ex"));
    assert!(policy.upload_domain_allowed("A.EX.", "UP.a.ex"));
    assert!(!policy.upload_domain_allowed("a.ex", "cdn.b.ex"));
    assert!(policy.upload_domain_allowed("b.ex", "cdn.b.ex"));
    assert!(!policy.upload_domain_allowed("c.ex", "up.a.ex"));
    assert!(
        !policy.upload_domain_allowed("a.ex", "x.up.a.ex"),
        "no subdomains"
    );
    // hub: the one entry's hosts, whoever sends.
    policy.upload_domains.truncate(1);
    policy.asset_upload_location = AssetUploadLocation::Hub;
    assert!(policy.upload_domain_allowed("c.ex", "up.a.ex"));
    assert!(!policy.upload_domain_allowed("a.ex", "elsewhere.ex"));
    // unspecified: anything.
    policy.asset_upload_location = AssetUploadLocation::Unspecified;
    assert!(policy.upload_domain_allowed("c.ex", "elsewhere.ex"));
}

#[test]
fn sets_fields_by_name() {
    let mut policy = AssetPolicy::default();
    policy.set_field("max_video", "1000").unwrap();
    policy.set_field("asset_upload_location", "hub").unwrap();
    assert_eq!(policy.max_video, 1000);
    assert_eq!(policy.asset_upload_location, AssetUploadLocation::Hub);
    assert!(policy.set_field("asset_upload_location", "local").is_err());
    assert!(policy.set_field("max_image", "1e6").is_err());
    assert!(policy.set_field("forbidden_media_types", "x").is_err());
}

#[test]
fn serializes_with_draft_names() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(json["asset_upload_location"], "localProvider");
    assert_eq!(json["upload_domains"][0]["provider"], "a.ex");
    assert_eq!(
        json["download_privacy"]["allowed_download_types"],
        serde_json::json!(["hubProxy", "ohttp"])
    );
    assert_eq!(
        json["forbidden_media_types"],
        serde_json::json!(["text/html"])
    );
    assert_eq!(
        json["permitted_media_types"],
        serde_json::json!(["image/png"])
    );
    assert_eq!(
        serde_json::to_value(AssetPolicy::default()).unwrap()["permitted_media_types"],
        serde_json::Value::Null
    );
}
