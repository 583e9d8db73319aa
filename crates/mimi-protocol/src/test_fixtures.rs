//! Hand-built RFC 9420 objects for unit tests, written with the crate's own encoder helpers.
//! They follow the RFC layout exactly; OpenMLS-generated objects are tested in
//! `tests/integration`.

use crate::codec::{put_opaque, put_u16_vec, put_vec};

pub(crate) fn credential(out: &mut Vec<u8>, identity: &[u8]) {
    out.extend_from_slice(&1u16.to_be_bytes());
    put_opaque(out, identity);
}

pub(crate) fn capabilities(out: &mut Vec<u8>) {
    put_u16_vec(out, &[1]);
    put_u16_vec(out, &[1]);
    put_u16_vec(out, &[6]);
    put_u16_vec(out, &[8, 10]);
    put_u16_vec(out, &[1]);
}

/// LeafNode with the given source byte (1 key_package, 2 update, 3 commit).
pub(crate) fn leaf_node(out: &mut Vec<u8>, source: u8) {
    put_opaque(out, &[0x11; 32]); // encryption_key
    put_opaque(out, &[0x22; 32]); // signature_key
    credential(out, b"mimi://a.example/d/alice/c1");
    capabilities(out);
    out.push(source);
    match source {
        1 => {
            out.extend_from_slice(&100u64.to_be_bytes());
            out.extend_from_slice(&200u64.to_be_bytes());
        }
        3 => put_opaque(out, &[0x33; 32]),
        _ => {}
    }
    put_vec(out, &[(0xf000u16, vec![1u8, 2])], |(t, d), o| {
        o.extend_from_slice(&t.to_be_bytes());
        put_opaque(o, d);
    });
    put_opaque(out, &[0x44; 64]); // signature
}

pub(crate) fn key_package() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    put_opaque(&mut out, &[0x55; 32]); // init_key
    leaf_node(&mut out, 1);
    put_opaque(&mut out, &[]); // extensions
    put_opaque(&mut out, &[0x66; 64]);
    out
}

pub(crate) fn welcome(refs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u16.to_be_bytes());
    put_vec(&mut out, refs, |r, o| {
        put_opaque(o, r);
        put_opaque(o, &[0x77; 32]);
        put_opaque(o, &[0x88; 80]);
    });
    put_opaque(&mut out, &[0x99; 200]);
    out
}

pub(crate) fn group_info(epoch: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    put_opaque(&mut out, b"mimi://a.example/g/clubhouse");
    out.extend_from_slice(&epoch.to_be_bytes());
    put_opaque(&mut out, &[1; 32]);
    put_opaque(&mut out, &[2; 32]);
    put_opaque(&mut out, &[]);
    put_opaque(&mut out, &[]);
    put_opaque(&mut out, &[3; 32]);
    out.extend_from_slice(&0u32.to_be_bytes());
    put_opaque(&mut out, &[4; 64]);
    out
}

fn mls_message(wire_format: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&wire_format.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

fn public_header(out: &mut Vec<u8>, epoch: u64, member: Option<u32>, content_type: u8) {
    put_opaque(out, b"mimi://a.example/g/clubhouse");
    out.extend_from_slice(&epoch.to_be_bytes());
    match member {
        Some(leaf) => {
            out.push(1);
            out.extend_from_slice(&leaf.to_be_bytes());
        }
        None => {
            out.push(2);
            out.extend_from_slice(&0u32.to_be_bytes());
        }
    }
    put_opaque(out, b"aad");
    out.push(content_type);
}

/// A PublicMessage proposal of each supported type in turn, chosen by `variant`.
pub(crate) fn public_proposal(epoch: u64, variant: u8) -> Vec<u8> {
    let mut inner = Vec::new();
    let member = if variant.is_multiple_of(2) {
        Some(3)
    } else {
        None
    };
    public_header(&mut inner, epoch, member, 2);
    proposal(&mut inner, variant);
    put_opaque(&mut inner, &[0xaa; 64]); // signature
    if member.is_some() {
        put_opaque(&mut inner, &[0xbb; 32]); // membership_tag
    }
    mls_message(1, &inner)
}

/// Writes one proposal; `variant` picks the type.
pub(crate) fn proposal(out: &mut Vec<u8>, variant: u8) {
    match variant % 6 {
        0 => {
            // app_data_update, update op
            out.extend_from_slice(&0x0008u16.to_be_bytes());
            out.extend_from_slice(&0x0022u16.to_be_bytes());
            out.push(1);
            put_opaque(out, &[0, 0, 0]);
        }
        1 => {
            // remove
            out.extend_from_slice(&3u16.to_be_bytes());
            out.extend_from_slice(&5u32.to_be_bytes());
        }
        2 => {
            // self_remove
            out.extend_from_slice(&0x000au16.to_be_bytes());
        }
        3 => {
            // add
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&key_package());
        }
        4 => {
            // update
            out.extend_from_slice(&2u16.to_be_bytes());
            leaf_node(out, 2);
        }
        _ => {
            // psk (resumption)
            out.extend_from_slice(&4u16.to_be_bytes());
            out.push(2);
            out.push(1);
            put_opaque(out, b"g");
            out.extend_from_slice(&3u64.to_be_bytes());
            put_opaque(out, &[7; 32]);
        }
    }
}

/// A member's PublicMessage commit with an Add, a proposal reference and an UpdatePath.
pub(crate) fn public_commit(epoch: u64) -> Vec<u8> {
    let mut inner = Vec::new();
    public_header(&mut inner, epoch, Some(0), 3);
    let mut proposals = Vec::new();
    proposals.push(1u8);
    proposal(&mut proposals, 3);
    proposals.push(1u8);
    proposal(&mut proposals, 0);
    proposals.push(2u8);
    put_opaque(&mut proposals, &[0xcc; 32]);
    put_opaque(&mut inner, &proposals);
    inner.push(1); // path present
    leaf_node(&mut inner, 3);
    put_vec(&mut inner, &[0u8, 1], |_, o| {
        put_opaque(o, &[0xdd; 32]);
        put_vec(o, &[()], |_, o| {
            put_opaque(o, &[0xee; 32]);
            put_opaque(o, &[0xff; 48]);
        });
    });
    put_opaque(&mut inner, &[0xaa; 64]); // signature
    put_opaque(&mut inner, &[0x12; 32]); // confirmation_tag
    put_opaque(&mut inner, &[0xbb; 32]); // membership_tag
    mls_message(1, &inner)
}

pub(crate) fn private_message(epoch: u64, content_type: u8) -> Vec<u8> {
    let mut inner = Vec::new();
    put_opaque(&mut inner, b"mimi://a.example/g/clubhouse");
    inner.extend_from_slice(&epoch.to_be_bytes());
    inner.push(content_type);
    put_opaque(&mut inner, b"safe-aad");
    put_opaque(&mut inner, &[1; 40]);
    put_opaque(&mut inner, &[2; 300]);
    mls_message(2, &inner)
}

pub(crate) fn welcome_message(refs: &[&[u8]]) -> Vec<u8> {
    mls_message(3, &welcome(refs))
}

pub(crate) fn group_info_message(epoch: u64) -> Vec<u8> {
    mls_message(4, &group_info(epoch))
}

pub(crate) fn key_package_message() -> Vec<u8> {
    mls_message(5, &key_package())
}

/// An encoded RFC 9420 ratchet tree vector (opaque to this crate).
pub(crate) fn ratchet_tree() -> Vec<u8> {
    let mut out = Vec::new();
    put_opaque(&mut out, &[1, 1, 2, 3, 0, 1, 4, 5]);
    out
}
