//! Conversions between IEEE 754 binary16 and binary64, needed to find the shortest float form.

/// The only NaN the draft allows, as binary16 bits (`f97e00`).
pub(crate) const CANONICAL_NAN_F16: u16 = 0x7e00;

/// Widens binary16 bits to an `f64` (exact: every binary16 value is a binary64 value).
pub(crate) fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + mant) * 2f64.powi(exp - 25),
    };
    sign * magnitude
}

/// Returns the binary16 bits of `x` if `x` is exactly representable in binary16 (NaN is not
/// handled here: callers map it to [`CANONICAL_NAN_F16`] first).
pub(crate) fn f64_to_f16_exact(x: f64) -> Option<u16> {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let abs = x.abs();
    if abs == 0.0 {
        return Some(sign);
    }
    if abs.is_infinite() {
        return Some(sign | 0x7c00);
    }
    if abs.is_nan() {
        return None;
    }
    if abs >= 2f64.powi(-14) {
        let bits = abs.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mant = bits & ((1u64 << 52) - 1);
        if exp > 15 || mant & ((1u64 << 42) - 1) != 0 {
            return None;
        }
        // exp is in -14..=15 here, so exp + 15 fits the five exponent bits.
        let exp_bits = u16::try_from(exp + 15).ok()?;
        let mant_bits = u16::try_from(mant >> 42).ok()?;
        Some(sign | (exp_bits << 10) | mant_bits)
    } else {
        // binary16 subnormals are the multiples of 2^-24 below 2^-14; scaling by a power of two
        // is exact.
        let scaled = abs * 2f64.powi(24);
        if scaled.fract() == 0.0 && scaled < 1024.0 {
            Some(sign | scaled as u16)
        } else {
            None
        }
    }
}

/// Whether `x` (not NaN) is exactly representable in binary32.
pub(crate) fn fits_f32(x: f64) -> bool {
    f64::from(x as f32) == x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finite_f16_round_trips_through_f64() {
        for bits in 0u16..=0xffff {
            let x = f16_to_f64(bits);
            if x.is_nan() {
                continue;
            }
            assert_eq!(f64_to_f16_exact(x), Some(bits), "bits {bits:04x}");
        }
    }

    #[test]
    fn rejects_values_between_f16_steps() {
        assert_eq!(f64_to_f16_exact(1.0 + 2f64.powi(-11)), None);
        assert_eq!(f64_to_f16_exact(65520.0), None);
        assert_eq!(f64_to_f16_exact(2f64.powi(-25)), None);
        assert_eq!(f64_to_f16_exact(1.5), Some(0x3e00));
    }
}
