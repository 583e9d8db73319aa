//! The endpoint directory at `/.well-known/mimi-protocol-directory` (draft §5.2, digest §2.3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the directory lives on every provider.
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";

/// The ACME-style JSON directory of endpoint URL templates (IN-PROTO-18). The six endpoints
/// every provider needs to take part in a room are required; the four the draft adds for
/// consent, discovery and abuse reports are present only when the provider serves them, and
/// `ratchetTree` is our addition for trees sent by URL (IN-SERVER-11). Any other field is
/// kept in `extensions`: the endpoints a provider adds (ours: IN-DISC-2).
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
    /// `GET .../proxyDownload/{downloadUrl}`.
    pub proxy_download: String,
    /// `POST .../requestConsent/{targetUser}`, if served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_consent: Option<String>,
    /// `POST .../updateConsent/{requesterUser}`, if served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_consent: Option<String>,
    /// `POST .../identifierQuery/{domain}`, if served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_query: Option<String>,
    /// `POST .../reportAbuse/{roomId}`, if served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_abuse: Option<String>,
    /// `GET .../ratchetTree/{roomId}/{epoch}`, if served (IN-SERVER-11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratchet_tree: Option<String>,
    /// Endpoints outside the draft's list, by name (IN-DISC-2).
    #[serde(flatten)]
    pub extensions: BTreeMap<String, String>,
}

impl Directory {
    /// The directory of a server whose API lives at `{base_url}/v1/...` and that serves the six
    /// required endpoints only; a trailing `/` on the base is ignored. Set the optional fields
    /// with [`Directory::template`] for the endpoints the server also serves.
    pub fn for_base_url(base_url: &str) -> Self {
        let t = |endpoint: &str, param: &str| Self::template(base_url, endpoint, &[param]);
        Self {
            key_material: t("keyMaterial", "targetUser"),
            update: t("update", "roomId"),
            notify: t("notify", "roomId"),
            submit_message: t("submitMessage", "roomId"),
            group_info: t("groupInfo", "roomId"),
            proxy_download: t("proxyDownload", "downloadUrl"),
            request_consent: None,
            update_consent: None,
            identifier_query: None,
            report_abuse: None,
            ratchet_tree: None,
            extensions: BTreeMap::new(),
        }
    }

    /// The template `{base_url}/v1/{endpoint}/{p1}/{p2}...` for the parameter names `params`.
    pub fn template(base_url: &str, endpoint: &str, params: &[&str]) -> String {
        let mut out = format!("{}/v1/{endpoint}", base_url.trim_end_matches('/'));
        for param in params {
            out.push_str("/{");
            out.push_str(param);
            out.push('}');
        }
        out
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

    /// Replaces each `{name}` placeholder of `template` in turn with one of `params`, which
    /// the caller has made path-safe. `None` unless there are exactly as many placeholders as
    /// parameters.
    pub fn expand_all(template: &str, params: &[&str]) -> Option<String> {
        let mut out = template.to_owned();
        for param in params {
            out = Self::expand(&out, param)?;
        }
        (!out.contains('{')).then_some(out)
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
        assert_eq!(
            Directory::expand_all(
                "https://x/v1/tree/{roomId}/{epoch}",
                &["a.example/r/x", "7"]
            )
            .as_deref(),
            Some("https://x/v1/tree/a.example/r/x/7")
        );
        assert_eq!(
            Directory::expand_all("https://x/v1/tree/{roomId}/{epoch}", &["r"]),
            None
        );
        assert_eq!(
            Directory::expand_all("https://x/v1/notify/{roomId}", &["r", "s"]),
            None
        );
    }

    #[test]
    fn json_uses_the_drafts_field_names_and_omits_what_is_not_served() {
        let mut d = Directory::for_base_url("https://mimi.example.com");
        let json = d.to_json();
        for key in [
            "keyMaterial",
            "update",
            "notify",
            "submitMessage",
            "groupInfo",
            "proxyDownload",
        ] {
            assert!(json.contains(&format!("\"{key}\"")), "missing {key}");
        }
        for key in [
            "requestConsent",
            "updateConsent",
            "identifierQuery",
            "reportAbuse",
            "ratchetTree",
        ] {
            assert!(!json.contains(&format!("\"{key}\"")), "{key} is not served");
        }
        assert_eq!(Directory::from_json(&json).unwrap(), d);
        d.ratchet_tree = Some(Directory::template(
            "https://mimi.example.com",
            "ratchetTree",
            &["roomId", "epoch"],
        ));
        let json = d.to_json();
        assert!(json.contains(
            r#""ratchetTree": "https://mimi.example.com/v1/ratchetTree/{roomId}/{epoch}""#
        ));
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
        let base = "https://mimi.example.com";
        let mut want = Directory::for_base_url(base);
        want.request_consent = Some(Directory::template(base, "requestConsent", &["targetUser"]));
        want.update_consent = Some(Directory::template(
            base,
            "updateConsent",
            &["requesterUser"],
        ));
        want.identifier_query = Some(Directory::template(base, "identifierQuery", &["domain"]));
        want.report_abuse = Some(Directory::template(base, "reportAbuse", &["roomId"]));
        want.extensions.insert(
            "futureEndpoint".into(),
            "https://mimi.example.com/v1/future/{x}".into(),
        );
        assert_eq!(Directory::from_json(json).unwrap(), want);
        assert!(Directory::from_json("{}").is_err());
    }
}
