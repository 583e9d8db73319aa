//! Assets: the `asset_policy` component (draft-ietf-mimi-room-policy-03 §6.4).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, put_opaque, put_optional, read_codec_vec};
use serde::Serialize;

use crate::codec::{self, MAX_COMPONENT_LEN, check_len, read_utf8, wire_enum};
use crate::error::Error;
use crate::fields::{invalid, parse_u64, unknown};
use crate::media_type::MediaType;

/// Longest domain name, in bytes (RFC 1035: 253 characters in text form).
const MAX_DOMAIN_LEN: usize = 253;
/// Most providers in `upload_domains` (IN-POLICY-18).
const MAX_PROVIDERS: usize = 256;
/// Most upload destinations of one provider (IN-POLICY-18).
const MAX_DESTINATIONS: usize = 64;
/// Most entries in each download type list; the enum has three values (IN-POLICY-18).
const MAX_DOWNLOAD_TYPES: usize = 16;
/// Most entries in each media type list (IN-POLICY-18).
const MAX_MEDIA_TYPES: usize = 256;

wire_enum! {
    /// Where clients upload assets (`AssetUploadLocation`, one byte).
    AssetUploadLocation {
        /// Anywhere: upload hosts are not checked.
        Unspecified = 0 => "unspecified",
        /// Each client uploads to its own provider (RECOMMENDED by §6.4).
        LocalProvider = 1 => "localProvider",
        /// Every client uploads to the hub.
        Hub = 2 => "hub",
    }
}

wire_enum! {
    /// How clients download assets (`DownloadPrivacyType`, one byte).
    DownloadPrivacyType {
        /// Directly from the upload location (protocol §5.10.1).
        Direct = 0 => "direct",
        /// Through a proxy on the hub (protocol §5.10.2).
        HubProxy = 1 => "hubProxy",
        /// Through Oblivious HTTP via the hub (protocol §5.10.3).
        Ohttp = 2 => "ohttp",
    }
}

/// A DNS name (`DomainName`), UTF-8 (IN-POLICY-19).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DomainName {
    /// The name, e.g. `assets.example.com`.
    pub domain: Vec<u8>,
}

impl DomainName {
    /// A domain name from text.
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.as_bytes().to_vec(),
        }
    }

    /// Whether `name` is this domain: ASCII case insensitive, ignoring one trailing dot on
    /// either side (IN-POLICY-17).
    pub fn matches(&self, name: &str) -> bool {
        let strip = |b: &[u8]| b.strip_suffix(b".").unwrap_or(b).to_vec();
        let (ours, theirs) = (strip(&self.domain), strip(name.as_bytes()));
        !ours.is_empty() && ours.eq_ignore_ascii_case(&theirs)
    }
}

/// A domain name serializes as a JSON string.
impl Serialize for DomainName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::lossy(&self.domain, s)
    }
}

impl Codec for DomainName {
    const NAME: &'static str = "DomainName";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            domain: read_utf8(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.domain);
    }
}

/// The hosts one provider's users upload assets to (`ProviderAssetUploadDomains`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ProviderAssetUploadDomains {
    /// The provider's domain, compared with the sender URI's domain.
    pub provider: DomainName,
    /// Hosts that asset URLs of this provider's users may name.
    pub asset_upload_destinations: Vec<DomainName>,
}

impl Codec for ProviderAssetUploadDomains {
    const NAME: &'static str = "ProviderAssetUploadDomains";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            provider: DomainName::read(r)?,
            asset_upload_destinations: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.provider.write(out);
        put_codec_vec(out, &self.asset_upload_destinations);
    }
}

/// Acceptable download mechanisms (`DownloadPrivacy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DownloadPrivacy {
    /// Mechanisms clients may use.
    pub allowed_download_types: Vec<DownloadPrivacyType>,
    /// Mechanisms clients must not use; none may also be allowed (IN-POLICY-17).
    pub forbidden_download_types: Vec<DownloadPrivacyType>,
    /// The default or suggested mechanism; not a forbidden one (IN-POLICY-17).
    pub default_download_type: DownloadPrivacyType,
}

impl DownloadPrivacy {
    /// Whether clients may download with `kind`: not forbidden, and allowed or the default.
    pub fn allows(&self, kind: DownloadPrivacyType) -> bool {
        !self.forbidden_download_types.contains(&kind)
            && (self.allowed_download_types.contains(&kind) || self.default_download_type == kind)
    }

    fn check(&self) -> Result<(), Error> {
        check_len(
            "allowed_download_types",
            self.allowed_download_types.len(),
            MAX_DOWNLOAD_TYPES,
        )?;
        check_len(
            "forbidden_download_types",
            self.forbidden_download_types.len(),
            MAX_DOWNLOAD_TYPES,
        )?;
        // POL-068: the lists and the default agree (IN-POLICY-17).
        if self
            .allowed_download_types
            .iter()
            .any(|t| self.forbidden_download_types.contains(t))
        {
            return Err(Error::InvalidField {
                field: "forbidden_download_types",
                reason: "lists a type that allowed_download_types also lists",
            });
        }
        if self
            .forbidden_download_types
            .contains(&self.default_download_type)
        {
            return Err(Error::InvalidField {
                field: "default_download_type",
                reason: "is a forbidden download type",
            });
        }
        Ok(())
    }
}

impl Codec for DownloadPrivacy {
    const NAME: &'static str = "DownloadPrivacy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            allowed_download_types: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            forbidden_download_types: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            default_download_type: DownloadPrivacyType::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.allowed_download_types);
        put_codec_vec(out, &self.forbidden_download_types);
        self.default_download_type.write(out);
    }
}

/// Which size limit applies to an asset, from its media type's top-level type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetKind {
    /// `image/*`: `max_image`.
    Image,
    /// `audio/*`: `max_audio`.
    Audio,
    /// `video/*`: `max_video`.
    Video,
    /// Everything else: `max_attachment`.
    Attachment,
}

impl AssetKind {
    /// The kind of an asset with media type `media_type` (top-level type compared ASCII case
    /// insensitively; anything not image, audio or video is an attachment).
    pub fn of_media_type(media_type: &str) -> AssetKind {
        let top = media_type
            .trim_start()
            .split('/')
            .next()
            .unwrap_or_default();
        if top.eq_ignore_ascii_case("image") {
            AssetKind::Image
        } else if top.eq_ignore_ascii_case("audio") {
            AssetKind::Audio
        } else if top.eq_ignore_ascii_case("video") {
            AssetKind::Video
        } else {
            AssetKind::Attachment
        }
    }
}

/// Where assets go, how they are fetched, their sizes and media types (`AssetPolicy`, §6.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AssetPolicy {
    /// Where clients upload assets.
    pub asset_upload_location: AssetUploadLocation,
    /// Upload hosts per provider; one entry (the hub's) at most when the location is `hub`.
    pub upload_domains: Vec<ProviderAssetUploadDomains>,
    /// Acceptable download mechanisms.
    pub download_privacy: DownloadPrivacy,
    /// Largest image, in bytes.
    pub max_image: u64,
    /// Largest audio file, in bytes.
    pub max_audio: u64,
    /// Largest video, in bytes.
    pub max_video: u64,
    /// Largest other attachment, in bytes.
    pub max_attachment: u64,
    /// Media types not allowed at all.
    pub forbidden_media_types: Vec<MediaType>,
    /// If present, the only media types allowed (`optional<MediaType> ...<V>` read as an
    /// optional vector, IN-POLICY-16).
    pub permitted_media_types: Option<Vec<MediaType>>,
}

impl AssetPolicy {
    /// Component ID of `asset_policy` (suggested value, §10.1.9).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::ASSET_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes, unknown enum values, text that is not
    /// UTF-8, over-long vectors and contradictory download types.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Self = codec::decode_exact(bytes, Self::NAME)?;
        policy.check()?;
        Ok(policy)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    /// The size limit, in bytes, for assets of `kind`.
    pub fn max_size_for(&self, kind: AssetKind) -> u64 {
        match kind {
            AssetKind::Image => self.max_image,
            AssetKind::Audio => self.max_audio,
            AssetKind::Video => self.max_video,
            AssetKind::Attachment => self.max_attachment,
        }
    }

    /// Whether an asset of media type `media_type` (text, e.g. `text/plain; charset=UTF-8`)
    /// may be sent: not matched by `forbidden_media_types` and, if `permitted_media_types` is
    /// present, matched by it. Unparsable text is not allowed.
    pub fn media_type_allowed(&self, media_type: &str) -> bool {
        let Some(candidate) = MediaType::parse(media_type) else {
            return false;
        };
        if self
            .forbidden_media_types
            .iter()
            .any(|m| m.matches(&candidate))
        {
            return false;
        }
        match &self.permitted_media_types {
            Some(permitted) => permitted.iter().any(|m| m.matches(&candidate)),
            None => true,
        }
    }

    /// Whether an asset URL of a sender at `sender_domain` may name the host `host`
    /// (IN-POLICY-17): any host when the location is `unspecified`; for `localProvider` a
    /// destination of the entry whose provider is `sender_domain`; for `hub` a destination of
    /// the (single) entry.
    pub fn upload_domain_allowed(&self, sender_domain: &str, host: &str) -> bool {
        let has = |entry: &ProviderAssetUploadDomains| {
            entry
                .asset_upload_destinations
                .iter()
                .any(|d| d.matches(host))
        };
        match self.asset_upload_location {
            AssetUploadLocation::Unspecified => true,
            AssetUploadLocation::LocalProvider => self
                .upload_domains
                .iter()
                .find(|e| e.provider.matches(sender_domain))
                .is_some_and(has),
            AssetUploadLocation::Hub => self.upload_domains.iter().any(has),
        }
    }

    /// Sets `asset_upload_location` or one of the `max_*` sizes (bytes).
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "asset_upload_location" => {
                let location = AssetUploadLocation::from_name(value).ok_or_else(|| {
                    invalid(
                        "asset_upload_location",
                        value,
                        "expected unspecified, localProvider or hub",
                    )
                })?;
                if location == AssetUploadLocation::Hub && self.upload_domains.len() > 1 {
                    return Err(invalid(
                        "asset_upload_location",
                        value,
                        "hub needs at most one upload_domains entry",
                    ));
                }
                self.asset_upload_location = location;
            }
            "max_image" => self.max_image = parse_u64("max_image", value)?,
            "max_audio" => self.max_audio = parse_u64("max_audio", value)?,
            "max_video" => self.max_video = parse_u64("max_video", value)?,
            "max_attachment" => self.max_attachment = parse_u64("max_attachment", value)?,
            _ => return Err(unknown("asset_policy", field)),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        check_len("upload_domains", self.upload_domains.len(), MAX_PROVIDERS)?;
        for entry in &self.upload_domains {
            check_len("domain", entry.provider.domain.len(), MAX_DOMAIN_LEN)?;
            check_len(
                "asset_upload_destinations",
                entry.asset_upload_destinations.len(),
                MAX_DESTINATIONS,
            )?;
            for d in &entry.asset_upload_destinations {
                check_len("domain", d.domain.len(), MAX_DOMAIN_LEN)?;
            }
        }
        // POL-069, §6.4: "If the asset_upload_location is hub, only one provider matching the
        // hub domain is present in asset_upload_domains."
        if self.asset_upload_location == AssetUploadLocation::Hub && self.upload_domains.len() > 1 {
            return Err(Error::InvalidField {
                field: "upload_domains",
                reason: "more than one provider although asset_upload_location is hub",
            });
        }
        self.download_privacy.check()?;
        check_len(
            "forbidden_media_types",
            self.forbidden_media_types.len(),
            MAX_MEDIA_TYPES,
        )?;
        self.forbidden_media_types
            .iter()
            .try_for_each(MediaType::check_bounds)?;
        if let Some(permitted) = &self.permitted_media_types {
            check_len("permitted_media_types", permitted.len(), MAX_MEDIA_TYPES)?;
            permitted.iter().try_for_each(MediaType::check_bounds)?;
        }
        Ok(())
    }
}

impl Default for AssetPolicy {
    /// Uploads anywhere (`unspecified`: `localProvider` is RECOMMENDED but needs every
    /// provider's upload hosts, which the room's hub fills in), every download mechanism allowed
    /// with `direct` as default, 25 MiB images, 50 MiB audio, 100 MiB video and attachments,
    /// and no media type restrictions.
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            asset_upload_location: AssetUploadLocation::Unspecified,
            upload_domains: Vec::new(),
            download_privacy: DownloadPrivacy {
                allowed_download_types: DownloadPrivacyType::ALL.to_vec(),
                forbidden_download_types: Vec::new(),
                default_download_type: DownloadPrivacyType::Direct,
            },
            max_image: 25 * MIB,
            max_audio: 50 * MIB,
            max_video: 100 * MIB,
            max_attachment: 100 * MIB,
            forbidden_media_types: Vec::new(),
            permitted_media_types: None,
        }
    }
}

impl Codec for AssetPolicy {
    const NAME: &'static str = "AssetPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            asset_upload_location: AssetUploadLocation::read(r)?,
            upload_domains: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            download_privacy: DownloadPrivacy::read(r)?,
            max_image: r.u64(Self::NAME)?,
            max_audio: r.u64(Self::NAME)?,
            max_video: r.u64(Self::NAME)?,
            max_attachment: r.u64(Self::NAME)?,
            forbidden_media_types: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            // IN-POLICY-16: a presence byte, then the whole vector.
            permitted_media_types: r.optional(Self::NAME, |r| {
                read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)
            })?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.asset_upload_location.write(out);
        put_codec_vec(out, &self.upload_domains);
        self.download_privacy.write(out);
        for max in [
            self.max_image,
            self.max_audio,
            self.max_video,
            self.max_attachment,
        ] {
            out.extend_from_slice(&max.to_be_bytes());
        }
        put_codec_vec(out, &self.forbidden_media_types);
        put_optional(out, self.permitted_media_types.as_ref(), |v, o| {
            put_codec_vec(o, v)
        });
    }
}

#[cfg(test)]
mod tests;
