//! Feeds arbitrary bytes to every decoder of user discovery that takes a stranger's input: a
//! gateway opening a sealed lookup, an issuer signing a blinded token request, a gateway
//! checking a token, and identifier parsing. Each must refuse quietly, never panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mimi_discovery::{Gateway, Identifier, Issuer, check_token};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::new(&[7; 32], Vec::new()).expect("a gateway"))
}

fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| Issuer::generate().expect("an issuer key"))
}

fuzz_target!(|data: &[u8]| {
    let _ = gateway().open("a.example", data);
    let _ = issuer().sign(data);
    assert!(check_token(data, "a.example", issuer().public_key()).is_err());
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = Identifier::parse(text) {
            // A parsed identifier is normalised: parsing its own form gives it back.
            assert_eq!(Identifier::parse(&id.to_uri()).ok(), Some(id.clone()));
        }
    }
});
