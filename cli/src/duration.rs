//! Durations on the command line: `90s`, `15m`, `12h`, `7d`, `2w`, or plain
//! seconds.

/// Parses a duration into seconds.
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (examples: 90s, 15m, 12h, 7d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn parses_units_and_refuses_garbage() {
        assert_eq!(parse_seconds("90"), Ok(90));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("15m"), Ok(900));
        assert_eq!(parse_seconds("12h"), Ok(43_200));
        assert_eq!(parse_seconds("7d"), Ok(604_800));
        assert_eq!(parse_seconds("2w"), Ok(1_209_600));
        for bad in ["", "m", "5y", "-3s", "1.5h", "99999999999999999999d"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
