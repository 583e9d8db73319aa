//! Dispatch over every policy component of draft-ietf-mimi-room-policy-03 by component ID.

use serde::Serialize;

use crate::asset_policy::AssetPolicy;
use crate::base_policy::BaseRoomPolicy;
use crate::bot_policy::BotPolicy;
use crate::chat_history_policy::HistoryPolicy;
use crate::default_roles::default_roles;
use crate::error::Error;
use crate::fields::unknown;
use crate::join_link_policy::JoinLinkPolicy;
use crate::join_links::JoinLinksData;
use crate::link_preview_policy::LinkPreviewPolicy;
use crate::logging_policy::LoggingPolicy;
use crate::message_expiration_policy::MessageExpiration;
use crate::mls_operational_policy::OperationalParameters;
use crate::preauth::PreAuthData;
use crate::roles::RoleData;
use crate::status_notification_policy::StatusNotificationPolicy;

/// The data of one policy component; JSON is an object with the component's draft name as its
/// only key (e.g. `{"base_room_policy": {...}}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum PolicyComponent {
    /// `mls_operational_policy` (0x0024); boxed, as it is several times larger than the rest.
    #[serde(rename = "mls_operational_policy")]
    MlsOperationalPolicy(Box<OperationalParameters>),
    /// `roles_list` (0x0025).
    #[serde(rename = "roles_list")]
    RolesList(RoleData),
    /// `preauth_list` (0x0026).
    #[serde(rename = "preauth_list")]
    PreauthList(PreAuthData),
    /// `base_room_policy` (0x0027).
    #[serde(rename = "base_room_policy")]
    BaseRoomPolicy(BaseRoomPolicy),
    /// `status_notification_policy` (0x0028).
    #[serde(rename = "status_notification_policy")]
    StatusNotificationPolicy(StatusNotificationPolicy),
    /// `join_link_policy` (0x0029).
    #[serde(rename = "join_link_policy")]
    JoinLinkPolicy(JoinLinkPolicy),
    /// `join_links` (0x002A).
    #[serde(rename = "join_links")]
    JoinLinks(JoinLinksData),
    /// `link_preview_policy` (0x002B).
    #[serde(rename = "link_preview_policy")]
    LinkPreviewPolicy(LinkPreviewPolicy),
    /// `asset_policy` (0x002C).
    #[serde(rename = "asset_policy")]
    AssetPolicy(AssetPolicy),
    /// `logging_policy` (0x002D).
    #[serde(rename = "logging_policy")]
    LoggingPolicy(LoggingPolicy),
    /// `chat_history_policy` (0x002E).
    #[serde(rename = "chat_history_policy")]
    ChatHistoryPolicy(HistoryPolicy),
    /// `bot_policy` (0x002F).
    #[serde(rename = "bot_policy")]
    BotPolicy(BotPolicy),
    /// `message_expiration_policy` (0x0030).
    #[serde(rename = "message_expiration_policy")]
    MessageExpirationPolicy(MessageExpiration),
}

impl PolicyComponent {
    /// The component IDs of every policy component, in ID order.
    pub const COMPONENT_IDS: &'static [u16] = &[
        OperationalParameters::COMPONENT_ID,
        RoleData::COMPONENT_ID,
        PreAuthData::COMPONENT_ID,
        BaseRoomPolicy::COMPONENT_ID,
        StatusNotificationPolicy::COMPONENT_ID,
        JoinLinkPolicy::COMPONENT_ID,
        JoinLinksData::COMPONENT_ID,
        LinkPreviewPolicy::COMPONENT_ID,
        AssetPolicy::COMPONENT_ID,
        LoggingPolicy::COMPONENT_ID,
        HistoryPolicy::COMPONENT_ID,
        BotPolicy::COMPONENT_ID,
        MessageExpiration::COMPONENT_ID,
    ];

    /// Decodes the component data `bytes` of component `component_id`; `Ok(None)` when the ID
    /// is not a policy component (participant_list, room_metadata, private use, ...).
    pub fn decode(component_id: u16, bytes: &[u8]) -> Result<Option<Self>, Error> {
        use PolicyComponent as P;
        let component = match component_id {
            OperationalParameters::COMPONENT_ID => {
                P::MlsOperationalPolicy(Box::new(OperationalParameters::decode(bytes)?))
            }
            RoleData::COMPONENT_ID => P::RolesList(RoleData::decode(bytes)?),
            PreAuthData::COMPONENT_ID => P::PreauthList(PreAuthData::decode(bytes)?),
            BaseRoomPolicy::COMPONENT_ID => P::BaseRoomPolicy(BaseRoomPolicy::decode(bytes)?),
            StatusNotificationPolicy::COMPONENT_ID => {
                P::StatusNotificationPolicy(StatusNotificationPolicy::decode(bytes)?)
            }
            JoinLinkPolicy::COMPONENT_ID => P::JoinLinkPolicy(JoinLinkPolicy::decode(bytes)?),
            JoinLinksData::COMPONENT_ID => P::JoinLinks(JoinLinksData::decode(bytes)?),
            LinkPreviewPolicy::COMPONENT_ID => {
                P::LinkPreviewPolicy(LinkPreviewPolicy::decode(bytes)?)
            }
            AssetPolicy::COMPONENT_ID => P::AssetPolicy(AssetPolicy::decode(bytes)?),
            LoggingPolicy::COMPONENT_ID => P::LoggingPolicy(LoggingPolicy::decode(bytes)?),
            HistoryPolicy::COMPONENT_ID => P::ChatHistoryPolicy(HistoryPolicy::decode(bytes)?),
            BotPolicy::COMPONENT_ID => P::BotPolicy(BotPolicy::decode(bytes)?),
            MessageExpiration::COMPONENT_ID => {
                P::MessageExpirationPolicy(MessageExpiration::decode(bytes)?)
            }
            _ => return Ok(None),
        };
        Ok(Some(component))
    }

    /// The value a new room starts with for component `component_id` (each type's `Default`;
    /// `default_roles()` for roles_list), or `None` if it is not a policy component.
    pub fn new_default(component_id: u16) -> Option<Self> {
        use PolicyComponent as P;
        Some(match component_id {
            OperationalParameters::COMPONENT_ID => P::MlsOperationalPolicy(Box::default()),
            RoleData::COMPONENT_ID => P::RolesList(default_roles()),
            PreAuthData::COMPONENT_ID => P::PreauthList(PreAuthData::default()),
            BaseRoomPolicy::COMPONENT_ID => P::BaseRoomPolicy(BaseRoomPolicy::default()),
            StatusNotificationPolicy::COMPONENT_ID => {
                P::StatusNotificationPolicy(StatusNotificationPolicy::default())
            }
            JoinLinkPolicy::COMPONENT_ID => P::JoinLinkPolicy(JoinLinkPolicy::default()),
            JoinLinksData::COMPONENT_ID => P::JoinLinks(JoinLinksData::default()),
            LinkPreviewPolicy::COMPONENT_ID => P::LinkPreviewPolicy(LinkPreviewPolicy::default()),
            AssetPolicy::COMPONENT_ID => P::AssetPolicy(AssetPolicy::default()),
            LoggingPolicy::COMPONENT_ID => P::LoggingPolicy(LoggingPolicy::default()),
            HistoryPolicy::COMPONENT_ID => P::ChatHistoryPolicy(HistoryPolicy::default()),
            BotPolicy::COMPONENT_ID => P::BotPolicy(BotPolicy::default()),
            MessageExpiration::COMPONENT_ID => {
                P::MessageExpirationPolicy(MessageExpiration::default())
            }
            _ => return None,
        })
    }

    /// Encodes the component data, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        use PolicyComponent as P;
        match self {
            P::MlsOperationalPolicy(c) => c.encode(),
            P::RolesList(c) => c.encode(),
            P::PreauthList(c) => c.encode(),
            P::BaseRoomPolicy(c) => c.encode(),
            P::StatusNotificationPolicy(c) => c.encode(),
            P::JoinLinkPolicy(c) => c.encode(),
            P::JoinLinks(c) => c.encode(),
            P::LinkPreviewPolicy(c) => c.encode(),
            P::AssetPolicy(c) => c.encode(),
            P::LoggingPolicy(c) => c.encode(),
            P::ChatHistoryPolicy(c) => c.encode(),
            P::BotPolicy(c) => c.encode(),
            P::MessageExpirationPolicy(c) => c.encode(),
        }
    }

    /// The component ID of this component.
    pub fn component_id(&self) -> u16 {
        use PolicyComponent as P;
        match self {
            P::MlsOperationalPolicy(_) => OperationalParameters::COMPONENT_ID,
            P::RolesList(_) => RoleData::COMPONENT_ID,
            P::PreauthList(_) => PreAuthData::COMPONENT_ID,
            P::BaseRoomPolicy(_) => BaseRoomPolicy::COMPONENT_ID,
            P::StatusNotificationPolicy(_) => StatusNotificationPolicy::COMPONENT_ID,
            P::JoinLinkPolicy(_) => JoinLinkPolicy::COMPONENT_ID,
            P::JoinLinks(_) => JoinLinksData::COMPONENT_ID,
            P::LinkPreviewPolicy(_) => LinkPreviewPolicy::COMPONENT_ID,
            P::AssetPolicy(_) => AssetPolicy::COMPONENT_ID,
            P::LoggingPolicy(_) => LoggingPolicy::COMPONENT_ID,
            P::ChatHistoryPolicy(_) => HistoryPolicy::COMPONENT_ID,
            P::BotPolicy(_) => BotPolicy::COMPONENT_ID,
            P::MessageExpirationPolicy(_) => MessageExpiration::COMPONENT_ID,
        }
    }

    /// The component's draft name (e.g. `base_room_policy`).
    pub fn name(&self) -> &'static str {
        mimi_protocol::ComponentId(self.component_id())
            .name()
            .unwrap_or("policy component")
    }

    /// Sets the scalar field `field` (see [`policy_field`](crate::policy_field)) from
    /// command-line text; components without scalar fields refuse every name.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        use PolicyComponent as P;
        match self {
            P::BaseRoomPolicy(c) => c.set_field(field, value),
            P::StatusNotificationPolicy(c) => c.set_field(field, value),
            P::JoinLinkPolicy(c) => c.set_field(field, value),
            P::LinkPreviewPolicy(c) => c.set_field(field, value),
            P::AssetPolicy(c) => c.set_field(field, value),
            P::LoggingPolicy(c) => c.set_field(field, value),
            P::ChatHistoryPolicy(c) => c.set_field(field, value),
            P::MessageExpirationPolicy(c) => c.set_field(field, value),
            P::MlsOperationalPolicy(_)
            | P::RolesList(_)
            | P::PreauthList(_)
            | P::JoinLinks(_)
            | P::BotPolicy(_) => Err(unknown(self.name(), field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{policy_field, policy_fields};

    #[test]
    fn every_policy_id_has_a_default_that_round_trips() {
        for &id in PolicyComponent::COMPONENT_IDS {
            let component = PolicyComponent::new_default(id).unwrap();
            assert_eq!(component.component_id(), id);
            let bytes = component.encode().unwrap();
            assert_eq!(
                PolicyComponent::decode(id, &bytes).unwrap(),
                Some(component),
                "{id:#06x}"
            );
        }
        let ids: Vec<u16> = (0x0024..=0x0030).collect();
        assert_eq!(PolicyComponent::COMPONENT_IDS, ids.as_slice());
    }

    #[test]
    fn other_component_ids_are_not_policy_components() {
        for id in [0x0001, 0x0022, 0x0023, 0x0031, 0x8000, 0xffff] {
            assert_eq!(PolicyComponent::decode(id, &[0x00]), Ok(None));
            assert_eq!(PolicyComponent::new_default(id), None);
        }
    }

    #[test]
    fn decode_errors_come_from_the_component() {
        assert!(matches!(
            PolicyComponent::decode(StatusNotificationPolicy::COMPONENT_ID, &[0, 3]),
            Err(Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn every_field_is_held_by_exactly_one_component_that_accepts_it() {
        let names: Vec<&str> = policy_fields().map(|(name, _)| name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate field name");
        for (field, id) in policy_fields() {
            assert_eq!(policy_field(field), Some(id));
            for &other in PolicyComponent::COMPONENT_IDS {
                let mut component = PolicyComponent::new_default(other).unwrap();
                let result = component.set_field(field, "bogus value");
                if other == id {
                    assert!(
                        matches!(result, Err(Error::InvalidValue { .. })),
                        "{field} in {other:#06x}: {result:?}"
                    );
                } else {
                    assert!(
                        matches!(result, Err(Error::UnknownField { .. })),
                        "{field} in {other:#06x}: {result:?}"
                    );
                }
            }
        }
        assert_eq!(policy_field("roles"), None);
        assert_eq!(policy_field("max_user"), None);
    }

    #[test]
    fn sets_a_field_through_the_dispatch() {
        let id = policy_field("read_receipts").unwrap();
        let mut component = PolicyComponent::new_default(id).unwrap();
        component.set_field("read_receipts", "forbidden").unwrap();
        assert_eq!(component.encode().unwrap(), [0x00, 0x02]);
        let id = policy_field("max_users").unwrap();
        let mut component = PolicyComponent::new_default(id).unwrap();
        component.set_field("max_users", "10").unwrap();
        let PolicyComponent::BaseRoomPolicy(base) = &component else {
            panic!("max_users is a base_room_policy field");
        };
        assert_eq!(base.max_users, Some(10));
    }

    #[test]
    fn serializes_tagged_with_the_component_name() {
        let component =
            PolicyComponent::new_default(StatusNotificationPolicy::COMPONENT_ID).unwrap();
        assert_eq!(
            serde_json::to_value(&component).unwrap(),
            serde_json::json!({"status_notification_policy": {
                "delivery_notifications": "optional",
                "read_receipts": "optional"
            }})
        );
        let roles = PolicyComponent::new_default(RoleData::COMPONENT_ID).unwrap();
        let json = serde_json::to_value(&roles).unwrap();
        let banned = &json["roles_list"]["roles"][1];
        assert_eq!(banned["role_index"], 1);
        assert_eq!(banned["role_name"], "banned");
        let member = &json["roles_list"]["roles"][2];
        assert_eq!(member["role_capabilities"][0], "canAddParticipant");
        assert_eq!(component.name(), "status_notification_policy");
    }
}
