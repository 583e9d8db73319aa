//! MLS operational parameters: the `mls_operational_policy` component
//! (draft-ietf-mimi-room-policy-03 §7.1).
//!
//! MLS code points (`ProtocolVersion`, `CipherSuite`, `ExtensionType`, `ProposalType`,
//! `CredentialType`, `WireFormat`, `ComponentID`: `uint16`; `ContentType`: `uint8`, RFC 9420
//! §6) are kept as raw integers: OpenMLS types stay inside `mimi-room`, and unknown values
//! survive a round trip.

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{
    Codec, Reader, put_bool, put_codec_vec, put_opaque, put_u16_vec, read_codec_vec,
};
use serde::Serialize;

use crate::codec::{self, MAX_COMPONENT_LEN, check_len, wire_enum};
use crate::error::Error;
use crate::media_type::MediaType;

/// Most entries in each list of `ExtendedCapabilities` and in `handshake_formats`
/// (IN-POLICY-18).
const MAX_CODE_POINTS: usize = 256;

/// `WireFormat` `mls_public_message` (RFC 9420 §6).
const MLS_PUBLIC_MESSAGE: u16 = 1;

/// Capabilities beyond RFC 9420's `Capabilities` (`ExtendedCapabilities`, §7.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ExtendedCapabilities {
    /// `ProtocolVersion versions<V>`.
    pub versions: Vec<u16>,
    /// `CipherSuite cipher_suites<V>`.
    pub cipher_suites: Vec<u16>,
    /// `ExtensionType extensions<V>`.
    pub extensions: Vec<u16>,
    /// `ProposalType proposals<V>`.
    pub proposals: Vec<u16>,
    /// `CredentialType credentials<V>`.
    pub credentials: Vec<u16>,
    /// `WireFormats wire_formats<V>`, read as `WireFormat wire_formats<V>` (IN-POLICY-21).
    pub wire_formats: Vec<u16>,
    /// `ComponentID component_ids<V>`.
    pub component_ids: Vec<u16>,
    /// `ComponentID safe_aad_types<V>`.
    pub safe_aad_types: Vec<u16>,
    /// `MediaType media_types<V>`.
    pub media_types: Vec<MediaType>,
    /// `ContentType content_types<V>` (`uint8` each).
    pub content_types: Vec<u8>,
}

impl ExtendedCapabilities {
    fn check(&self) -> Result<(), Error> {
        for (field, len) in [
            ("versions", self.versions.len()),
            ("cipher_suites", self.cipher_suites.len()),
            ("extensions", self.extensions.len()),
            ("proposals", self.proposals.len()),
            ("credentials", self.credentials.len()),
            ("wire_formats", self.wire_formats.len()),
            ("component_ids", self.component_ids.len()),
            ("safe_aad_types", self.safe_aad_types.len()),
            ("media_types", self.media_types.len()),
            ("content_types", self.content_types.len()),
        ] {
            check_len(field, len, MAX_CODE_POINTS)?;
        }
        self.media_types
            .iter()
            .try_for_each(MediaType::check_bounds)
    }
}

impl Codec for ExtendedCapabilities {
    const NAME: &'static str = "ExtendedCapabilities";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            versions: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            cipher_suites: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            extensions: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            proposals: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            credentials: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            wire_formats: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            component_ids: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            safe_aad_types: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            media_types: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            content_types: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        for list in [
            &self.versions,
            &self.cipher_suites,
            &self.extensions,
            &self.proposals,
            &self.credentials,
            &self.wire_formats,
            &self.component_ids,
            &self.safe_aad_types,
        ] {
            put_u16_vec(out, list);
        }
        put_codec_vec(out, &self.media_types);
        put_opaque(out, &self.content_types);
    }
}

wire_enum! {
    /// When members commit pending proposals (`PendingProposalStrategy`, one byte); the draft's
    /// `extension` case has no code point and cannot be encoded (IN-POLICY-22).
    PendingProposalStrategy {
        /// The room takes no position.
        Unspecified = 0 => "unspecified",
        /// Commit pending proposals at once.
        ImmediateCommit = 1 => "immediate_commit",
        /// Commit after a random delay.
        RandomDelay = 2 => "random_delay",
    }
}

/// The pending proposal strategy with its parameters (`PendingProposalPolicy`, §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "pending_proposal_strategy", rename_all = "snake_case")]
pub enum PendingProposalPolicy {
    /// `unspecified`: no parameters.
    #[default]
    Unspecified,
    /// `immediate_commit`: no parameters.
    ImmediateCommit,
    /// `random_delay` between the two bounds, in milliseconds.
    RandomDelay {
        /// Shortest delay, in milliseconds.
        minimum_delay_ms: u64,
        /// Longest delay, in milliseconds; not below the minimum.
        maximum_delay_ms: u64,
    },
}

impl PendingProposalPolicy {
    /// The strategy, without parameters.
    pub fn strategy(self) -> PendingProposalStrategy {
        match self {
            PendingProposalPolicy::Unspecified => PendingProposalStrategy::Unspecified,
            PendingProposalPolicy::ImmediateCommit => PendingProposalStrategy::ImmediateCommit,
            PendingProposalPolicy::RandomDelay { .. } => PendingProposalStrategy::RandomDelay,
        }
    }

    fn check(self) -> Result<(), Error> {
        match self {
            // POL-075: the delay range is in order.
            PendingProposalPolicy::RandomDelay {
                minimum_delay_ms,
                maximum_delay_ms,
            } if minimum_delay_ms > maximum_delay_ms => Err(Error::InvalidField {
                field: "maximum_delay_ms",
                reason: "is below minimum_delay_ms",
            }),
            _ => Ok(()),
        }
    }
}

impl Codec for PendingProposalPolicy {
    const NAME: &'static str = "PendingProposalPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match PendingProposalStrategy::read(r)? {
            PendingProposalStrategy::Unspecified => PendingProposalPolicy::Unspecified,
            PendingProposalStrategy::ImmediateCommit => PendingProposalPolicy::ImmediateCommit,
            PendingProposalStrategy::RandomDelay => PendingProposalPolicy::RandomDelay {
                minimum_delay_ms: r.u64(Self::NAME)?,
                maximum_delay_ms: r.u64(Self::NAME)?,
            },
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.strategy().write(out);
        if let PendingProposalPolicy::RandomDelay {
            minimum_delay_ms,
            maximum_delay_ms,
        } = self
        {
            out.extend_from_slice(&minimum_delay_ms.to_be_bytes());
            out.extend_from_slice(&maximum_delay_ms.to_be_bytes());
        }
    }
}

/// A time range with a default (`MinDefaultMaxTime`), in seconds (IN-POLICY-23).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct MinDefaultMaxTime {
    /// Shortest time.
    pub minimum_time: u64,
    /// Default time, within the range.
    pub default_time: u64,
    /// Longest time.
    pub maximum_time: u64,
}

impl MinDefaultMaxTime {
    fn check(self, field: &'static str) -> Result<(), Error> {
        // POL-075: minimum <= default <= maximum (IN-POLICY-23).
        if self.minimum_time <= self.default_time && self.default_time <= self.maximum_time {
            Ok(())
        } else {
            Err(Error::InvalidField {
                field,
                reason: "needs minimum_time <= default_time <= maximum_time",
            })
        }
    }
}

impl Codec for MinDefaultMaxTime {
    const NAME: &'static str = "MinDefaultMaxTime";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            minimum_time: r.u64(Self::NAME)?,
            default_time: r.u64(Self::NAME)?,
            maximum_time: r.u64(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.minimum_time, self.default_time, self.maximum_time] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Tolerances for application messages (`AppMessagePolicy`, §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AppMessagePolicy {
    /// How many past epochs a member still decrypts.
    pub epoch_tolerance: u8,
    /// Pad messages to a multiple of this many bytes (0: no position).
    pub pad_to_size: u16,
    /// Most generations a secret tree ratchet moves forward for one message.
    pub max_generations_skipahead: u32,
}

impl Codec for AppMessagePolicy {
    const NAME: &'static str = "AppMessagePolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            epoch_tolerance: r.u8(Self::NAME)?,
            pad_to_size: r.u16(Self::NAME)?,
            max_generations_skipahead: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.epoch_tolerance);
        out.extend_from_slice(&self.pad_to_size.to_be_bytes());
        out.extend_from_slice(&self.max_generations_skipahead.to_be_bytes());
    }
}

/// The MLS operational policy of the room (`OperationalParameters`, §7.1).
///
/// Times and lifetimes are in seconds; 0 (and an all-zero range) means the room takes no
/// position (IN-POLICY-23).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct OperationalParameters {
    /// Capabilities every member must have.
    pub mandatory_capabilities: ExtendedCapabilities,
    /// Capabilities used unless a member lacks them.
    pub default_capabilities: ExtendedCapabilities,
    /// Capabilities no member may use.
    pub forbidden_capabilities: ExtendedCapabilities,
    /// Wire formats allowed for handshake messages (`WireFormat`, IN-POLICY-21).
    pub handshake_formats: Vec<u16>,
    /// Whether external senders may send proposals.
    pub external_proposal_allowed: bool,
    /// Whether clients may join by external commit.
    pub external_commit_allowed: bool,
    /// When pending proposals are committed.
    pub pending_proposal_policy: PendingProposalPolicy,
    /// How often members update their leaf node.
    #[serde(rename = "LeafNode_update_time")]
    pub leaf_node_update_time: MinDefaultMaxTime,
    /// Application message tolerances.
    pub app_message_policy: AppMessagePolicy,
    /// Longest KeyPackage lifetime (the draft's `unit64` is `uint64`, IN-POLICY-24).
    pub max_kp_lifetime: u64,
    /// Longest credential lifetime.
    pub max_credential_lifetime: u64,
    /// How long resumption PSKs are kept.
    pub resumption_psk_lifetime: u64,
    /// How long unused sender nonce and key pairs are kept.
    pub sender_nonce_keypair_lifetime: MinDefaultMaxTime,
    /// Most unused key pairs kept.
    pub max_keypairs: u32,
    /// How long out-of-order incoming messages are buffered.
    pub buffer_incoming_message_time: MinDefaultMaxTime,
    /// Most messages buffered.
    pub max_buffered_messages: u32,
}

impl OperationalParameters {
    /// Component ID of `mls_operational_policy` (suggested value, §10.1.1).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::MLS_OPERATIONAL_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes, unknown strategies, bools other than
    /// 0/1, over-long vectors and ranges out of order.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let params: Self = codec::decode_exact(bytes, Self::NAME)?;
        params.check()?;
        Ok(params)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    fn check(&self) -> Result<(), Error> {
        self.mandatory_capabilities.check()?;
        self.default_capabilities.check()?;
        self.forbidden_capabilities.check()?;
        check_len(
            "handshake_formats",
            self.handshake_formats.len(),
            MAX_CODE_POINTS,
        )?;
        self.pending_proposal_policy.check()?;
        self.leaf_node_update_time.check("LeafNode_update_time")?;
        self.sender_nonce_keypair_lifetime
            .check("sender_nonce_keypair_lifetime")?;
        self.buffer_incoming_message_time
            .check("buffer_incoming_message_time")
    }
}

impl Default for OperationalParameters {
    /// No position on anything (empty lists, zero times) except MIMI's own: handshakes as
    /// PublicMessage, external proposals (the hub's removals) and external commits (new
    /// devices) allowed (IN-POLICY-23).
    fn default() -> Self {
        Self {
            mandatory_capabilities: ExtendedCapabilities::default(),
            default_capabilities: ExtendedCapabilities::default(),
            forbidden_capabilities: ExtendedCapabilities::default(),
            handshake_formats: vec![MLS_PUBLIC_MESSAGE],
            external_proposal_allowed: true,
            external_commit_allowed: true,
            pending_proposal_policy: PendingProposalPolicy::Unspecified,
            leaf_node_update_time: MinDefaultMaxTime::default(),
            app_message_policy: AppMessagePolicy::default(),
            max_kp_lifetime: 0,
            max_credential_lifetime: 0,
            resumption_psk_lifetime: 0,
            sender_nonce_keypair_lifetime: MinDefaultMaxTime::default(),
            max_keypairs: 0,
            buffer_incoming_message_time: MinDefaultMaxTime::default(),
            max_buffered_messages: 0,
        }
    }
}

impl Codec for OperationalParameters {
    const NAME: &'static str = "OperationalParameters";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            mandatory_capabilities: ExtendedCapabilities::read(r)?,
            default_capabilities: ExtendedCapabilities::read(r)?,
            forbidden_capabilities: ExtendedCapabilities::read(r)?,
            handshake_formats: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            external_proposal_allowed: r.bool(Self::NAME)?,
            external_commit_allowed: r.bool(Self::NAME)?,
            pending_proposal_policy: PendingProposalPolicy::read(r)?,
            leaf_node_update_time: MinDefaultMaxTime::read(r)?,
            app_message_policy: AppMessagePolicy::read(r)?,
            max_kp_lifetime: r.u64(Self::NAME)?,
            max_credential_lifetime: r.u64(Self::NAME)?,
            resumption_psk_lifetime: r.u64(Self::NAME)?,
            sender_nonce_keypair_lifetime: MinDefaultMaxTime::read(r)?,
            max_keypairs: r.u32(Self::NAME)?,
            buffer_incoming_message_time: MinDefaultMaxTime::read(r)?,
            max_buffered_messages: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.mandatory_capabilities.write(out);
        self.default_capabilities.write(out);
        self.forbidden_capabilities.write(out);
        put_u16_vec(out, &self.handshake_formats);
        put_bool(out, self.external_proposal_allowed);
        put_bool(out, self.external_commit_allowed);
        self.pending_proposal_policy.write(out);
        self.leaf_node_update_time.write(out);
        self.app_message_policy.write(out);
        out.extend_from_slice(&self.max_kp_lifetime.to_be_bytes());
        out.extend_from_slice(&self.max_credential_lifetime.to_be_bytes());
        out.extend_from_slice(&self.resumption_psk_lifetime.to_be_bytes());
        self.sender_nonce_keypair_lifetime.write(out);
        out.extend_from_slice(&self.max_keypairs.to_be_bytes());
        self.buffer_incoming_message_time.write(out);
        out.extend_from_slice(&self.max_buffered_messages.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
