//! Attachments: encrypt and upload a file with a message, download and decrypt one.

use std::path::Path;

use mimi_content::MimiContent;
use sha2::{Digest, Sha256};

use crate::api::Repeat;
use crate::client::Client;
use crate::error::ClientError;
use mimi_policy::DownloadPrivacyType;
use mimi_protocol::client_api::AssetStored;

impl Client {
    /// Encrypts a file (AES-128-GCM, fresh key and nonce), uploads the ciphertext to our
    /// provider and sends a message whose external part carries the URL, key, nonce and the
    /// ciphertext's SHA-256; returns the message ID. The provider never sees the plaintext.
    pub async fn attach(&mut self, room: &str, path: &Path) -> Result<String, ClientError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        self.sync().await?;
        let plaintext = std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
        // AST-010: the room's asset policy, before anything leaves this client.
        let media_type = media_type_of(path);
        let domain = self.account.domain.clone();
        self.state
            .room_rules(room, &self.account.user_uri)?
            .check_upload(media_type, plaintext.len() as u64, &domain, &domain)
            .map_err(ClientError::NotAllowed)?;
        let key: [u8; 16] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let cipher = aes_gcm::Aes128Gcm::new(&key.into());
        let ciphertext = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plaintext,
                    aad: &[],
                },
            )
            .map_err(|_| ClientError::Internal("cannot encrypt the attachment".into()))?;
        let content_hash = Sha256::digest(&ciphertext).to_vec();
        let uploaded: AssetStored = {
            let bytes = self
                .api
                .post_bytes(
                    &format!(
                        "/client/v1/assets?room={}&media_type={}&size={}",
                        mimi_protocol::percent_encode(room),
                        mimi_protocol::percent_encode(media_type),
                        plaintext.len()
                    ),
                    ciphertext,
                    Repeat::Never,
                )
                .await?;
            serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Provider(format!("malformed upload answer: {e}")))?
        };
        let url = uploaded.url;
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = mimi_content::ExternalPart {
            content_type: media_type.into(),
            url,
            expires: 0,
            size: plaintext.len() as u64,
            enc_alg: 1,
            key: key.to_vec(),
            nonce: nonce.to_vec(),
            aad: Vec::new(),
            hash_alg: 1,
            content_hash,
            description: String::new(),
            filename,
        };
        let body = mimi_content::NestedPart::new(
            mimi_content::Disposition::ATTACHMENT,
            mimi_content::PartBody::External(part),
        );
        self.post_content(room, MimiContent::new(rand::random(), body))
            .await
    }

    /// Downloads the attachment of message `id` (through the room's hub when it is stored
    /// elsewhere), checks the ciphertext's hash, decrypts it and writes it to `out`.
    pub async fn download(&mut self, room: &str, id: &str, out: &Path) -> Result<u64, ClientError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        self.sync().await?;
        let message = self
            .messages(room)?
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ClientError::NotAllowed(format!("no message {id} in {room}")))?;
        let attachment = message
            .attachment
            .ok_or_else(|| ClientError::NotAllowed(format!("message {id} has no attachment")))?;
        if attachment.enc_alg != 1 || attachment.key.len() != 16 || attachment.nonce.len() != 12 {
            return Err(ClientError::Refused(
                "attachment uses an unsupported cipher".into(),
            ));
        }
        // AST-011: our role may download this kind, by the mechanism we use: our provider's
        // own assets directly, others' through the room's hub.
        let how = if attachment
            .url
            .starts_with(&format!("https://{}:", self.account.domain))
            || attachment
                .url
                .starts_with(&format!("https://{}/", self.account.domain))
        {
            DownloadPrivacyType::Direct
        } else {
            DownloadPrivacyType::HubProxy
        };
        self.state
            .room_rules(room, &self.account.user_uri)?
            .check_download(Some(&attachment.content_type), how)
            .map_err(ClientError::NotAllowed)?;
        let path = format!(
            "/client/v1/download?room={}&url={}",
            mimi_protocol::percent_encode(room),
            mimi_protocol::percent_encode(&attachment.url)
        );
        let ciphertext = self.api.get_bytes(&path).await?;
        // DL-001: what we got is what the sender uploaded; DL-002: it decrypts.
        if Sha256::digest(&ciphertext).as_slice() != attachment.content_hash.as_slice() {
            return Err(ClientError::Refused(
                "the downloaded attachment does not match its hash: it was tampered with".into(),
            ));
        }
        let key: [u8; 16] = attachment
            .key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Refused("attachment key has the wrong length".into()))?;
        let nonce: [u8; 12] =
            attachment.nonce.as_slice().try_into().map_err(|_| {
                ClientError::Refused("attachment nonce has the wrong length".into())
            })?;
        let plaintext = aes_gcm::Aes128Gcm::new(&key.into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &ciphertext,
                    aad: &attachment.aad,
                },
            )
            .map_err(|_| ClientError::Refused("the attachment does not decrypt".into()))?;
        std::fs::write(out, &plaintext)
            .map_err(|e| ClientError::Usage(format!("cannot write {}: {e}", out.display())))?;
        Ok(plaintext.len() as u64)
    }
}

/// The media type of a file, from its extension; `application/octet-stream` when unknown.
fn media_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type_of(Path::new("a/cat.JPG")), "image/jpeg");
        assert_eq!(media_type_of(Path::new("song.mp3")), "audio/mpeg");
        assert_eq!(media_type_of(Path::new("clip.webm")), "video/webm");
        assert_eq!(
            media_type_of(Path::new("notes")),
            "application/octet-stream"
        );
    }
}
