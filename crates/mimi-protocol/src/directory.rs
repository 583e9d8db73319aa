//! The endpoint directory at `/.well-known/mimi-protocol-directory` (draft §5.2, digest §2.3).

use serde::{Deserialize, Serialize};

/// Where the directory lives on every provider.
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";

/// The ACME-style JSON directory of endpoint URL templates. All ten fields are required
/// (IN-PROTO-18); unknown fields are ignored so peers can add endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `POST .../keyMaterial/{targetUser}`.
    pub key_material: String,
    /// `POST .../update/{roomId}` (the draft's example lacks the `/`).
    pub update: String,
    /// `POST .../notify/{roomId}`.
    pub notify: String,
    /// `POST .../submitMessage/{roomId}`.
    pub submit_message: String,
    /// `POST .../groupInfo/{roomId}`.
    pub group_info: String,
    /// `POST .../requestConsent/{targetUser}`.
    pub request_consent: String,
    /// `POST .../updateConsent/{requesterUser}`.
    pub update_consent: String,
    /// `POST .../identifierQuery/{domain}`.
    pub identifier_query: String,
    /// `POST .../reportAbuse/{roomId}`.
    pub report_abuse: String,
    /// `GET .../proxyDownload/{downloadUrl}`.
    pub proxy_download: String,
}

impl Directory {
    /// The directory of a server whose API lives at `{base_url}/v1/...`; a trailing `/` on the
    /// base is ignored.
    pub fn for_base_url(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        let t = |endpoint: &str, param: &str| format!("{base}/v1/{endpoint}/{{{param}}}");
        Self {
            key_material: t("keyMaterial", "targetUser"),
            update: t("update", "roomId"),
            notify: t("notify", "roomId"),
            submit_message: t("submitMessage", "roomId"),
            group_info: t("groupInfo", "roomId"),
            request_consent: t("requestConsent", "targetUser"),
            update_consent: t("updateConsent", "requesterUser"),
            identifier_query: t("identifierQuery", "domain"),
            report_abuse: t("reportAbuse", "roomId"),
            proxy_download: t("proxyDownload", "downloadUrl"),
        }
    }

    /// Parses the JSON document.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Serializes the JSON document.
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Replaces the first `{name}` placeholder of `template` with `param`, which the caller has
    /// already made path-safe (e.g. [`crate::MimiUri::to_path_segment`]). `None` if the template
    /// has no placeholder.
    pub fn expand(template: &str, param: &str) -> Option<String> {
        let open = template.find('{')?;
        let close = open + template[open..].find('}')?;
        Some(format!(
            "{}{}{}",
            &template[..open],
            param,
            &template[close + 1..]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_templates_from_base_url() {
        let d = Directory::for_base_url("https://a.example:8401/");
        assert_eq!(
            d.key_material,
            "https://a.example:8401/v1/keyMaterial/{targetUser}"
        );
        assert_eq!(d.update, "https://a.example:8401/v1/update/{roomId}");
        assert_eq!(
            d.proxy_download,
            "https://a.example:8401/v1/proxyDownload/{downloadUrl}"
        );
        assert_eq!(
            Directory::expand(&d.notify, "a.example/r/clubhouse").unwrap(),
            "https://a.example:8401/v1/notify/a.example/r/clubhouse"
        );
        assert_eq!(Directory::expand("https://x/v1/notify", "y"), None);
    }

    #[test]
    fn json_uses_the_drafts_field_names() {
        let d = Directory::for_base_url("https://mimi.example.com");
        let json = d.to_json();
        for key in [
            "keyMaterial",
            "update",
            "notify",
            "submitMessage",
            "groupInfo",
            "requestConsent",
            "updateConsent",
            "identifierQuery",
            "reportAbuse",
            "proxyDownload",
        ] {
            assert!(json.contains(&format!("\"{key}\"")), "missing {key}");
        }
        assert_eq!(Directory::from_json(&json).unwrap(), d);
    }

    #[test]
    fn parses_the_drafts_example_with_typos_fixed() {
        let json = r#"{
          "keyMaterial": "https://mimi.example.com/v1/keyMaterial/{targetUser}",
          "update": "https://mimi.example.com/v1/update/{roomId}",
          "notify": "https://mimi.example.com/v1/notify/{roomId}",
          "submitMessage": "https://mimi.example.com/v1/submitMessage/{roomId}",
          "groupInfo": "https://mimi.example.com/v1/groupInfo/{roomId}",
          "requestConsent": "https://mimi.example.com/v1/requestConsent/{targetUser}",
          "updateConsent": "https://mimi.example.com/v1/updateConsent/{requesterUser}",
          "identifierQuery": "https://mimi.example.com/v1/identifierQuery/{domain}",
          "reportAbuse": "https://mimi.example.com/v1/reportAbuse/{roomId}",
          "proxyDownload": "https://mimi.example.com/v1/proxyDownload/{downloadUrl}",
          "futureEndpoint": "https://mimi.example.com/v1/future/{x}"
        }"#;
        assert_eq!(
            Directory::from_json(json).unwrap(),
            Directory::for_base_url("https://mimi.example.com")
        );
        assert!(Directory::from_json("{}").is_err());
    }
}
