//! The lab BMC's sensor data records and readings, enough for `ipmitool sdr list`: an SDR repository
//! of two temperature sensors (full sensor records, degrees C, linear, no thresholds) and their readings,
//! which are unavailable while the VM is off.

use hal::power::ipmi::commands::{CC_BAD_LENGTH, CC_INVALID_DATA, CC_OK};

/// Network function of storage commands.
pub const NETFN_STORAGE: u8 = 0x0a;
/// Network function of sensor/event commands.
pub const NETFN_SENSOR: u8 = 0x04;
/// Storage: Get SDR Repository Info.
pub const CMD_GET_SDR_REPO_INFO: u8 = 0x20;
/// Storage: Reserve SDR Repository.
pub const CMD_RESERVE_SDR_REPO: u8 = 0x22;
/// Storage: Get SDR.
pub const CMD_GET_SDR: u8 = 0x23;
/// Sensor: Get Sensor Reading.
pub const CMD_GET_SENSOR_READING: u8 = 0x2d;
/// Completion code: requested sensor, data or record not present.
const CC_NOT_PRESENT: u8 = 0xcb;

/// The sensors: number, entity (3 processor, 7 system board), name, reading while on.
const SENSORS: [(u8, u8, &str, u8); 2] = [(1, 0x03, "CPU Temp", 42), (2, 0x07, "System Temp", 31)];

/// The full sensor record of sensor `i` of [`SENSORS`] (record ID `i + 1`).
fn record(i: usize) -> Option<Vec<u8>> {
    let &(number, entity, name, _) = SENSORS.get(i)?;
    let mut body = vec![
        0x20, 0x00, number, // owner: the BMC, LUN 0; sensor number
        entity, 0x01, // entity and instance
        0x41, 0x40, // initialisation (scanning on), capabilities (auto re-arm, no thresholds)
        0x01, 0x01, // temperature, threshold-based
        0, 0, 0, 0, 0, 0, // event and reading masks
        0x00, 0x01, 0x00, // unsigned, degrees C, no modifier
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // linear, M = 1, B = 0, no exponents
        0x00, 0x00, 0x00, 0x00, 0xff, 0x00, // analog flags, nominal, normal max/min, range
        0, 0, 0, 0, 0, 0, 0, 0, // thresholds and hysteresis
        0, 0, 0, // reserved, OEM
    ];
    body.push(0xc0 | name.len() as u8);
    body.extend_from_slice(name.as_bytes());
    let id = (i as u16 + 1).to_le_bytes();
    let mut out = vec![id[0], id[1], 0x51, 0x01, body.len() as u8];
    out.extend(body);
    Some(out)
}

/// Get SDR Repository Info: IPMI 1.5 repository, its record count, no free space, no timestamps.
pub fn repository_info() -> Vec<u8> {
    let count = (SENSORS.len() as u16).to_le_bytes();
    vec![0x51, count[0], count[1], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]
}

/// Get SDR: `[reservation (2), record ID (2), offset, bytes]` → `[next ID (2), bytes...]`.
pub fn get_sdr(data: &[u8]) -> (u8, Vec<u8>) {
    let [_, _, id_lo, id_hi, offset, count] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    let id = u16::from_le_bytes([*id_lo, *id_hi]);
    let index = match id {
        0x0000 => 0,
        0xffff => SENSORS.len() - 1,
        n => usize::from(n) - 1,
    };
    let Some(rec) = record(index) else {
        return (CC_NOT_PRESENT, Vec::new());
    };
    let offset = usize::from(*offset);
    if offset > rec.len() {
        return (CC_INVALID_DATA, Vec::new());
    }
    let end = (offset + usize::from(*count)).min(rec.len());
    let next: u16 = if index + 1 < SENSORS.len() {
        index as u16 + 2
    } else {
        0xffff
    };
    let mut out = next.to_le_bytes().to_vec();
    out.extend_from_slice(&rec[offset..end]);
    (CC_OK, out)
}

/// Get Sensor Reading: the reading while the VM runs, "reading unavailable" while it is off.
pub fn sensor_reading(data: &[u8], vm_on: bool) -> (u8, Vec<u8>) {
    let [number] = data else {
        return (CC_BAD_LENGTH, Vec::new());
    };
    let Some(&(_, _, _, reading)) = SENSORS.iter().find(|s| s.0 == *number) else {
        return (CC_NOT_PRESENT, Vec::new());
    };
    if vm_on {
        (CC_OK, vec![reading, 0x40, 0x00, 0x80])
    } else {
        (CC_OK, vec![0x00, 0x60, 0x00, 0x80])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_chain_and_read_in_pieces() {
        let (cc, first) = get_sdr(&[0, 0, 0, 0, 0, 5]);
        assert_eq!(cc, CC_OK);
        // Next record 2; header: ID 1, SDR 1.5, full sensor record, body length.
        assert_eq!(first[..6], [2, 0, 1, 0, 0x51, 0x01]);
        let len = usize::from(first[6]);
        let (_, body) = get_sdr(&[0, 0, 1, 0, 5, 255]);
        assert_eq!(body.len() - 2, len);
        assert_eq!(&body[body.len() - 8..], b"CPU Temp");
        let (_, last) = get_sdr(&[0, 0, 2, 0, 0, 5]);
        assert_eq!(last[..2], [0xff, 0xff]);
        assert_eq!(get_sdr(&[0, 0, 3, 0, 0, 5]).0, CC_NOT_PRESENT);
        assert_eq!(get_sdr(&[0, 0, 1, 0, 200, 5]).0, CC_INVALID_DATA);
        assert_eq!(get_sdr(&[0, 0]).0, CC_BAD_LENGTH);
        assert_eq!(repository_info()[1], 2);
    }

    #[test]
    fn readings_follow_the_power() {
        assert_eq!(sensor_reading(&[1], true).1[..2], [42, 0x40]);
        assert_eq!(sensor_reading(&[2], false).1[1] & 0x20, 0x20);
        assert_eq!(sensor_reading(&[9], true).0, CC_NOT_PRESENT);
    }
}
