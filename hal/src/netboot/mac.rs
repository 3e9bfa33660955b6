//! Ethernet hardware addresses, as written in configuration files (`52:54:00:00:00:01`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An Ethernet hardware address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts
                .next()
                .ok_or_else(|| format!("'{s}' is not a MAC address"))?;
            *byte =
                u8::from_str_radix(part, 16).map_err(|_| format!("'{s}' is not a MAC address"))?;
        }
        if parts.next().is_some() {
            return Err(format!("'{s}' is not a MAC address"));
        }
        Ok(Mac(out))
    }
}

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.to_string()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colons_and_dashes_and_prints_colons() {
        let mac: Mac = "52-54-00-00-00-0A".parse().unwrap();
        assert_eq!(mac, Mac([0x52, 0x54, 0, 0, 0, 0x0a]));
        assert_eq!(mac.to_string(), "52:54:00:00:00:0a");
        assert!("52:54:00:00:01".parse::<Mac>().is_err());
        assert!("52:54:00:00:00:01:02".parse::<Mac>().is_err());
        assert!("52:54:00:00:00:zz".parse::<Mac>().is_err());
    }
}
