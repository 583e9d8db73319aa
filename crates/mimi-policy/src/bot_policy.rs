//! Chat bots: the `bot_policy` component (draft-ietf-mimi-room-policy-03 §6.7).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_bool, put_codec_vec, put_opaque, read_codec_vec};
use serde::Serialize;

use crate::base_policy::{MAX_URI_LEN, Uri};
use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::roles::{MAX_ROLE_DESCRIPTION_LEN, MAX_ROLE_NAME_LEN, RoleIndex};

/// Most bots in `allowed_bots` (IN-POLICY-18).
const MAX_BOTS: usize = 64;

/// One allowed chat bot (`Bot`, §6.7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Bot {
    /// Descriptive name (opaque; JSON shows it as text).
    #[serde(serialize_with = "crate::json::lossy")]
    pub name: Vec<u8>,
    /// Descriptive text (opaque; JSON shows it as text).
    #[serde(serialize_with = "crate::json::lossy")]
    pub description: Vec<u8>,
    /// The bot's homepage.
    pub homepage: Uri,
    /// The bot runs inside a user's client and is not a participant.
    pub local_client_bot: bool,
    /// The role the bot acts in; 0 (not an active participant) for a local client bot.
    pub bot_role_index: RoleIndex,
    /// Whether the bot may send targeted messages to individual members.
    pub can_target_message_in_group: bool,
    /// Whether the bot may send different content to each member.
    pub per_user_content: bool,
}

impl Codec for Bot {
    const NAME: &'static str = "Bot";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            description: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            homepage: Uri::read(r)?,
            local_client_bot: r.bool(Self::NAME)?,
            bot_role_index: RoleIndex::read(r)?,
            can_target_message_in_group: r.bool(Self::NAME)?,
            per_user_content: r.bool(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.name);
        put_opaque(out, &self.description);
        self.homepage.write(out);
        put_bool(out, self.local_client_bot);
        self.bot_role_index.write(out);
        put_bool(out, self.can_target_message_in_group);
        put_bool(out, self.per_user_content);
    }
}

/// The bots allowed in the room (`BotPolicy`, §6.7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BotPolicy {
    /// The allowed bots.
    pub allowed_bots: Vec<Bot>,
}

impl BotPolicy {
    /// Component ID of `bot_policy` (suggested value, §10.1.12).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::BOT_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes, bools other than 0/1, over-long
    /// vectors and a local client bot with a non-zero role.
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

    fn check(&self) -> Result<(), Error> {
        check_len("allowed_bots", self.allowed_bots.len(), MAX_BOTS)?;
        for bot in &self.allowed_bots {
            check_len("name", bot.name.len(), MAX_ROLE_NAME_LEN)?;
            check_len(
                "description",
                bot.description.len(),
                MAX_ROLE_DESCRIPTION_LEN,
            )?;
            check_len("homepage", bot.homepage.uri.len(), MAX_URI_LEN)?;
            // POL-073, §6.7: "A bot with local_client_bot set to true has a bot_role_index of 0."
            if bot.local_client_bot && bot.bot_role_index != RoleIndex::NON_PARTICIPANT {
                return Err(Error::InvalidField {
                    field: "bot_role_index",
                    reason: "must be 0 for a local client bot",
                });
            }
        }
        Ok(())
    }
}

// `Default` (derived): no bots allowed, the safe choice until the room says otherwise.

impl Codec for BotPolicy {
    const NAME: &'static str = "BotPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            allowed_bots: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.allowed_bots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot() -> Bot {
        Bot {
            name: b"b".to_vec(),
            description: Vec::new(),
            homepage: Uri::new("h"),
            local_client_bot: false,
            bot_role_index: RoleIndex(2),
            can_target_message_in_group: true,
            per_user_content: false,
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        let policy = BotPolicy {
            allowed_bots: vec![bot()],
        };
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.7 (Bot, BotPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x0c,                   // allowed_bots<V>: 12 bytes
            0x01, b'b',             //   name<V>
            0x00,                   //   description<V> empty
            0x01, b'h',             //   homepage.uri<V>
            0x00,                   //   local_client_bot: false
            0x00, 0x00, 0x00, 0x02, //   bot_role_index: 2
            0x01,                   //   can_target_message_in_group: true
            0x00,                   //   per_user_content: false
        ];
        assert_eq!(policy.encode().unwrap(), expected);
        assert_eq!(BotPolicy::decode(expected).unwrap(), policy);
        assert_eq!(BotPolicy::default().encode().unwrap(), [0x00]);
    }

    #[test]
    fn rejects_bad_input() {
        let policy = BotPolicy {
            allowed_bots: vec![bot()],
        };
        let bytes = policy.encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(BotPolicy::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            BotPolicy::decode(&trailing),
            Err(Error::TrailingData { .. })
        ));
        let mut bad_bool = bytes.clone();
        bad_bool[12] = 2; // per_user_content
        assert!(matches!(
            BotPolicy::decode(&bad_bool),
            Err(Error::Decode { .. })
        ));
        let mut local = bytes.clone();
        local[6] = 1; // local_client_bot with bot_role_index 2
        assert!(matches!(
            BotPolicy::decode(&local),
            Err(Error::InvalidField {
                field: "bot_role_index",
                ..
            })
        ));
        let many = BotPolicy {
            allowed_bots: vec![bot(); MAX_BOTS + 1],
        };
        let bytes = codec::encode(&many, "BotPolicy").unwrap();
        assert!(matches!(
            BotPolicy::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "allowed_bots",
                ..
            })
        ));
    }

    #[test]
    fn local_client_bot_with_role_zero_is_accepted() {
        let mut local = bot();
        local.local_client_bot = true;
        local.bot_role_index = RoleIndex::NON_PARTICIPANT;
        let policy = BotPolicy {
            allowed_bots: vec![local],
        };
        let bytes = policy.encode().unwrap();
        assert_eq!(BotPolicy::decode(&bytes).unwrap(), policy);
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["allowed_bots"][0]["name"], "b");
        assert_eq!(json["allowed_bots"][0]["bot_role_index"], 0);
    }
}
