//! Exact decoding and size limits shared by the policy components, on top of the TLS
//! presentation-language codec of `mimi_protocol::tls`.

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader};

use crate::error::Error;

/// Largest encoded policy component accepted by `decode` and produced by `encode`
/// (IN-POLICY-5).
///
/// Policy components live in the MLS GroupContext, which every member downloads with each
/// GroupInfo and Welcome, so a real one is a few KiB at most. The input is checked against this
/// cap before decoding starts, and every vector inside is read with it as its byte limit, so no
/// allocation made while decoding can exceed it.
pub(crate) const MAX_COMPONENT_LEN: usize = 64 * 1024;

/// Decodes a whole buffer as one `T`; trailing bytes are an error.
pub(crate) fn decode_exact<T: Codec>(bytes: &[u8], type_name: &'static str) -> Result<T, Error> {
    // POL-061: bound the input before decoding anything.
    if bytes.len() > MAX_COMPONENT_LEN {
        return Err(Error::TooLarge {
            type_name,
            len: bytes.len(),
            max: MAX_COMPONENT_LEN,
        });
    }
    let mut reader = Reader::new(bytes);
    let value = T::read(&mut reader).map_err(|e| decode_error(type_name, &e))?;
    // POL-060: a component is the whole buffer; trailing bytes are an error.
    let count = bytes.len().saturating_sub(reader.position());
    if count > 0 {
        return Err(Error::TrailingData { type_name, count });
    }
    Ok(value)
}

/// Encodes `value`, refusing an encoding that `decode_exact` would refuse as too large.
pub(crate) fn encode<T: Codec>(value: &T, type_name: &'static str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value.write(&mut out);
    // POL-061: never produce what `decode_exact` would refuse.
    if out.len() > MAX_COMPONENT_LEN {
        return Err(Error::Encode {
            type_name,
            detail: format!(
                "{} bytes exceed the component limit of {MAX_COMPONENT_LEN}",
                out.len()
            ),
        });
    }
    Ok(out)
}

/// Checks one variable-length vector against its maximum element count (POL-062).
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::VectorTooLong { field, len, max });
    }
    Ok(())
}

/// Maps a codec failure inside `type_name` to this crate's error, keeping the codec's wording
/// (which names the inner type that failed) as the detail.
fn decode_error(type_name: &'static str, e: &DecodeError) -> Error {
    match e {
        // POL-065: an enum value the draft does not define gets its own variant, naming the enum.
        DecodeError::UnknownValue { ty, value } => Error::OutOfRange {
            type_name,
            enum_name: ty,
            value: *value,
        },
        _ => Error::Decode {
            type_name,
            detail: e.to_string(),
        },
    }
}

/// Reads `opaque x<V>` of at most `max` bytes that must be UTF-8 (POL-076, IN-POLICY-19).
pub(crate) fn read_utf8(
    r: &mut Reader<'_>,
    ty: &'static str,
    max: usize,
) -> Result<Vec<u8>, DecodeError> {
    let bytes = r.opaque(ty, max)?;
    if std::str::from_utf8(bytes).is_err() {
        return Err(DecodeError::Malformed {
            ty,
            reason: "text is not valid utf-8",
        });
    }
    Ok(bytes.to_vec())
}

/// Declares a closed draft enum on the wire as one byte: unknown values are refused on decode
/// (POL-065), and `Serialize` and `Display` give the draft's name.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $val:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in code point order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The code point on the wire.
            pub fn code(self) -> u8 {
                match self {
                    $( $name::$variant => $val, )*
                }
            }

            /// The value with code point `code`, if the draft defines one.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $val => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The draft's name for the value.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }

            /// The value with the draft's name `name` (exact spelling).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl mimi_protocol::tls::Codec for $name {
            const NAME: &'static str = stringify!($name);
            fn read(
                r: &mut mimi_protocol::tls::Reader<'_>,
            ) -> Result<Self, mimi_protocol::DecodeError> {
                let code = r.u8(Self::NAME)?;
                Self::from_code(code).ok_or(mimi_protocol::DecodeError::UnknownValue {
                    ty: Self::NAME,
                    value: u64::from(code),
                })
            }
            fn write(&self, out: &mut Vec<u8>) {
                out.push(self.code());
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
    };
}
pub(crate) use wire_enum;
