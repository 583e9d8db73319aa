//! What a room's policy lets one user do, for the checks that happen outside commits: sending
//! messages (our client), uploading and downloading assets (our client, the uploader's provider
//! and the hub's proxyDownload). One place, so the client and the providers agree.

use std::collections::BTreeMap;

use mimi_policy::{
    AssetKind, AssetPolicy, Capability, DownloadPrivacyType, PolicyComponent, RoleIndex, RoomPolicy,
};

use crate::components::RoomComponents;

/// What a room's policy lets one user do, read from one view of the room without checking the
/// members' credentials, so it is cheap enough for every message.
#[derive(Debug, Clone)]
pub struct RoomRules {
    /// The user's role (0 if not a participant).
    pub role: RoleIndex,
    /// The room's roles with its base policy's limits.
    pub policy: RoomPolicy,
    /// Every component of the room by ID (the participant list excluded).
    pub components: BTreeMap<u16, Vec<u8>>,
}

impl RoomRules {
    /// The rules of `user` in a room whose components are `components`.
    pub(crate) fn of(components: &RoomComponents, user: &str) -> Self {
        Self {
            role: components.role_of(user),
            policy: components.policy.clone(),
            components: components
                .raw
                .iter()
                .map(|(id, v)| (*id, v.as_ref().clone()))
                .collect(),
        }
    }

    /// Rules another node of the hub's cluster read, rebuilt from the user's role and the
    /// room's components (the policy is decoded from them again, as the room does).
    pub fn from_parts(
        role: RoleIndex,
        components: BTreeMap<u16, Vec<u8>>,
    ) -> Result<Self, crate::RoomError> {
        use crate::components::{BASE_ROOM_POLICY, ROLES_LIST};
        let (policy, _) = crate::components::policy_of(
            components.get(&ROLES_LIST).map(Vec::as_slice),
            components.get(&BASE_ROOM_POLICY).map(Vec::as_slice),
        )?;
        Ok(Self {
            role,
            policy,
            components,
        })
    }

    /// Whether the user's role holds `capability`.
    pub fn can(&self, capability: Capability) -> bool {
        self.policy.has_capability(self.role, capability)
    }

    /// The room's policy component `id`, decoded, if the room has it and it decodes.
    pub fn policy_component(&self, id: u16) -> Option<PolicyComponent> {
        let bytes = self.components.get(&id)?;
        PolicyComponent::decode(id, bytes).ok().flatten()
    }

    /// The room's asset policy, if it has one.
    pub fn asset_policy(&self) -> Option<AssetPolicy> {
        match self.policy_component(AssetPolicy::COMPONENT_ID)? {
            PolicyComponent::AssetPolicy(policy) => Some(policy),
            _ => None,
        }
    }

    /// AST-010: may the user send an asset of `media_type` and `size` bytes (plaintext) stored
    /// at `host`, its own provider being `sender_domain` (room-policy-03 §6.4, §8.3): the upload
    /// capability of its kind, the size limit of its kind, the media type lists and the upload
    /// destinations. The reason names the capability or the rule.
    pub fn check_upload(
        &self,
        media_type: &str,
        size: u64,
        sender_domain: &str,
        host: &str,
    ) -> Result<(), String> {
        let kind = AssetKind::of_media_type(media_type);
        let capability = match kind {
            AssetKind::Image => Capability::CAN_UPLOAD_IMAGE,
            AssetKind::Audio => Capability::CAN_UPLOAD_AUDIO,
            AssetKind::Video => Capability::CAN_UPLOAD_VIDEO,
            AssetKind::Attachment => Capability::CAN_UPLOAD_ATTACHMENT,
        };
        if !self.can(capability) {
            return Err(format!("role {} lacks {capability}", self.role));
        }
        let Some(policy) = self.asset_policy() else {
            return Ok(());
        };
        let max = policy.max_size_for(kind);
        if size > max {
            return Err(format!(
                "the room's asset policy allows {kind:?} assets of at most {max} bytes, not {size}"
            ));
        }
        if !policy.media_type_allowed(media_type) {
            return Err(format!(
                "the room's asset policy does not allow media type {media_type}"
            ));
        }
        if !policy.upload_domain_allowed(sender_domain, host) {
            return Err(format!(
                "the room's asset policy does not allow uploads to {host} for {sender_domain}"
            ));
        }
        Ok(())
    }

    /// AST-011: may the user download an asset of `media_type` (if known) by `how`: the
    /// download capability of its kind and the room's download privacy (room-policy-03 §6.4).
    pub fn check_download(
        &self,
        media_type: Option<&str>,
        how: DownloadPrivacyType,
    ) -> Result<(), String> {
        if let Some(media_type) = media_type {
            let capability = match AssetKind::of_media_type(media_type) {
                AssetKind::Image => Capability::CAN_DOWNLOAD_IMAGE,
                AssetKind::Audio => Capability::CAN_DOWNLOAD_AUDIO,
                AssetKind::Video => Capability::CAN_DOWNLOAD_VIDEO,
                AssetKind::Attachment => Capability::CAN_DOWNLOAD_ATTACHMENT,
            };
            if !self.can(capability) {
                return Err(format!("role {} lacks {capability}", self.role));
            }
        }
        match self.asset_policy() {
            Some(policy) if !policy.download_privacy.allows(how) => Err(format!(
                "the room's asset policy does not allow {} downloads",
                how.name()
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use mimi_policy::{
        AssetUploadLocation, DomainName, MediaType, Preset, ProviderAssetUploadDomains,
    };

    use super::*;

    fn rules(role: u32, policy: Option<&AssetPolicy>) -> RoomRules {
        RoomRules {
            role: RoleIndex(role),
            policy: RoomPolicy::new(Preset::Moderated.roles()).unwrap(),
            components: policy
                .map(|p| (AssetPolicy::COMPONENT_ID, p.encode().unwrap()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn uploads_need_the_kinds_capability_size_type_and_destination() {
        // A moderated room's attendee (3) may not upload; a speaker (4) may.
        let attendee = rules(3, None);
        let refused = attendee
            .check_upload("image/png", 1, "a.example", "a.example")
            .unwrap_err();
        assert!(refused.contains("canUploadImage"), "{refused}");
        let mut policy = AssetPolicy {
            max_video: 1000,
            forbidden_media_types: vec![MediaType::parse("application/x-msdownload").unwrap()],
            asset_upload_location: AssetUploadLocation::LocalProvider,
            upload_domains: vec![ProviderAssetUploadDomains {
                provider: DomainName::new("a.example"),
                asset_upload_destinations: vec![DomainName::new("files.a.example")],
            }],
            ..AssetPolicy::default()
        };
        let speaker = rules(4, Some(&policy));
        speaker
            .check_upload("video/mp4", 1000, "a.example", "files.a.example")
            .unwrap();
        let big = speaker
            .check_upload("video/mp4", 1001, "a.example", "files.a.example")
            .unwrap_err();
        assert!(big.contains("at most 1000"), "{big}");
        let exe = speaker
            .check_upload(
                "application/x-msdownload",
                1,
                "a.example",
                "files.a.example",
            )
            .unwrap_err();
        assert!(exe.contains("media type"), "{exe}");
        let elsewhere = speaker
            .check_upload("video/mp4", 1, "a.example", "cdn.example")
            .unwrap_err();
        assert!(elsewhere.contains("uploads to cdn.example"), "{elsewhere}");
        policy.asset_upload_location = AssetUploadLocation::Unspecified;
        rules(4, Some(&policy))
            .check_upload("video/mp4", 1, "a.example", "cdn.example")
            .unwrap();
    }

    #[test]
    fn downloads_need_the_kinds_capability_and_an_allowed_mechanism() {
        let mut policy = AssetPolicy::default();
        policy.download_privacy.allowed_download_types = vec![DownloadPrivacyType::Direct];
        policy.download_privacy.forbidden_download_types = vec![DownloadPrivacyType::HubProxy];
        let guest = rules(2, Some(&policy));
        guest
            .check_download(Some("image/png"), DownloadPrivacyType::Direct)
            .unwrap();
        let proxied = guest
            .check_download(Some("image/png"), DownloadPrivacyType::HubProxy)
            .unwrap_err();
        assert!(proxied.contains("hubProxy"), "{proxied}");
        // Guests may not download attachments (Appendix A.3).
        let attachment = guest
            .check_download(Some("application/pdf"), DownloadPrivacyType::Direct)
            .unwrap_err();
        assert!(attachment.contains("canDownloadAttachment"), "{attachment}");
    }
}
