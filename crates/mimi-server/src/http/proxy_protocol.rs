//! The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a trusted
//! TCP reverse proxy sends before the TLS bytes it passes through, naming the client's address.
//! TLS must reach `mimid` unbroken (peers authenticate with client certificates), so an HTTP
//! header such as `X-Forwarded-For` cannot carry the address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The 12 bytes that open a version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;
/// The longest version 2 address block we read; TLVs beyond the addresses are skipped, and a
/// proxy has no reason to send kilobytes of them.
const V2_MAX_BODY: usize = 2048;

/// A header that does not follow the specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ProxyHeaderError {
    /// The connection did not start with either version's signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// The header is malformed.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// The connection ended or failed inside the header.
    #[error("connection ended inside the PROXY header")]
    Io,
}

/// Reads one header from the start of `stream` and returns the client's address, or `None`
/// where the proxy says it has none (`UNKNOWN`, `LOCAL`, a family other than TCP over IPv4 or
/// IPv6); the proxy's own address is then used. Reads nothing past the header.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    // Both versions' shortest header ("PROXY UNKNOWN\r\n" has 15 bytes) is longer than this.
    let mut start = [0u8; 12];
    stream
        .read_exact(&mut start)
        .await
        .map_err(|_| ProxyHeaderError::Io)?;
    if start == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream
            .read_exact(&mut fixed)
            .await
            .map_err(|_| ProxyHeaderError::Io)?;
        let len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if len > V2_MAX_BODY {
            return Err(ProxyHeaderError::Malformed("address block too long"));
        }
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|_| ProxyHeaderError::Io)?;
        return parse_v2(fixed[0], fixed[1], &body);
    }
    if !start.starts_with(b"PROXY ") {
        return Err(ProxyHeaderError::Missing);
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyHeaderError::Malformed("version 1 line too long"));
        }
        line.push(stream.read_u8().await.map_err(|_| ProxyHeaderError::Io)?);
    }
    parse_v1(&line)
}

/// `PROXY TCP4|TCP6 SRC DST SRCPORT DSTPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let bad = ProxyHeaderError::Malformed;
    let text = std::str::from_utf8(line).map_err(|_| bad("not ASCII"))?;
    let text = text.strip_suffix("\r\n").ok_or(bad("no CRLF"))?;
    let mut fields = text.split(' ');
    if fields.next() != Some("PROXY") {
        return Err(ProxyHeaderError::Missing);
    }
    let family = fields.next().ok_or(bad("no protocol"))?;
    if family == "UNKNOWN" {
        return Ok(None);
    }
    let fields: Vec<&str> = fields.collect();
    let [source, _destination, source_port, _destination_port] = fields[..] else {
        return Err(bad("wrong number of fields"));
    };
    let ip: IpAddr = match family {
        "TCP4" => IpAddr::V4(source.parse().map_err(|_| bad("bad IPv4 source"))?),
        "TCP6" => IpAddr::V6(source.parse().map_err(|_| bad("bad IPv6 source"))?),
        _ => return Err(bad("unknown protocol")),
    };
    // Ports are decimal without leading zeros (the specification forbids them).
    if source_port.len() > 1 && source_port.starts_with('0') {
        return Err(bad("bad source port"));
    }
    let port: u16 = source_port.parse().map_err(|_| bad("bad source port"))?;
    Ok(Some(SocketAddr::new(ip, port)))
}

/// The part after the 16 fixed bytes: version and command, family and protocol, then
/// `body` (addresses, then TLVs that we skip).
fn parse_v2(
    version_command: u8,
    family_protocol: u8,
    body: &[u8],
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let bad = ProxyHeaderError::Malformed;
    if version_command >> 4 != 2 {
        return Err(bad("version is not 2"));
    }
    match version_command & 0x0f {
        // LOCAL: the proxy's own connection (a health check); its address is the real one.
        0 => return Ok(None),
        1 => {}
        _ => return Err(bad("unknown command")),
    }
    match family_protocol {
        // TCP over IPv4: source, destination (4 bytes each), source port, destination port.
        0x11 => {
            let a = body.get(..12).ok_or(bad("short IPv4 address block"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[8], a[9]]),
            )))
        }
        // TCP over IPv6: the same with 16-byte addresses.
        0x21 => {
            let a = body.get(..36).ok_or(bad("short IPv6 address block"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            Ok(Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                u16::from_be_bytes([a[32], a[33]]),
            )))
        }
        // UNSPEC, UDP or UNIX sockets: no client address we can limit by.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
        let mut stream = bytes;
        let result = read_header(&mut stream).await;
        (result, stream.to_vec())
    }

    #[tokio::test]
    async fn version_1_names_the_client_and_leaves_the_tls_bytes() {
        let (got, rest) =
            read(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n\x16\x03\x01").await;
        assert_eq!(got, Ok(Some("192.0.2.7:56324".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03\x01");
        let (got, _) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n").await;
        assert_eq!(got, Ok(Some("[2001:db8::1]:4000".parse().unwrap())));
        let (got, _) = read(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(got, Ok(None));
    }

    #[tokio::test]
    async fn version_2_names_the_client_and_skips_tlvs() {
        // Signature, version 2 / PROXY, TCP over IPv4, 12 address bytes + a 4-byte TLV.
        let mut header = V2_SIGNATURE.to_vec();
        header.extend_from_slice(&[0x21, 0x11, 0x00, 0x10]);
        header.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb]);
        header.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]); // PP2_TYPE_NOOP, 1 byte
        header.extend_from_slice(b"\x16\x03\x01");
        let (got, rest) = read(&header).await;
        assert_eq!(got, Ok(Some("192.0.2.7:56324".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03\x01");

        let mut v6 = V2_SIGNATURE.to_vec();
        v6.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]);
        let mut source = [0u8; 16];
        source[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        source[15] = 1;
        v6.extend_from_slice(&source);
        v6.extend_from_slice(&[0u8; 16]);
        v6.extend_from_slice(&[0x0f, 0xa0, 0x01, 0xbb]);
        let (got, _) = read(&v6).await;
        assert_eq!(got, Ok(Some("[2001:db8::1]:4000".parse().unwrap())));

        // LOCAL (a health check): no client address.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(read(&local).await.0, Ok(None));
    }

    #[tokio::test]
    async fn malformed_or_missing_headers_are_refused() {
        let cases: [(&[u8], ProxyHeaderError); 6] = [
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00",
                ProxyHeaderError::Missing,
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
                ProxyHeaderError::Malformed("wrong number of fields"),
            ),
            (
                b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
                ProxyHeaderError::Malformed("bad IPv4 source"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",
                ProxyHeaderError::Malformed("bad source port"),
            ),
            (b"PROXY TCP4 192.0.2.7 198.51.100.1 1", ProxyHeaderError::Io),
            (
                &[b'P', b'R', b'O', b'X', b'Y', b' ', b'A'].repeat(20),
                ProxyHeaderError::Malformed("version 1 line too long"),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                read(bytes).await.0,
                Err(want),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
        assert_eq!(
            read(&short).await.0,
            Err(ProxyHeaderError::Malformed("short IPv4 address block"))
        );
        let mut v1 = V2_SIGNATURE.to_vec();
        v1.extend_from_slice(&[0x11, 0x11, 0x00, 0x00]);
        assert_eq!(
            read(&v1).await.0,
            Err(ProxyHeaderError::Malformed("version is not 2"))
        );
    }
}
