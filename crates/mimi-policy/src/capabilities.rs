//! Role capabilities: the "MIMI Role Capabilities" registry (draft-ietf-mimi-room-policy-03
//! §8 and §10.2).

use std::fmt;

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader};

/// A `CapabilityType` code point (`uint16`); unknown values survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(pub u16);

/// Defines the registry constants, `Capability::ALL` and the name lookup from one table.
macro_rules! registry {
    ($( $konst:ident = $val:literal, $name:literal $(, $reserved:ident)?; )*) => {
        impl Capability {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($val), ")",
                    $(" — ", stringify!($reserved), " in draft-ietf-mimi-room-policy-03",)? ".")]
                pub const $konst: Capability = Capability($val);
            )*

            /// Every registered capability, in code point order.
            pub const ALL: &'static [Capability] = &[$(Capability::$konst),*];

            /// The registry name (e.g. `canBan`), or `None` for an unregistered value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($name),)*
                    _ => None,
                }
            }
        }
    };
}

registry! {
    // §8.1 membership
    CAN_ADD_PARTICIPANT = 0x0000, "canAddParticipant";
    CAN_REMOVE_PARTICIPANT = 0x0001, "canRemoveParticipant";
    CAN_ADD_OWN_CLIENT = 0x0002, "canAddOwnClient";
    CAN_REMOVE_OWN_CLIENT = 0x0003, "canRemoveOwnClient";
    CAN_OPEN_JOIN = 0x0004, "canOpenJoin";
    CAN_JOIN_IF_PREAUTHORIZED = 0x0005, "canJoinIfPreauthorized";
    CAN_REMOVE_SELF = 0x0006, "canRemoveSelf";
    CAN_CREATE_JOIN_CODE = 0x0007, "canCreateJoinCode", reserved;
    CAN_DELETE_JOIN_CODE = 0x0008, "canDeleteJoinCode", reserved;
    CAN_USE_JOIN_CODE = 0x0009, "canUseJoinCode";
    CAN_BAN = 0x000a, "canBan";
    // The registry spells it canUnBan; §8.1.3 writes canUnban (IN-POLICY-8).
    CAN_UNBAN = 0x000b, "canUnBan";
    CAN_KICK = 0x000c, "canKick";
    CAN_KNOCK = 0x000d, "canKnock", reserved;
    CAN_ACCEPT_KNOCK = 0x000e, "canAcceptKnock", reserved;
    CAN_CHANGE_USER_ROLE = 0x000f, "canChangeUserRole";
    CAN_CHANGE_OWN_ROLE = 0x0010, "canChangeOwnRole";
    CAN_CREATE_SUBGROUP = 0x0011, "canCreateSubgroup", reserved;
    // §8.3 messages
    CAN_SEND_MESSAGE = 0x0100, "canSendMessage";
    CAN_RECEIVE_MESSAGE = 0x0101, "canReceiveMessage";
    CAN_COPY_MESSAGE = 0x0102, "canCopyMessage";
    CAN_REPORT_ABUSE = 0x0103, "canReportAbuse";
    CAN_REPLY_TO_MESSAGE = 0x0104, "canReplyToMessage";
    CAN_REACT_TO_MESSAGE = 0x0105, "canReactToMessage";
    CAN_EDIT_REACTION = 0x0106, "canEditReaction";
    CAN_DELETE_OWN_REACTION = 0x0107, "canDeleteOwnReaction";
    CAN_DELETE_OTHER_REACTION = 0x0108, "canDeleteOtherReaction";
    CAN_EDIT_OWN_MESSAGE = 0x0109, "canEditOwnMessage";
    CAN_DELETE_OWN_MESSAGE = 0x010a, "canDeleteOwnMessage";
    CAN_DELETE_OTHER_MESSAGE = 0x010b, "canDeleteOtherMessage";
    CAN_START_TOPIC = 0x010c, "canStartTopic";
    CAN_REPLY_IN_TOPIC = 0x010d, "canReplyInTopic";
    CAN_EDIT_OWN_TOPIC = 0x010e, "canEditOwnTopic";
    CAN_EDIT_OTHER_TOPIC = 0x010f, "canEditOtherTopic";
    CAN_SEND_DIRECT_MESSAGE = 0x0110, "canSendDirectMessage", reserved;
    CAN_TARGET_MESSAGE = 0x0111, "canTargetMessage", reserved;
    // §8.4 assets
    CAN_UPLOAD_IMAGE = 0x0200, "canUploadImage";
    CAN_UPLOAD_AUDIO = 0x0201, "canUploadAudio";
    CAN_UPLOAD_VIDEO = 0x0202, "canUploadVideo";
    CAN_UPLOAD_ATTACHMENT = 0x0203, "canUploadAttachment";
    CAN_DOWNLOAD_IMAGE = 0x0204, "canDownloadImage";
    CAN_DOWNLOAD_AUDIO = 0x0205, "canDownloadAudio";
    CAN_DOWNLOAD_VIDEO = 0x0206, "canDownloadVideo";
    CAN_DOWNLOAD_ATTACHMENT = 0x0207, "canDownloadAttachment";
    CAN_SEND_LINK = 0x0208, "canSendLink";
    CAN_SEND_LINK_PREVIEW = 0x0209, "canSendLinkPreview";
    CAN_FOLLOW_LINK = 0x020a, "canFollowLink";
    CAN_COPY_LINK = 0x020b, "canCopyLink";
    // §8.2 metadata
    CAN_CHANGE_ROOM_NAME = 0x0300, "canChangeRoomName";
    CAN_CHANGE_ROOM_DESCRIPTION = 0x0301, "canChangeRoomDescription";
    CAN_CHANGE_ROOM_AVATAR = 0x0302, "canChangeRoomAvatar";
    CAN_CHANGE_ROOM_SUBJECT = 0x0303, "canChangeRoomSubject";
    CAN_CHANGE_ROOM_MOOD = 0x0304, "canChangeRoomMood";
    CAN_CHANGE_OWN_NAME = 0x0380, "canChangeOwnName", reserved;
    CAN_CHANGE_OWN_PRESENCE = 0x0381, "canChangeOwnPresence", reserved;
    CAN_CHANGE_OWN_MOOD = 0x0382, "canChangeOwnMood", reserved;
    CAN_CHANGE_OWN_AVATAR = 0x0383, "canChangeOwnAvatar", reserved;
    // §8.5 real-time media
    CAN_START_CALL = 0x0400, "canStartCall";
    CAN_JOIN_CALL = 0x0401, "canJoinCall";
    CAN_SEND_AUDIO = 0x0402, "canSendAudio";
    CAN_RECEIVE_AUDIO = 0x0403, "canReceiveAudio";
    CAN_SEND_VIDEO = 0x0404, "canSendVideo";
    CAN_RECEIVE_VIDEO = 0x0405, "canReceiveVideo";
    CAN_SHARE_SCREEN = 0x0406, "canShareScreen";
    CAN_VIEW_SHARED_SCREEN = 0x0407, "canViewSharedScreen";
    // §8.6 disruptive policy changes
    CAN_CREATE_ROOM = 0x0500, "canCreateRoom", reserved;
    CAN_DESTROY_ROOM = 0x0501, "canDestroyRoom";
    CAN_CHANGE_ROOM_MEMBERSHIP_STYLE = 0x0502, "canChangeRoomMembershipStyle";
    CAN_CHANGE_ROLE_DEFINITIONS = 0x0503, "canChangeRoleDefinitions";
    CAN_CHANGE_PREAUTHORIZED_USER_LIST = 0x0504, "canChangePreauthorizedUserList";
    CAN_CHANGE_OTHER_POLICY_ATTRIBUTE = 0x0505, "canChangeOtherPolicyAttribute", reserved;
    CAN_CHANGE_MLS_OPERATIONAL_POLICIES = 0x0600, "canChangeMlsOperationalPolicies", reserved;
    CAN_SEND_MLS_REINIT_PROPOSAL = 0x0601, "canSendMLSReinitProposal";
    CAN_SEND_MLS_UPDATE_PROPOSAL = 0x0602, "canSendMLSUpdateProposal", reserved;
    CAN_SEND_MLS_PSK_PROPOSAL = 0x0603, "canSendMLSPSKProposal", reserved;
    CAN_SEND_MLS_EXTERNAL_PROPOSAL = 0x0604, "canSendMLSExternalProposal", reserved;
    CAN_SEND_MLS_EXTERNAL_COMMIT = 0x0605, "canSendMLSExternalCommit", reserved;
}

impl Capability {
    /// Ours, in the private-use range: the holder may add, replace and remove the room's
    /// application components (private-use component IDs; IN-ROOMSTATE-3).
    pub const CAN_CHANGE_APP_COMPONENTS: Capability = Capability(0xF000);

    /// True for the private-use range 0xF000–0xFFFF (§10.2).
    pub fn is_private_use(self) -> bool {
        self.0 >= 0xF000
    }

    /// The registry name, or ours for a private-use capability this implementation defines.
    pub fn known_name(self) -> Option<&'static str> {
        match self {
            Self::CAN_CHANGE_APP_COMPONENTS => Some("canChangeAppComponents"),
            other => other.name(),
        }
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Capability({:#06x})", self.0),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// A capability serializes as its registry name, or hex (`"0xf001"`) when unregistered.
impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Codec for Capability {
    const NAME: &'static str = "CapabilityType";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u16(Self::NAME).map(Capability)
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }
}

impl From<u16> for Capability {
    fn from(value: u16) -> Self {
        Capability(value)
    }
}

impl From<Capability> for u16 {
    fn from(value: Capability) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_every_code_point_once() {
        assert_eq!(Capability::ALL.len(), 77);
        let mut sorted = Capability::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), Capability::ALL.len());
        assert_eq!(sorted, Capability::ALL.to_vec());
    }

    #[test]
    fn code_points_match_the_registry() {
        assert_eq!(Capability::CAN_ADD_PARTICIPANT.0, 0x0000);
        assert_eq!(Capability::CAN_REMOVE_SELF.0, 0x0006);
        assert_eq!(Capability::CAN_BAN.0, 0x000a);
        assert_eq!(Capability::CAN_UNBAN.0, 0x000b);
        assert_eq!(Capability::CAN_KICK.0, 0x000c);
        assert_eq!(Capability::CAN_CHANGE_OWN_ROLE.0, 0x0010);
        assert_eq!(Capability::CAN_SEND_MESSAGE.0, 0x0100);
        assert_eq!(Capability::CAN_TARGET_MESSAGE.0, 0x0111);
        assert_eq!(Capability::CAN_COPY_LINK.0, 0x020b);
        assert_eq!(Capability::CAN_CHANGE_ROOM_MOOD.0, 0x0304);
        assert_eq!(Capability::CAN_CHANGE_OWN_AVATAR.0, 0x0383);
        assert_eq!(Capability::CAN_VIEW_SHARED_SCREEN.0, 0x0407);
        assert_eq!(Capability::CAN_CHANGE_PREAUTHORIZED_USER_LIST.0, 0x0504);
        assert_eq!(Capability::CAN_SEND_MLS_EXTERNAL_COMMIT.0, 0x0605);
    }

    #[test]
    fn debug_prints_the_name_or_hex() {
        assert_eq!(format!("{:?}", Capability::CAN_BAN), "canBan");
        assert_eq!(format!("{:?}", Capability(0xf00d)), "Capability(0xf00d)");
        assert_eq!(Capability(0x0012).to_string(), "0x0012");
        assert_eq!(Capability::CAN_UNBAN.to_string(), "canUnBan");
    }

    #[test]
    fn unknown_capability_survives_a_round_trip() {
        let cap = Capability(0xf123);
        let mut bytes = Vec::new();
        cap.write(&mut bytes);
        assert_eq!(bytes, [0xf1, 0x23]);
        let mut reader = Reader::new(&bytes);
        let back = Capability::read(&mut reader).unwrap();
        assert!(reader.is_empty());
        assert_eq!(back, cap);
        assert!(back.is_private_use());
    }
}
