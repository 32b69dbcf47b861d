//! Kubernetes resource quantities ("16600m", "34304Mi", "1e3"), read exactly:
//! the apiserver stores them in a canonical form that may differ from what
//! was written ("0.5" becomes "500m"), so the operator compares values, not
//! strings.

/// The value of a quantity in nano-units (10^-9), rounded up as the
/// apiserver rounds; `None` if it is not a quantity or does not fit.
pub fn nanos(q: &str) -> Option<i128> {
    let q = q.trim();
    let (negative, q) = match q.as_bytes().first()? {
        b'-' => (true, &q[1..]),
        b'+' => (false, &q[1..]),
        _ => (false, q),
    };
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // The digits as an integer, and the power of ten that scales them.
    let digits = format!("{whole}{fraction}");
    let mantissa: i128 = match digits.trim_start_matches('0') {
        "" => 0,
        significant => significant.parse().ok()?,
    };
    let mut exp10: i32 = -(fraction.len() as i32) + 9;
    let mut factor: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => factor = 1 << 10,
        "Mi" => factor = 1 << 20,
        "Gi" => factor = 1 << 30,
        "Ti" => factor = 1 << 40,
        "Pi" => factor = 1 << 50,
        "Ei" => factor = 1 << 60,
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().ok()?;
            exp10 = exp10.checked_add(e)?;
        }
        _ => return None,
    }
    let scaled = mantissa.checked_mul(factor)?;
    let value = if exp10 >= 0 {
        scaled.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)?
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-exp10).ok()?)?;
        // Below a nano-unit rounds up, as the apiserver does.
        scaled / divisor + i128::from(scaled % divisor != 0)
    };
    Some(if negative { -value } else { value })
}

/// A quantity in whole GiB, rounded up; `None` if it is not a quantity or
/// is negative.
pub fn gib(q: &str) -> Option<u32> {
    const GIB_NANOS: i128 = (1 << 30) * 1_000_000_000;
    let n = nanos(q)?;
    if n < 0 {
        return None;
    }
    u32::try_from(n / GIB_NANOS + i128::from(n % GIB_NANOS != 0)).ok()
}

/// The quantity's value as a plain string of nano-units, for comparing two
/// spellings of one value; what is not a quantity stays as it is.
pub fn canonical(q: &str) -> String {
    nanos(q).map_or_else(|| q.to_owned(), |n| format!("{n}n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_value_are_equal() {
        assert_eq!(nanos("0.5"), nanos("500m"));
        assert_eq!(nanos("16600m"), nanos("16.6"));
        assert_eq!(nanos("1Gi"), nanos("1024Mi"));
        assert_eq!(nanos("1e3"), nanos("1k"));
        assert_eq!(nanos("1E3"), nanos("1000"));
        assert_eq!(nanos("+2"), Some(2_000_000_000));
        assert_eq!(nanos("-1m"), Some(-1_000_000));
        assert_eq!(nanos("0"), Some(0));
        assert_eq!(nanos("000"), Some(0));
        assert_eq!(nanos(".5"), nanos("500m"));
        assert_eq!(canonical("34304Mi"), canonical("33.5Gi"));
        assert_ne!(canonical("1Gi"), canonical("1G"));
    }

    #[test]
    fn what_is_not_a_quantity_is_refused_or_kept() {
        for bad in ["", "Gi", "1.2.3", "1x", "1e", "--1", "1 Gi", "."] {
            assert_eq!(nanos(bad), None, "{bad:?}");
        }
        assert_eq!(canonical("edit"), "edit");
        // Too large for nano-units in 128 bits.
        assert_eq!(nanos("1e40"), None);
    }

    #[test]
    fn below_a_nano_unit_rounds_up() {
        assert_eq!(nanos("1e-10"), Some(1));
        assert_eq!(nanos("1.5n"), Some(2));
    }

    #[test]
    fn whole_gib_round_up() {
        assert_eq!(gib("40Gi"), Some(40));
        assert_eq!(gib("40.5Gi"), Some(41));
        assert_eq!(gib("1G"), Some(1));
        assert_eq!(gib("1025Mi"), Some(2));
        assert_eq!(gib("0"), Some(0));
        assert_eq!(gib("1Ti"), Some(1024));
        assert_eq!(gib("500Mi"), Some(1));
        assert_eq!(gib("10G"), Some(10));
        assert_eq!(gib("lots"), None);
        assert_eq!(gib("-1Gi"), None);
    }
}
