//! Component IDs of the `app_data_dictionary` (draft-ietf-mls-extensions; MIMI protocol §7 and
//! room-policy IANA sections; digest §2.4 item 4).

use crate::codec::{code_point, wire_via_codec};

code_point! {
    /// `uint16 ComponentID`. The room-policy values are the drafts' suggestions (IN-PROTO-19).
    ComponentId(u16) {
        /// `app_components` (mls-extensions).
        APP_COMPONENTS = 0x0001 => "app_components",
        /// `safe_aad` (mls-extensions).
        SAFE_AAD = 0x0002 => "safe_aad",
        /// `content_media_types` (mls-extensions).
        CONTENT_MEDIA_TYPES = 0x0003 => "content_media_types",
        /// `last_resort_key_package` (mls-extensions).
        LAST_RESORT_KEY_PACKAGE = 0x0004 => "last_resort_key_package",
        /// `app_ack` (mls-extensions).
        APP_ACK = 0x0005 => "app_ack",
        /// `frank_aad`, a SafeAAD item (protocol).
        FRANK_AAD = 0x0020 => "frank_aad",
        /// `franking_signature_key`, called `franking_agent` in the draft text (protocol).
        FRANKING_SIGNATURE_KEY = 0x0021 => "franking_signature_key",
        /// `participant_list` (protocol).
        PARTICIPANT_LIST = 0x0022 => "participant_list",
        /// `room_metadata` (protocol).
        ROOM_METADATA = 0x0023 => "room_metadata",
        /// `mls_operational_policy` (room-policy, suggested).
        MLS_OPERATIONAL_POLICY = 0x0024 => "mls_operational_policy",
        /// `roles_list` (room-policy, suggested).
        ROLES_LIST = 0x0025 => "roles_list",
        /// `preauth_list` (room-policy, suggested).
        PREAUTH_LIST = 0x0026 => "preauth_list",
        /// `base_room_policy` (room-policy, suggested).
        BASE_ROOM_POLICY = 0x0027 => "base_room_policy",
        /// `status_notification_policy` (room-policy, suggested).
        STATUS_NOTIFICATION_POLICY = 0x0028 => "status_notification_policy",
        /// `join_link_policy` (room-policy, suggested).
        JOIN_LINK_POLICY = 0x0029 => "join_link_policy",
        /// `join_links` (room-policy, suggested).
        JOIN_LINKS = 0x002a => "join_links",
        /// `link_preview_policy` (room-policy, suggested).
        LINK_PREVIEW_POLICY = 0x002b => "link_preview_policy",
        /// `asset_policy` (room-policy, suggested).
        ASSET_POLICY = 0x002c => "asset_policy",
        /// `logging_policy` (room-policy, suggested).
        LOGGING_POLICY = 0x002d => "logging_policy",
        /// `chat_history_policy` (room-policy, suggested).
        CHAT_HISTORY_POLICY = 0x002e => "chat_history_policy",
        /// `bot_policy` (room-policy, suggested).
        BOT_POLICY = 0x002f => "bot_policy",
        /// `message_expiration_policy` (room-policy, suggested).
        MESSAGE_EXPIRATION_POLICY = 0x0030 => "message_expiration_policy",
    }
}

impl ComponentId {
    /// Whether the ID is in the private-use range 0x8000..=0xFFFF.
    pub fn is_private_use(self) -> bool {
        self.0 >= 0x8000
    }
}

wire_via_codec!(ComponentId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;

    #[test]
    fn unknown_component_survives_round_trip_and_prints_hex() {
        let c = ComponentId::decode(&[0x80, 0x01]).unwrap();
        assert!(c.is_private_use());
        assert_eq!(c.encode(), vec![0x80, 0x01]);
        assert_eq!(format!("{c:?}"), "ComponentId(0x8001)");
        assert_eq!(
            format!("{:?}", ComponentId::PARTICIPANT_LIST),
            "ComponentId(participant_list)"
        );
    }
}
