//! Removing a provider's own clients, or a user it deleted, from a room hosted elsewhere
//! (IN-LIFECYCLE-6): the provider asks the room's hub, the room's only external sender, to
//! propose the removal. The drafts let a follower's key be an external sender instead; ours is
//! not, so these requests (`POST /v1/removeClients/{roomId}`, `POST /v1/removeUser/{roomId}`)
//! are ours. So is the follower's question which of its clients a room still holds
//! (`POST /v1/roomClients/{roomId}`, IN-LIFECYCLE-7).

use crate::codec::{Codec, Reader, put_codec_vec, read_codec_vec, wire_via_codec};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;

/// Most clients one request names.
pub const MAX_REMOVED_CLIENTS: usize = 256;

/// `struct { IdentifierUri clients<V>; } RemoveClientsRequest;`: device URIs of the asking
/// provider's own clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveClientsRequest {
    /// The clients (device URIs) to remove.
    pub clients: Vec<IdentifierUri>,
}

impl Codec for RemoveClientsRequest {
    const NAME: &'static str = "RemoveClientsRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let clients: Vec<IdentifierUri> = read_codec_vec(r, Self::NAME, 1 << 20)?;
        if clients.len() > MAX_REMOVED_CLIENTS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self { clients })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.clients);
    }
}
wire_via_codec!(RemoveClientsRequest);

/// `struct { IdentifierUri user; } RemoveUserRequest;`: a user of the asking provider whose
/// account it deleted, to be taken out of the room's participant list with its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveUserRequest {
    /// The user's URI.
    pub user: IdentifierUri,
}

impl Codec for RemoveUserRequest {
    const NAME: &'static str = "RemoveUserRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user: IdentifierUri::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.user.write(out);
    }
}
wire_via_codec!(RemoveUserRequest);

/// `struct { uint64 epoch; IdentifierUri clients<V>; } RoomClients;`: the hub's answer to a
/// `RemoveClientsRequest`-shaped question sent to `/v1/roomClients`: which of the named clients
/// are members of the room at `epoch`, the hub's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomClients {
    /// The room's epoch the answer is for.
    pub epoch: u64,
    /// The named clients (device URIs) that are members at that epoch.
    pub clients: Vec<IdentifierUri>,
}

impl Codec for RoomClients {
    const NAME: &'static str = "RoomClients";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let epoch = r.u64(Self::NAME)?;
        let clients: Vec<IdentifierUri> = read_codec_vec(r, Self::NAME, 1 << 20)?;
        if clients.len() > MAX_REMOVED_CLIENTS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self { epoch, clients })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.epoch.to_be_bytes());
        put_codec_vec(out, &self.clients);
    }
}
wire_via_codec!(RoomClients);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;

    #[test]
    fn a_removal_request_is_a_vector_of_uris() {
        let request = RemoveClientsRequest {
            clients: vec![IdentifierUri::new("mimi://b/d/u/t")],
        };
        let mut bytes = vec![15, 14]; // clients<V> of 15 bytes: one uri<V> of 14
        bytes.extend_from_slice(b"mimi://b/d/u/t");
        assert_eq!(request.encode(), bytes);
        assert_eq!(RemoveClientsRequest::decode(&bytes), Ok(request));
        assert!(RemoveClientsRequest::decode(&[15, 14, b'm']).is_err());
        assert!(RemoveClientsRequest::decode(&[0, 0]).is_err());
    }

    #[test]
    fn room_clients_are_an_epoch_and_a_vector_of_uris() {
        let answer = RoomClients {
            epoch: 7,
            clients: vec![IdentifierUri::new("mimi://b/d/u/t")],
        };
        let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 7, 15, 14];
        bytes.extend_from_slice(b"mimi://b/d/u/t");
        assert_eq!(answer.encode(), bytes);
        assert_eq!(RoomClients::decode(&bytes), Ok(answer));
        let empty = RoomClients {
            epoch: 1,
            clients: Vec::new(),
        };
        assert_eq!(empty.encode(), [0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert!(RoomClients::decode(&[0, 0, 0, 7]).is_err(), "short epoch");
        assert!(RoomClients::decode(&bytes[..12]).is_err(), "truncated");
        assert!(RoomClients::decode(&[bytes.clone(), vec![0]].concat()).is_err());
    }

    #[test]
    fn a_user_removal_request_is_one_uri() {
        let request = RemoveUserRequest {
            user: IdentifierUri::new("mimi://b/u/bob"),
        };
        let mut bytes = vec![14]; // uri<V> of 14 bytes
        bytes.extend_from_slice(b"mimi://b/u/bob");
        assert_eq!(request.encode(), bytes);
        assert_eq!(RemoveUserRequest::decode(&bytes), Ok(request));
        assert!(RemoveUserRequest::decode(&[14, b'm']).is_err(), "truncated");
        assert!(
            RemoveUserRequest::decode(&[1, b'm', 0]).is_err(),
            "trailing bytes"
        );
        assert!(RemoveUserRequest::decode(&[]).is_err());
    }
}
