//! MLS objects (RFC 9420) carried as validated bytes, without OpenMLS.
//!
//! MIMI bodies embed MLS structures without a length prefix, so this module walks their RFC 9420
//! layout to find where each ends, keeps the original bytes (re-encoding is byte-identical) and
//! decodes only what a server routes on.

mod message;
mod objects;
mod primitives;

pub use message::{ContentType, MlsMessage, MlsMessageKind, Sender};
pub use objects::{GroupInfo, KeyPackage, Welcome};
pub use primitives::{
    Capabilities, CipherSuite, Credential, Extension, ExternalSender, HpkeCiphertext,
    HpkePublicKey, Lifetime, RequiredCapabilities, SignaturePublicKey,
};
